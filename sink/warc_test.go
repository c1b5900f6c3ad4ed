package sink

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1" //nolint:gosec // the digests under test are SHA-1
	"encoding/base32"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/record"
)

// The WARC files are read back here by a parser of the test's own, on
// the standard library's gzip, independent of the writer's code (CI also
// reads them with warcio: .ci/warc/check.sh).

// wrec is one record as read back.
type wrec struct {
	offset  int64 // of its gzip member
	length  int64 // of its gzip member
	version string
	fields  [][2]string
	block   []byte
}

func (r wrec) get(name string) string {
	for _, f := range r.fields {
		if f[0] == name {
			return f[1]
		}
	}
	return ""
}

// readWARC reads every record of a file, one gzip member each, checking
// the framing: the header block, Content-Length bytes of block, the two
// line ends, and the member's end right after them.
func readWARC(t *testing.T, path string) []wrec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []wrec
	br := bytes.NewReader(data)
	for br.Len() > 0 {
		off := int64(len(data) - br.Len())
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatalf("%s at %d: not a gzip member: %v", path, off, err)
		}
		zr.Multistream(false)
		rec, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s at %d: %v", path, off, err)
		}
		w := wrec{offset: off, length: int64(len(data)-br.Len()) - off}
		head, rest, ok := bytes.Cut(rec, []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("%s at %d: no end of the header block", path, off)
		}
		lines := strings.Split(string(head), "\r\n")
		w.version = lines[0]
		for _, l := range lines[1:] {
			k, v, ok := strings.Cut(l, ": ")
			if !ok {
				t.Fatalf("%s at %d: bad header line %q", path, off, l)
			}
			w.fields = append(w.fields, [2]string{k, v})
		}
		n, err := strconv.Atoi(w.get("Content-Length"))
		if err != nil || n+4 != len(rest) || string(rest[n:]) != "\r\n\r\n" {
			t.Fatalf("%s at %d: Content-Length %q does not frame the block (%d bytes follow the header)", path, off, w.get("Content-Length"), len(rest))
		}
		w.block = rest[:n]
		out = append(out, w)
	}
	return out
}

func sha1b32(b []byte) string {
	sum := sha1.Sum(b)
	return "sha1:" + base32.StdEncoding.EncodeToString(sum[:])
}

// testMemLimit keeps all but the tiniest test bodies out of memory, so
// that the writer's copying of worker-compressed bodies is what most
// tests exercise.
var testMemLimit = 8

// exchange makes a finished exchange as the fetch stage would.
func exchange(uri, req, head, body string, truncated string) *capture.Exchange {
	var c capture.Capture
	ex := c.Begin(&capture.Spooler{MemLimit: testMemLimit}, time.Date(2026, 12, 1, 3, 4, 5, 678901000, time.UTC), uri)
	ex.IP = "192.0.2.7"
	ex.Request = []byte(req)
	ex.SetHead([]byte(head), false)
	ex.Payload([]byte(body))
	ex.Finish(truncated)
	return ex
}

func captured(exs ...*capture.Exchange) *record.Record {
	return &record.Record{Capture: &capture.Capture{Exchanges: exs}}
}

func openTestWARC(t *testing.T, opts WARCOptions) *WARC {
	t.Helper()
	w, err := OpenWARC(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func warcFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.warc.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var nameRE = regexp.MustCompile(`^trawl-\d{5}-\d{14}\.warc\.gz$`)

func TestWARCRecords(t *testing.T) {
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/", Software: "trawl/test", Info: []string{"trawl-setting: timeout=5s"}, Output: filepath.Join(dir, "out.jsonl")})
	hop := exchange("http://example.test/a", "GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n", "HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\n", "to b", "")
	final := exchange("http://example.test/b", "GET /b HTTP/1.1\r\nHost: example.test\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n", "a body longer than 8 bytes", "")
	cut := exchange("http://example.test/c", "GET /c HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "part", capture.TruncDisconnect)
	canceled := captured(exchange("http://example.test/d", "GET /d HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "half", capture.TruncTime))
	canceled.ErrKind = record.KindCanceled
	recs := []*record.Record{captured(hop, final), {}, captured(), canceled, captured(cut)}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := warcFiles(t, dir)
	if len(files) != 1 || !nameRE.MatchString(filepath.Base(files[0])) {
		t.Fatalf("files %v", files)
	}
	got := readWARC(t, files[0])
	types := []string{}
	for _, r := range got {
		types = append(types, r.get("WARC-Type"))
		if r.version != "WARC/1.1" {
			t.Errorf("version line %q", r.version)
		}
		if d := r.get("WARC-Block-Digest"); d != sha1b32(r.block) {
			t.Errorf("%s %s: block digest %s, block hashes to %s", r.get("WARC-Type"), r.get("WARC-Target-URI"), d, sha1b32(r.block))
		}
	}
	if strings.Join(types, ",") != "warcinfo,request,response,request,response,request,response" {
		t.Fatalf("records %v", types)
	}
	info := string(got[0].block)
	for _, want := range []string{"software: trawl/test\r\n", "format: WARC File Format 1.1\r\n", "trawl-setting: timeout=5s\r\n", "trawl-output-id: ", "trawl-run-id: "} {
		if !strings.Contains(info, want) {
			t.Errorf("warcinfo lacks %q:\n%s", want, info)
		}
	}
	if got[0].get("WARC-Filename") != filepath.Base(files[0]) || got[0].get("Content-Type") != "application/warc-fields" {
		t.Errorf("warcinfo fields %v", got[0].fields)
	}
	for i := 1; i < len(got); i += 2 {
		req, resp := got[i], got[i+1]
		if req.get("WARC-Concurrent-To") != resp.get("WARC-Record-ID") || resp.get("WARC-Concurrent-To") != req.get("WARC-Record-ID") {
			t.Errorf("pair %d not linked both ways", i)
		}
		for _, r := range []wrec{req, resp} {
			if r.get("WARC-IP-Address") != "192.0.2.7" ||
				r.get("WARC-Date") != "2026-12-01T03:04:05.678901Z" || r.get("WARC-Target-URI") != req.get("WARC-Target-URI") {
				t.Errorf("record %d fields %v", i, r.fields)
			}
		}
		if req.get("Content-Type") != "application/http;msgtype=request" || resp.get("Content-Type") != "application/http;msgtype=response" {
			t.Errorf("content types %q %q", req.get("Content-Type"), resp.get("Content-Type"))
		}
	}
	if string(got[4].block) != "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\na body longer than 8 bytes" {
		t.Errorf("response block %q", got[4].block)
	}
	if got[4].get("WARC-Payload-Digest") != sha1b32([]byte("a body longer than 8 bytes")) || got[4].get("WARC-Truncated") != "" {
		t.Errorf("payload digest %q, truncated %q", got[4].get("WARC-Payload-Digest"), got[4].get("WARC-Truncated"))
	}
	if got[6].get("WARC-Truncated") != "disconnect" || string(got[6].block) != "HTTP/1.1 200 OK\r\n\r\npart" {
		t.Errorf("a cut body: truncated %q, block %q", got[6].get("WARC-Truncated"), got[6].block)
	}
	// Each record points at its last response's member.
	if c := recs[0].Capture; c.File != filepath.Base(files[0]) || c.Offset != got[4].offset || !c.Written {
		t.Errorf("first record points at %s@%d, want %s@%d", c.File, c.Offset, filepath.Base(files[0]), got[4].offset)
	}
	if recs[2].Capture.File != "" {
		t.Error("a capture without exchanges points somewhere")
	}
	if recs[4].Capture.Offset != got[6].offset {
		t.Errorf("last record points at %d, want %d", recs[4].Capture.Offset, got[6].offset)
	}
	if recs[3].Capture.File != "" {
		t.Error("a cancelled URL was archived")
	}
	// A capture is archived once, even when a duplicate shares it.
	if err := w.Write(recs[0]); err != nil {
		t.Fatal(err)
	}
}

func TestWARCRotatesIntoSortedFiles(t *testing.T) {
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: filepath.Join(dir, "crawl.warc.gz"), MaxSize: 1})
	for i := range 4 {
		ex := exchange(fmt.Sprintf("http://example.test/%d", i), "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "x", "")
		if err := w.Write(captured(ex)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files := warcFiles(t, dir)
	if len(files) != 4 {
		t.Fatalf("want a file per URL at MaxSize 1, got %v", files)
	}
	for i, f := range files {
		base := filepath.Base(f)
		if !strings.HasPrefix(base, fmt.Sprintf("crawl-%05d-", i)) {
			t.Errorf("file %d is %s", i, base)
		}
		recs := readWARC(t, f)
		if len(recs) != 3 || recs[0].get("WARC-Type") != "warcinfo" || recs[0].get("WARC-Filename") != base ||
			recs[2].get("WARC-Target-URI") != fmt.Sprintf("http://example.test/%d", i) {
			t.Errorf("%s holds %d records", base, len(recs))
		}
	}
	// A second run of the same prefix goes on with the next serial.
	w = openTestWARC(t, WARCOptions{Path: filepath.Join(dir, "crawl")})
	w.Close()
	if files := warcFiles(t, dir); len(files) != 5 || !strings.HasPrefix(filepath.Base(files[4]), "crawl-00004-") {
		t.Errorf("after a second run: %v", files)
	}
}

// TestWARCRevisits runs with records the writer compresses and with
// records the fetch workers compressed already (Prepare).
func TestWARCRevisits(t *testing.T) {
	for _, prepared := range []bool{false, true} {
		t.Run(fmt.Sprintf("prepared=%v", prepared), func(t *testing.T) { testRevisits(t, prepared) })
	}
}

func testRevisits(t *testing.T, prepared bool) {
	if prepared {
		testMemLimit = 1 << 16
		t.Cleanup(func() { testMemLimit = 8 })
	}
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/", Revisits: true})
	same := "the same payload"
	recs := []*record.Record{
		captured(exchange("http://a.test/1", "GET /1 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", same, "")),
		captured(exchange("http://b.test/2", "GET /2 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nX: y\r\n\r\n", same, "")),
		captured(exchange("http://c.test/3", "GET /3 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", same, capture.TruncTime)),
		captured(exchange("http://d.test/4", "GET /4 HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "", "")),
		captured(exchange("http://e.test/5", "GET /5 HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "", "")),
	}
	for _, r := range recs {
		if prepared {
			r.Capture.Prepare()
			if !r.Capture.Exchanges[0].Prepared() {
				t.Fatal("a small exchange was not prepared")
			}
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got := readWARC(t, warcFiles(t, dir)[0])
	for _, r := range got {
		if d := r.get("WARC-Block-Digest"); d != sha1b32(r.block) {
			t.Errorf("%s: block digest %s, block hashes to %s", r.get("WARC-Type"), d, sha1b32(r.block))
		}
	}
	var kinds []string
	for _, r := range got[1:] {
		if r.get("WARC-Type") != "request" {
			kinds = append(kinds, r.get("WARC-Type"))
		}
	}
	// The truncated one is not the same payload; empty payloads are not
	// worth a revisit.
	if strings.Join(kinds, ",") != "response,revisit,response,response,response" {
		t.Fatalf("records %v", kinds)
	}
	orig, rev := got[2], got[4]
	for name, want := range map[string]string{
		"WARC-Profile":              "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest",
		"WARC-Refers-To":            orig.get("WARC-Record-ID"),
		"WARC-Refers-To-Target-URI": "http://a.test/1",
		"WARC-Refers-To-Date":       orig.get("WARC-Date"),
		"WARC-Payload-Digest":       sha1b32([]byte(same)),
		"WARC-Target-URI":           "http://b.test/2",
		"Content-Type":              "application/http;msgtype=response",
	} {
		if got := rev.get(name); got != want {
			t.Errorf("revisit %s = %q, want %q", name, got, want)
		}
	}
	byOffset := map[int64]wrec{}
	for _, r := range got {
		byOffset[r.offset] = r
	}
	for i, r := range recs {
		m, ok := byOffset[r.Capture.Offset]
		if !ok || m.get("WARC-Type") == "request" || m.get("WARC-Target-URI") != r.Capture.Exchanges[0].URI {
			t.Errorf("record %d points at %d: %v", i, r.Capture.Offset, m.fields)
		}
	}
	if string(rev.block) != "HTTP/1.1 200 OK\r\nX: y\r\n\r\n" {
		t.Errorf("a revisit holds its own head only: %q", rev.block)
	}
	if recs[1].Capture.Offset != rev.offset {
		t.Error("the record of a revisit points elsewhere")
	}
}

// TestWARCNotModifiedIsARevisit: a 304 to --since's conditional request
// is a revisit record of the server-not-modified profile.
func TestWARCNotModifiedIsARevisit(t *testing.T) {
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/"})
	r := captured(exchange("http://a.test/same", "GET /same HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", "", ""))
	r.NotModified = true
	if err := w.Write(r); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := readWARC(t, warcFiles(t, dir)[0])
	rev := got[2]
	if rev.get("WARC-Type") != "revisit" || rev.get("WARC-Profile") != "http://netpreserve.org/warc/1.1/revisit/server-not-modified" ||
		rev.get("WARC-Refers-To-Target-URI") != "http://a.test/same" || rev.get("WARC-Payload-Digest") != "" ||
		string(rev.block) != "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n" || r.Capture.Offset != rev.offset {
		t.Errorf("a 304 to a conditional request: %v %q", rev.fields, rev.block)
	}
}

// TestWARCFieldsStayOnTheirLine: a hostile URL cannot add fields.
func TestWARCFieldsStayOnTheirLine(t *testing.T) {
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/", Info: []string{"trawl-setting: header=X\r\nWARC-Type: forged"}})
	ex := exchange("http://a.test/x y\r\nWARC-Type: forged", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "b", "")
	if err := w.Write(captured(ex)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := readWARC(t, warcFiles(t, dir)[0])
	if uri := got[2].get("WARC-Target-URI"); uri != "http://a.test/x%20y%0D%0AWARC-Type:%20forged" {
		t.Errorf("target URI %q", uri)
	}
	for _, r := range got {
		for _, f := range r.fields {
			if f[1] == "forged" {
				t.Errorf("a forged field: %v", r.fields)
			}
		}
	}
	if strings.Contains(string(got[0].block), "\r\nWARC-Type: forged") {
		t.Error("a setting broke its line in the warcinfo")
	}
}

// FuzzWARCRecord writes one exchange of any URL, head and body and reads
// it back: the framing holds, the block is the head and the body, the
// digests are right, and nothing leaks out of its field.
func FuzzWARCRecord(f *testing.F) {
	f.Add("http://example.test/", []byte("HTTP/1.1 200 OK\r\n\r\n"), []byte("body"), false)
	f.Add("http://a.test/\r\nWARC-Type: x", []byte("HTTP/1.1 200\r\n\r\n\r\n\r\n"), []byte("\r\n\r\nWARC/1.1\r\n"), true)
	f.Add("", []byte{}, []byte{0x1f, 0x8b, 0}, false)
	f.Fuzz(func(t *testing.T, uri string, head, body []byte, cut bool) {
		dir := t.TempDir()
		w, err := OpenWARC(WARCOptions{Path: dir + "/"})
		if err != nil {
			t.Fatal(err)
		}
		truncated := ""
		if cut {
			truncated = capture.TruncDisconnect
		}
		r := captured(exchange(uri, "GET / HTTP/1.1\r\n\r\n", string(head), string(body), truncated))
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := readWARC(t, warcFiles(t, dir)[0])
		if len(got) != 3 {
			t.Fatalf("%d records", len(got))
		}
		resp := got[2]
		if !bytes.Equal(resp.block, append(append([]byte{}, head...), body...)) {
			t.Fatal("the block is not the head and the body")
		}
		if resp.get("WARC-Block-Digest") != sha1b32(resp.block) || resp.get("WARC-Payload-Digest") != sha1b32(body) {
			t.Fatal("wrong digests")
		}
		if resp.offset != r.Capture.Offset || resp.get("WARC-Type") != "response" || resp.get("WARC-Truncated") != truncated {
			t.Fatalf("fields %v", resp.fields)
		}
		if strings.ContainsAny(resp.get("WARC-Target-URI"), " \r\n\t") {
			t.Fatalf("target URI %q", resp.get("WARC-Target-URI"))
		}
	})
}

// TestWARCIsOnDiskBeforeTheLinesThatPointAtIt: whenever the records
// output writes to its file, the WARC records its lines point at are in
// theirs already, so that a kill can never leave a line pointing past the
// end of the WARC.
func TestWARCIsOnDiskBeforeTheLinesThatPointAtIt(t *testing.T) {
	// Bodies in memory: a spooled one's copy flushes the buffer anyway.
	testMemLimit = 1 << 16
	t.Cleanup(func() { testMemLimit = 8 })
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/"})
	defer w.Close()
	out, err := Create(filepath.Join(dir, "out.jsonl"), nil, OutputOptions{BeforeWrite: w.Flush})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close(true)
	for i := range 20 {
		r := captured(exchange(fmt.Sprintf("http://example.test/%d", i), "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", strings.Repeat("b", 100), ""))
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "{\"index\":%d,\"warc_offset\":%d}\n", i, r.Capture.Offset)
		if err := out.Flush(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, r.Capture.File))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() <= r.Capture.Offset {
			t.Fatalf("line %d points at offset %d, and the WARC file holds %d bytes", i, r.Capture.Offset, st.Size())
		}
	}
}
