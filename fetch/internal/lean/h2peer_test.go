package lean

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/trawl-dev/trawl/internal/testpki"
)

// h2peer is the server side of one connection of a hand-written HTTP/2
// server: it misbehaves as each test needs, frame by frame.
type h2peer struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	dec  *hpack.Decoder
	enc  *hpack.Encoder
	ebuf bytes.Buffer
	// fields collects what dec decodes.
	fields []hpack.HeaderField
	n      int // which connection of the server this is, from 1
	// done is closed when the test ends; wg counts the server's
	// goroutines, which the test's end waits for.
	done <-chan struct{}
	wg   *sync.WaitGroup
}

// h2Test is a hand-written HTTP/2 server on 127.0.0.1.
type h2Test struct {
	URL   string
	conns atomic.Int64
}

// startH2 starts a TLS server offering h2 that runs serve on each
// connection, in its own goroutine; every connection has a deadline, and
// the test's end closes them and waits for serve to return.
func startH2(t *testing.T, serve func(p *h2peer)) *h2Test {
	t.Helper()
	ca := testpki.NewCA(t, "h2 test CA")
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, testpki.Leaf{Name: "127.0.0.1"})}, NextProtos: []string{"h2"}}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &h2Test{URL: "https://" + l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			n := int(srv.conns.Add(1))
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				p := &h2peer{t: t, c: c, fr: http2.NewFramer(c, c), n: n, done: done, wg: &wg}
				p.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { p.fields = append(p.fields, f) })
				p.enc = hpack.NewEncoder(&p.ebuf)
				serve(p)
			})
		}
	})
	return srv
}

// handshake reads the client's preface and SETTINGS, sends the server's
// own SETTINGS (with settings) and acknowledges the client's.
func (p *h2peer) handshake(settings ...http2.Setting) bool {
	buf := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(p.c, buf); err != nil || string(buf) != http2.ClientPreface {
		p.t.Errorf("no client preface: %q %v", buf, err)
		return false
	}
	if err := p.fr.WriteSettings(settings...); err != nil {
		return false
	}
	f, err := p.fr.ReadFrame()
	if err != nil {
		p.t.Errorf("reading the client's SETTINGS: %v", err)
		return false
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		p.t.Errorf("the client's first frame is %v, not SETTINGS", f.Header())
		return false
	}
	return p.fr.WriteSettingsAck() == nil
}

// h2Request is a request as a hand-written server saw it.
type h2Request struct {
	stream uint32
	header map[string]string
	ended  bool // END_STREAM on the HEADERS
}

// readRequest reads frames until a request's HEADERS, skipping the rest;
// false when the connection ends first.
func (p *h2peer) readRequest() (h2Request, bool) {
	for {
		f, err := p.fr.ReadFrame()
		if err != nil {
			return h2Request{}, false
		}
		hf, ok := f.(*http2.HeadersFrame)
		if !ok {
			continue
		}
		p.fields = p.fields[:0]
		frag := append([]byte(nil), hf.HeaderBlockFragment()...)
		for !hf.HeadersEnded() {
			f, err := p.fr.ReadFrame()
			if err != nil {
				return h2Request{}, false
			}
			cf, ok := f.(*http2.ContinuationFrame)
			if !ok {
				p.t.Errorf("%v inside a header block", f.Header())
				return h2Request{}, false
			}
			frag = append(frag, cf.HeaderBlockFragment()...)
			if cf.HeadersEnded() {
				break
			}
		}
		if _, err := p.dec.Write(frag); err != nil || p.dec.Close() != nil {
			p.t.Errorf("decoding the request's headers: %v", err)
			return h2Request{}, false
		}
		r := h2Request{stream: hf.StreamID, header: map[string]string{}, ended: hf.StreamEnded()}
		for _, f := range p.fields {
			r.header[f.Name] = f.Value
		}
		return r, true
	}
}

// block encodes header fields, name and value in turn.
func (p *h2peer) block(kv ...string) []byte {
	p.ebuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		p.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), p.ebuf.Bytes()...)
}

// respond sends a whole response: HEADERS, then the body in one DATA frame.
func (p *h2peer) respond(stream uint32, status, body string) error {
	if err := p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: p.block(":status", status, "content-type", "text/plain"),
		EndHeaders: true, EndStream: body == ""}); err != nil {
		return err
	}
	if body == "" {
		return nil
	}
	return p.fr.WriteData(stream, true, []byte(body))
}

// drain reads and drops frames until the connection ends, so that the
// client's writes never block.
func (p *h2peer) drain() {
	for {
		if _, err := p.fr.ReadFrame(); err != nil {
			return
		}
	}
}

// goDrain drains in a goroutine of the server's own, while the caller
// writes.
func (p *h2peer) goDrain() { p.wg.Go(p.drain) }

// h2Server starts an httptest server speaking HTTP/2 over TLS.
func h2Server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	conns := connCounter(srv)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, conns
}

// h2Client is a test client that offers HTTP/2.
func h2Client(t *testing.T, mod func(*Options)) *Client {
	t.Helper()
	return newTestClient(t, func(o *Options) {
		o.HTTP2 = true
		if mod != nil {
			mod(o)
		}
	})
}

// within fails the test unless fn returns within d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s took longer than %s", what, d)
	}
}

// contains is strings.Contains for an error's text.
func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
