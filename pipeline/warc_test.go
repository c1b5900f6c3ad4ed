package pipeline

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trawl-dev/trawl/stage"
)

// warcLine is the part of a record these tests read.
type warcLine struct {
	Index       int64   `json:"index"`
	URL         string  `json:"url"`
	FinalURL    *string `json:"final_url"`
	Status      *int    `json:"status"`
	DuplicateOf *int64  `json:"duplicate_of"`
	WARCFile    *string `json:"warc_file"`
	WARCOffset  *int64  `json:"warc_offset"`
}

func readWARCLines(t *testing.T, path string) []warcLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []warcLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l warcLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// member is one WARC record read back (with the standard library's gzip,
// not the writer's code).
type member struct {
	offset int64
	typ    string
	uri    string
	head   string
	block  string
}

func readMembers(t *testing.T, path string) []member {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []member
	br := bytes.NewReader(data)
	for br.Len() > 0 {
		off := int64(len(data) - br.Len())
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatalf("%s at %d: %v", path, off, err)
		}
		zr.Multistream(false)
		rec, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s at %d: %v", path, off, err)
		}
		head, block, _ := strings.Cut(string(rec), "\r\n\r\n")
		m := member{offset: off, head: head + "\r\n", block: block}
		for _, l := range strings.Split(head, "\r\n") {
			if v, ok := strings.CutPrefix(l, "WARC-Type: "); ok {
				m.typ = v
			}
			if v, ok := strings.CutPrefix(l, "WARC-Target-URI: "); ok {
				m.uri = v
			}
		}
		out = append(out, m)
	}
	return out
}

// allMembers reads every file of a WARC directory, in name order.
func allMembers(t *testing.T, dir string) (map[string][]member, []member) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.warc.gz"))
	byFile := map[string][]member{}
	var all []member
	for _, n := range names {
		ms := readMembers(t, n)
		byFile[filepath.Base(n)] = ms
		all = append(all, ms...)
	}
	return byFile, all
}

func warcServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := pageServer()
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/p/1", http.StatusFound) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		srv.Config.Handler.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: mux}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return "http://" + ln.Addr().String(), &hits
}

// TestWARCRecordsPointAtTheirCaptures: in either order, every record with
// a response names the file and offset of that response's record in the
// WARC; one without (a line that is no URL, a dead host) names none; a
// duplicate names its original's.
func TestWARCRecordsPointAtTheirCaptures(t *testing.T) {
	base, _ := warcServer(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	urls := []string{base + "/hop", "not a url", dead, base + "/p/3", base + "/p/3"}
	for i := range 25 {
		urls = append(urls, fmt.Sprintf("%s/p/%d", base, i))
	}
	for _, order := range []stage.Order{stage.InputOrder, stage.CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := fileConfig(t, writeList(t, dir, "urls.txt", urls), filepath.Join(dir, "out.jsonl"))
			cfg.FetchStage.Order, cfg.TransformStage.Order = order, order
			cfg.Fetch.Retries = 0
			cfg.WARC = filepath.Join(dir, "warc") + "/"
			cfg.Dedupe = true
			if _, err := Run(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
			byFile, _ := allMembers(t, filepath.Join(dir, "warc"))
			lines := readWARCLines(t, cfg.Output)
			if len(lines) != len(urls) {
				t.Fatalf("%d records for %d lines", len(lines), len(urls))
			}
			where := map[int64]string{}
			for _, l := range lines {
				if l.Status == nil {
					if l.WARCFile != nil || l.WARCOffset != nil {
						t.Errorf("line %d (%s) got no response but points into the WARC", l.Index, l.URL)
					}
					continue
				}
				if l.WARCFile == nil || l.WARCOffset == nil {
					t.Errorf("line %d (%s) points nowhere", l.Index, l.URL)
					continue
				}
				var m *member
				for i, mm := range byFile[*l.WARCFile] {
					if mm.offset == *l.WARCOffset {
						m = &byFile[*l.WARCFile][i]
					}
				}
				if m == nil || m.typ != "response" && m.typ != "revisit" || m.uri != *l.FinalURL ||
					!strings.HasPrefix(m.block, fmt.Sprintf("HTTP/1.1 %d ", *l.Status)) {
					t.Errorf("line %d (%s, %d) points at %+v", l.Index, *l.FinalURL, *l.Status, m)
				}
				where[l.Index] = fmt.Sprintf("%s@%d", *l.WARCFile, *l.WARCOffset)
				if l.DuplicateOf != nil && where[*l.DuplicateOf] != where[l.Index] {
					t.Errorf("duplicate %d points at %s, its original %d at %s", l.Index, where[l.Index], *l.DuplicateOf, where[*l.DuplicateOf])
				}
			}
			for _, l := range lines {
				if l.Index == 0 && (l.FinalURL == nil || !strings.HasSuffix(*l.FinalURL, "/p/1")) {
					t.Errorf("the redirect's record: %+v", l)
				}
			}
		})
	}
}

// TestWARCResumeArchivesEachURLOnce: a run killed after writing captures
// whose lines never reached the output, and in the middle of a record,
// resumes into a WARC that holds every URL exactly once.
func TestWARCResumeArchivesEachURLOnce(t *testing.T) {
	base, hits := warcServer(t)
	var urls []string
	for i := range 40 {
		urls = append(urls, fmt.Sprintf("%s/p/%d", base, i))
	}
	dir := t.TempDir()
	list := writeList(t, dir, "urls.txt", urls)
	out := filepath.Join(dir, "out.jsonl")
	cfg := fileConfig(t, list, out)
	cfg.Fetch.Retries = 0
	cfg.WARC = filepath.Join(dir, "w")
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	// What a kill leaves: lines 0..14 written and half of line 15; every
	// capture in the WARC, and half a gzip member after them.
	b, _ := os.ReadFile(out)
	var cut int
	for range 15 {
		cut += bytes.IndexByte(b[cut:], '\n') + 1
	}
	os.WriteFile(out, b[:cut+20], 0o644)
	names, _ := filepath.Glob(filepath.Join(dir, "w-*.warc.gz"))
	if len(names) != 1 {
		t.Fatalf("files %v", names)
	}
	f, _ := os.OpenFile(names[0], os.O_WRONLY|os.O_APPEND, 0)
	var torn bytes.Buffer
	zw := gzip.NewWriter(&torn)
	zw.Write(bytes.Repeat([]byte("WARC/1.1\r\n"), 100))
	zw.Close()
	f.Write(torn.Bytes()[:torn.Len()/2])
	f.Close()

	hits.Store(0)
	var said []string
	cfg.Resume = true
	cfg.Say = func(s string) { said = append(said, s) }
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 25 {
		t.Errorf("the resume sent %d requests, want 25", n)
	}
	if !strings.Contains(strings.Join(said, "\n"), "resuming the WARC: ") {
		t.Errorf("no note of the WARC repair: %q", said)
	}
	_, all := allMembers(t, dir)
	count := map[string]int{}
	for _, m := range all {
		if m.typ == "response" {
			count[m.uri]++
		}
	}
	for _, u := range urls {
		if count[u] != 1 {
			t.Errorf("%s archived %d times", u, count[u])
		}
	}
	if lines := readWARCLines(t, out); len(lines) != 40 {
		t.Errorf("%d records", len(lines))
	}
}

func TestWARCSettingsThatDoNotGoTogether(t *testing.T) {
	cfg := testConfig(t, nil, nil)
	cfg.WARCMaxBody = 10
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--warc PATH") {
		t.Errorf("--warc-max-body without --warc: %v", err)
	}
	cfg = testConfig(t, nil, nil)
	cfg.WARC, cfg.Atomic, cfg.Output = t.TempDir()+"/", true, "out.jsonl"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--atomic") {
		t.Errorf("--warc with --atomic: %v", err)
	}
}

// TestWARCSinceWritesNotModifiedRevisits: with --since, a 304 to the
// conditional request is archived as a revisit record of the
// server-not-modified profile, and the record points at it.
func TestWARCSinceWritesNotModifiedRevisits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, "<title>%s</title>", r.URL.Path)
	}))
	defer srv.Close()
	dir := t.TempDir()
	list := writeList(t, dir, "urls.txt", []string{srv.URL + "/a", srv.URL + "/b"})
	first := fileConfig(t, list, filepath.Join(dir, "first.jsonl"))
	first.WARC = filepath.Join(dir, "w1") + "/"
	if _, err := Run(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	second := fileConfig(t, list, filepath.Join(dir, "second.jsonl"))
	second.WARC = filepath.Join(dir, "w2") + "/"
	second.Since = first.Output
	if _, err := Run(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	byFile, _ := allMembers(t, filepath.Join(dir, "w2"))
	for _, l := range readWARCLines(t, second.Output) {
		if l.WARCFile == nil || l.WARCOffset == nil {
			t.Fatalf("line %d points nowhere", l.Index)
		}
		var m *member
		for i, mm := range byFile[*l.WARCFile] {
			if mm.offset == *l.WARCOffset {
				m = &byFile[*l.WARCFile][i]
			}
		}
		if m == nil || m.typ != "revisit" || !strings.Contains(m.head, "WARC-Profile: http://netpreserve.org/warc/1.1/revisit/server-not-modified\r\n") ||
			!strings.HasPrefix(m.block, "HTTP/1.1 304 ") {
			t.Errorf("line %d (%s) points at %+v", l.Index, l.URL, m)
		}
	}
}
