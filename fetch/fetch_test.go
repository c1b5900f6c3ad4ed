package fetch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// testOptions are the defaults with delays shrunk so tests run fast.
func testOptions() Options {
	o := Defaults()
	o.Engine = testEngine
	o.RetryDelay = time.Millisecond
	o.MaxRetryWait = 50 * time.Millisecond
	o.Timeout = 5 * time.Second
	o.UserAgent = "trawl/test"
	return o
}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	t.Logf("the %s engine", o.Engine)
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func recordFor(t *testing.T, raw string) *record.Record {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &record.Record{URL: raw, Target: u}
}

func fetchOne(t *testing.T, c *Client, raw string) *record.Record {
	t.Helper()
	r := recordFor(t, raw)
	c.Fetch(t.Context(), r)
	return r
}

func TestFetchSuccessFollowsRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start":
			http.Redirect(w, r, "/end", http.StatusFound)
		case "/end":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<title>hi</title> ua=%s accept=%s x=%s", r.UserAgent(), r.Header.Get("Accept"), r.Header.Get("X-Test"))
		}
	}))
	defer srv.Close()
	o := testOptions()
	o.Header = http.Header{"X-Test": {"yes"}}
	r := fetchOne(t, newClient(t, o), srv.URL+"/start")
	if r.Err != nil {
		t.Fatalf("unexpected error: %v (%s)", r.Err, r.ErrKind)
	}
	want := "<title>hi</title> ua=trawl/test accept=*/* x=yes"
	if string(r.Body) != want || r.Bytes != int64(len(want)) {
		t.Errorf("body = %q (%d bytes), want %q", r.Body, r.Bytes, want)
	}
	if r.Status != 200 || r.FinalURL != srv.URL+"/end" || r.Proto != "HTTP/1.1" ||
		r.ContentType != "text/html; charset=utf-8" || r.Attempts != 1 || r.Truncated {
		t.Errorf("unexpected record: %+v", r)
	}
	if r.Duration <= 0 {
		t.Errorf("duration not set")
	}
}

func TestHeaderOverridesUserAgentAndHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.UserAgent(), r.Host)
	}))
	defer srv.Close()
	o := testOptions()
	o.Header = http.Header{"User-Agent": {"custom/1"}, "Host": {"example.test"}}
	r := fetchOne(t, newClient(t, o), srv.URL)
	if got := string(r.Body); got != "custom/1|example.test" {
		t.Fatalf("server saw %q", got)
	}
}

func TestBodyCapTruncates(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		max       int64
		wantBytes int64
		truncated bool
	}{
		{100, 100, true},
		{999, 999, true},
		{1000, 1000, false},
		{5000, 1000, false},
		{0, 0, true},
	} {
		o := testOptions()
		o.MaxBody = tc.max
		r := fetchOne(t, newClient(t, o), srv.URL)
		if r.Err != nil || r.Bytes != tc.wantBytes || int64(len(r.Body)) != tc.wantBytes || r.Truncated != tc.truncated {
			t.Errorf("max %d: bytes=%d len=%d truncated=%v err=%v; want %d, %v",
				tc.max, r.Bytes, len(r.Body), r.Truncated, r.Err, tc.wantBytes, tc.truncated)
		}
	}
}

func TestHEADHasNoBody(t *testing.T) {
	var method atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method.Store(r.Method)
		w.Header().Set("Content-Length", "5")
	}))
	defer srv.Close()
	o := testOptions()
	o.Method = http.MethodHead
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Err != nil || r.Bytes != 0 || method.Load() != "HEAD" {
		t.Fatalf("HEAD: err=%v bytes=%d method=%v", r.Err, r.Bytes, method.Load())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, m := range []string{"GE T", "GET\r\n", "A/B"} {
		o := testOptions()
		o.Method = m
		if _, err := New(o); err == nil {
			t.Errorf("method %q accepted", m)
		}
	}
	o := testOptions()
	o.Timeout = 0
	if _, err := New(o); err == nil {
		t.Error("zero timeout accepted")
	}
}

// TestBodiesAndUnsafeRetries sends a body with a method that is not
// idempotent: a 503 is not retried unless RetryUnsafe, a retry sends the
// same body again, and a record's own body and headers replace the run's.
func TestBodiesAndUnsafeRetries(t *testing.T) {
	var n atomic.Int64
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+string(b)+" "+r.Header.Get("X-Row"))
		mu.Unlock()
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	o := testOptions()
	o.Method, o.Body = "POST", []byte("run body")
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Status != 503 || r.Attempts != 1 || n.Load() != 1 {
		t.Fatalf("POST without RetryUnsafe: status %d after %d attempts; want one 503", r.Status, r.Attempts)
	}
	n.Store(0)
	o.RetryUnsafe = true
	c := newClient(t, o)
	r = recordFor(t, srv.URL)
	r.Row = &record.Row{Body: []byte("row body"), Header: http.Header{"X-Row": {"7"}}}
	c.Fetch(t.Context(), r)
	if r.Err != nil || r.Status != 200 || r.Attempts != 2 {
		t.Fatalf("POST with RetryUnsafe: status %d after %d attempts, err %v; want 200 after 2", r.Status, r.Attempts, r.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POST run body ", "POST row body 7", "POST row body 7"}
	if !slices.Equal(seen, want) {
		t.Errorf("server saw %q, want %q", seen, want)
	}
}

// flaky answers with status `fail` for the first `failures` requests, then 200.
func flaky(failures int64, fail int, header http.Header) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= failures {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(fail)
			io.WriteString(w, "try later")
			return
		}
		io.WriteString(w, "ok")
	}))
	return srv, &n
}

func TestRetriesUntilSuccess(t *testing.T) {
	srv, n := flaky(2, http.StatusServiceUnavailable, nil)
	defer srv.Close()
	r := fetchOne(t, newClient(t, testOptions()), srv.URL)
	if r.Err != nil || r.Status != 200 || string(r.Body) != "ok" {
		t.Fatalf("want success after retries, got %+v", r)
	}
	if r.Attempts != 3 || n.Load() != 3 {
		t.Fatalf("attempts = %d, server saw %d requests; want 3 and 3", r.Attempts, n.Load())
	}
}

func TestRetryStormEndsInRecordedFailure(t *testing.T) {
	srv, n := flaky(1000, http.StatusServiceUnavailable, nil)
	defer srv.Close()
	o := testOptions()
	o.Retries = 3
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.ErrKind != record.KindHTTPStatus || r.Status != 503 || r.Attempts != 4 || n.Load() != 4 {
		t.Fatalf("kind=%s status=%d attempts=%d requests=%d err=%v; want http_status 503 after 4",
			r.ErrKind, r.Status, r.Attempts, n.Load(), r.Err)
	}
	if !strings.Contains(r.Err.Error(), "503") {
		t.Errorf("error %q does not name the status", r.Err)
	}
}

func TestNoRetryOnPermanentStatus(t *testing.T) {
	srv, n := flaky(1000, http.StatusNotFound, nil)
	defer srv.Close()
	r := fetchOne(t, newClient(t, testOptions()), srv.URL)
	if r.ErrKind != record.KindHTTPStatus || r.Status != 404 || r.Attempts != 1 || n.Load() != 1 {
		t.Fatalf("kind=%s status=%d attempts=%d requests=%d", r.ErrKind, r.Status, r.Attempts, n.Load())
	}
	if string(r.Body) != "try later" {
		t.Errorf("body of the error page not kept: %q", r.Body)
	}
}

func TestAcceptWidensSuccess(t *testing.T) {
	srv, _ := flaky(1000, http.StatusNotFound, nil)
	defer srv.Close()
	o := testOptions()
	o.Accept, _ = ParseStatusSet("200-299,404")
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil {
		t.Fatalf("404 accepted but got %v", r.Err)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv, n := flaky(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	defer srv.Close()
	o := testOptions()
	o.MaxRetryWait = 5 * time.Second
	start := time.Now()
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Err != nil || n.Load() != 2 {
		t.Fatalf("err=%v requests=%d", r.Err, n.Load())
	}
	// A lower bound only: the wait must not be shorter than the server asked.
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retried after %s, server asked for 1s", el)
	}
}

func TestRetryAfterBeyondMaxStopsRetrying(t *testing.T) {
	srv, n := flaky(1000, http.StatusServiceUnavailable, http.Header{"Retry-After": {"315360000"}})
	defer srv.Close()
	r := fetchOne(t, newClient(t, testOptions()), srv.URL)
	if r.Attempts != 1 || n.Load() != 1 || r.ErrKind != record.KindHTTPStatus {
		t.Fatalf("attempts=%d requests=%d kind=%s", r.Attempts, n.Load(), r.ErrKind)
	}
	if !strings.Contains(r.Err.Error(), "--max-retry-wait") {
		t.Errorf("error %q does not explain why retrying stopped", r.Err)
	}
}

func TestTimeoutPerAttempt(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		<-r.Context().Done()
	}))
	defer srv.Close()
	o := testOptions()
	o.Timeout = 50 * time.Millisecond
	o.Retries = 1
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.ErrKind != record.KindTimeout || r.Attempts != 2 || n.Load() != 2 {
		t.Fatalf("kind=%s attempts=%d requests=%d err=%v", r.ErrKind, r.Attempts, n.Load(), r.Err)
	}
	if !strings.Contains(r.Err.Error(), "--timeout") {
		t.Errorf("error %q does not name the setting", r.Err)
	}
}

func TestTimeoutCoversSlowBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	o := testOptions()
	o.Timeout = 50 * time.Millisecond
	o.Retries = 0
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.ErrKind != record.KindTimeout || r.Status != 200 {
		t.Fatalf("kind=%s status=%d err=%v", r.ErrKind, r.Status, r.Err)
	}
}

// hijacker runs fn on the raw connection of every request.
func hijacker(fn func(net.Conn)) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		fn(conn)
	}))
}

func TestConnectionResetIsRetriedThenRecorded(t *testing.T) {
	var n atomic.Int64
	srv := hijacker(func(c net.Conn) {
		n.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // send RST instead of FIN
		}
		c.Close()
	})
	defer srv.Close()
	r := fetchOne(t, newClient(t, testOptions()), srv.URL)
	if r.ErrKind != record.KindConnect || r.Attempts != 3 || n.Load() != 3 {
		t.Fatalf("kind=%s attempts=%d requests=%d err=%v", r.ErrKind, r.Attempts, n.Load(), r.Err)
	}
}

func TestResetMidBodyIsBodyError(t *testing.T) {
	srv := hijacker(func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little")
		c.Close()
	})
	defer srv.Close()
	r := fetchOne(t, newClient(t, testOptions()), srv.URL)
	if r.ErrKind != record.KindBody || r.Attempts != 3 {
		t.Fatalf("kind=%s attempts=%d err=%v", r.ErrKind, r.Attempts, r.Err)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := fetchOne(t, newClient(t, testOptions()), "http://"+addr+"/")
	if r.ErrKind != record.KindConnect || r.Attempts != 3 {
		t.Fatalf("kind=%s attempts=%d err=%v", r.ErrKind, r.Attempts, r.Err)
	}
	if strings.Contains(r.Err.Error(), `Get "`) {
		t.Errorf("error repeats the URL: %q", r.Err)
	}
}

func TestRedirectLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/ftp":
			http.Redirect(w, r, "ftp://example.test/file", http.StatusFound)
		case "/file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusMovedPermanently)
		}
	}))
	defer srv.Close()
	o := testOptions()
	o.MaxRedirects = 3
	c := newClient(t, o)
	if r := fetchOne(t, c, srv.URL+"/loop"); r.ErrKind != record.KindTooManyRedirects || r.Attempts != 1 {
		t.Errorf("loop: kind=%s attempts=%d err=%v", r.ErrKind, r.Attempts, r.Err)
	}
	for _, p := range []string{"/ftp", "/file"} {
		r := fetchOne(t, c, srv.URL+p)
		if r.ErrKind != record.KindInvalidURL || !strings.Contains(r.ErrorText(), "only http and https") {
			t.Errorf("%s: kind=%s err=%v", p, r.ErrKind, r.Err)
		}
	}
	o.MaxRedirects = 0
	if r := fetchOne(t, newClient(t, o), srv.URL+"/loop"); r.ErrKind != record.KindTooManyRedirects {
		t.Errorf("max 0: kind=%s", r.ErrKind)
	}
}

func TestCancelledContextGivesCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the run is stopped while this request is in flight
		<-r.Context().Done()
	}))
	defer srv.Close()
	r := recordFor(t, srv.URL)
	newClient(t, testOptions()).Fetch(ctx, r)
	if r.ErrKind != record.KindCanceled || r.Attempts != 1 {
		t.Fatalf("kind=%s attempts=%d err=%v", r.ErrKind, r.Attempts, r.Err)
	}
}

func TestInvalidRecordsAreLeftAlone(t *testing.T) {
	r := &record.Record{URL: "ftp://x"}
	r.Fail(record.KindInvalidURL, errors.New("bad"))
	newClient(t, testOptions()).Fetch(t.Context(), r)
	if r.Attempts != 0 || r.ErrKind != record.KindInvalidURL {
		t.Fatalf("fetched an invalid record: %+v", r)
	}
}

// TestConnectionsAreReused checks the transport tuning: with 16 workers on
// one host, connections are kept and reused instead of reopened per request.
// A connection goes back to the pool a moment after its body is read, so a
// worker may dial a spare one now and then; the bound allows for that while
// still failing with Go's default of 2 idle connections per host, which
// opens a new connection for most requests.
func TestConnectionsAreReused(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	const workers, perWorker = 16, 25
	o := testOptions()
	o.Concurrency = workers
	c := newClient(t, o)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if r := fetchOne(t, c, srv.URL); r.Err != nil {
					t.Error(r.Err)
				}
			}
		})
	}
	wg.Wait()
	if n := opened.Load(); n > 2*workers {
		t.Fatalf("%d connections opened for %d requests by %d workers; want at most %d", n, workers*perWorker, workers, 2*workers)
	}
}

func TestHTTP2WhenOffered(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	o := testOptions()
	o.RootCAs = x509.NewCertPool()
	o.RootCAs.AddCert(srv.Certificate())
	r := fetchOne(t, newClient(t, o), srv.URL)
	if r.Err != nil || r.Proto != "HTTP/2.0" {
		t.Fatalf("proto=%q err=%v", r.Proto, r.Err)
	}
}

func TestUntrustedCertificateIsTLSError(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failure is expected
	srv.StartTLS()
	defer srv.Close()
	r := fetchOne(t, newClient(t, testOptions()), srv.URL)
	if r.ErrKind != record.KindTLS || r.Attempts != 1 {
		t.Fatalf("kind=%s attempts=%d err=%v", r.ErrKind, r.Attempts, r.Err)
	}
}

func TestClassify(t *testing.T) {
	live := context.Background()
	dead, cancel := context.WithCancel(live)
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want record.Kind
	}{
		{live, &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, record.KindDNS},
		{live, &url.Error{Op: "Get", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, record.KindConnect},
		{live, context.DeadlineExceeded, record.KindTimeout},
		{live, &StatusError{Code: 500}, record.KindHTTPStatus},
		{live, &BodyError{Err: io.ErrUnexpectedEOF}, record.KindBody},
		{live, &TooManyRedirectsError{Max: 1}, record.KindTooManyRedirects},
		{live, &BadRedirectError{Location: "ftp://x"}, record.KindInvalidURL},
		{dead, context.DeadlineExceeded, record.KindCanceled},
	} {
		if got := classify(tc.ctx, tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
