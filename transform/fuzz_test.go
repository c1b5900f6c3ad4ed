package transform

import (
	"encoding/json"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/trawl-dev/trawl/record"
)

// FuzzHTMLTransforms feeds arbitrary bodies to the transforms that parse
// HTML: none may panic (a panic would only mark the record, but is still a
// bug), and every string they return must be valid UTF-8 so the record
// stays valid JSON.
func FuzzHTMLTransforms(f *testing.F) {
	for _, name := range []string{"article.html", "links.html", "latin1.html", "shift_jis.html", "svg-first.html"} {
		if b, err := os.ReadFile("../testdata/pages/" + name); err == nil {
			f.Add(b, "text/html")
		}
	}
	f.Add([]byte("<title>a<svg><title>b</title></svg><base href=javascript:x><a href=//x>"), "text/html; charset=utf-16")
	f.Add([]byte("\xff\xfe<\x00t\x00"), "")
	c, err := Builtin().NewChain(mustSpecs(f, "title", "text", "links", "href:css=a@href", "t:css=title", "words", `regex=(\w+)`), nil, DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		r := &record.Record{Status: 200, ContentType: ct, Body: body, FinalURL: "https://example.test/dir/page"}
		c.Apply(t.Context(), r)
		if r.ErrKind == record.KindTransform && r.Err != nil && len(r.ErrorText()) > 0 && r.ErrorText()[:len("transform ")] != "transform " {
			t.Fatalf("odd error %v", r.Err)
		}
		if r.Err != nil && containsPanic(r.ErrorText()) {
			t.Fatalf("a transform panicked: %v", r.Err)
		}
		b, err := json.Marshal(r.Values)
		if err != nil || !utf8.Valid(b) {
			t.Fatalf("values do not encode: %v", err)
		}
		for _, v := range r.Values {
			if s, ok := v.(string); ok && !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 output %q", s)
			}
		}
	})
}

// FuzzJSONTransforms does the same for json and jq.
func FuzzJSONTransforms(f *testing.F) {
	if b, err := os.ReadFile("../testdata/pages/products.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{`{"items":[{"id":1}]}`, `[1,2,3]`, `"x"`, `{"a":1} 2`, `{`, `1e99999`, `{"items":"nope"}`} {
		f.Add([]byte(s))
	}
	c, err := Builtin().NewChain(mustSpecs(f, "json", "n:jq=.items | length?", "ids:jq=[.. | .id? // empty]"), nil, DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &record.Record{Status: 200, ContentType: "application/json", Body: body}
		c.Apply(t.Context(), r)
		if r.Err != nil && containsPanic(r.ErrorText()) {
			t.Fatalf("a transform panicked: %v", r.Err)
		}
	})
}

func mustSpecs(f *testing.F, args ...string) []Spec {
	var specs []Spec
	for _, a := range args {
		sp, err := ParseSpec(a)
		if err != nil {
			f.Fatal(err)
		}
		specs = append(specs, sp)
	}
	return specs
}

func containsPanic(s string) bool {
	const marker = "internal error:"
	for i := 0; i+len(marker) <= len(s); i++ {
		if s[i:i+len(marker)] == marker {
			return true
		}
	}
	return false
}
