package fetch

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

// memStore is a BodyStore that keeps bodies in memory and counts calls.
type memStore struct {
	mu        sync.Mutex
	created   int
	committed map[string]string
	aborted   int
	createErr error
	writeErr  error
}

type memFile struct {
	s   *memStore
	buf bytes.Buffer
}

func (s *memStore) Create(r *record.Record, _ BodyStart) (BodyFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created++
	if s.createErr != nil {
		return nil, s.createErr
	}
	return &memFile{s: s}, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if f.s.writeErr != nil {
		return 0, f.s.writeErr
	}
	return f.buf.Write(p)
}

func (f *memFile) Commit(r *record.Record) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.s.committed == nil {
		f.s.committed = map[string]string{}
	}
	f.s.committed[r.URL] = f.buf.String()
	r.File = "saved/" + r.URL
	return nil
}

func (f *memFile) Keep() { f.Abort() }

func (f *memFile) Abort() {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.aborted++
}

func bigServer(size int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, strings.Repeat("y", size))
	}))
}

func TestStoreGetsWholeBodyWhileMemoryIsCapped(t *testing.T) {
	srv := bigServer(100_000)
	defer srv.Close()
	store := &memStore{}
	o := testOptions()
	o.MaxBody = 1000
	o.Store = store
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(store.committed[r.URL]) != 100_000 || r.File == "" {
		t.Fatalf("saved %d bytes as %q", len(store.committed[r.URL]), r.File)
	}
	if r.Bytes != 100_000 || len(r.Body) != 1000 || !r.Truncated {
		t.Fatalf("bytes %d, body %d, truncated %v", r.Bytes, len(r.Body), r.Truncated)
	}
}

func TestStoreLimitsAndFailures(t *testing.T) {
	srv := bigServer(5000)
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		store   *memStore
		maxFile int64
		url     string
		errHas  string
	}{
		{"too large", &memStore{}, 4999, "/", "larger than 4999 (--max-file-size)"},
		{"create fails", &memStore{createErr: errors.New("disk full")}, 0, "/", "cannot save body: disk full"},
		{"write fails", &memStore{writeErr: errors.New("quota exceeded")}, 0, "/", "cannot save body: quota exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.Store = tc.store
			o.MaxFileSize = tc.maxFile
			r := fetchOne(t, newClient(t, o), srv.URL+tc.url)
			if r.ErrKind != record.KindSave || !strings.Contains(r.ErrorText(), tc.errHas) || r.Attempts != 1 {
				t.Fatalf("kind %s attempts %d err %v", r.ErrKind, r.Attempts, r.Err)
			}
			if len(tc.store.committed) != 0 || r.File != "" {
				t.Fatal("a failed body was committed")
			}
			if tc.store.createErr == nil && tc.store.aborted != 1 {
				t.Fatalf("aborted %d times", tc.store.aborted)
			}
		})
	}
	// Exactly at the cap is fine.
	o := testOptions()
	store := &memStore{}
	o.Store, o.MaxFileSize = store, 5000
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil || len(store.committed) != 1 {
		t.Fatalf("a body of exactly --max-file-size: %v", r.Err)
	}
}

func TestStoreSkipsFailedResponses(t *testing.T) {
	srv := bigServer(10)
	defer srv.Close()
	store := &memStore{}
	o := testOptions()
	o.Store = store
	r := fetchOne(t, newClient(t, o), srv.URL+"/missing")
	if r.Status != 404 || store.created != 0 || r.File != "" {
		t.Fatalf("404: created %d file %q", store.created, r.File)
	}
	o.Method = http.MethodHead
	fetchOne(t, newClient(t, o), srv.URL)
	if store.created != 0 {
		t.Fatal("HEAD created a file")
	}
}

func TestBrokenBodyIsAbortedAndRetried(t *testing.T) {
	srv := hijacker(func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little")
		c.Close()
	})
	defer srv.Close()
	store := &memStore{}
	o := testOptions()
	o.Store = store
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.ErrKind != record.KindBody || store.created != 3 || store.aborted != 3 || len(store.committed) != 0 {
		t.Fatalf("kind %s created %d aborted %d committed %d", r.ErrKind, store.created, store.aborted, len(store.committed))
	}
}

func TestDiscardBodyCountsBytes(t *testing.T) {
	srv := bigServer(3000)
	defer srv.Close()
	o := testOptions()
	o.DiscardBody = true
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Err != nil || r.Body != nil || r.Bytes != 3000 || r.Truncated {
		t.Fatalf("body %d bytes %d truncated %v err %v", len(r.Body), r.Bytes, r.Truncated, r.Err)
	}
}
