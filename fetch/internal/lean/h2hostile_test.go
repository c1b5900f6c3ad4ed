package lean

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestH2GoAwayMidRun: a GOAWAY fails the streams above its last stream
// with an error that sends them again, on a new connection; the streams
// below it are answered; the old connection, while it finishes them,
// takes no new streams.
func TestH2GoAwayMidRun(t *testing.T) {
	var mu sync.Mutex
	seen := map[int][]string{} // paths per connection
	note := func(conn int, path string) {
		mu.Lock()
		seen[conn] = append(seen[conn], path)
		mu.Unlock()
	}
	release := make(chan struct{}) // lets the first connection finish
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake() {
			return
		}
		if p.n > 1 { // later connections answer everything
			for {
				r, ok := p.readRequest()
				if !ok {
					return
				}
				note(p.n, r.header[":path"])
				p.respond(r.stream, "200", "second:"+r.header[":path"])
			}
		}
		var reqs []h2Request
		for len(reqs) < 3 {
			r, ok := p.readRequest()
			if !ok {
				return
			}
			note(1, r.header[":path"])
			reqs = append(reqs, r)
		}
		p.fr.WriteGoAway(reqs[1].stream, http2.ErrCodeNo, nil)
		p.respond(reqs[0].stream, "200", "first:"+reqs[0].header[":path"])
		// The second stream stays open until the test has sent another
		// request, which must not come here.
		late := make(chan h2Request, 1)
		p.wg.Go(func() {
			if r, ok := p.readRequest(); ok {
				note(1, r.header[":path"])
				late <- r
			}
		})
		select {
		case <-release:
		case r := <-late:
			p.respond(r.stream, "200", "first:"+r.header[":path"])
			<-release
		case <-p.done:
			return
		}
		p.respond(reqs[1].stream, "200", "first:"+reqs[1].header[":path"])
		<-p.done
	})
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{Concurrency: 3} })
	var wg sync.WaitGroup
	bodies := make([]string, 3)
	for i := range 3 {
		wg.Go(func() {
			_, body, err := get(t, c, fmt.Sprintf("%s/%d", srv.URL, i))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			bodies[i] = body
		})
	}
	// Once the streams above the GOAWAY went to a second connection, a
	// new request must go there too, not to the first, still open.
	waitFor(t, "a stream sent again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[2]) == 1
	})
	if _, body, err := get(t, c, srv.URL+"/after"); err != nil || body != "second:/after" {
		t.Errorf("after GOAWAY: %q %v", body, err)
	}
	close(release)
	wg.Wait()
	firsts, seconds := 0, 0
	for _, b := range bodies {
		switch {
		case strings.HasPrefix(b, "first:"):
			firsts++
		case strings.HasPrefix(b, "second:"):
			seconds++
		}
	}
	if firsts != 2 || seconds != 1 {
		t.Errorf("answers %q: want two from the first connection, one sent again on the second", bodies)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen[1]) != 3 || srv.conns.Load() != 2 {
		t.Errorf("paths per connection %v over %d connections", seen, srv.conns.Load())
	}
}

// TestH2ResetStreams: RST_STREAM fails its stream alone; REFUSED_STREAM
// sends the request again, which the server then answers.
func TestH2ResetStreams(t *testing.T) {
	var refused atomic.Int64
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake() {
			return
		}
		for {
			r, ok := p.readRequest()
			if !ok {
				return
			}
			switch r.header[":path"] {
			case "/reset":
				p.fr.WriteRSTStream(r.stream, http2.ErrCodeInternal)
			case "/reset-mid-body":
				p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
				p.fr.WriteData(r.stream, false, []byte("partial"))
				p.fr.WriteRSTStream(r.stream, http2.ErrCodeInternal)
			case "/refuse-once":
				if refused.Add(1) == 1 {
					p.fr.WriteRSTStream(r.stream, http2.ErrCodeRefusedStream)
					continue
				}
				p.respond(r.stream, "200", "answered")
			case "/refuse-always":
				refused.Add(1)
				p.fr.WriteRSTStream(r.stream, http2.ErrCodeRefusedStream)
			default:
				p.respond(r.stream, "200", "ok")
			}
		}
	})
	c := h2Client(t, nil)
	var se *StreamError
	if _, _, err := get(t, c, srv.URL+"/reset"); !errors.As(err, &se) || se.Code != http2.ErrCodeInternal {
		t.Errorf("reset: %v, want a StreamError INTERNAL_ERROR", err)
	}
	if _, body, err := get(t, c, srv.URL+"/reset-mid-body"); !errors.As(err, &se) || body != "partial" {
		t.Errorf("reset mid-body: %q %v, want what came, then a StreamError", body, err)
	}
	if _, body, err := get(t, c, srv.URL+"/refuse-once"); err != nil || body != "answered" || refused.Load() != 2 {
		t.Errorf("refused once: %q %v after %d tries", body, err, refused.Load())
	}
	refused.Store(0)
	_, _, err := get(t, c, srv.URL+"/refuse-always")
	if !isRetry(err) || refused.Load() != 1+h2Retries {
		t.Errorf("refused always: %v after %d tries, want a retryable error after %d", err, refused.Load(), 1+h2Retries)
	}
	if _, body, err := get(t, c, srv.URL+"/"); err != nil || body != "ok" {
		t.Errorf("after the resets: %q %v", body, err)
	}
	if srv.conns.Load() != 1 {
		t.Errorf("%d connections: resets must not cost the connection", srv.conns.Load())
	}
}

// TestH2EndlessHeaders: a server that sends a header block without end,
// or one too large, costs a bounded amount and fails as a protocol error.
func TestH2EndlessHeaders(t *testing.T) {
	const limit = 64 << 10
	for _, tc := range []struct {
		name string
		frag func(p *h2peer, i int) []byte // the i-th CONTINUATION frame's
	}{
		{"literal fields", func(p *h2peer, i int) []byte {
			return p.block(fmt.Sprintf("x-flood-%d", i), strings.Repeat("v", 4000))
		}},
		{"empty frames", func(p *h2peer, i int) []byte { return nil }},
		{"one endless string", func(p *h2peer, i int) []byte {
			if i == 0 {
				// A literal whose length says 2^21 bytes, then its bytes.
				return []byte{0x00, 0x01, 'x', 0x7f, 0x81, 0xff, 0x7f}
			}
			return bytes.Repeat([]byte("v"), 16<<10)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			srv := startH2(t, func(p *h2peer) {
				if !p.handshake() {
					return
				}
				r, ok := p.readRequest()
				if !ok {
					return
				}
				p.goDrain()
				p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200")})
				for i := 0; sent.Load() < 64<<20; i++ {
					frag := tc.frag(p, i)
					if err := p.fr.WriteContinuation(r.stream, false, frag); err != nil {
						return
					}
					sent.Add(int64(len(frag)) + 9)
				}
				t.Errorf("the client took 64 MiB of header block")
			})
			c := h2Client(t, func(o *Options) { o.MaxHeaderBytes = limit })
			var err error
			within(t, 20*time.Second, "an endless header block", func() { _, _, err = get(t, c, srv.URL+"/") })
			if !isProtocol(err) {
				t.Errorf("err = %v, want a protocol error", err)
			}
			t.Logf("%v after at most %d KiB sent", err, sent.Load()>>10)
		})
	}
}

// TestH2NoSettings: a server that never sends SETTINGS (nor anything)
// costs a request its deadline, and the connection is given up; one that
// starts with another frame is refused at once.
func TestH2NoSettings(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		buf := make([]byte, len(http2.ClientPreface))
		io.ReadFull(p.c, buf)
		if p.n == 2 {
			p.fr.WritePing(false, [8]byte{})
		}
		p.drain()
	})
	c := h2Client(t, nil)
	start := time.Now()
	_, _, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(300 * time.Millisecond)})
	if !isTimeoutErr(err) || time.Since(start) > 5*time.Second {
		t.Errorf("silent server: %v after %s, want a timeout", err, time.Since(start))
	}
	_, _, err = do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(5 * time.Second)})
	if !isProtocol(err) || !contains(err, "SETTINGS") {
		t.Errorf("PING first: %v, want a protocol error", err)
	}
	if srv.conns.Load() != 2 {
		t.Errorf("%d connections: the silent one must be given up", srv.conns.Load())
	}
}

// TestH2ServerStopsReading: when the server stops reading a request
// body it has given window for, the blocked write ends at the deadline.
func TestH2ServerStopsReading(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow}) {
			return
		}
		p.fr.WriteWindowUpdate(0, maxWindow-initialWindow)
		<-p.done // and never read again
	})
	c := h2Client(t, nil)
	body := make([]byte, 64<<20)
	start := time.Now()
	_, _, err := do(t, c, &Request{Method: http.MethodPost, URL: mustURL(t, srv.URL+"/"), Body: body, Deadline: time.Now().Add(500 * time.Millisecond)})
	if !isTimeoutErr(err) {
		t.Errorf("err = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a blocked write ended after %s, not at the deadline", took)
	}
}

// TestH2FlowControlAndSettings: the server's SETTINGS are honoured: a
// small window for request bodies, the smallest frame size for a header
// block, MAX_CONCURRENT_STREAMS on every connection to the host, a header
// table of size 0; PING is answered and padding dropped.
func TestH2FlowControlAndSettings(t *testing.T) {
	const window, streams = 1000, 2
	var (
		mu       sync.Mutex
		problems []string
		maxOpen  int
		pinged   = map[int]bool{} // connections whose PING was answered
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake(
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: window},
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: streams},
			http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
		) {
			return
		}
		p.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
		open := map[uint32]int{} // body bytes since the last window update, per open stream
		// Streams opened after the client acknowledged the settings: the
		// earlier ones may use the default window (RFC 9113, 6.9.2).
		strict := map[uint32]bool{}
		var frag []byte
		acked, updated := false, false
		answer := func(id uint32) {
			delete(open, id)
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(":status", "200"), EndHeaders: true, PadLength: 7})
			p.fr.WriteDataPadded(id, true, []byte("done"), make([]byte, 100))
		}
		for {
			f, err := p.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if f.IsAck() {
					// From now on the client's encoder must use no table.
					acked = true
					p.dec.SetAllowedMaxDynamicTableSize(0)
				}
			case *http2.PingFrame:
				if !f.IsAck() || f.Data != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} {
					problem("PING answered with %v", f)
				}
				mu.Lock()
				pinged[p.n] = true
				mu.Unlock()
			case *http2.HeadersFrame, *http2.ContinuationFrame:
				hc := f.(interface {
					HeaderBlockFragment() []byte
					HeadersEnded() bool
				})
				if f.Header().Length > 16384 {
					problem("a %d-byte header frame", f.Header().Length)
				}
				frag = append(frag, hc.HeaderBlockFragment()...)
				if !hc.HeadersEnded() {
					continue
				}
				if acked && !updated {
					if len(frag) == 0 || frag[0] != 0x20 {
						problem("the first header block after the ACK does not empty the table: % x", frag[:min(len(frag), 4)])
					}
					updated = true
				}
				if _, err := p.dec.Write(frag); err != nil {
					problem("undecodable header block: %v", err)
				}
				p.dec.Close()
				frag = frag[:0]
				id := f.Header().StreamID
				open[id], strict[id] = 0, acked
				mu.Lock()
				maxOpen = max(maxOpen, len(open))
				mu.Unlock()
				if len(open) > streams {
					problem("%d streams open, the server allows %d", len(open), streams)
				}
				if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamEnded() {
					answer(id)
				}
			case *http2.DataFrame:
				id := f.StreamID
				open[id] += len(f.Data())
				if open[id] > window && strict[id] {
					problem("stream %d sent %d bytes on a window of %d", id, open[id], window)
				}
				if f.StreamEnded() {
					answer(id)
				} else if open[id] >= window {
					// Window back only once the stream has used all of it.
					open[id] = 0
					p.fr.WriteWindowUpdate(id, window)
					p.fr.WriteWindowUpdate(0, window)
				}
			}
		}
	})
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{Concurrency: 6} })
	// The first request learns the host's settings.
	if _, body, err := get(t, c, srv.URL+"/"); err != nil || body != "done" {
		t.Fatalf("first request: %q %v", body, err)
	}
	// Six requests at once, again (at most five rounds) until two of them
	// were open together: whether they overlap is up to the scheduler.
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				size := window*i + 500
				_, body, err := do(t, c, &Request{Method: http.MethodPost, URL: mustURL(t, srv.URL+"/"), Body: make([]byte, size),
					Header: http.Header{"X-Repeat": {"same value each time"}, "X-Big": {strings.Repeat("b", 40000)}}})
				if err != nil || body != "done" {
					t.Errorf("body of %d: %q %v", size, body, err)
				}
			})
		}
		wg.Wait()
		mu.Lock()
		overlapped := maxOpen == streams
		mu.Unlock()
		if overlapped || t.Failed() {
			break
		}
	}
	waitFor(t, "every connection's PING answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(pinged) == int(srv.conns.Load())
	})
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if maxOpen != streams {
		t.Errorf("at most %d streams open at once; the test wants %d to prove anything", maxOpen, streams)
	}
}

// TestH2WindowOverrun: a server that sends beyond a stream's window
// fails that stream as a protocol error, after what the window allowed.
func TestH2WindowOverrun(t *testing.T) {
	const window = 64 << 10
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake() {
			return
		}
		r, ok := p.readRequest()
		if !ok {
			return
		}
		p.goDrain()
		p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
		chunk := make([]byte, 16<<10)
		for range window/len(chunk) + 1 {
			p.fr.WriteData(r.stream, false, chunk)
		}
		<-p.done
	})
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{StreamWindow: window} })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/")})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Nothing is read (and so no window given back) until the overrun.
	s := resp.Body.(*h2body).s
	waitFor(t, "the overrun", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err != nil
	})
	n, err := io.Copy(io.Discard, resp.Body)
	if !isProtocol(err) || n != window {
		t.Errorf("%d bytes then %v; want the window's %d, then a protocol error", n, err, window)
	}
}

// TestH2MalformedResponses: responses that break HTTP/2's rules fail as
// protocol errors, or as short bodies.
func TestH2MalformedResponses(t *testing.T) {
	for name, tc := range map[string]struct {
		respond func(p *h2peer, stream uint32)
		check   func(err error) bool
	}{
		"no status": {func(p *h2peer, id uint32) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block("x", "y"), EndHeaders: true})
		}, isProtocol},
		"no status, ending the stream": {func(p *h2peer, id uint32) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block("x", "y"), EndHeaders: true, EndStream: true})
		}, isProtocol},
		"uppercase name": {func(p *h2peer, id uint32) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(":status", "200", "X-Up", "y"), EndHeaders: true, EndStream: true})
		}, isProtocol},
		"short body": {func(p *h2peer, id uint32) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(":status", "200", "content-length", "10"), EndHeaders: true})
			p.fr.WriteData(id, true, []byte("abc"))
		}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		"long body": {func(p *h2peer, id uint32) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(":status", "200", "content-length", "2"), EndHeaders: true})
			p.fr.WriteData(id, true, []byte("abc"))
		}, isProtocol},
		"data before headers": {func(p *h2peer, id uint32) {
			p.fr.WriteData(id, true, []byte("abc"))
		}, isProtocol},
		"push": {func(p *h2peer, id uint32) {
			p.fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: p.block(":method", "GET"), EndHeaders: true})
		}, isProtocol},
		"interim then final": {func(p *h2peer, id uint32) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(":status", "103", "link", "</a>"), EndHeaders: true})
			p.respond(id, "200", "final")
		}, func(err error) bool { return err == nil }},
	} {
		t.Run(name, func(t *testing.T) {
			srv := startH2(t, func(p *h2peer) {
				if !p.handshake() {
					return
				}
				r, ok := p.readRequest()
				if !ok {
					return
				}
				tc.respond(p, r.stream)
				p.drain()
			})
			c := h2Client(t, nil)
			var err error
			within(t, 10*time.Second, name, func() {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				var resp *Response
				resp, err = c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/")})
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
			})
			if !tc.check(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestH2ControlFlood: a server that sends PINGs without end while it
// reads nothing cannot make the client queue answers without end: the
// connection fails as a protocol error.
func TestH2ControlFlood(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow}) {
			return
		}
		p.fr.WriteWindowUpdate(0, maxWindow-initialWindow)
		// Reads nothing more: the client's request body fills the socket
		// and blocks its writer, and every PING's answer must queue.
		for i := 0; ; i++ {
			select {
			case <-p.done:
				return
			default:
			}
			if err := p.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
				return
			}
		}
	})
	c := h2Client(t, nil)
	var err error
	within(t, 10*time.Second, "a PING flood", func() {
		_, _, err = do(t, c, &Request{Method: http.MethodPost, URL: mustURL(t, srv.URL+"/"), Body: make([]byte, 64<<20),
			Deadline: time.Now().Add(8 * time.Second)})
	})
	if !isProtocol(err) || !contains(err, "control frames") {
		t.Errorf("err = %v, want a protocol error about control frames", err)
	}
}

// lateWriteConn delays each write until the connection is closed, or
// 100ms, to let the read loop fail the connection while a request's
// frames are on their way out.
type lateWriteConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *lateWriteConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
	case <-time.After(100 * time.Millisecond):
	}
	return c.Conn.Write(p)
}

func (c *lateWriteConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestH2ProtocolErrorWhileSending: a request whose write fails because
// the read loop found the server breaking the protocol fails with that
// protocol error; it does not go again, to the same server, on a new
// connection.
func TestH2ProtocolErrorWhileSending(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if p.n > 1 {
			if p.handshake() {
				if r, ok := p.readRequest(); ok {
					p.respond(r.stream, "200", "ok")
				}
				p.drain()
			}
			return
		}
		buf := make([]byte, len(http2.ClientPreface))
		io.ReadFull(p.c, buf)
		p.fr.WritePing(false, [8]byte{}) // not SETTINGS: a protocol error
		p.drain()
	})
	c := h2Client(t, func(o *Options) {
		o.DialTarget = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := plainDialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lateWriteConn{Conn: nc, closed: make(chan struct{})}, nil
		}
	})
	_, _, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(5 * time.Second)})
	if !isProtocol(err) || !contains(err, "SETTINGS") {
		t.Errorf("err = %v, want the protocol error", err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections: the request went again after a protocol error", n)
	}
}

// TestH2CancelEndsABlockedWrite: cancelling the one request on a
// connection whose server stopped reading ends its blocked write at once.
func TestH2CancelEndsABlockedWrite(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow}) {
			return
		}
		p.fr.WriteWindowUpdate(0, maxWindow-initialWindow)
		<-p.done // and never read again
	})
	c := h2Client(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Do(ctx, &Request{Method: http.MethodPost, URL: mustURL(t, srv.URL+"/"), Body: make([]byte, 64<<20)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a blocked write ended %s after the cancel", took)
	}
}
