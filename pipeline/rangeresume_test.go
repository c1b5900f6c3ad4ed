package pipeline

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rangeServer serves one large body with an ETag, honouring Range and
// If-Range (http.ServeContent), and while cut is set it breaks off every
// answer to a request without a Range after cutAt bytes. It counts the
// body bytes it sends and notes each request's Range header.
type rangeServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	etag   string
	ranges []string
	cut    atomic.Bool
	sent   atomic.Int64
}

const cutAt = 2 << 20

func newRangeServer(t *testing.T, size int) *rangeServer {
	s := &rangeServer{etag: `"v1"`}
	s.body = make([]byte, size)
	rand.Read(s.body)
	s.cut.Store(true)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, etag := s.body, s.etag
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		w.Header().Set("ETag", etag)
		if r.Header.Get("Range") == "" && s.cut.Load() {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body[:cutAt])
			s.sent.Add(cutAt)
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		cw := &countingWriter{ResponseWriter: w, n: &s.sent}
		http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// change gives the body new content and a new ETag.
func (s *rangeServer) change() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = bytes.Clone(s.body)
	s.body[len(s.body)-1] ^= 0xff
	s.etag = `"v2"`
}

func (s *rangeServer) sawRanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// savedRecord runs trawl over the server's one URL into dir and returns
// its record.
type savedRecord struct {
	Status    int     `json:"status"`
	Bytes     int64   `json:"bytes"`
	Attempts  int     `json:"attempts"`
	File      *string `json:"file"`
	SHA256    *string `json:"sha256"`
	ErrorKind *string `json:"error_kind"`
}

func runSaving(t *testing.T, s *rangeServer, dir string, retries int, resume bool) savedRecord {
	t.Helper()
	list := writeList(t, dir, "list.txt", []string{s.URL + "/big.bin"})
	cfg := fileConfig(t, list, filepath.Join(dir, "out.jsonl"))
	cfg.Transforms = nil
	cfg.OutputDir = filepath.Join(dir, "bodies")
	cfg.Fetch.Retries = retries
	cfg.Resume = resume
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatalf("run: %v", err)
	}
	f, err := os.Open(cfg.Output)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rec savedRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() { // the last record of the URL is the one that counts
		rec = savedRecord{}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	return rec
}

// checkSaved checks that the record names a saved file holding want, with
// its digest.
func checkSaved(t *testing.T, dir string, rec savedRecord, want []byte) {
	t.Helper()
	if rec.ErrorKind != nil || rec.File == nil || rec.SHA256 == nil {
		t.Fatalf("record %+v, want a saved body", rec)
	}
	got, err := os.ReadFile(filepath.Join(dir, "bodies", *rec.File))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	if !bytes.Equal(got, want) || *rec.SHA256 != hex.EncodeToString(sum[:]) || rec.Bytes != int64(len(want)) {
		t.Fatalf("saved %d bytes (record says %d, sha256 %s), want %d bytes with sha256 %x", len(got), rec.Bytes, *rec.SHA256, len(want), sum)
	}
}

// TestBrokenBodyContinuesWithRange: a body cut off midway is kept, and the
// retry asks only for the rest (Range, guarded by If-Range); the file
// saved is whole and its digest covers all of it.
func TestBrokenBodyContinuesWithRange(t *testing.T) {
	s := newRangeServer(t, 5<<20)
	dir := t.TempDir()
	rec := runSaving(t, s, dir, 1, false)
	checkSaved(t, dir, rec, s.body)
	if rec.Status != http.StatusPartialContent || rec.Attempts != 2 {
		t.Errorf("status %d after %d attempts, want 206 after 2", rec.Status, rec.Attempts)
	}
	if got := s.sawRanges(); len(got) != 2 || got[0] != "" || got[1] != "bytes="+strconv.Itoa(cutAt)+"-" {
		t.Errorf("the server saw Range headers %q, want none then bytes=%d-", got, cutAt)
	}
	if sent := s.sent.Load(); sent != int64(len(s.body)) {
		t.Errorf("the server sent %d body bytes for a body of %d", sent, len(s.body))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "bodies", ".trawl-partial", "*")); len(left) != 0 {
		t.Errorf("left in the partial directory: %q", left)
	}
}

// TestResumeContinuesAKeptBody: a run that gave up on a cut body keeps
// it, and --resume continues it from where it stopped; a body that
// changed in between is fetched whole instead (If-Range).
func TestResumeContinuesAKeptBody(t *testing.T) {
	for _, changed := range []bool{false, true} {
		t.Run("changed="+strconv.FormatBool(changed), func(t *testing.T) {
			s := newRangeServer(t, 5<<20)
			dir := t.TempDir()
			if rec := runSaving(t, s, dir, 0, false); rec.ErrorKind == nil || *rec.ErrorKind != "body" {
				t.Fatalf("first run: %+v, want a body error", rec)
			}
			if kept, _ := filepath.Glob(filepath.Join(dir, "bodies", ".trawl-partial", "keep-*.part")); len(kept) != 1 {
				t.Fatalf("kept after the first run: %q, want one partial body", kept)
			}
			if changed {
				s.change()
			}
			s.cut.Store(false)
			s.sent.Store(0)
			rec := runSaving(t, s, dir, 0, true)
			checkSaved(t, dir, rec, s.body)
			wantSent, wantStatus := int64(len(s.body)-cutAt), http.StatusPartialContent
			if changed {
				wantSent, wantStatus = int64(len(s.body)), http.StatusOK
			}
			if sent := s.sent.Load(); sent != wantSent || rec.Status != wantStatus {
				t.Errorf("second run: status %d, %d body bytes sent; want %d and %d", rec.Status, sent, wantStatus, wantSent)
			}
		})
	}
}
