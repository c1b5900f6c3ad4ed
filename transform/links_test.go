package transform

import (
	"reflect"
	"testing"
)

// TestLinksLikeBrowsers is the table of what testers found comparing links
// with an independent oracle on real pages: each page is a snippet of
// HTML, fetched from page, and want is what links gives, in order.
func TestLinksLikeBrowsers(t *testing.T) {
	const page = "https://docs.example/3/whatsnew/2.6.html"
	for _, tc := range []struct {
		name, html string
		want       []string
	}{
		{
			name: "one URL in three spellings is listed once, as the standard writes it",
			html: `<a href="https://x.example">a</a><a href="https://x.example/">b</a><a href="HTTPS://X.EXAMPLE:443/">c</a><a href="http://x.example:80">d</a>`,
			want: []string{"https://x.example/", "http://x.example/"},
		},
		{
			name: "a stray % is kept rather than the link dropped",
			html: `<a href="other.html#%_sec_6.2">a</a><a href="/100%.html">b</a><a href="?q=50%">c</a>`,
			want: []string{"https://docs.example/3/whatsnew/other.html", "https://docs.example/100%.html", page + "?q=50%"},
		},
		{
			name: "tabs and newlines inside an href are removed",
			html: "<a href=\"/a\tb/c\nd.html\">a</a><a href=\"https://x.exam\r\nple/\">b</a>",
			want: []string{"https://docs.example/ab/cd.html", "https://x.example/"},
		},
		{
			name: "a backslash is a slash",
			html: `<a href="\\cdn.example\lib.js">a</a><a href="sub\page.html">b</a>`,
			want: []string{"https://cdn.example/lib.js", "https://docs.example/3/whatsnew/sub/page.html"},
		},
		{
			name: "only ASCII whitespace and controls are trimmed, not U+00A0",
			html: "<a href=\" \t/x.html\n \">a</a><a href=\"\u00a0y.html\">b</a>",
			want: []string{"https://docs.example/x.html", "https://docs.example/3/whatsnew/%C2%A0y.html"},
		},
		{
			name: "IPv4 spellings are addresses, unicode hosts IDNA",
			html: `<a href="http://0x7f.1/">a</a><a href="http://127.1/">b</a><a href="http://bücher.example/">c</a>`,
			want: []string{"http://127.0.0.1/", "http://xn--bcher-kva.example/"},
		},
		{
			name: "a fragment-only or empty link is to the page itself: the page's URL",
			html: `<a href="#top">a</a><a href="">b</a><a href="#%_sec_6.2">c</a><a href="x.html">d</a>`,
			want: []string{page, "https://docs.example/3/whatsnew/x.html"},
		},
		{
			name: "however a link to the page itself is written, it is listed once",
			html: `<a href="2.6.html#x">a</a><a href="#top">b</a><a href="` + page + `">c</a><a href="">d</a>`,
			want: []string{page},
		},
		{
			name: "#x and an empty href resolve against a base that points elsewhere",
			html: `<base href="https://elsewhere.example/dir/index.html"><a href="#x">a</a><a href="">b</a><a href="p.html">c</a>`,
			want: []string{"https://elsewhere.example/dir/index.html", "https://elsewhere.example/dir/p.html"},
		},
		{
			name: "the first base with an href wins, even an empty one, which is the page",
			html: `<base target="_blank"><base href=""><base href="https://later.example/"><a href="p.html">a</a><a href="#x">b</a>`,
			want: []string{"https://docs.example/3/whatsnew/p.html", page},
		},
		{
			name: "a relative base resolves against the page",
			html: `<base href="../api/"><a href="x.html">a</a>`,
			want: []string{"https://docs.example/3/api/x.html"},
		},
		{
			name: "a javascript: base is ignored",
			html: `<base href="javascript:void(0)"><a href="p.html">a</a>`,
			want: []string{"https://docs.example/3/whatsnew/p.html"},
		},
		{
			name: "a data: base is ignored",
			html: `<base href="data:text/html,x"><a href="p.html">a</a>`,
			want: []string{"https://docs.example/3/whatsnew/p.html"},
		},
		{
			name: "an invalid base is ignored",
			html: `<base href="http://1.2.3.256/"><a href="p.html">a</a>`,
			want: []string{"https://docs.example/3/whatsnew/p.html"},
		},
		{
			name: "a base with another scheme leaves only absolute links",
			html: `<base href="ftp://files.example/"><a href="p.html">a</a><a href="#x">b</a><a href="https://abs.example/q">c</a><a href="//cdn.example/x">d</a>`,
			want: []string{"https://abs.example/q"},
		},
		{
			name: "a base inside SVG is not the document's",
			html: `<svg><base href="https://svg.example/"></svg><a href="p.html">a</a>`,
			want: []string{"https://docs.example/3/whatsnew/p.html"},
		},
		{
			name: "what is no http(s) URL is left out",
			html: `<a href="mailto:a@b.example">a</a><a href="javascript:x()">b</a><a href="http://1.2.3.256/">c</a><a href="http://a b/">d</a><a href="ftp://f.example/">e</a><a href="http://[::1/">f</a>`,
			want: []string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := response("text/html", []byte(tc.html))
			r.FinalURL = page
			v, err := apply(t, "links", r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tc.want) {
				t.Errorf("links =\n%q\nwant\n%q", v, tc.want)
			}
		})
	}
}

// TestTitleFoldsNoBreakSpace pins a documented choice: titles collapse
// every Unicode space, U+00A0 included, where document.title collapses
// only ASCII whitespace and keeps U+00A0.
func TestTitleFoldsNoBreakSpace(t *testing.T) {
	v, err := apply(t, "title", response("text/html", []byte("<title>\u00a0Night\u00a0\u00a0boats \t return\u2003home\u00a0</title>")))
	if err != nil || v != "Night boats return home" {
		t.Fatalf("title = %q, %v", v, err)
	}
}
