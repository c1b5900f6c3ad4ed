package sink

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trawl-dev/trawl/record"
)

func okRecord() *record.Record {
	return &record.Record{
		Index: 3, URL: "http://a.test/x", FinalURL: "http://a.test/y", Status: 200, Proto: "HTTP/1.1",
		ContentType: "text/html", Bytes: 42, WireBytes: 40, Attempts: 2, Duration: 12345 * time.Microsecond,
		ETag: `W/"x1"`, FetchedAt: time.Date(2026, 12, 1, 4, 15, 2, 123456789, time.FixedZone("CET", 3600)),
		Values: []any{"Hello, \"world\"\nline two", map[string][]string{"a": {"1"}}},
	}
}

func failedRecord() *record.Record {
	r := &record.Record{Index: 4, URL: "ftp://nope"}
	r.Fail(record.KindInvalidURL, errors.New("unsupported scheme"))
	return r
}

func TestJSONL(t *testing.T) {
	var buf bytes.Buffer
	enc, err := NewEncoder(JSONL, &buf, record.Layout{Columns: []string{"title", "headers"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*record.Record{okRecord(), failedRecord()} {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"index":3,"url":"http://a.test/x","final_url":"http://a.test/y","status":200,"proto":"HTTP/1.1","content_type":"text/html","bytes":42,"wire_bytes":40,"truncated":false,"attempts":2,"duration_ms":12.345,"error":null,"error_kind":null,"etag":"W/\"x1\"","last_modified":null,"fetched_at":"2026-12-01T03:15:02.123Z","title":"Hello, \"world\"\nline two","headers":{"a":["1"]}}
{"index":4,"url":"ftp://nope","final_url":null,"status":null,"proto":null,"content_type":null,"bytes":0,"wire_bytes":0,"truncated":false,"attempts":0,"duration_ms":0,"error":"unsupported scheme","error_kind":"invalid_url","etag":null,"last_modified":null,"fetched_at":null,"title":null,"headers":null}
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestJSONLStaysValidWhateverTheInput(t *testing.T) {
	var buf bytes.Buffer
	enc, _ := NewEncoder(JSONL, &buf, record.Layout{Columns: []string{"v"}})
	r := &record.Record{URL: "http://a.test/\xff\xfe<&>\u2028", Values: []any{"\x00\x1b[31mred"}}
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if !utf8.Valid(line) || bytes.Contains(line, []byte("\n")) || bytes.Contains(line, []byte("\x1b")) {
		t.Fatalf("unsafe line %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	if !strings.Contains(m["url"].(string), "<&>") {
		t.Errorf("url mangled: %q", m["url"])
	}
}

func TestKeptInputColumns(t *testing.T) {
	rec := func(in *record.Input) *record.Record {
		return &record.Record{Index: 1, URL: "http://a.test/", Row: &record.Row{Hash: "ab12", Input: in}}
	}
	csvRow := rec(&record.Input{Names: []string{"id", "note"}, Values: []any{"7", "a <b> & \"c\"\nd"}})
	jsonRow := rec(&record.Input{Names: []string{"n", "tags", "gone"}, Values: []any{json.RawMessage("1.50"), json.RawMessage(`[ "x", {"k" : 1} ]`), nil}})
	var buf bytes.Buffer
	enc, err := NewEncoder(JSONL, &buf, record.Layout{Row: true, InputVaries: true})
	if err != nil {
		t.Fatal(err)
	}
	badUTF8 := rec(&record.Input{Names: []string{"s"}, Values: []any{json.RawMessage("\"a\xffb\"")}})
	for _, r := range []*record.Record{csvRow, jsonRow, rec(nil), badUTF8} {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		`"row":"ab12","input":{"id":"7","note":"a <b> & \"c\"\nd"}}`,
		`"row":"ab12","input":{"n":1.50,"tags":["x",{"k":1}],"gone":null}}`,
		`"row":"ab12","input":null}`,
		`"row":"ab12","input":{"s":"a` + "\uFFFD" + `b"}}`,
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %s, want it to end %s", i, lines[i], w)
		}
		if !json.Valid([]byte(lines[i])) {
			t.Errorf("line %d is not JSON", i)
		}
	}
	buf.Reset()
	enc, err = NewEncoder(CSV, &buf, record.Layout{Row: true, InputColumns: []string{"id", "url"}})
	if err != nil {
		t.Fatal(err)
	}
	enc.Encode(rec(&record.Input{Names: []string{"id", "url"}, Values: []any{"7", "u"}}))
	enc.Flush()
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("CSV: %v %q", err, rows)
	}
	if h, r := rows[0], rows[1]; !slices.Equal(h[len(h)-3:], []string{"row", "id", "input.url"}) || !slices.Equal(r[len(r)-3:], []string{"ab12", "7", "u"}) {
		t.Errorf("CSV header %q row %q: kept columns last, a clash with a field's name prefixed", h, r)
	}
	if _, err := NewEncoder(CSV, &buf, record.Layout{InputVaries: true}); err == nil {
		t.Error("CSV accepted columns that vary by row")
	}
}

func TestCSVQuotingRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	enc, err := NewEncoder(CSV, &buf, record.Layout{Columns: []string{"title", "headers"}})
	if err != nil {
		t.Fatal(err)
	}
	enc.Encode(okRecord())
	enc.Encode(failedRecord())
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("output is not valid CSV: %v", err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want header + 2", len(rows))
	}
	wantHeader := []string{"index", "url", "final_url", "status", "proto", "content_type", "bytes",
		"wire_bytes", "truncated", "attempts", "duration_ms", "error", "error_kind", "etag", "last_modified", "fetched_at", "title", "headers"}
	if !reflect.DeepEqual(rows[0], wantHeader) {
		t.Errorf("header = %v", rows[0])
	}
	ok := rows[1]
	if ok[0] != "3" || ok[3] != "200" || ok[7] != "40" || ok[10] != "12.345" || ok[11] != "" || ok[13] != `W/"x1"` || ok[15] != "2026-12-01T03:15:02.123Z" || ok[16] != "Hello, \"world\"\nline two" || ok[17] != `{"a":["1"]}` {
		t.Errorf("ok row = %q", ok)
	}
	bad := rows[2]
	if bad[3] != "" || bad[11] != "unsupported scheme" || bad[12] != "invalid_url" || bad[13] != "" {
		t.Errorf("failed row = %q", bad)
	}
}

func TestCSVHeaderEvenWithoutRecords(t *testing.T) {
	var buf bytes.Buffer
	enc, _ := NewEncoder(CSV, &buf, record.Layout{})
	enc.Flush()
	if got := buf.String(); got != strings.Join(record.Layout{}.Names(), ",")+"\n" {
		t.Fatalf("got %q", got)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"csv": CSV, "jsonl": JSONL, "json": JSONL, "ndjson": JSONL, "CSV": CSV} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Fatal("xml accepted")
	}
	for name, want := range map[string]Format{"a.csv": CSV, "b.JSONL": JSONL, "c.ndjson": JSONL, "d.json": JSONL} {
		if f, ok := FormatOf(name); !ok || f != want {
			t.Errorf("FormatOf(%q) = %v, %v", name, f, ok)
		}
	}
	if _, ok := FormatOf("out.txt"); ok {
		t.Error("out.txt implies a format")
	}
}

// countingFlusher counts flushes and can fail writes.
type countingFlusher struct {
	bytes.Buffer
	flushes atomic.Int64
	flushed chan struct{}
	failAt  int
	writes  int
}

func (c *countingFlusher) Write(p []byte) (int, error) {
	c.writes++
	if c.failAt > 0 && c.writes >= c.failAt {
		return 0, errors.New("no space left on device")
	}
	return c.Buffer.Write(p)
}

func (c *countingFlusher) Flush() error {
	c.flushes.Add(1)
	if c.flushed != nil {
		select {
		case c.flushed <- struct{}{}:
		default:
		}
	}
	return nil
}

func TestRunWritesAllAndFlushes(t *testing.T) {
	in := make(chan *record.Record)
	out := &countingFlusher{}
	enc, _ := NewEncoder(JSONL, out, record.Layout{})
	var observed int
	go func() {
		for i := range 100 {
			in <- &record.Record{Index: int64(i), URL: "http://a.test/"}
		}
		close(in)
	}()
	err := Run(t.Context(), in, enc, out, Options{Observe: func(*record.Record) { observed++ }})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 100 || observed != 100 {
		t.Fatalf("wrote %d lines, observed %d; want 100", n, observed)
	}
	if out.flushes.Load() < 1 {
		t.Fatal("never flushed")
	}
}

func TestRunFlushesWhileIdle(t *testing.T) {
	in := make(chan *record.Record)
	out := &countingFlusher{flushed: make(chan struct{}, 1)}
	enc, _ := NewEncoder(JSONL, out, record.Layout{})
	done := make(chan error, 1)
	go func() { done <- Run(t.Context(), in, enc, out, Options{FlushEvery: 5 * time.Millisecond}) }()
	in <- &record.Record{URL: "http://a.test/"}
	// The record must be flushed although no further record and no close follow.
	select {
	case <-out.flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("record was not flushed while the stream stayed open")
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunReportsWriteErrors(t *testing.T) {
	in := make(chan *record.Record, 3)
	for range 3 {
		in <- &record.Record{URL: "http://a.test/"}
	}
	close(in)
	out := &countingFlusher{failAt: 2}
	enc, _ := NewEncoder(JSONL, out, record.Layout{})
	err := Run(t.Context(), in, enc, out, Options{})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out := &countingFlusher{}
	enc, _ := NewEncoder(JSONL, out, record.Layout{})
	if err := Run(ctx, make(chan *record.Record), enc, out, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	_, err := Create(filepath.Join(dir, "missing", "out.jsonl"), os.Stdout, OutputOptions{})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	if _, err := Create(dir, os.Stdout, OutputOptions{}); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: %v", err)
	}
	p := filepath.Join(dir, "out.jsonl")
	o, err := Create(p, os.Stdout, OutputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("x\n"))
	if err := o.Close(true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "x\n" {
		t.Fatalf("file holds %q", b)
	}
	// Append keeps what is there.
	o, _ = Create(p, os.Stdout, OutputOptions{Append: true})
	o.Write([]byte("y\n"))
	o.Close(true)
	if b, _ := os.ReadFile(p); string(b) != "x\ny\n" {
		t.Fatalf("after append: %q", b)
	}
	// Atomic: the target changes only on a complete close.
	o, _ = Create(p, os.Stdout, OutputOptions{Atomic: true})
	o.Write([]byte("partial\n"))
	o.Flush()
	if b, _ := os.ReadFile(p); string(b) != "x\ny\n" {
		t.Fatalf("atomic output visible before close: %q", b)
	}
	o.Close(false)
	if b, _ := os.ReadFile(p); string(b) != "x\ny\n" {
		t.Fatalf("incomplete atomic output replaced the file: %q", b)
	}
	o, _ = Create(p, os.Stdout, OutputOptions{Atomic: true})
	o.Write([]byte("whole\n"))
	if err := o.Close(true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "whole\n" {
		t.Fatalf("after atomic close: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("leftovers: %v", entries)
	}
	// A device cannot be fsynced; writing to it must still succeed.
	o, err = Create(os.DevNull, os.Stdout, OutputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("x\n"))
	if err := o.Close(true); err != nil {
		t.Fatalf("closing %s: %v", os.DevNull, err)
	}
}

func TestFileFields(t *testing.T) {
	l := record.Layout{Files: true, Digest: "sha256", Columns: []string{"title"}}
	if !l.Reserved("sha256") || !l.Reserved("file") || !l.Reserved("url") || l.Reserved("title") {
		t.Fatal("Reserved wrong")
	}
	if (record.Layout{}).Reserved("sha256") {
		t.Fatal("sha256 reserved without files")
	}
	var buf bytes.Buffer
	enc, _ := NewEncoder(JSONL, &buf, l)
	saved := okRecord()
	saved.Values = []any{"T"}
	saved.File, saved.FileDigest = "h/x.html", "abc"
	enc.Encode(saved)
	enc.Encode(failedRecord())
	want := `"fetched_at":"2026-12-01T03:15:02.123Z","file":"h/x.html","sha256":"abc","title":"T"}`
	if !strings.Contains(buf.String(), want) || !strings.Contains(buf.String(), `"fetched_at":null,"file":null,"sha256":null,"title":null}`) {
		t.Fatalf("got %s", buf.String())
	}
}

// fullAfter takes n bytes, then fails like a full disk.
type fullAfter struct {
	n   int
	got bytes.Buffer
}

func (f *fullAfter) Write(p []byte) (int, error) {
	room := f.n - f.got.Len()
	if room <= 0 {
		return 0, errors.New("no space left on device")
	}
	if len(p) > room {
		f.got.Write(p[:room])
		return room, errors.New("no space left on device")
	}
	return f.got.Write(p)
}

// TestRunCountsOnlyWrittenRecords fills the disk mid-run: the records
// observed (which the summary counts) must be exactly those whose whole
// line reached the file, not those still in the buffer.
func TestRunCountsOnlyWrittenRecords(t *testing.T) {
	for _, format := range []Format{JSONL, CSV} {
		t.Run(string(format), func(t *testing.T) {
			disk := &fullAfter{n: 100000}
			out := newOutput(disk, "disk", 4096)
			enc, err := NewEncoder(format, out, record.Layout{})
			if err != nil {
				t.Fatal(err)
			}
			in := make(chan *record.Record)
			go func() {
				defer close(in)
				for i := range 5000 {
					r := okRecord()
					r.Index = int64(i)
					select {
					case in <- r:
					case <-t.Context().Done():
						return
					}
				}
			}()
			var observed int
			err = Run(t.Context(), in, enc, out, Options{FlushEvery: time.Millisecond, Observe: func(*record.Record) { observed++ }})
			if err == nil {
				t.Fatal("a full disk went unnoticed")
			}
			for range in {
			}
			complete := strings.Count(disk.got.String(), "\n")
			if format == CSV {
				complete-- // the header row
			}
			if observed != complete {
				t.Fatalf("%d records counted, %d complete lines in the file", observed, complete)
			}
			if complete == 0 || complete >= 5000 {
				t.Fatalf("%d lines written: the test proves nothing", complete)
			}
		})
	}
}
