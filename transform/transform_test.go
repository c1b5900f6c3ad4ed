package transform

import (
	"context"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/pages/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func response(ct string, body []byte) *record.Record {
	return &record.Record{Status: 200, ContentType: ct, Body: body, Header: http.Header{"Content-Type": {ct}}}
}

func chain(t *testing.T, args ...string) *Chain {
	t.Helper()
	var specs []Spec
	for _, a := range args {
		sp, err := ParseSpec(a)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, sp)
	}
	c, err := Builtin().NewChain(specs, func(k string) bool { return k == "url" }, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTitle(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *record.Record
		want any
	}{
		{"latin1 via meta", response("text/html", fixture(t, "latin1.html")), "Café crème & co"},
		{"latin1 via header", response("text/html; charset=ISO-8859-1", []byte("<title>na\xefve</title>")), "naïve"},
		{"svg title skipped", response("text/html", fixture(t, "svg-first.html")), "Real <title> after the SVG"},
		{"sniffed html", response("", []byte("<!doctype html><title>x</title>")), "x"},
		{"no title", response("text/html", []byte("<p>hi</p>")), nil},
		{"unclosed title", response("text/html", []byte("<title>  open  ended")), "open ended"},
		{"json is not html", response("application/json", []byte(`{"title":"no"}`)), nil},
		{"empty body", response("text/html", nil), nil},
		{"malformed content type parameter", response("text/html; charset", []byte("<title>x</title>")), "x"},
		{"garbage content type", response("%%%", []byte("<title>x</title>")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := title(t.Context(), NewInput(tc.r))
			if err != nil || got != tc.want {
				t.Fatalf("title = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestBodyEncoding(t *testing.T) {
	c := chain(t, "body")
	if !reflect.DeepEqual(c.Columns(), []string{"body", "body_encoding"}) {
		t.Fatalf("columns = %v", c.Columns())
	}
	r := response("text/plain", []byte("héllo"))
	c.Apply(t.Context(), r)
	if !reflect.DeepEqual(r.Values, []any{"héllo", "utf-8"}) {
		t.Fatalf("values = %#v", r.Values)
	}
	r = response("application/octet-stream", []byte{0xff, 0x00, 0xfe})
	c.Apply(t.Context(), r)
	if !reflect.DeepEqual(r.Values, []any{"/wD+", "base64"}) {
		t.Fatalf("values = %#v", r.Values)
	}
}

func TestSHA256AndHeaders(t *testing.T) {
	c := chain(t, "sha256", "h:headers")
	r := response("text/plain", []byte("abc"))
	r.Header.Add("Set-Cookie", "a=1")
	r.Header.Add("Set-Cookie", "b=2")
	c.Apply(t.Context(), r)
	if r.Values[0] != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("sha256 = %v", r.Values[0])
	}
	h := r.Values[1].(map[string][]string)
	if !reflect.DeepEqual(h["set-cookie"], []string{"a=1", "b=2"}) || h["content-type"][0] != "text/plain" {
		t.Errorf("headers = %v", h)
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
		bad  bool
	}{
		{in: "title", want: Spec{Key: "title", Name: "title"}},
		{in: "t2:title", want: Spec{Key: "t2", Name: "title"}},
		{in: "price:regex=a:b=c", want: Spec{Key: "price", Name: "regex", Arg: "a:b=c", HasArg: true}},
		{in: "regex=", want: Spec{Key: "regex", Name: "regex", HasArg: true}},
		{in: "", bad: true},
		{in: ":title", bad: true},
		{in: "a b:title", bad: true},
		{in: "k:", bad: true},
	} {
		got, err := ParseSpec(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSpec(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestNewChainErrors(t *testing.T) {
	reg := Builtin()
	reserved := func(k string) bool { return k == "url" || k == "status" }
	for _, tc := range []struct {
		specs []Spec
		has   string
	}{
		{[]Spec{{Key: "nope", Name: "nope"}}, "unknown transform"},
		{[]Spec{{Key: "title", Name: "title", Arg: "x", HasArg: true}}, "takes no argument"},
		{[]Spec{{Key: "title", Name: "title"}, {Key: "title", Name: "title"}}, "both write"},
		{[]Spec{{Key: "url", Name: "title"}}, "already has that field"},
		{[]Spec{{Key: "b", Name: "body"}, {Key: "b_encoding", Name: "sha256"}}, "both write"},
	} {
		_, err := reg.NewChain(tc.specs, reserved, DefaultOptions())
		if err == nil || !strings.Contains(err.Error(), tc.has) {
			t.Errorf("NewChain(%+v) = %v, want error containing %q", tc.specs, err, tc.has)
		}
	}
}

func TestRequiredArgument(t *testing.T) {
	reg := NewRegistry()
	if err := reg.Register(Info{Name: "need", Arg: RequiredArg, Example: "need=x", New: plain(sha256Hex)}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.NewChain([]Spec{{Key: "need", Name: "need"}}, nil, DefaultOptions()); err == nil || !strings.Contains(err.Error(), "need=x") {
		t.Fatalf("missing argument error = %v", err)
	}
	if err := reg.Register(Info{Name: "need"}); err == nil {
		t.Fatal("duplicate registration accepted")
	}
}

func TestChainSkipsFailedFetchesButRunsOnErrorPages(t *testing.T) {
	c := chain(t, "title")
	failed := &record.Record{}
	failed.Fail(record.KindTimeout, errors.New("slow"))
	c.Apply(t.Context(), failed)
	if len(failed.Values) != 1 || failed.Values[0] != nil || failed.ErrKind != record.KindTimeout {
		t.Fatalf("failed fetch: values=%v kind=%s", failed.Values, failed.ErrKind)
	}
	page := response("text/html", []byte("<title>Not Found</title>"))
	page.Status = 404
	page.Fail(record.KindHTTPStatus, errors.New("HTTP 404"))
	c.Apply(t.Context(), page)
	if page.Values[0] != "Not Found" || page.ErrKind != record.KindHTTPStatus {
		t.Fatalf("error page: values=%v kind=%s", page.Values, page.ErrKind)
	}
}

// failing is a transform that errors or panics, to test that the record survives.
type failing struct{ panics bool }

func (failing) Keys(k string) []string { return []string{k} }
func (f failing) Apply(context.Context, *Input) ([]any, error) {
	if f.panics {
		panic("boom")
	}
	return nil, errors.New("cannot parse")
}

func TestFailingTransformMarksRecord(t *testing.T) {
	for _, panics := range []bool{false, true} {
		reg := Builtin()
		reg.Register(Info{Name: "bad", New: func(string, Options) (Transform, error) { return failing{panics: panics}, nil }})
		c, err := reg.NewChain([]Spec{{Key: "bad", Name: "bad"}, {Key: "sha256", Name: "sha256"}}, nil, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		r := response("text/plain", []byte("abc"))
		c.Apply(t.Context(), r)
		if r.ErrKind != record.KindTransform || !strings.HasPrefix(r.ErrorText(), "transform bad: ") {
			t.Fatalf("panics=%v: kind=%s err=%v", panics, r.ErrKind, r.Err)
		}
		if r.Values[0] != nil || r.Values[1] == nil {
			t.Fatalf("panics=%v: later transform did not run: %v", panics, r.Values)
		}
	}
}

func TestListIsSortedAndDocumented(t *testing.T) {
	list := Builtin().List()
	if len(list) < 4 {
		t.Fatalf("only %d transforms", len(list))
	}
	for i, info := range list {
		if i > 0 && list[i-1].Name >= info.Name {
			t.Errorf("not sorted at %s", info.Name)
		}
		if info.Summary == "" || info.Example == "" {
			t.Errorf("%s lacks help or example", info.Name)
		}
	}
}

func TestCollapser(t *testing.T) {
	var c collapser
	c.WriteString("  héllo \t\n wörld\u00a0\u3000again")
	c.Space()
	c.WriteString("x")
	c.Space()
	if got := c.String(); got != "héllo wörld again x" {
		t.Fatalf("collapsed = %q", got)
	}
	if got := collapse("  a \n b  "); got != "a b" {
		t.Fatalf("collapse = %q", got)
	}
}
