package lean

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestH2ManyConcurrentStreams: many requests at once share one
// connection, and each gets its own response, with headers as net/http
// would present them.
func TestH2ManyConcurrentStreams(t *testing.T) {
	srv, conns := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		w.Header().Add("X-Two", "a")
		w.Header().Add("X-Two", "b")
		w.Header().Set("Content-Length", strconv.Itoa(len(r.URL.Path)))
		io.WriteString(w, r.URL.Path)
	})
	c := h2Client(t, nil)
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			path := fmt.Sprintf("/p/%d", i)
			resp, body, err := get(t, c, srv.URL+path)
			switch {
			case err != nil:
				errs <- err
			case resp.Proto != "HTTP/2.0" || resp.Status != 200 || body != path || resp.ContentLength != int64(len(path)):
				errs <- fmt.Errorf("%s: %s %d %q length %d", path, resp.Proto, resp.Status, body, resp.ContentLength)
			case resp.Get("x-path") != path || resp.Get("X-PATH") != path:
				errs <- fmt.Errorf("%s: X-Path %q", path, resp.Get("X-Path"))
			case strings.Join(resp.Values("x-two"), ",") != "a,b":
				errs <- fmt.Errorf("%s: X-Two %q", path, resp.Values("X-Two"))
			case resp.Header()["X-Path"] == nil || resp.Header()["Content-Type"] == nil:
				errs <- fmt.Errorf("%s: header names not canonical: %v", path, resp.Header())
			case resp.Conn.TLS == nil || resp.Conn.Remote == nil:
				errs <- fmt.Errorf("%s: no connection info", path)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d connections for %d requests, 32 at a time", got, n)
	}
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestH2WritesAreCoalesced: requests whose writers meet at the write
// lock go out together, in one write, not one each.
func TestH2WritesAreCoalesced(t *testing.T) {
	srv, _ := h2Server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	var writes atomic.Int64
	c := h2Client(t, func(o *Options) {
		o.DialTarget = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := plainDialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{nc, &writes}, nil
		}
	})
	if _, _, err := get(t, c, srv.URL+"/first"); err != nil {
		t.Fatal(err)
	}
	cc := onlyConn(t, c)
	// Hold the write lock as a writer would, and let ten requests queue
	// behind it.
	cc.lockWrite(nil)
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, body, err := get(t, c, fmt.Sprintf("%s/%d", srv.URL, i)); err != nil || body != "ok" {
				t.Errorf("request %d: %q %v", i, body, err)
			}
		})
	}
	waitFor(t, "the requests to queue for the write lock", func() bool { return cc.waiting.Load() == n+1 })
	before := writes.Load()
	cc.unlockWrite(time.Time{})
	wg.Wait()
	// The requests' HEADERS went in one write; the TLS layer may add a
	// record or two (a ticket, a key update) but not one per request.
	if got := writes.Load() - before; got > 3 {
		t.Errorf("%d writes for %d requests queued together", got, n)
	}
}

// onlyConn returns the client's one HTTP/2 connection.
func onlyConn(t *testing.T, c *Client) *h2conn {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []*h2conn
	for _, h := range c.h2 {
		all = append(all, h.conns...)
	}
	if len(all) != 1 {
		t.Fatalf("%d HTTP/2 connections, want 1", len(all))
	}
	return all[0]
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestH2RequestBodies: request bodies of every size arrive whole,
// larger ones than the server's window included.
func TestH2RequestBodies(t *testing.T) {
	srv, _ := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %s %d %x", n, r.Header.Get("Content-Type"), r.ContentLength, h.Sum(nil)[:8])
	})
	c := h2Client(t, nil)
	for _, size := range []int{0, 1, 65535, 65536, 300 << 10, 3 << 20} {
		body := bytes.Repeat([]byte("abcdefghij"), size/10+1)[:size]
		sum := sha256.Sum256(body)
		resp, got, err := do(t, c, &Request{Method: http.MethodPost, URL: mustURL(t, srv.URL+"/up"), Body: body,
			Header: http.Header{"Content-Type": {"text/x-test"}}})
		want := fmt.Sprintf("%d text/x-test %d %x", size, size, sum[:8])
		if err != nil || resp.Status != 200 || got != want {
			t.Errorf("body of %d bytes: %q, want %q, err %v", size, got, want, err)
		}
	}
}

// TestH2SlowReadersStallOnlyTheirStreams: bodies nobody reads fill their
// own streams' windows and no more, and other streams go on.
func TestH2SlowReadersStallOnlyTheirStreams(t *testing.T) {
	const big = 8 << 20
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	srv, _ := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(big))
		for sent := 0; sent < big; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	const window = 256 << 10
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{StreamWindow: window, ConnWindow: 1 << 20} })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// More unread bodies than the connection's window could hold.
	var stalled []*Response
	for range 6 {
		resp, err := c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/big")})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		stalled = append(stalled, resp)
	}
	within(t, 15*time.Second, "other requests beside stalled streams", func() {
		for i := range 20 {
			if _, body, err := get(t, c, srv.URL+"/small"); err != nil || body != "small" {
				t.Errorf("small request %d: %q %v", i, body, err)
			}
		}
		resp, body, err := get(t, c, srv.URL+"/big")
		if err != nil || len(body) != big || resp.ContentLength != big {
			t.Errorf("a big body read in full: %d bytes, %v", len(body), err)
		}
	})
	// Each unread body holds what its window let the server send, no more.
	for i, resp := range stalled {
		s := resp.Body.(*h2body).s
		waitFor(t, "the stalled stream to fill its window", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.buf.n >= window/2
		})
		s.mu.Lock()
		n, chunks := s.buf.n, len(s.buf.chunks)
		s.mu.Unlock()
		if n > window || chunks > window/maxFrameSize+1 {
			t.Errorf("stalled stream %d buffers %d bytes in %d chunks; its window is %d", i, n, chunks, window)
		}
	}
	// And a stalled body still reads to its end.
	n, err := io.Copy(io.Discard, stalled[0].Body)
	if err != nil || n != big {
		t.Errorf("reading a stalled body later: %d bytes, %v", n, err)
	}
}

// TestH2CancelResetsTheStream: cancelling a request, while it waits for
// the head or reads the body, ends it at once and tells the server (whose
// handler sees its context end), and the connection goes on serving.
func TestH2CancelResetsTheStream(t *testing.T) {
	saw := map[string]chan struct{}{"/hang-head": make(chan struct{}), "/hang-body": make(chan struct{})}
	srv, conns := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		ch, ok := saw[r.URL.Path]
		if !ok {
			io.WriteString(w, "ok")
			return
		}
		if r.URL.Path == "/hang-body" {
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done(): // the client's RST_STREAM
			close(ch)
		case <-time.After(10 * time.Second):
		}
	})
	c := h2Client(t, nil)
	if _, _, err := get(t, c, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/hang-head", "/hang-body"} {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		var err error
		within(t, 10*time.Second, "cancelling "+path, func() {
			var resp *Response
			resp, err = c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL+path)})
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", path, err)
		}
		select {
		case <-saw[path]:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: the server never heard of the cancellation", path)
		}
	}
	if _, body, err := get(t, c, srv.URL+"/"); err != nil || body != "ok" {
		t.Fatalf("after the cancels: %q %v", body, err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections: a cancel must not cost the connection", conns.Load())
	}
}

// TestH2DeadlineCoversTheBody: a body that trickles ends in a timeout at
// the request's deadline.
func TestH2DeadlineCoversTheBody(t *testing.T) {
	srv, _ := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := io.WriteString(w, "x"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	c := h2Client(t, nil)
	resp, err := c.Do(t.Context(), &Request{Method: "GET", URL: mustURL(t, srv.URL), Deadline: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	within(t, 5*time.Second, "reading a trickling body past its deadline", func() { _, err = io.Copy(io.Discard, resp.Body) })
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !isTimeoutErr(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

// TestH2TrailersAndStatuses: trailers are read and dropped, bodiless
// statuses and HEAD have no body, and a header block larger than the cap
// is refused.
func TestH2TrailersAndStatuses(t *testing.T) {
	srv, _ := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/huge":
			for i := range 40 {
				w.Header().Set(fmt.Sprintf("X-Flood-%d", i), strings.Repeat("a", 1000))
			}
		default:
			io.WriteString(w, "hello")
		}
	})
	c := h2Client(t, func(o *Options) { o.MaxHeaderBytes = 16 << 10 })
	if _, body, err := get(t, c, srv.URL+"/trailers"); err != nil || body != "body" {
		t.Errorf("trailers: %q %v", body, err)
	}
	if resp, body, err := get(t, c, srv.URL+"/204"); err != nil || body != "" || resp.Status != 204 || resp.ContentLength != 0 {
		t.Errorf("204: %q %v", body, err)
	}
	if resp, body, err := do(t, c, &Request{Method: http.MethodHead, URL: mustURL(t, srv.URL+"/x")}); err != nil || body != "" || resp.ContentLength != 0 {
		t.Errorf("HEAD: %q %v", body, err)
	}
	if _, _, err := get(t, c, srv.URL+"/huge"); !isProtocol(err) || !contains(err, "exceeded") {
		t.Errorf("huge headers: %v, want a protocol error", err)
	}
	// The connection's HPACK state survived the refusal.
	if _, body, err := get(t, c, srv.URL+"/x"); err != nil || body != "hello" {
		t.Errorf("after huge headers: %q %v", body, err)
	}
}

// TestH2SpreadsOverConnections: with ConnsPerHost 2, requests in flight
// together go half and half over two connections.
func TestH2SpreadsOverConnections(t *testing.T) {
	const n = 8
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	var mu sync.Mutex
	perConn := map[string]int{}
	srv, conns := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perConn[r.RemoteAddr]++
		mu.Unlock()
		arrived.Done()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "ok")
	})
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{ConnsPerHost: 2, Concurrency: n} })
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, _, err := get(t, c, srv.URL); err != nil {
				t.Error(err)
			}
		})
	}
	within(t, 10*time.Second, "all requests reaching the server", arrived.Wait)
	close(release)
	wg.Wait()
	if conns.Load() != 2 {
		t.Errorf("%d connections, want 2", conns.Load())
	}
	for addr, k := range perConn {
		if k != n/2 {
			t.Errorf("connection %s carried %d of %d requests: %v", addr, k, n, perConn)
		}
	}
}

// TestH2FirstRequestsShareOneDial: requests that start together to a
// host not met before wait for one dial rather than each making its own.
func TestH2FirstRequestsShareOneDial(t *testing.T) {
	srv, conns := h2Server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{Concurrency: 16} })
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			<-start
			if _, _, err := get(t, c, srv.URL); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if conns.Load() != 1 {
		t.Errorf("%d connections for 16 requests started together", conns.Load())
	}
}

// TestH2HostThatChoosesHTTP1: a host that answers ALPN with http/1.1 is
// remembered: its requests dial HTTP/1.1 connections without waiting on
// one another.
func TestH2HostThatChoosesHTTP1(t *testing.T) {
	srv := tlsH1Server(t)
	c := h2Client(t, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if resp, body, err := get(t, c, srv); err != nil || body != "h1" || resp.Proto != "HTTP/1.1" {
				t.Errorf("%q %v", body, err)
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.h2 {
		if !h.h1 || len(h.conns) != 0 {
			t.Errorf("host remembered as h1=%v with %d HTTP/2 connections", h.h1, len(h.conns))
		}
	}
}

// tlsH1Server starts an HTTPS server that speaks HTTP/1.1 only.
func tlsH1Server(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "h1") }))
	srv.EnableHTTP2 = false
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestH2WriteLockWaitersGiveUpAlone: requests that end (cancelled, or at
// their deadline) while another writer holds the write lock fail alone;
// the connection, and the writer, go on.
func TestH2WriteLockWaitersGiveUpAlone(t *testing.T) {
	srv, conns := h2Server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	c := h2Client(t, nil)
	if _, _, err := get(t, c, srv.URL+"/first"); err != nil {
		t.Fatal(err)
	}
	cc := onlyConn(t, c)
	cc.lockWrite(nil) // as a writer sending a long body would
	_, _, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/deadline"), Deadline: time.Now().Add(50 * time.Millisecond)})
	if !isTimeoutErr(err) {
		t.Errorf("waiting past the deadline: %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/cancelled")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v, want context.Canceled", err)
	}
	cc.unlockWrite(time.Time{})
	if _, body, err := get(t, c, srv.URL+"/after"); err != nil || body != "ok" {
		t.Errorf("after: %q %v", body, err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections: a request that gave up waiting cost the connection", conns.Load())
	}
}

// TestH2LateWriterSparesTheConnection: a request whose deadline passes
// as it writes its HEADERS fails alone; the write, which would break the
// connection if cut short, goes out, and the other streams go on.
func TestH2LateWriterSparesTheConnection(t *testing.T) {
	seen := make(chan struct{}, 1)
	srv, conns := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			seen <- struct{}{}
			time.Sleep(200 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	})
	c := h2Client(t, nil)
	done := make(chan error, 1)
	go func() {
		_, body, err := get(t, c, srv.URL+"/slow")
		if err == nil && body != "ok" {
			err = fmt.Errorf("body %q", body)
		}
		done <- err
	}()
	<-seen
	_, _, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/late"), Deadline: time.Now().Add(-time.Millisecond)})
	if !isTimeoutErr(err) {
		t.Errorf("past its deadline: %v, want a timeout", err)
	}
	if err := <-done; err != nil {
		t.Errorf("the other stream: %v", err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections: a late request cost the connection", conns.Load())
	}
}
