package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/trawl-dev/trawl/record"
)

// Input is what a transform sees: the record, plus views of its body that
// are computed at most once per record and shared by every transform of the
// chain, so that five HTML transforms parse the page once, not five times.
type Input struct {
	// Record is the fetched record; transforms must not modify it.
	Record *record.Record

	prev    any
	hasPrev bool

	textDone bool
	text     string
	textErr  error

	docDone bool
	doc     *html.Node
	docErr  error

	jsonDone bool
	json     any
	jsonErr  error
}

// NewInput wraps r for a chain run.
func NewInput(r *record.Record) *Input { return &Input{Record: r} }

// Body returns the raw body as read.
func (in *Input) Body() []byte { return in.Record.Body }

// Previous returns the output of the transform just before this one in the
// chain, if there is one and it succeeded.
func (in *Input) Previous() (any, bool) { return in.prev, in.hasPrev }

func (in *Input) setPrevious(v any, ok bool) { in.prev, in.hasPrev = v, ok }

// mediaType returns the lowercased media type of the response, sniffing the
// body when the server sent none.
func (in *Input) mediaType() string {
	ct := in.Record.ContentType
	if ct == "" {
		ct = http.DetectContentType(in.Record.Body)
	}
	// A malformed parameter still yields the media type, which is enough here.
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && mt == "" {
		return ""
	}
	return strings.ToLower(mt)
}

// IsHTML reports whether the response is an HTML document.
func (in *Input) IsHTML() bool {
	mt := in.mediaType()
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// isTextual reports whether a media type holds text rather than binary data.
func isTextual(mt string) bool {
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	for _, suffix := range []string{"json", "xml", "javascript", "ecmascript", "x-www-form-urlencoded", "yaml", "csv"} {
		if strings.HasSuffix(mt, suffix) {
			return true
		}
	}
	return false
}

// ErrNotText is returned by Text for bodies that are binary data.
var ErrNotText = errors.New("body is not text")

// Text returns the body decoded to UTF-8, using (like browsers) a BOM, the
// Content-Type charset or a <meta charset>, in that order, and UTF-8 or
// Windows-1252 when nothing is declared. A binary body (an image, say) is
// an error rather than a string of mojibake.
func (in *Input) Text() (string, error) {
	if in.textDone {
		return in.text, in.textErr
	}
	in.textDone = true
	body := in.Record.Body
	mt := in.mediaType()
	if !isTextual(mt) && !utf8.Valid(body) {
		in.textErr = fmt.Errorf("%w (%s)", ErrNotText, mt)
		return "", in.textErr
	}
	if utf8.Valid(body) && !hasDeclaredCharset(in.Record.ContentType, body) {
		in.text = strings.TrimPrefix(string(body), "\uFEFF")
		return in.text, nil
	}
	dec, err := charset.NewReader(bytes.NewReader(body), in.Record.ContentType)
	if err != nil {
		in.textErr = fmt.Errorf("cannot decode body: %w", err)
		return "", in.textErr
	}
	b, err := io.ReadAll(dec)
	if err != nil {
		in.textErr = fmt.Errorf("cannot decode body: %w", err)
		return "", in.textErr
	}
	in.text = string(b)
	return in.text, nil
}

// hasDeclaredCharset reports whether the response names a charset other
// than UTF-8, in its header, a BOM or a <meta> tag: only then does a body
// that happens to be valid UTF-8 need decoding.
func hasDeclaredCharset(contentType string, body []byte) bool {
	_, name, certain := charset.DetermineEncoding(body, contentType)
	if name == "utf-8" {
		return false
	}
	// Without a declaration DetermineEncoding guesses Windows-1252; for a
	// body that is valid UTF-8, UTF-8 is the better guess.
	return certain || name != "windows-1252"
}

// HTML returns the parsed document, or nil when the response is not HTML.
func (in *Input) HTML() (*html.Node, error) {
	if in.docDone {
		return in.doc, in.docErr
	}
	in.docDone = true
	if !in.IsHTML() {
		return nil, nil
	}
	text, err := in.Text()
	if err != nil {
		in.docErr = err
		return nil, err
	}
	in.doc, in.docErr = html.Parse(strings.NewReader(text))
	return in.doc, in.docErr
}

// JSON returns the body parsed as JSON. Numbers are kept as json.Number so
// that large integers survive unchanged.
func (in *Input) JSON() (any, error) {
	if in.jsonDone {
		return in.json, in.jsonErr
	}
	in.jsonDone = true
	dec := json.NewDecoder(bytes.NewReader(in.Record.Body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		in.jsonErr = fmt.Errorf("body is not JSON: %w", err)
		return nil, in.jsonErr
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		in.jsonErr = errors.New("body is not JSON: more data after the first value")
		return nil, in.jsonErr
	}
	in.json = v
	return v, nil
}

// TextInput is what text-consuming transforms (regex, lines, words) read:
// the previous transform's output when that is a string, so chains such as
// `-x text -x regex=...` work like a pipe, and the decoded body otherwise.
func (in *Input) TextInput() (string, error) {
	if v, ok := in.Previous(); ok {
		if s, isString := v.(string); isString {
			return s, nil
		}
	}
	return in.Text()
}
