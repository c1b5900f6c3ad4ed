package transform

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// apply builds one transform from a -x argument and runs it on r.
func apply(t *testing.T, arg string, r *record.Record) (any, error) {
	t.Helper()
	return applyWith(t, arg, r, DefaultOptions())
}

func applyWith(t *testing.T, arg string, r *record.Record, opts Options) (any, error) {
	t.Helper()
	sp, err := ParseSpec(arg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Builtin().NewChain([]Spec{sp}, nil, opts)
	if err != nil {
		t.Fatalf("building %q: %v", arg, err)
	}
	c.Apply(t.Context(), r)
	return r.Values[0], r.Err
}

func article(t *testing.T) *record.Record {
	r := response("text/html; charset=utf-8", fixture(t, "article.html"))
	r.URL = "https://gazette.example/news/2026/11/record-catch"
	r.FinalURL = r.URL
	return r
}

func TestTextVisibleOnly(t *testing.T) {
	v, err := apply(t, "text", article(t))
	if err != nil {
		t.Fatal(err)
	}
	s := v.(string)
	for _, want := range []string{"Night boats return with a record catch", "By Morag Fisher, 27 November 2026", "Cod 41 EUR Herring 12 EUR", "© 2026 The Harbour Gazette."} {
		if !strings.Contains(s, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if strings.Contains(s, "MUST NOT APPEAR") || strings.Contains(s, "font-family") || strings.Contains(s, "Harbour Gazette —") {
		t.Errorf("text includes invisible content: %q", s[:200])
	}
	if strings.Contains(s, "  ") || strings.Contains(s, "\n") {
		t.Error("whitespace not collapsed")
	}
}

func TestTextDecodesCharsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *record.Record
		want string
	}{
		{"latin1 meta", response("text/html", fixture(t, "latin1.html")), "Bonjour"},
		{"shift_jis meta", response("text/html", fixture(t, "shift_jis.html")), "今朝の水揚げ サバ 120 箱、イワシ 80 箱。価格は 1 箱 3500 円です。"},
		{"latin1 header, plain text", response("text/plain; charset=iso-8859-1", []byte("caf\xe9\n")), "café\n"},
		{"utf-8 BOM", response("text/plain", []byte("\xef\xbb\xbfnaïve")), "naïve"},
		{"undeclared utf-8", response("text/plain", []byte("naïve")), "naïve"},
		{"json is text", response("application/json", []byte(`{"a":"é"}`)), `{"a":"é"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := apply(t, "text", tc.r)
			if err != nil || v != tc.want {
				t.Fatalf("text = %q, %v; want %q", v, err, tc.want)
			}
		})
	}
}

func TestTextWrongOrUnknownCharsetStaysValidUTF8(t *testing.T) {
	for _, ct := range []string{"text/html; charset=utf-8", "text/html; charset=klingon", "text/html; charset=\"\""} {
		v, err := apply(t, "text", response(ct, []byte("<p>caf\xe9 cr\xe8me</p>")))
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		if s := v.(string); !strings.HasPrefix(s, "caf") || !strings.HasSuffix(s, "me") || !json.Valid([]byte(strconv.Quote(s))) {
			t.Fatalf("%s: text = %q", ct, s)
		}
	}
}

func TestTextOfBinaryBodyIsAnError(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe")
	_, err := apply(t, "text", response("image/png", png))
	if !errors.Is(err, ErrNotText) || !strings.Contains(err.Error(), "image/png") {
		t.Fatalf("err = %v", err)
	}
}

func TestTitleShiftJIS(t *testing.T) {
	v, err := apply(t, "title", response("text/html", fixture(t, "shift_jis.html")))
	if err != nil || v != "漁港だより 今朝の水揚げ" {
		t.Fatalf("title = %q, %v", v, err)
	}
}

func TestTitleFromParsedTreeMatchesTokenizer(t *testing.T) {
	// With text first, the page is already parsed when title runs.
	r := article(t)
	c := chain(t, "text", "title")
	c.Apply(t.Context(), r)
	if r.Err != nil || r.Values[1] != "The Harbour Gazette — Night boats return with a record catch" {
		t.Fatalf("title = %q, %v", r.Values[1], r.Err)
	}
}

func TestLinks(t *testing.T) {
	r := response("text/html", fixture(t, "links.html"))
	r.FinalURL = "https://site.example/start/index.html"
	v, err := apply(t, "links", r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"https://base.example/dir/style.css",
		"https://base.example/dir/page.html",
		"https://base.example/rooted.html",
		"https://other.example/x?q=1",
		"https://cdn.example/lib.js",
		// "#top" and "" resolve against the <base>, another page.
		"https://base.example/dir/",
		"https://base.example/dir/img/logo.png",
		"https://base.example/dir/app.js",
		"https://frame.example/",
		"https://base.example/dir/area.html",
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("links =\n%q\nwant\n%q", v, want)
	}
}

func TestLinksOfArticle(t *testing.T) {
	v, err := apply(t, "links", article(t))
	if err != nil {
		t.Fatal(err)
	}
	got := v.([]string)
	seen := map[string]bool{}
	for _, u := range got {
		if seen[u] {
			t.Errorf("%s listed twice", u)
		}
		seen[u] = true
		if !strings.HasPrefix(u, "https://") || strings.Contains(u, "#") {
			t.Errorf("bad link %q", u)
		}
	}
	for _, want := range []string{
		"https://gazette.example/static/site.css", "https://gazette.example/news/2026/11/record-catch",
		"https://cdn.example/js/app.js", "https://gazette.example/news/2026/11/story-0.html",
		"https://gazette.example/images/photo-160.jpg", "https://video.example/embed/42", "https://gazette.example/about",
	} {
		if !seen[want] {
			t.Errorf("links lack %s", want)
		}
	}
	// 4 in the head, 4 nav links (mailto: and javascript: are not, and
	// #comments is the page itself, listed already from the head's
	// canonical link), 40 distinct stories, 17 images, the iframe, the
	// footer's /about (twice, once with a fragment) and its script.
	if len(got) != 68 {
		t.Errorf("%d links, want 68", len(got))
	}
}

func TestLinksOfNonHTMLIsNull(t *testing.T) {
	if v, err := apply(t, "links", response("application/json", []byte(`{"href":"x"}`))); v != nil || err != nil {
		t.Fatalf("links = %v, %v", v, err)
	}
}

func TestCSS(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want any
	}{
		{"css=h1", []string{"Night boats return with a record catch"}},
		{"css=td.price", []string{"41 EUR", "12 EUR", "19 EUR"}},
		{"css=.byline .author", []string{"Morag Fisher"}},
		{"css=link[rel=canonical]@href", []string{"https://gazette.example/news/2026/11/record-catch"}},
		{`css=a[href^="mailto:desk@gazette.example"]`, []string{"Write to us"}},
		{"css=nav a@data-missing", []string{}},
		{"css=.no-such-class", []string{}},
	} {
		v, err := apply(t, tc.arg, article(t))
		if err != nil || !reflect.DeepEqual(v, tc.want) {
			t.Errorf("%s = %#v, %v; want %#v", tc.arg, v, err, tc.want)
		}
	}
	if v, err := apply(t, "css=h1", response("application/json", []byte("{}"))); v != nil || err != nil {
		t.Errorf("css on JSON = %v, %v", v, err)
	}
}

func TestBadArgumentsFailAtStart(t *testing.T) {
	for _, arg := range []string{"css=[[bad", "css=", "css=@href", "jq=.[", "jq=nosuchfn(1)", "regex=(", "exec=", "exec=no-such-command-trawl", `exec='unterminated`} {
		sp, err := ParseSpec(arg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Builtin().NewChain([]Spec{sp}, nil, DefaultOptions()); err == nil {
			t.Errorf("%s accepted", arg)
		}
	}
}

func products(t *testing.T) *record.Record {
	return response("application/json", fixture(t, "products.json"))
}

func TestJSONKeepsNumbersExact(t *testing.T) {
	v, err := apply(t, "json", products(t))
	if err != nil {
		t.Fatal(err)
	}
	items := v.(map[string]any)["items"].([]any)
	if len(items) != 400 {
		t.Fatalf("%d items", len(items))
	}
	b, _ := json.Marshal(items[0].(map[string]any)["big_id"])
	if string(b) != "9007199254740993" {
		t.Fatalf("big_id came out as %s", b)
	}
	for _, bad := range []string{"", "{", "<html>", `{"a":1} trailing`, "\xff\xfe"} {
		if _, err := apply(t, "json", response("application/json", []byte(bad))); err == nil || !strings.Contains(err.Error(), "not JSON") {
			t.Errorf("json of %q: %v", bad, err)
		}
	}
}

func TestJQ(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want string // the JSON encoding of the output
	}{
		{"jq=.items | length", "400"},
		{"jq=.items[0].sku", `"SKU-00000"`},
		{"jq=.items[0].big_id", "9007199254740993"},
		{"jq=[.items[] | select(.id <= 3) | .id]", "[1,2,3]"},
		{"jq=.items[:2][] | .id", "[1,2]"},
		{"jq=.nope", "null"},
		{"jq=empty", "null"},
	} {
		v, err := apply(t, tc.arg, products(t))
		if err != nil {
			t.Errorf("%s: %v", tc.arg, err)
			continue
		}
		if b, _ := json.Marshal(v); string(b) != tc.want {
			t.Errorf("%s = %s, want %s", tc.arg, b, tc.want)
		}
	}
	for _, tc := range []struct{ arg, body, errHas string }{
		{"jq=.a", "<html></html>", "not JSON"},
		{`jq=error("bad item")`, "{}", "bad item"},
		{"jq=.a.b", `{"a":[1]}`, "expected an object but got: array"},
	} {
		if _, err := apply(t, tc.arg, response("application/json", []byte(tc.body))); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s on %s: err = %v, want %q", tc.arg, tc.body, err, tc.errHas)
		}
	}
}

func TestJQRunawayProgramsAreBounded(t *testing.T) {
	opts := DefaultOptions()
	opts.ExecTimeout = time.Minute
	if _, err := applyWith(t, "jq=repeat(1)", response("application/json", []byte("1")), opts); err == nil || !strings.Contains(err.Error(), "more than 100000 results") {
		t.Errorf("endless output: %v", err)
	}
	opts.ExecTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := applyWith(t, "jq=[range(1e12)] | length", response("application/json", []byte("1")), opts)
	if err == nil || !strings.Contains(err.Error(), "--exec-timeout") {
		t.Errorf("endless loop: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("timeout took %s", time.Since(start))
	}
}

func TestRegexAndChains(t *testing.T) {
	v, err := apply(t, `regex=(\d+) EUR`, article(t))
	if err != nil || !reflect.DeepEqual(v, []string{"41", "12", "19"}) {
		t.Fatalf("regex = %v, %v", v, err)
	}
	// Without a group the whole match; on the raw body, markup included.
	v, _ = apply(t, `regex=<td class="price">\d+`, article(t))
	if !reflect.DeepEqual(v, []string{`<td class="price">41`, `<td class="price">12`, `<td class="price">19`}) {
		t.Fatalf("regex on body = %v", v)
	}
	// After text, regex reads the visible text: markup is gone.
	r := article(t)
	c := chain(t, "text", `price:regex=Cod (\d+ EUR)`, `tags:regex=<td`)
	c.Apply(t.Context(), r)
	if r.Err != nil || !reflect.DeepEqual(r.Values[1], []string{"41 EUR"}) {
		t.Fatalf("text | regex = %v, %v", r.Values[1], r.Err)
	}
	// The third reads the second's output, a list, so it falls back to the body.
	if got := r.Values[2].([]string); len(got) != 6 {
		t.Fatalf("regex after a list read %d matches, want the body's 6", len(got))
	}
	if v, _ := apply(t, "regex=zzz+", article(t)); !reflect.DeepEqual(v, []string{}) {
		t.Fatalf("no match = %#v", v)
	}
	if _, err := apply(t, "regex=.", response("text/plain", []byte(strings.Repeat("x", 200_000)))); err == nil {
		t.Fatal("200000 matches accepted")
	}
}

func TestLinesAndWords(t *testing.T) {
	r := response("text/plain", []byte("one two\nthree\n\nfour"))
	c := chain(t, "lines", "words")
	c.Apply(t.Context(), r)
	if !reflect.DeepEqual(r.Values, []any{4, 4}) {
		t.Fatalf("values = %v", r.Values)
	}
	c = chain(t, "title", "words")
	r = article(t)
	c.Apply(t.Context(), r)
	if r.Values[1] != 11 {
		t.Fatalf("words of the title = %v", r.Values[1])
	}
}

func TestExec(t *testing.T) {
	r := article(t)
	r.Status = 203
	v, err := apply(t, "exec=wc -c", r)
	if err != nil || strings.TrimSpace(v.(string)) != strconv.Itoa(len(r.Body)) {
		t.Fatalf("wc -c = %q, %v", v, err)
	}
	v, err = apply(t, `exec=sh -c 'echo "$TRAWL_URL|$TRAWL_FINAL_URL|$TRAWL_STATUS|$TRAWL_CONTENT_TYPE"'`, r)
	if err != nil || v != r.URL+"|"+r.FinalURL+"|203|text/html; charset=utf-8" {
		t.Fatalf("env = %q, %v", v, err)
	}
	// No shell: command substitution and command lists are refused when
	// the command is prepared, and quoted metacharacters stay literal.
	for _, arg := range []string{"exec=echo $(id)", "exec=echo a; rm -rf x", "exec=echo a | cat"} {
		sp, _ := ParseSpec(arg)
		if _, err := Builtin().NewChain([]Spec{sp}, nil, DefaultOptions()); err == nil {
			t.Errorf("%s accepted", arg)
		}
	}
	v, err = apply(t, `exec=echo '$(id); rm -rf x'`, r)
	if err != nil || v != "$(id); rm -rf x" {
		t.Fatalf("quoted = %q, %v", v, err)
	}
	// A command that does not read its stdin is fine.
	if v, err := apply(t, "exec=true", r); err != nil || v != "" {
		t.Fatalf("true = %q, %v", v, err)
	}
}

func TestExecFailures(t *testing.T) {
	opts := DefaultOptions()
	opts.ExecTimeout = 300 * time.Millisecond
	opts.MaxOutput = 100
	r := response("text/plain", []byte("x"))
	_, err := applyWith(t, `exec=sh -c 'echo first problem >&2; echo second >&2; exit 3'`, r, opts)
	if err == nil || !strings.Contains(err.Error(), "command exited with status 3: first problem") || strings.Contains(err.Error(), "second") {
		t.Errorf("exit 3: %v", err)
	}
	start := time.Now()
	_, err = applyWith(t, "exec=sleep 30", response("text/plain", []byte("x")), opts)
	if err == nil || !strings.Contains(err.Error(), "longer than 300ms (--exec-timeout)") {
		t.Errorf("hang: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("hanging command took %s to stop", el)
	}
	_, err = applyWith(t, `exec=sh -c 'kill -SEGV $$'`, response("text/plain", []byte("x")), opts)
	if err == nil || !strings.Contains(err.Error(), "killed by signal") {
		t.Errorf("crash: %v", err)
	}
	v, err := applyWith(t, `exec=sh -c 'head -c 100000 /dev/zero | tr "\0" x'`, response("text/plain", []byte("x")), opts)
	if err != nil || v != strings.Repeat("x", 100) {
		t.Errorf("capped output: %d bytes, %v", len(v.(string)), err)
	}
}
