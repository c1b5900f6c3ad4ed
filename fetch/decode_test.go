package fetch

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func compress(t testing.TB, enc string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// encodingServer answers /ENC with a body compressed with ENC, and records
// what the client asked for.
func encodingServer(t *testing.T, body []byte, asked *string) *httptest.Server {
	encoded := map[string][]byte{}
	for _, enc := range []string{"gzip", "br", "zstd"} {
		encoded[enc] = compress(t, enc, body)
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked != nil {
			*asked = r.Header.Get("Accept-Encoding")
		}
		enc := strings.TrimPrefix(r.URL.Path, "/")
		if data, ok := encoded[enc]; ok {
			w.Header().Set("Content-Encoding", enc)
			w.Write(data)
			return
		}
		w.Header().Set("Content-Encoding", "x-unknown")
		w.Write([]byte("as sent"))
	}))
}

func TestCompressedBodiesAreDecoded(t *testing.T) {
	body := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 500))
	var asked string
	srv := encodingServer(t, body, &asked)
	defer srv.Close()
	c := newClient(t, testOptions())
	for _, enc := range []string{"gzip", "br", "zstd"} {
		r := fetchOne(t, c, srv.URL+"/"+enc)
		if r.Err != nil || !bytes.Equal(r.Body, body) || r.Bytes != int64(len(body)) {
			t.Errorf("%s: err %v, %d bytes", enc, r.Err, r.Bytes)
		}
		if want := int64(len(compress(t, enc, body))); r.WireBytes != want || r.WireBytes >= r.Bytes {
			t.Errorf("%s: wire_bytes %d, want %d", enc, r.WireBytes, want)
		}
	}
	if asked != "gzip, br, zstd" {
		t.Errorf("Accept-Encoding sent: %q", asked)
	}
	if r := fetchOne(t, c, srv.URL+"/other"); r.Err != nil || string(r.Body) != "as sent" {
		t.Errorf("unknown encoding: %q, %v", r.Body, r.Err)
	}
}

func TestRawEncodingKeepsBodyAsSent(t *testing.T) {
	body := []byte(strings.Repeat("abc", 1000))
	srv := encodingServer(t, body, nil)
	defer srv.Close()
	o := testOptions()
	o.RawEncoding = true
	r := fetchOne(t, newClient(t, o), srv.URL+"/gzip")
	if r.Err != nil || !bytes.Equal(r.Body, compress(t, "gzip", body)) || r.Bytes != r.WireBytes {
		t.Fatalf("raw: %d bytes, wire %d, err %v", r.Bytes, r.WireBytes, r.Err)
	}
}

// TestDecompressionBombIsCapped serves about 1 MB of gzip that inflates to
// 1 GiB: the cap applies to decoded bytes, so reading stops early. (The
// bomb is 1024 copies of one gzip member of 1 MiB of zeros; gzip readers
// decode concatenated members as one stream.)
func TestDecompressionBombIsCapped(t *testing.T) {
	member := compress(t, "gzip", make([]byte, 1<<20))
	bomb := bytes.NewBuffer(bytes.Repeat(member, 1024))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	}))
	defer srv.Close()
	o := testOptions()
	o.MaxBody = 1 << 20
	start := time.Now()
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Err != nil || r.Bytes != 1<<20 || !r.Truncated || r.WireBytes > int64(bomb.Len()) {
		t.Fatalf("bomb: bytes %d wire %d truncated %v err %v", r.Bytes, r.WireBytes, r.Truncated, r.Err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("reading a capped bomb took %s", el)
	}
	t.Logf("%d KiB of gzip for 1 GiB: read %d decoded bytes from %d wire bytes in %s", bomb.Len()>>10, r.Bytes, r.WireBytes, time.Since(start))
}

func TestCorruptCompressedBodyIsABodyError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write([]byte("this is not gzip at all"))
	}))
	defer srv.Close()
	o := testOptions()
	o.Retries = 0
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.ErrKind != "body" || !strings.Contains(r.ErrorText(), "gzip") {
		t.Fatalf("kind %s err %v", r.ErrKind, r.Err)
	}
}
