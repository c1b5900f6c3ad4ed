package fetch

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

// fileStore saves bodies as plain files that can read a body themselves
// (io.ReaderFrom), as the output directory's can without a digest.
type fileStore struct{ dir string }

type plainFile struct {
	f    *os.File
	read bool // ReadFrom was used
}

func (s fileStore) Create(r *record.Record, _ BodyStart) (BodyFile, error) {
	f, err := os.Create(filepath.Join(s.dir, strconv.FormatInt(r.Index, 10)))
	return &plainFile{f: f}, err
}

func (p *plainFile) Write(b []byte) (int, error) { return p.f.Write(b) }

func (p *plainFile) ReadFrom(r io.Reader) (int64, error) {
	p.read = true
	s, ok := r.(interface {
		SpliceTo(*os.File, int64) (int64, error)
	})
	if !ok {
		return 0, errors.New("the body offers no SpliceTo")
	}
	// In steps smaller than the body, as the output directory's files do.
	var total int64
	for {
		n, err := s.SpliceTo(p.f, 1<<20)
		total += n
		if err != nil || n < 1<<20 {
			return total, err
		}
	}
}

func (p *plainFile) Commit(r *record.Record) error { r.File = p.f.Name(); return p.f.Close() }
func (p *plainFile) Abort()                        { p.f.Close(); os.Remove(p.f.Name()) }
func (p *plainFile) Keep()                         { p.Abort() }

// TestSaveWholeBody: a body nothing else reads goes to the file by the
// file's own ReadFrom (a splice from the socket where the platform has
// one) and arrives whole; one that lies about its length fails.
func TestSaveWholeBody(t *testing.T) {
	body := make([]byte, 3<<20+17)
	rand.Read(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/short" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:1000])
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	o := testOptions()
	o.DiscardBody = true
	o.Store = fileStore{t.TempDir()}
	c := newClient(t, o)
	for i := range 3 { // the connection is reused in between
		r := recordFor(t, srv.URL+"/big")
		r.Index = int64(i)
		c.Fetch(t.Context(), r)
		if r.Err != nil || r.Bytes != int64(len(body)) || r.WireBytes != int64(len(body)) {
			t.Fatalf("bytes %d wire %d err %v", r.Bytes, r.WireBytes, r.Err)
		}
		got, err := os.ReadFile(r.File)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("saved %d bytes, want %d (%v)", len(got), len(body), err)
		}
	}
	r := recordFor(t, srv.URL+"/short")
	r.Index = 9
	o.Retries = 0
	newClient(t, o).Fetch(t.Context(), r)
	if r.ErrKind != record.KindBody {
		t.Fatalf("short body: kind %q err %v", r.ErrKind, r.Err)
	}
}

func TestRangeStartAndValidator(t *testing.T) {
	for cr, want := range map[string]int64{"bytes 100-199/200": 100, "bytes 0-9/*": 0, "bytes */200": -1, "items 1-2/3": -1, "": -1, "bytes -5-9/10": -1} {
		got, ok := rangeStart(cr)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("rangeStart(%q) = %d, want %d", cr, got, want)
		}
	}
	h := http.Header{"Etag": {`W/"weak"`}, "Last-Modified": {"Tue, 01 Dec 2026 10:00:00 GMT"}}
	if v := validator(h); v != "Tue, 01 Dec 2026 10:00:00 GMT" {
		t.Errorf("a weak ETag was used for If-Range: %q", v)
	}
	h.Set("ETag", `"strong"`)
	if v := validator(h); v != `"strong"` {
		t.Errorf("validator = %q, want the strong ETag", v)
	}
}
