package transform

import (
	"fmt"
	"os"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

// BenchmarkTransforms runs each transform on its own, and the CPU-bound
// chain the README recommends, over real-sized pages: a 50 KB article and
// a 200 KB JSON document. MB/s is body bytes processed per second.
func BenchmarkTransforms(b *testing.B) {
	html, err := os.ReadFile("../testdata/pages/article.html")
	if err != nil {
		b.Fatal(err)
	}
	js, err := os.ReadFile("../testdata/pages/products.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		ct   string
		body []byte
	}{
		{[]string{"title"}, "text/html; charset=utf-8", html},
		{[]string{"text"}, "text/html; charset=utf-8", html},
		{[]string{"links"}, "text/html; charset=utf-8", html},
		{[]string{"css=td.price"}, "text/html; charset=utf-8", html},
		{[]string{`regex=(\d+) EUR`}, "text/html; charset=utf-8", html},
		{[]string{"sha256"}, "text/html; charset=utf-8", html},
		{[]string{"body"}, "text/html; charset=utf-8", html},
		{[]string{"words"}, "text/html; charset=utf-8", html},
		{[]string{"json"}, "application/json", js},
		{[]string{"jq=[.items[] | select(.in_stock) | .id]"}, "application/json", js},
		{[]string{"text", "links", "css=td.price"}, "text/html; charset=utf-8", html},
	} {
		name := fmt.Sprint(tc.args)
		b.Run(name, func(b *testing.B) {
			var specs []Spec
			for _, a := range tc.args {
				sp, err := ParseSpec(a)
				if err != nil {
					b.Fatal(err)
				}
				specs = append(specs, sp)
			}
			c, err := Builtin().NewChain(specs, nil, DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				r := &record.Record{Status: 200, ContentType: tc.ct, Body: tc.body, FinalURL: "https://gazette.example/news/x"}
				c.Apply(b.Context(), r)
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
}
