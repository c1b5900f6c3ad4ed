package fetch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha1" //nolint:gosec // the digests under test are SHA-1
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/record"
)

// rawServer answers each request with the bytes canned for its path,
// exactly, and closes the connection after those marked so. Requests it
// received are sent on got.
type canned struct {
	resp  string
	close bool
}

func rawServer(t *testing.T, answers map[string]canned) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					nc.SetDeadline(time.Now().Add(5 * time.Second))
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					a, ok := answers[req.URL.Path]
					if !ok {
						a = canned{resp: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"}
					}
					if _, err := io.WriteString(nc, a.resp); err != nil || a.close {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func captureOptions(t *testing.T) Options {
	o := testOptions()
	o.Capture = &capture.Spooler{Dir: t.TempDir(), MemLimit: 64}
	o.DiscardBody = true // as in a run without transforms
	o.Retries = 0
	return o
}

// stored returns the body an exchange archives: from its spool, or from
// the response record the worker compressed already (Prepare).
func stored(t *testing.T, ex *capture.Exchange) string {
	t.Helper()
	if !ex.Prepared() {
		var b bytes.Buffer
		if _, err := ex.Body.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	zr, err := gzip.NewReader(bytes.NewReader(ex.Records[ex.ReqLen:]))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(rec), "\r\n\r\n")
	block = strings.TrimSuffix(block, "\r\n\r\n")
	if !strings.HasPrefix(block, string(ex.Head)) {
		t.Fatalf("the response record's block does not start with the head: %q", block)
	}
	return block[len(ex.Head):]
}

func onlyExchange(t *testing.T, r *record.Record) *capture.Exchange {
	t.Helper()
	if r.Capture == nil || len(r.Capture.Exchanges) != 1 {
		t.Fatalf("want one exchange captured, got %+v (record error %v)", r.Capture, r.Err)
	}
	ex := r.Capture.Exchanges[0]
	if !ex.Done() {
		t.Fatal("the exchange was left open")
	}
	return ex
}

// TestCaptureKeepsTheBytesAsExchanged: with the lean engine the archive
// holds the request as written, the head as read and the body in its
// chunked framing; the payload digest is over the body without it. The
// net/http engine's are rebuilt, without the framing.
func TestCaptureKeepsTheBytesAsExchanged(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-odd-Case:  spaced \r\nContent-Type: text/plain\r\n\r\n"
	framed := "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
	base := rawServer(t, map[string]canned{"/chunked": {resp: head + framed}})
	c := newClient(t, captureOptions(t))
	r := fetchOne(t, c, base+"/chunked?q=1#frag")
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	ex := onlyExchange(t, r)
	if ex.URI != base+"/chunked?q=1" {
		t.Errorf("URI %q: the fragment is never sent, so not archived", ex.URI)
	}
	if ex.IP != "127.0.0.1" {
		t.Errorf("IP %q", ex.IP)
	}
	if !strings.HasPrefix(string(ex.Request), "GET /chunked?q=1 HTTP/1.1\r\nHost: 127.0.0.1:") || !strings.HasSuffix(string(ex.Request), "\r\n\r\n") ||
		!strings.Contains(string(ex.Request), "User-Agent: trawl/test\r\n") {
		t.Errorf("request %q", ex.Request)
	}
	payload := "hello, world"
	if ex.PayloadDigest != sha1.Sum([]byte(payload)) || ex.PayloadLen != int64(len(payload)) {
		t.Error("the payload digest is not over the de-chunked body")
	}
	body := stored(t, ex)
	if testEngine == EngineLean {
		if ex.Reconstructed || string(ex.Head) != head || body != framed {
			t.Errorf("lean: reconstructed %v, head %q, body %q: want the bytes as received", ex.Reconstructed, ex.Head, body)
		}
	} else {
		if !ex.Reconstructed || body != payload || strings.Contains(string(ex.Head), "chunked") ||
			!strings.HasPrefix(string(ex.Head), "HTTP/1.1 200 OK\r\n") || !strings.Contains(string(ex.Head), "X-Odd-Case: spaced\r\n") {
			t.Errorf("net: reconstructed %v, head %q, body %q", ex.Reconstructed, ex.Head, body)
		}
	}
	if ex.BlockDigest != sha1.Sum([]byte(string(ex.Head)+body)) {
		t.Error("the block digest is not over the head and the body as stored")
	}
	if ex.Truncated != "" {
		t.Errorf("truncated %q for a whole body", ex.Truncated)
	}
}

// TestCaptureStoresContentEncodedBodiesWholePastMaxBody: the archive gets
// the body as sent (gzip), whole, even past --max-body, which only caps
// what is kept in memory.
func TestCaptureStoresContentEncodedBodiesWholePastMaxBody(t *testing.T) {
	// Hex of a hash chain: gzip shrinks it by half only, so that the
	// decoder has read a small part of it when --max-body is reached.
	var text strings.Builder
	for sum := sha1.Sum(nil); text.Len() < 200<<10; sum = sha1.Sum(sum[:]) {
		fmt.Fprintf(&text, "%x\n", sum)
	}
	plain := text.String()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(plain))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", fmt.Sprint(gz.Len())) // not chunked: the body is the payload
		w.Write(gz.Bytes())
	}))
	defer srv.Close()
	o := captureOptions(t)
	o.MaxBody = 100
	c := newClient(t, o)
	r := fetchOne(t, c, srv.URL+"/gz")
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	ex := onlyExchange(t, r)
	if got := stored(t, ex); got != gz.String() {
		t.Fatalf("archived %d bytes, want the %d gzip bytes sent", len(got), gz.Len())
	}
	if ex.PayloadDigest != sha1.Sum(gz.Bytes()) {
		t.Error("the payload digest is not over the content-encoded body")
	}
	if !r.Truncated || r.Bytes != 100 || r.WireBytes != int64(gz.Len()) {
		t.Errorf("record: truncated %v bytes %d wire %d; want true, 100, %d", r.Truncated, r.Bytes, r.WireBytes, gz.Len())
	}
}

// TestCaptureRedirectHops: each hop is an exchange of its own, in order,
// its body kept.
func TestCaptureRedirectHops(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/b")
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, "to b")
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/c", http.StatusMovedPermanently) })
	mux.HandleFunc("/c", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "final") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(t, captureOptions(t))
	r := fetchOne(t, c, srv.URL+"/a")
	if r.Err != nil || r.Capture == nil || len(r.Capture.Exchanges) != 3 {
		t.Fatalf("want 3 exchanges, got %+v (%v)", r.Capture, r.Err)
	}
	for i, want := range []struct{ path, status, body string }{{"/a", "302", "to b"}, {"/b", "301", ""}, {"/c", "200", "final"}} {
		ex := r.Capture.Exchanges[i]
		if ex.URI != srv.URL+want.path || !strings.HasPrefix(string(ex.Head), "HTTP/1.1 "+want.status+" ") {
			t.Errorf("hop %d: %s %q", i, ex.URI, ex.Head)
		}
		if body := stored(t, ex); want.body != "" && body != want.body {
			t.Errorf("hop %d body %q, want %q", i, body, want.body)
		}
		if !ex.Done() || ex.Truncated != "" {
			t.Errorf("hop %d: done %v truncated %q", i, ex.Done(), ex.Truncated)
		}
	}
}

// TestCaptureOfFailures: a body cut by the connection is archived as far
// as it came, truncated by disconnect; one longer than the archive's cap
// is cut there; a request that got no response leaves no exchange; a
// retry replaces the failed attempt's exchanges.
func TestCaptureOfFailures(t *testing.T) {
	base := rawServer(t, map[string]canned{
		"/short": {resp: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", close: true},
		"/long":  {resp: "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz"},
		"/404":   {resp: "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone"},
	})
	o := captureOptions(t)
	c := newClient(t, o)
	r := fetchOne(t, c, base+"/short")
	if r.ErrKind != record.KindBody {
		t.Fatalf("error kind %q, want body", r.ErrKind)
	}
	ex := onlyExchange(t, r)
	if got := stored(t, ex); got != "only part" || ex.Truncated != capture.TruncDisconnect {
		t.Errorf("archived %q truncated %q; want the part received, disconnect", got, ex.Truncated)
	}

	r = fetchOne(t, c, base+"/404")
	if ex := onlyExchange(t, r); r.ErrKind != record.KindHTTPStatus || stored(t, ex) != "gone" {
		t.Errorf("a 404 is archived like any response: %q %v", r.ErrKind, r.Capture)
	}

	o.Capture = &capture.Spooler{Dir: t.TempDir(), MaxBody: 10}
	c = newClient(t, o)
	r = fetchOne(t, c, base+"/long")
	ex = onlyExchange(t, r)
	if got := stored(t, ex); got != "abcdefghij" || ex.Truncated != capture.TruncLength || r.Err != nil {
		t.Errorf("archived %q truncated %q err %v; want 10 bytes, length, no error", got, ex.Truncated, r.Err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	r = fetchOne(t, c, dead)
	if r.Err == nil || r.Capture == nil || len(r.Capture.Exchanges) != 0 {
		t.Errorf("a request without a response must leave no exchange: %v %+v", r.Err, r.Capture)
	}

	srv, hits := flaky(1, http.StatusServiceUnavailable, nil)
	defer srv.Close()
	o = captureOptions(t)
	o.Retries = 2
	c = newClient(t, o)
	r = fetchOne(t, c, srv.URL)
	if hits.Load() != 2 || r.Err != nil {
		t.Fatalf("hits %d err %v", hits.Load(), r.Err)
	}
	if ex := onlyExchange(t, r); !strings.HasPrefix(string(ex.Head), "HTTP/1.1 200") {
		t.Errorf("the archive should hold the last attempt only, got %q", ex.Head)
	}
}

func TestCaptureHEAD(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
	}))
	defer srv.Close()
	o := captureOptions(t)
	o.Method = http.MethodHead
	c := newClient(t, o)
	r := fetchOne(t, c, srv.URL)
	ex := onlyExchange(t, r)
	if !strings.HasPrefix(string(ex.Request), "HEAD / HTTP/1.1\r\n") || ex.Body.Len() != 0 || ex.Truncated != "" {
		t.Errorf("HEAD: request %q, body %d, truncated %q", ex.Request, ex.Body.Len(), ex.Truncated)
	}
}
