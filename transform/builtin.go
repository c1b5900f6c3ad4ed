package transform

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// What a transform reads, as shown by `trawl transforms`.
const (
	readsResponse = "response"
	readsText     = "text"
)

// plain wraps a single-value function as a constructor that takes no
// argument and needs no preparation.
func plain(f Func) func(string, Options) (Transform, error) {
	return func(string, Options) (Transform, error) { return f, nil }
}

// Builtin returns a registry holding every transform trawl ships with.
func Builtin() *Registry {
	reg := NewRegistry()
	for _, info := range []Info{
		{Name: "title", Reads: readsResponse, Example: "title",
			Summary: "the HTML <title>, decoded to UTF-8, whitespace collapsed; null when the page has none",
			New:     plain(title)},
		{Name: "text", Reads: readsResponse, Example: "text",
			Summary: "the body as UTF-8 text (decoded from its charset); for HTML only the visible text, whitespace collapsed",
			New:     plain(text)},
		{Name: "links", Reads: readsResponse, Example: "links",
			Summary: "absolute http(s) URLs of a[href], area[href], link[href], img[src], script[src], iframe[src], resolved and de-duplicated",
			New:     plain(links)},
		{Name: "sitemap", Reads: readsResponse, Example: "sitemap",
			Summary: "the <loc> URLs of a sitemap or sitemap index (gzip-compressed too), in order, each once; null when not a sitemap",
			New:     newSitemap},
		{Name: "css", Reads: readsResponse, Arg: RequiredArg, Example: "css=h1 or -x css='a.next@href'",
			Summary: "text of every element matching a CSS selector, or with @ATTR that attribute; a list",
			New:     newCSS},
		{Name: "json", Reads: readsResponse, Example: "json",
			Summary: "the body parsed as JSON and embedded as a value",
			New:     plain(jsonValue)},
		{Name: "jq", Reads: readsResponse, Arg: RequiredArg, Example: "jq='.items[].id'",
			Summary: "a jq program over a JSON body: one result as is, several as a list, none as null",
			New:     newJQ},
		{Name: "regex", Reads: readsText, Arg: RequiredArg, Example: `regex='(\d+) EUR'`,
			Summary: "every match of an RE2 pattern (its first group, when it has one); a list",
			New:     newRegex},
		{Name: "lines", Reads: readsText, Example: "lines",
			Summary: "the number of lines",
			New:     plain(lines)},
		{Name: "words", Reads: readsText, Example: "words",
			Summary: "the number of whitespace-separated words",
			New:     plain(words)},
		{Name: "exec", Reads: readsResponse, Arg: RequiredArg, Example: `exec='wc -c'`,
			Summary: "runs a command (no shell) with the body on stdin and TRAWL_URL, TRAWL_FINAL_URL, TRAWL_STATUS, TRAWL_CONTENT_TYPE set; its stdout",
			New:     newExec},
		{Name: "sha256", Reads: readsResponse, Example: "sha256",
			Summary: "hex SHA-256 of the body as read (of the first --max-body bytes when truncated)",
			New:     plain(sha256Hex)},
		{Name: "body", Reads: readsResponse, Example: "body",
			Summary: "the body as UTF-8 text, or base64 when it is not valid UTF-8; KEY_encoding says which",
			New:     func(string, Options) (Transform, error) { return bodyTransform{}, nil }},
		{Name: "headers", Reads: readsResponse, Example: "headers",
			Summary: "response headers as an object of lowercased names to lists of values",
			New:     plain(headers)},
	} {
		if err := reg.Register(info); err != nil {
			panic(err) // a duplicate here is a programming error caught by any test
		}
	}
	return reg
}

func sha256Hex(_ context.Context, in *Input) (any, error) {
	sum := sha256.Sum256(in.Body())
	return hex.EncodeToString(sum[:]), nil
}

// bodyTransform writes the body and how it is encoded.
type bodyTransform struct{}

func (bodyTransform) Keys(key string) []string { return []string{key, key + "_encoding"} }

func (bodyTransform) Apply(_ context.Context, in *Input) ([]any, error) {
	body := in.Body()
	if utf8.Valid(body) {
		return []any{string(body), "utf-8"}, nil
	}
	return []any{base64.StdEncoding.EncodeToString(body), "base64"}, nil
}

func headers(_ context.Context, in *Input) (any, error) {
	out := make(map[string][]string, len(in.Record.Header))
	for k, vs := range in.Record.Header {
		out[strings.ToLower(k)] = append([]string(nil), vs...)
	}
	return out, nil
}
