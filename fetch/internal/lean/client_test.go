package lean

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var plainDialer = &net.Dialer{Timeout: 5 * time.Second}

func newTestClient(t *testing.T, mod func(*Options)) *Client {
	t.Helper()
	o := Options{
		DialTarget:     plainDialer.DialContext,
		DialProxy:      plainDialer.DialContext,
		TLS:            &tls.Config{InsecureSkipVerify: true},
		MaxIdlePerHost: 8,
	}
	if mod != nil {
		mod(&o)
	}
	c := New(o)
	t.Cleanup(c.CloseIdle)
	return c
}

func get(t *testing.T, c *Client, raw string) (*Response, string, error) {
	t.Helper()
	return do(t, c, &Request{Method: http.MethodGet, URL: mustURL(t, raw)})
}

func do(t *testing.T, c *Client, req *Request) (*Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// connCounter counts the connections a server accepted.
func connCounter(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func TestGetReusesConnections(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Header().Add("X-Two", "a")
		w.Header().Add("X-Two", "b")
		fmt.Fprintf(w, "host=%s ua=%s", r.Host, r.Header.Get("User-Agent"))
	}))
	conns := connCounter(srv)
	srv.Start()
	defer srv.Close()
	c := newTestClient(t, nil)
	for i := range 5 {
		req := &Request{Method: "GET", URL: mustURL(t, srv.URL+"/p?q=1"), Header: http.Header{"User-Agent": {"t"}}}
		resp, body, err := do(t, c, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 || resp.Proto != "HTTP/1.1" || resp.Get("x-path") != "/p?q=1" || body != "host="+srv.Listener.Addr().String()+" ua=t" {
			t.Fatalf("request %d: %d %s %q %q", i, resp.Status, resp.Proto, resp.Get("X-Path"), body)
		}
		if got := resp.Values("X-Two"); len(got) != 2 || got[1] != "b" {
			t.Fatalf("values %v", got)
		}
		if h := resp.Header(); h.Get("X-Path") != "/p?q=1" {
			t.Fatalf("header map %v", h)
		}
		if resp.Conn.Reused != (i > 0) {
			t.Fatalf("request %d: reused %v", i, resp.Conn.Reused)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests", n)
	}
}

func TestBodyFramings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-T")
			for i := range 5 {
				fmt.Fprintf(w, "part%d,", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-T", "done")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/notmod":
			w.Header().Set("Content-Length", "100") // a 304 carries no body whatever it says
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "hello")
		}
	}))
	defer srv.Close()
	c := newTestClient(t, nil)
	for path, want := range map[string]string{"/chunked": "part0,part1,part2,part3,part4,", "/empty": "", "/notmod": "", "/x": "hello"} {
		for range 2 { // twice: the connection must be clean for the next request
			_, body, err := get(t, c, srv.URL+path)
			if err != nil || body != want {
				t.Fatalf("%s: %q, %v", path, body, err)
			}
		}
	}
	resp, body, err := do(t, c, &Request{Method: http.MethodHead, URL: mustURL(t, srv.URL+"/x")})
	if err != nil || body != "" || resp.ContentLength != 0 {
		t.Fatalf("HEAD: %q %v", body, err)
	}
	if _, body, err := get(t, c, srv.URL+"/x"); err != nil || body != "hello" {
		t.Fatalf("after HEAD: %q %v", body, err)
	}
}

// rawServer answers every connection with the bytes reply returns for the
// request it read, then closes.
func rawServer(t *testing.T, reply func(req string) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				var req strings.Builder
				for {
					line, err := br.ReadString('\n')
					req.WriteString(line)
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, reply(req.String()))
			})
		}
	})
	return "http://" + l.Addr().String()
}

func TestMalformedResponses(t *testing.T) {
	for name, tc := range map[string]struct {
		reply    string
		protocol bool  // the head is refused
		bodyErr  error // the body read fails so
		want     string
	}{
		"bad status line":    {reply: "HTTP/1.1 OK\r\n\r\n", protocol: true},
		"not http":           {reply: "SSH-2.0-OpenSSH\r\n", protocol: true},
		"bad header":         {reply: "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", protocol: true},
		"space before colon": {reply: "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", protocol: true},
		"two lengths":        {reply: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", protocol: true},
		"huge header":        {reply: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", protocol: true},
		"folded header":      {reply: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", protocol: true},
		"cut in headers":     {reply: "HTTP/1.1 200 OK\r\nX: a", protocol: true},
		"short body":         {reply: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", bodyErr: io.ErrUnexpectedEOF},
		"bad chunk size":     {reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc", bodyErr: errBadChunked},
		"cut chunked":        {reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", bodyErr: io.ErrUnexpectedEOF},
		"http/1.0 to close":  {reply: "HTTP/1.0 200 OK\r\n\r\nall of it", want: "all of it"},
		"repeated length":    {reply: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", want: "ok"},
		"interim response":   {reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", want: "ok"},
		"no reason phrase":   {reply: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", want: "ok"},
	} {
		t.Run(name, func(t *testing.T) {
			u := rawServer(t, func(string) string { return tc.reply })
			c := newTestClient(t, nil)
			_, body, err := get(t, c, u+"/")
			var pe *ProtocolError
			switch {
			case tc.protocol:
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a ProtocolError", err)
				}
			case tc.bodyErr != nil:
				if !errors.Is(err, tc.bodyErr) {
					t.Fatalf("err = %v, want %v", err, tc.bodyErr)
				}
			default:
				if err != nil || body != tc.want {
					t.Fatalf("%q, %v", body, err)
				}
			}
		})
	}
}

// TestStaleIdleConnectionIsRetried: a server that closes connections
// between requests must not cost the second request an error.
func TestStaleIdleConnectionIsRetried(t *testing.T) {
	var n atomic.Int64
	u := rawServer(t, func(string) string {
		n.Add(1)
		// Claims keep-alive, then the server closes anyway.
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	c := newTestClient(t, nil)
	for i := range 3 {
		if _, body, err := get(t, c, u+"/"); err != nil || body != "ok" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	if n.Load() != 3 {
		t.Fatalf("%d requests served", n.Load())
	}
}

func TestDeadlineCoversTheBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}))
	defer srv.Close()
	c := newTestClient(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	resp, err := c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	_, err = io.Copy(io.Discard, resp.Body)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the deadline did not stop the read")
	}
}

func TestCancelStopsARead(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL)})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled request succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling did not stop the request")
	}
}

func TestHTTPSAndHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		io.WriteString(w, "secure")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	for _, h2 := range []bool{false, true} {
		c := newTestClient(t, func(o *Options) { o.HTTP2 = h2 })
		for i := range 3 {
			resp, body, err := get(t, c, srv.URL+"/")
			if err != nil || body != "secure" {
				t.Fatalf("h2=%v: %q %v", h2, body, err)
			}
			want := "HTTP/1.1"
			if h2 {
				want = "HTTP/2.0"
			}
			if resp.Proto != want || resp.Get("X-Proto") != want || resp.Conn.TLS == nil {
				t.Fatalf("h2=%v request %d: proto %s, server saw %s", h2, i, resp.Proto, resp.Get("X-Proto"))
			}
		}
	}
}

func TestThroughHTTPProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin "+r.URL.Path) }))
	defer origin.Close()
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls origin") }))
	defer tlsOrigin.Close()
	var forwarded, tunnels atomic.Int64
	var auths sync.Map
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths.Store(r.Header.Get("Proxy-Authorization"), true)
		if r.Method == http.MethodConnect {
			tunnels.Add(1)
			up, err := net.Dial("tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusOK)
			// What the client sent after CONNECT may already sit in the
			// server's buffer (its background read takes a byte): copy
			// from the buffered reader, not the bare connection.
			down, brw, _ := w.(http.Hijacker).Hijack()
			brw.Flush()
			go func() { io.Copy(up, brw); up.Close() }()
			io.Copy(down, up)
			down.Close()
			return
		}
		forwarded.Add(1)
		resp, err := http.DefaultTransport.RoundTrip(&http.Request{Method: r.Method, URL: r.URL, Header: http.Header{}, Host: r.Host})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	pu := mustURL(t, strings.Replace(proxy.URL, "http://", "http://user:secret@", 1))
	c := newTestClient(t, func(o *Options) { o.Proxy = func(*url.URL) (*url.URL, error) { return pu, nil } })
	if resp, body, err := get(t, c, origin.URL+"/via"); err != nil || body != "origin /via" || !resp.Conn.Proxied {
		t.Fatalf("http through proxy: %q %v", body, err)
	}
	if _, body, err := get(t, c, tlsOrigin.URL+"/"); err != nil || body != "tls origin" {
		t.Fatalf("https through proxy: %q %v", body, err)
	}
	if forwarded.Load() != 1 || tunnels.Load() != 1 {
		t.Fatalf("forwarded %d, tunnels %d", forwarded.Load(), tunnels.Load())
	}
	if _, ok := auths.Load("Basic dXNlcjpzZWNyZXQ="); !ok {
		t.Fatal("the proxy never saw the credentials")
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// FuzzReadHead feeds arbitrary bytes to the response parser: it must never
// panic, never read past its limit, and what it accepts must be sane.
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(strings.NewReader(string(data)), 16)
		h, _, err := readHead(br, nil, 512, http.MethodGet)
		if err != nil {
			return
		}
		if h.status < 200 || h.status > 599 || h.proto == "" {
			t.Fatalf("accepted status %d proto %q", h.status, h.proto)
		}
		if len(h.hdr.raw) > 512 {
			t.Fatalf("kept %d bytes of headers, limit 512", len(h.hdr.raw))
		}
		if h.chunked && h.contentLength >= 0 {
			t.Fatal("chunked with a length")
		}
		// Whatever body framing it chose must read without panicking.
		var r io.Reader = closeBody{br}
		switch {
		case h.chunked:
			r = &chunkedBody{br: br}
		case h.contentLength >= 0:
			r = &fixedBody{br: br, remain: h.contentLength}
		}
		io.Copy(io.Discard, io.LimitReader(r, 1<<20))
	})
}

// TestBodilessResponsesKeepTheConnection: a 304 or 204 without a
// Content-Length (as nginx sends a 304) has no body by rule, so nothing
// waits for the connection to close and it goes back to the pool; only a
// Connection: close ends it.
func TestBodilessResponsesKeepTheConnection(t *testing.T) {
	addr := rawKeepAliveServer(t, func(req string) string {
		switch {
		case strings.Contains(req, "/close"):
			return "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
		case strings.Contains(req, "/204"):
			return "HTTP/1.1 204 No Content\r\n\r\n"
		}
		return "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
	})
	c := newTestClient(t, nil)
	for i, path := range []string{"/304", "/304", "/204", "/304", "/close", "/304"} {
		resp, body, err := get(t, c, "http://"+addr+path)
		if err != nil || body != "" {
			t.Fatalf("%s: %q %v", path, body, err)
		}
		wantReused := i > 0 && i != 5 // the request after /close needs a new connection
		if resp.Conn.Reused != wantReused {
			t.Fatalf("request %d (%s): reused %v, want %v", i, path, resp.Conn.Reused, wantReused)
		}
	}
}

// rawKeepAliveServer answers each request on a connection with the bytes
// reply returns for it, keeping the connection open until the reply says
// Connection: close.
func rawKeepAliveServer(t *testing.T, reply func(req string) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					var req strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						req.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					out := reply(req.String())
					if _, err := io.WriteString(c, out); err != nil || strings.Contains(out, "Connection: close") {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}
