package transform

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/trawl-dev/trawl/internal/weburl"
)

// title returns the text of the first <title> outside inline SVG, or nil,
// with whitespace collapsed (see collapse: unlike document.title, a no-break
// space counts as whitespace). When another transform has already parsed
// the page the tree is used; otherwise a tokenizer stops at the title
// instead of parsing everything.
func title(_ context.Context, in *Input) (any, error) {
	if !in.IsHTML() {
		return nil, nil
	}
	if in.docDone && in.doc != nil {
		if t, ok := titleFromTree(in.doc); ok {
			return t, nil
		}
		return nil, nil
	}
	text, err := in.Text()
	if err != nil {
		return nil, err
	}
	z := html.NewTokenizer(strings.NewReader(text))
	svgDepth := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return nil, nil // the end of the page, without a title
		case html.StartTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "svg":
				svgDepth++
			case "title":
				if svgDepth == 0 {
					return collapse(titleText(z)), nil
				}
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "svg" && svgDepth > 0 {
				svgDepth--
			}
		}
	}
}

// titleText collects text up to </title>. The tokenizer treats <title>
// content as raw text, so it arrives as text tokens with entities decoded.
func titleText(z *html.Tokenizer) string {
	var b strings.Builder
	for {
		switch z.Next() {
		case html.TextToken:
			b.Write(z.Text())
		case html.ErrorToken:
			return b.String()
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "title" {
				return b.String()
			}
		}
	}
}

func titleFromTree(n *html.Node) (string, bool) {
	if n.Type == html.ElementNode && n.Namespace == "" && n.DataAtom == atom.Title {
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.TextNode {
				b.WriteString(c.Data)
			}
		}
		return collapse(b.String()), true
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if t, ok := titleFromTree(c); ok {
			return t, true
		}
	}
	return "", false
}

// collapse trims s and turns each run of whitespace into one space.
// Whitespace is every Unicode space, U+00A0 NO-BREAK SPACE included: a
// title or text is read by people and by scripts that split on spaces,
// and "&nbsp;" in a title renders as a space. (document.title collapses
// only ASCII whitespace and keeps U+00A0; this is a deliberate difference.)
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// text returns the visible text of an HTML page (the body without scripts,
// styles, templates and the like, whitespace collapsed), or the decoded
// body of any other text response.
func text(_ context.Context, in *Input) (any, error) {
	doc, err := in.HTML()
	if err != nil {
		return nil, err
	}
	if doc == nil {
		t, err := in.Text()
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	var w collapser
	w.b.Grow(len(in.Body()) / 2) // visible text is usually well under half the markup
	visibleText(&w, doc)
	return w.String(), nil
}

// collapser builds text with every run of whitespace turned into one space
// and none at either end, in one pass, without splitting into words first.
type collapser struct {
	b       strings.Builder
	pending bool // a space is owed before the next non-space rune
}

func (c *collapser) WriteString(s string) {
	start := -1 // where the current run of non-space text began
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if isSpace(r) {
			if start >= 0 {
				c.word(s[start:i])
				start = -1
			}
			c.pending = c.b.Len() > 0
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		c.word(s[start:])
	}
}

// word appends a run of non-space text, after the space it is owed.
func (c *collapser) word(w string) {
	if c.pending {
		c.b.WriteByte(' ')
		c.pending = false
	}
	c.b.WriteString(w)
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return r >= utf8.RuneSelf && unicode.IsSpace(r)
}

// Space asks for a separator, as a block element boundary does.
func (c *collapser) Space() { c.pending = c.b.Len() > 0 }

func (c *collapser) String() string { return c.b.String() }

// invisible elements hold no text a reader sees on the page.
func invisible(a atom.Atom) bool {
	switch a {
	case atom.Head, atom.Script, atom.Style, atom.Template, atom.Noscript, atom.Iframe, atom.Object, atom.Select:
		return true
	}
	return false
}

// block elements separate words: "<p>a</p><p>b</p>" reads "a b", while
// "<b>a</b>b" reads "ab".
func block(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Br, atom.Dd, atom.Div, atom.Dl, atom.Dt,
		atom.Fieldset, atom.Figcaption, atom.Figure, atom.Footer, atom.Form, atom.H1, atom.H2, atom.H3, atom.H4,
		atom.H5, atom.H6, atom.Header, atom.Hr, atom.Li, atom.Main, atom.Nav, atom.Ol, atom.P, atom.Pre,
		atom.Section, atom.Table, atom.Td, atom.Th, atom.Tr, atom.Ul, atom.Option, atom.Caption, atom.Summary,
		atom.Details, atom.Img, atom.Input, atom.Button, atom.Label, atom.Textarea:
		return true
	}
	return false
}

func visibleText(b *collapser, n *html.Node) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(n.Data)
		return
	case html.ElementNode:
		if invisible(n.DataAtom) {
			return
		}
		if _, hidden := attr(n, "hidden"); hidden {
			return
		}
	}
	sep := n.Type == html.ElementNode && block(n.DataAtom)
	if sep {
		b.Space()
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		visibleText(b, c)
	}
	if sep {
		b.Space()
	}
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// linkAttr returns the attribute of an element that names a linked
// resource, per the elements the links transform looks at.
func linkAttr(a atom.Atom) string {
	switch a {
	case atom.A, atom.Area, atom.Link:
		return "href"
	case atom.Img, atom.Script, atom.Iframe:
		return "src"
	}
	return ""
}

// links returns the absolute http(s) URLs a page links to, resolved the
// way browsers resolve them (the WHATWG URL Standard, see internal/weburl)
// against the document's base URL: the href of the first <base> that has
// one, or else the page's final URL. Each is written as the standard
// serializes it (https://x.example, https://x.example/ and
// HTTPS://X.EXAMPLE:443/ are one URL) without its fragment, once, in the
// order first seen. A link to the page itself (#top, an empty href, or its
// own URL) is listed as the page's URL, like any other link. The output is
// ready to be fed back to trawl.
func links(_ context.Context, in *Input) (any, error) {
	doc, err := in.HTML()
	if err != nil || doc == nil {
		return nil, err
	}
	pageURL := in.Record.FinalURL
	if pageURL == "" {
		pageURL = in.Record.URL
	}
	page, err := weburl.Parse(pageURL, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve links against %q: %w", pageURL, err)
	}
	base := documentBase(doc, page)
	out := []string{}
	seen := make(map[string]bool)
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Namespace == "" {
			if name := linkAttr(n.DataAtom); name != "" {
				if v, ok := attr(n, name); ok {
					// Only http(s) URLs parse; mailto:, javascript: and
					// hrefs that are no URL at all are left out.
					if u, err := weburl.Parse(v, base); err == nil {
						if s := u.StringNoFragment(); !seen[s] {
							seen[s] = true
							out = append(out, s)
						}
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out, nil
}

// documentBase returns the URL relative links resolve against, as HTML
// defines it: the first <base> element with an href attribute, even an
// empty one (which means the page itself), resolved against the page URL;
// the page URL when there is no such element, or its href is no URL or a
// data: or javascript: URL. A base with another scheme (ftp:, file:) is
// honoured too, and then no relative link is an http(s) URL: nil.
func documentBase(doc *html.Node, page *weburl.URL) *weburl.URL {
	href, ok := findBase(doc)
	if !ok {
		return page
	}
	u, err := weburl.Parse(href, page)
	var se *weburl.SchemeError
	switch {
	case err == nil:
		return u
	case errors.As(err, &se) && se.Scheme != "data" && se.Scheme != "javascript":
		return nil
	}
	return page
}

// findBase returns the href of the first HTML <base> element that has
// one, in tree order.
func findBase(n *html.Node) (string, bool) {
	if n.Type == html.ElementNode && n.Namespace == "" && n.DataAtom == atom.Base {
		if v, ok := attr(n, "href"); ok {
			return v, true
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if v, ok := findBase(c); ok {
			return v, true
		}
	}
	return "", false
}

// attrName is what may follow '@' in css=SELECTOR@ATTR. A CSS selector can
// itself contain '@' inside quotes, so only a trailing attribute name counts.
var attrName = regexp.MustCompile(`^[A-Za-z_:][-A-Za-z0-9_:.]*$`)

// newCSS compiles css=SELECTOR or css=SELECTOR@ATTR once per run.
func newCSS(arg string, _ Options) (Transform, error) {
	sel, att := arg, ""
	if i := strings.LastIndex(arg, "@"); i >= 0 && attrName.MatchString(arg[i+1:]) {
		sel, att = arg[:i], arg[i+1:]
	}
	if strings.TrimSpace(sel) == "" {
		return nil, fmt.Errorf("empty selector in %q", arg)
	}
	m, err := cascadia.Compile(sel)
	if err != nil {
		return nil, fmt.Errorf("bad CSS selector %q: %w", sel, err)
	}
	return Func(func(_ context.Context, in *Input) (any, error) {
		doc, err := in.HTML()
		if err != nil || doc == nil {
			return nil, err
		}
		out := []string{}
		goquery.NewDocumentFromNode(doc).FindMatcher(m).Each(func(_ int, s *goquery.Selection) {
			if att == "" {
				out = append(out, collapse(s.Text()))
			} else if v, ok := s.Attr(att); ok {
				out = append(out, v)
			}
		})
		return out, nil
	}), nil
}
