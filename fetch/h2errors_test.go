package fetch

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/trawl-dev/trawl/internal/testpki"
	"github.com/trawl-dev/trawl/record"
)

// TestHTTP2ViolationsAreProtocolErrors: an HTTP/2 server that breaks the
// protocol before the response's head fails the URL as protocol, once
// (it is permanent); one that breaks it in the middle of the body fails
// it as body, as a broken body does over HTTP/1.1.
func TestHTTP2ViolationsAreProtocolErrors(t *testing.T) {
	if testEngine != EngineLean {
		t.Skip("the lean engine's HTTP/2")
	}
	ca := testpki.NewCA(t, "h2 errors CA")
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, testpki.Leaf{Name: "127.0.0.1"})}, NextProtos: []string{"h2"}})
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
			wg.Go(func() { defer c.Close(); violate(c) })
		}
	})
	o := testOptions()
	o.RootCAs = ca.Pool()
	o.Retries = 2
	c := newClient(t, o)
	base := "https://" + l.Addr().String()
	for path, want := range map[string]record.Kind{
		"/no-status":   record.KindProtocol,
		"/push":        record.KindProtocol,
		"/stream-zero": record.KindProtocol,
		"/long-body":   record.KindBody,
	} {
		r := fetchOne(t, c, base+path)
		attempts := 1
		if want == record.KindBody {
			attempts = 3
		}
		if r.ErrKind != want || r.Attempts != attempts {
			t.Errorf("%s: kind %s after %d attempts (%v), want %s after %d", path, r.ErrKind, r.Attempts, r.Err, want, attempts)
		}
	}
}

// violate serves one HTTP/2 connection, breaking the protocol as each
// request's path asks.
func violate(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := func(kv ...string) []byte {
		buf.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	var path string
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":path" {
			path = f.Value
		}
	})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame: // the client's header blocks fit a frame
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil || dec.Close() != nil {
				return
			}
			id := f.StreamID
			switch path {
			case "/no-status":
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block("x", "y"), EndHeaders: true, EndStream: true})
			case "/push":
				fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: block(":method", "GET"), EndHeaders: true})
			case "/stream-zero":
				fr.WriteRawFrame(http2.FrameData, 0, 0, []byte("x"))
			case "/long-body":
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(":status", "200", "content-length", "2"), EndHeaders: true})
				fr.WriteData(id, true, []byte("abc"))
			}
		}
	}
}
