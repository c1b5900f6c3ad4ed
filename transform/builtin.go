package transform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/trawl-dev/trawl/record"
)

// Builtin returns a registry holding every transform trawl ships with.
func Builtin() *Registry {
	reg := NewRegistry()
	for _, info := range []Info{
		{
			Name:    "title",
			Summary: "the HTML <title>, decoded to UTF-8, whitespace collapsed; null when the page has none",
			Example: "title",
			New:     func(string) (Transform, error) { return Func(title), nil },
		},
		{
			Name:    "sha256",
			Summary: "hex SHA-256 of the body as read (of the first --max-body bytes when truncated)",
			Example: "sha256",
			New:     func(string) (Transform, error) { return Func(sha256Hex), nil },
		},
		{
			Name:    "body",
			Summary: "the body as UTF-8 text, or base64 when it is not valid UTF-8; KEY_encoding says which",
			Example: "body",
			New:     func(string) (Transform, error) { return bodyTransform{}, nil },
		},
		{
			Name:    "headers",
			Summary: "response headers as an object of lowercased names to lists of values",
			Example: "headers",
			New:     func(string) (Transform, error) { return Func(headers), nil },
		},
	} {
		if err := reg.Register(info); err != nil {
			panic(err) // a duplicate here is a programming error caught by any test
		}
	}
	return reg
}

func sha256Hex(_ context.Context, r *record.Record) (any, error) {
	sum := sha256.Sum256(r.Body)
	return hex.EncodeToString(sum[:]), nil
}

// bodyTransform writes the body and how it is encoded.
type bodyTransform struct{}

func (bodyTransform) Keys(key string) []string { return []string{key, key + "_encoding"} }

func (bodyTransform) Apply(_ context.Context, r *record.Record) ([]any, error) {
	if utf8.Valid(r.Body) {
		return []any{string(r.Body), "utf-8"}, nil
	}
	return []any{base64.StdEncoding.EncodeToString(r.Body), "base64"}, nil
}

func headers(_ context.Context, r *record.Record) (any, error) {
	out := make(map[string][]string, len(r.Header))
	for k, vs := range r.Header {
		out[strings.ToLower(k)] = append([]string(nil), vs...)
	}
	return out, nil
}

// isHTML reports whether the response is an HTML document, trusting the
// Content-Type when there is one and sniffing the body otherwise.
func isHTML(r *record.Record) bool {
	ct := r.ContentType
	if ct == "" {
		ct = http.DetectContentType(r.Body)
	}
	// A malformed parameter still yields the media type, which is enough here.
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && mt == "" {
		return false
	}
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// utf8Reader decodes an HTML body to UTF-8 using the Content-Type charset,
// a BOM or a <meta charset>, in that order (the HTML5 sniffing rules).
func utf8Reader(r *record.Record) io.Reader {
	dec, err := charset.NewReader(bytes.NewReader(r.Body), r.ContentType)
	if err != nil {
		return bytes.NewReader(r.Body)
	}
	return dec
}

// title returns the text of the first <title> outside inline SVG.
func title(_ context.Context, r *record.Record) (any, error) {
	if !isHTML(r) {
		return nil, nil
	}
	z := html.NewTokenizer(utf8Reader(r))
	svgDepth := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			// End of input (or unreadable input) without a title.
			return nil, nil
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

// collapse trims s and turns each run of whitespace into one space.
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
