package transform

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSitemap: the <loc> of each <url> of a sitemap, or <sitemap> of an
// index, gzip-compressed or not, in order and each once; locs of
// extensions deeper down and URLs that are no http(s) are left out; a
// body that is no sitemap gives null, a broken one an error, and a gzip
// bomb stops at the cap.
func TestSitemap(t *testing.T) {
	urlset := `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc> https://example.test/a </loc><lastmod>2026-11-30</lastmod>
    <image:image><image:loc>https://example.test/a.png</image:loc></image:image></url>
  <url><loc>https://example.test/b?x=1&amp;y=2</loc></url>
  <url><loc>https://example.test/a</loc></url>
  <url><loc>ftp://example.test/c</loc></url>
</urlset>`
	index := `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://example.test/sitemap-1.xml.gz</loc></sitemap>
  <sitemap><loc>https://example.test/sitemap-2.xml.gz</loc></sitemap>
</sitemapindex>`
	for _, tc := range []struct {
		name, ct string
		body     []byte
		want     string
	}{
		{"urlset", "application/xml", []byte(urlset), "[https://example.test/a https://example.test/b?x=1&y=2]"},
		{"gzip index", "application/gzip", gzipped(t, index), "[https://example.test/sitemap-1.xml.gz https://example.test/sitemap-2.xml.gz]"},
		{"empty urlset", "text/xml", []byte(`<urlset/>`), "[]"},
		{"html", "text/html", []byte("<html><title>x</title></html>"), "<nil>"},
		{"other xml", "application/xml", []byte("<feed><entry><loc>https://x.test/</loc></entry></feed>"), "<nil>"},
		{"not xml", "text/plain", []byte("just text"), "<nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := apply(t, "sitemap", response(tc.ct, tc.body))
			if err != nil || fmt.Sprint(v) != tc.want {
				t.Fatalf("sitemap = %v, %v; want %s", v, err, tc.want)
			}
		})
	}
	if _, err := apply(t, "sitemap", response("text/xml", []byte(`<urlset><url><loc>https://x.test/</loc></url><url><loc>`))); err == nil {
		t.Error("a sitemap cut short gave no error")
	}
	bomb := gzipped(t, "<urlset>"+strings.Repeat("<url><loc>https://x.test/</loc></url>", 100_000)+"</urlset>")
	_, err := applyWith(t, "sitemap", response("application/gzip", bomb), Options{ExecTimeout: DefaultOptions().ExecTimeout, MaxOutput: 64 << 10})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("%d gzip bytes inflating to 3.7 MB with a 64 KiB cap: %v", len(bomb), err)
	}
}
