package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// genericLine writes r the slow, obvious way: every field of the layout
// through encoding/json, in order.
func genericLine(t *testing.T, layout record.Layout, r *record.Record) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	put := func(v any) {
		var one bytes.Buffer
		e := json.NewEncoder(&one)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			one.Reset()
			one.WriteString("null\n")
		}
		b.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
	}
	plain := func(v record.Value) any {
		switch v.Kind {
		case record.String:
			return v.S
		case record.Int:
			return v.I
		case record.Float:
			return v.F
		case record.Bool:
			return v.B
		case record.Any:
			return v.V
		}
		return nil
	}
	b.WriteByte('{')
	names := layout.Names()
	fields := layout.Fields()
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		put(name)
		b.WriteByte(':')
		if i < len(fields) {
			put(plain(fields[i].Get(r)))
		} else {
			put(plain(record.Column(r, i-len(fields))))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// FuzzJSONLMatchesEncodingJSON checks that the fast encoder writes exactly
// what encoding/json writes for the same values, for arbitrary records
// and every optional field.
func FuzzJSONLMatchesEncodingJSON(f *testing.F) {
	f.Add(int64(3), "http://a.example/x", 200, "HTTP/1.1", "text/html", int64(40), int64(12), false, 1, int64(12345), "", "", true, int64(1), "h/x.html", "abc", "T", 1.5)
	f.Add(int64(0), "garbage \x1b[2J \xff", 0, "", "", int64(0), int64(0), true, 0, int64(0), "bad \u2028 line", "invalid_url", false, int64(0), "", "", "\"quoted\"\n<&>", -1e-9)
	f.Fuzz(func(t *testing.T, index int64, u string, status int, proto, ct string, n, wire int64, truncated bool, attempts int,
		micros int64, errText, kind string, dup bool, dupOf int64, file, sum, title string, num float64) {
		r := &record.Record{Index: index, URL: u, FinalURL: u, Status: status, Proto: proto, ContentType: ct,
			Bytes: n, WireBytes: wire, Truncated: truncated, Attempts: attempts, Duration: time.Duration(micros) * time.Microsecond,
			Duplicate: dup, DuplicateOf: dupOf, File: file, FileDigest: sum, Values: []any{title, num, nil, map[string]any{"k": []any{title}}}}
		if errText != "" {
			r.Fail(record.Kind(kind), errors.New(errText))
		}
		for _, layout := range []record.Layout{
			{},
			{Duplicates: true, Files: true, Columns: []string{"title", "n", "none", "obj"}},
		} {
			var b bytes.Buffer
			if err := newJSONL(&b, layout).Encode(r); err != nil {
				t.Fatal(err)
			}
			if want := genericLine(t, layout, r); b.String() != want {
				t.Fatalf("fast encoder wrote\n%s\nencoding/json writes\n%s", b.String(), want)
			}
		}
	})
}
