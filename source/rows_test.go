package source

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatAuto, "auto": FormatAuto, "CSV": FormatCSV, "ndjson": FormatJSONL, "tsv": FormatTSV, "lines": FormatLines} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "want lines, csv, tsv or jsonl") {
		t.Errorf("ParseFormat(xml) error = %v", err)
	}
}

func TestFormatFromExtension(t *testing.T) {
	for name, want := range map[string]Format{"a.CSV": FormatCSV, "a.tsv": FormatTSV, "a.tab": FormatTSV, "a.jsonl": FormatJSONL, "a.ndjson": FormatJSONL, "a.txt": FormatLines, "a": FormatLines} {
		if got := formatOf(input{kind: fileInput, name: name}, FormatAuto); got != want {
			t.Errorf("%s read as %q, want %q", name, got, want)
		}
	}
	if got := formatOf(input{kind: stdinInput}, FormatAuto); got != FormatLines {
		t.Errorf("stdin read as %q, want lines", got)
	}
	if got := formatOf(input{kind: fileInput, name: "a.txt"}, FormatCSV); got != FormatCSV {
		t.Errorf("--input-format csv ignored: %q", got)
	}
}

func TestCSVRows(t *testing.T) {
	p := writeFile(t, "in.csv", "\uFEFFid,Link,note\r\n"+
		"1,http://a.test/1,\"x, y\"\r\n"+
		"2, http://a.test/2 ,\"two\nlines\"\n"+
		"3,http://a.test/3\n"+ // short row
		"4,\"http://a.test/4\" tail,z\n"+ // bare text after a quote
		"5,http://a.test/5,last\n")
	got := readAllRecords(t, Options{Paths: []string{p}, Columns: Columns{URL: "Link", Keep: []string{"note", "id"}}})
	if len(got) != 5 {
		t.Fatalf("got %d records, want 5", len(got))
	}
	ok := []struct {
		i        int
		url      string
		note, id string
	}{{0, "http://a.test/1", "x, y", "1"}, {1, "http://a.test/2", "two\nlines", "2"}, {4, "http://a.test/5", "last", "5"}}
	for _, w := range ok {
		r := got[w.i]
		if r.Err != nil || r.URL != w.url || r.Index != int64(w.i) {
			t.Errorf("record %d = {%d %q %v}, want {%d %q nil}", w.i, r.Index, r.URL, r.Err, w.i, w.url)
			continue
		}
		if r.Kept() == nil || !slices.Equal(r.Kept().Names, []string{"note", "id"}) || r.Kept().Values[0] != w.note || r.Kept().Values[1] != w.id {
			t.Errorf("record %d kept %+v, want note=%q id=%q", w.i, r.Kept(), w.note, w.id)
		}
		if len(r.RowHash()) != 16 {
			t.Errorf("record %d row hash %q", w.i, r.RowHash())
		}
	}
	for _, i := range []int{2, 3} {
		r := got[i]
		if r.ErrKind != record.KindInput || !strings.Contains(r.ErrorText(), "malformed input row") {
			t.Errorf("record %d: kind %q error %q, want a malformed input row", i, r.ErrKind, r.ErrorText())
		}
	}
	if !strings.Contains(got[2].ErrorText(), "has 2 fields, the header 3") {
		t.Errorf("short row error %q does not count its fields", got[2].ErrorText())
	}
	if got[0].RowHash() == got[4].RowHash() {
		t.Error("different rows share a hash")
	}
}

func TestRowHashIsStable(t *testing.T) {
	// --resume compares row hashes across runs and versions: a change here
	// makes every earlier output look like a different list. The value is
	// FNV-1a 64 of the fields, each followed by a NUL, worked out apart.
	if got, want := rowHash([]string{"1", "http://a.test/", "x"}), "f57b3ef05e9320a4"; got != want {
		t.Errorf("rowHash = %s, want %s", got, want)
	}
	if rowHash([]string{"ab", "c"}) == rowHash([]string{"a", "bc"}) {
		t.Error("fields run together in the hash")
	}
}

func TestColumnByNumberAndMissing(t *testing.T) {
	p := writeFile(t, "in.csv", "a,b\nx,http://a.test/\n")
	got := readAllRecords(t, Options{Paths: []string{p}, Columns: Columns{URL: "2"}})
	if len(got) != 1 || got[0].URL != "http://a.test/" || got[0].Err != nil {
		t.Fatalf("column 2: %+v", got)
	}
	err := Check(Options{Paths: []string{p}, Columns: Columns{URL: "c"}})
	if err == nil || !strings.Contains(err.Error(), `has no column "c"; its header is: a, b`) {
		t.Errorf("missing column error = %v", err)
	}
	if err := Check(Options{Paths: []string{writeFile(t, "empty.csv", "")}}); err == nil || !strings.Contains(err.Error(), "a header row naming the columns is needed") {
		t.Errorf("empty CSV error = %v", err)
	}
}

func TestTSVKeepsQuotes(t *testing.T) {
	p := writeFile(t, "in.tsv", "url\ttitle\nhttp://a.test/\tsay \"hi\"\n")
	got := readAllRecords(t, Options{Paths: []string{p}, Columns: Columns{Keep: []string{"all"}}})
	if len(got) != 1 || got[0].Err != nil {
		t.Fatalf("TSV: %+v", got)
	}
	if v := got[0].Kept().Values[1]; v != `say "hi"` {
		t.Errorf("TSV title = %q", v)
	}
}

func TestJSONRows(t *testing.T) {
	p := writeFile(t, "in.jsonl", `{"u":{"href":"http://a.test/1"},"n":1.50,"tags":["x"]}`+"\n"+
		"\n"+
		`{"u":{"href":7}}`+"\n"+
		`not json`+"\n"+
		`{"u":{"href":"http://a.test/2"}} {"again":1}`+"\n"+
		`{"n":2}`+"\n")
	got := readAllRecords(t, Options{Paths: []string{p}, Columns: Columns{URL: "u.href", Keep: []string{"n", "u.href", "missing"}}})
	if len(got) != 5 {
		t.Fatalf("got %d records, want 5 (a blank line is no row)", len(got))
	}
	first := got[0]
	if first.Err != nil || first.URL != "http://a.test/1" {
		t.Fatalf("first row: %q %v", first.URL, first.Err)
	}
	vals := first.Kept().Values
	if !slices.Equal(first.Kept().Names, []string{"n", "u.href", "missing"}) || len(vals) != 3 ||
		string(vals[0].(json.RawMessage)) != "1.50" || string(vals[1].(json.RawMessage)) != `"http://a.test/1"` || vals[2] != nil {
		t.Errorf("kept %q = %q, want numbers as written, in the order asked, a missing one nil", first.Kept().Names, vals)
	}
	for i, want := range []struct {
		kind record.Kind
		text string
	}{
		{record.KindInvalidURL, `field "u.href" is 7, not a URL string`},
		{record.KindInput, "not JSON"},
		{record.KindInput, "more than one JSON value"},
		{record.KindInvalidURL, `the row has no field "u.href"`},
	} {
		r := got[i+1]
		if r.ErrKind != want.kind || !strings.Contains(r.ErrorText(), want.text) {
			t.Errorf("row %d: kind %q error %q, want %s with %q", i+1, r.ErrKind, r.ErrorText(), want.kind, want.text)
		}
	}
	if r := got[4]; r.Kept() == nil || len(r.Kept().Values) != 3 {
		t.Errorf("a row without a URL lost its kept columns: %+v", r.Kept())
	}
}

func TestURLArgumentsAmongFiles(t *testing.T) {
	p := writeFile(t, "a.txt", "http://a.test/2\n")
	got := readAllRecords(t, Options{Paths: []string{"http://a.test/1", p, "https://a.test/3"}})
	want := []string{"http://a.test/1", "http://a.test/2", "https://a.test/3"}
	if len(got) != len(want) {
		t.Fatalf("got %d records", len(got))
	}
	for i, r := range got {
		if r.URL != want[i] || r.Index != int64(i) {
			t.Errorf("record %d = %d %q, want %q", i, r.Index, r.URL, want[i])
		}
	}
	if err := Readable([]string{"http://a.test/1", p}); err != nil {
		t.Errorf("Readable: %v", err)
	}
	if err := Readable([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "it is a directory") {
		t.Errorf("Readable(dir) = %v", err)
	}
}

func TestTemplates(t *testing.T) {
	urlT, err := ParseTemplate("--url-template", "http://a.test/items/{{pathescape .id}}?id={{.id|urlquery}}")
	if err != nil {
		t.Fatal(err)
	}
	bodyT, err := ParseTemplate("body template", `{"name":{{json .name}}}`)
	if err != nil {
		t.Fatal(err)
	}
	hdrT, err := ParseTemplate("header X-Id template", "{{.id}}")
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{URL: urlT, Body: bodyT, Header: []HeaderTemplate{{Name: "X-Id", Value: hdrT}}}
	p := writeFile(t, "in.csv", "id,name\na b,\"say \"\"hi\"\"\"\nc\nd\re,x\n")
	got := readAllRecords(t, Options{Paths: []string{p}, Request: req})
	if len(got) != 3 {
		t.Fatalf("got %d records", len(got))
	}
	r := got[0]
	if r.Err != nil || r.URL != "http://a.test/items/a%20b?id=a+b" || string(r.ReqBody()) != `{"name":"say \"hi\""}` || r.ReqHeader().Get("X-Id") != "a b" {
		t.Errorf("templated request: url %q body %q header %q err %v", r.URL, r.ReqBody(), r.ReqHeader().Get("X-Id"), r.Err)
	}
	if got[1].ErrKind != record.KindInput {
		t.Errorf("short row: kind %q", got[1].ErrKind)
	}
	if r := got[2]; r.ErrKind != record.KindInput || !strings.Contains(r.ErrorText(), "line break") {
		t.Errorf("header with a carriage return: kind %q error %q", r.ErrKind, r.ErrorText())
	}
	if _, err := ParseTemplate("--url-template", "{{.id"); err == nil || !strings.HasPrefix(err.Error(), "bad --url-template: ") {
		t.Errorf("bad template error = %v", err)
	}
	// A template over plain lines sees the line as .url.
	lineT, _ := ParseTemplate("--url-template", "{{.url}}?page=2")
	got = readAllRecords(t, Options{Stdin: strings.NewReader("http://a.test/x\n"), Request: &Request{URL: lineT}})
	if len(got) != 1 || got[0].URL != "http://a.test/x?page=2" {
		t.Errorf("line template: %+v", got)
	}
}

func TestIdentityOfRows(t *testing.T) {
	p := writeFile(t, "in.csv", "id,url\n1,http://a.test/\n2,http://a.test/\n")
	var ids []string
	if err := Lines(t.Context(), Options{Paths: []string{p}}, func(_ int64, id string) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	recs := readAllRecords(t, Options{Paths: []string{p}})
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("two rows with one URL need two identities: %q", ids)
	}
	for i, r := range recs {
		if r.Identity() != ids[i] {
			t.Errorf("row %d: Lines says %q, the record %q", i, ids[i], r.Identity())
		}
	}
}

// benchRead reads n rows of the given input through Read.
func benchRead(b *testing.B, name, header, row string, opts Options) {
	var sb strings.Builder
	sb.WriteString(header)
	for i := range 10000 {
		sb.WriteString(strings.ReplaceAll(row, "{i}", strconv.Itoa(i)))
	}
	p := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	opts.Paths = []string{p}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		recs, _ := Read(b.Context(), opts)
		for range recs {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/row")
}

func BenchmarkReadLines(b *testing.B) {
	benchRead(b, "in.txt", "", "http://127.0.0.1:18080/page/{i}\n", Options{})
}

func BenchmarkReadCSVKept(b *testing.B) {
	benchRead(b, "in.csv", "id,url,note,category\n", "{i},http://127.0.0.1:18080/page/{i},\"note {i}, with comma\",cat7\n",
		Options{Columns: Columns{Keep: []string{"id", "note", "category"}}})
}

func BenchmarkReadJSONLKept(b *testing.B) {
	benchRead(b, "in.jsonl", "", `{"id":{i},"url":"http://127.0.0.1:18080/page/{i}","note":"note {i}","category":"cat7"}`+"\n",
		Options{Columns: Columns{Keep: []string{"id", "note", "category"}}})
}

// FuzzTopLevel checks the fast object splitter against encoding/json's
// decoder: the same verdict, and for an object the same names and values.
func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1,{"c":"}"}],"d\"e":"x\\\"y"}`, ` { } `, `{"a":{}} {}`, `[1]`, `{"a":`, `{"a":1,}`, `{"\u00e9":null,"t":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		names, raws, err := topLevel(line)
		wantNames, wantRaws, wantErr := whyNotObject(line)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, the decoder's %v", line, err, wantErr)
		}
		if err != nil {
			return
		}
		if !slices.Equal(names, wantNames) || len(raws) != len(wantRaws) {
			t.Fatalf("%q: names %q, the decoder's %q", line, names, wantNames)
		}
		for i := range raws {
			if !bytes.Equal(bytes.TrimSpace(raws[i]), bytes.TrimSpace(wantRaws[i])) {
				t.Fatalf("%q: value %d is %q, the decoder's %q", line, i, raws[i], wantRaws[i])
			}
		}
	})
}
