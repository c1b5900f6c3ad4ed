package lean

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// breakOutcome is what a misbehaving frame must cost.
type breakOutcome int

const (
	// breaksConn: the request fails as a protocol error, and the
	// connection with it: the next request goes on a new one.
	breaksConn breakOutcome = iota
	// breaksStream: the request fails as a protocol error; the
	// connection goes on serving.
	breaksStream
	// harmless: the request is answered and the connection goes on.
	harmless
)

// TestH2BrokenFrames: frames that break HTTP/2's rules (RFC 9113) fail
// the connection or only their stream as the RFC says, as protocol
// errors, and never cost the requests that follow.
func TestH2BrokenFrames(t *testing.T) {
	raw := func(typ http2.FrameType, flags http2.Flags, stream func(r h2Request) uint32, payload []byte) func(p *h2peer, r h2Request) {
		return func(p *h2peer, r h2Request) { p.fr.WriteRawFrame(typ, flags, stream(r), payload) }
	}
	zero := func(h2Request) uint32 { return 0 }
	same := func(r h2Request) uint32 { return r.stream }
	idle := func(r h2Request) uint32 { return r.stream + 100 }
	settings := func(s ...http2.Setting) func(p *h2peer, r h2Request) {
		return func(p *h2peer, r h2Request) { p.fr.WriteSettings(s...) }
	}
	answered := func(p *h2peer, r h2Request) { p.respond(r.stream, "200", "ok") }
	for _, tc := range []struct {
		name   string
		attack func(p *h2peer, r h2Request)
		want   breakOutcome
	}{
		{"DATA on stream 0", raw(http2.FrameData, 0, zero, []byte("x")), breaksConn},
		{"HEADERS on stream 0", raw(http2.FrameHeaders, http2.FlagHeadersEndHeaders, zero, []byte{0x88}), breaksConn},
		{"RST_STREAM on stream 0", raw(http2.FrameRSTStream, 0, zero, []byte{0, 0, 0, 8}), breaksConn},
		{"WINDOW_UPDATE of 0 on the connection", raw(http2.FrameWindowUpdate, 0, zero, []byte{0, 0, 0, 0}), breaksConn},
		{"SETTINGS on a stream", raw(http2.FrameSettings, 0, same, nil), breaksConn},
		{"PING on a stream", raw(http2.FramePing, 0, same, make([]byte, 8)), breaksConn},
		{"GOAWAY on a stream", raw(http2.FrameGoAway, 0, same, make([]byte, 8)), breaksConn},
		{"DATA on an idle stream", raw(http2.FrameData, 0, idle, []byte("x")), breaksConn},
		{"HEADERS on an idle stream", raw(http2.FrameHeaders, http2.FlagHeadersEndHeaders, idle, []byte{0x88}), breaksConn},
		{"RST_STREAM on an idle stream", raw(http2.FrameRSTStream, 0, idle, []byte{0, 0, 0, 8}), breaksConn},
		{"WINDOW_UPDATE on an idle stream", raw(http2.FrameWindowUpdate, 0, idle, []byte{0, 0, 0, 1}), breaksConn},
		{"connection window beyond 2^31-1", func(p *h2peer, r h2Request) { p.fr.WriteWindowUpdate(0, maxWindow) }, breaksConn},
		{"INITIAL_WINDOW_SIZE beyond 2^31-1", settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}), breaksConn},
		{"MAX_FRAME_SIZE below 16384", settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1000}), breaksConn},
		{"MAX_FRAME_SIZE beyond 2^24-1", settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 24}), breaksConn},
		{"ENABLE_PUSH 1 from a server", settings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}), breaksConn},
		{"DATA padding longer than the frame", func(p *h2peer, r h2Request) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
			p.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded|http2.FlagDataEndStream, r.stream, []byte{200, 'a', 'b'})
		}, breaksConn},
		{"padded DATA without its pad length", func(p *h2peer, r h2Request) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
			p.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded|http2.FlagDataEndStream, r.stream, nil)
		}, breaksConn},
		{"HEADERS whose priority is cut short", func(p *h2peer, r h2Request) {
			p.fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPriority|http2.FlagHeadersEndHeaders, r.stream, []byte{0, 0})
		}, breaksConn},
		{"HEADERS padding longer than the frame", func(p *h2peer, r h2Request) {
			// The header block, which adds to the HPACK table, cannot be
			// decoded: the table the server's next blocks refer to is lost.
			block := p.block(":status", "200", "x-indexed", "a value the table keeps")
			p.fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, r.stream,
				append([]byte{byte(len(block) + 1)}, block...))
		}, breaksConn},
		{"HPACK table size above the allowed", func(p *h2peer, r h2Request) {
			var buf bytesBuffer
			enc := hpack.NewEncoder(&buf)
			enc.SetMaxDynamicTableSizeLimit(1 << 20)
			enc.SetMaxDynamicTableSize(1 << 20)
			enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: []byte(buf), EndHeaders: true, EndStream: true})
		}, breaksConn},
		{"HPACK table size update after a field", func(p *h2peer, r h2Request) {
			// ":status: 200" indexed into the table, then an update.
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: []byte{0x48, 0x03, '2', '0', '0', 0x20}, EndHeaders: true, EndStream: true})
		}, breaksConn},

		{"stream window beyond 2^31-1", func(p *h2peer, r h2Request) { p.fr.WriteWindowUpdate(r.stream, maxWindow) }, breaksStream},
		{"WINDOW_UPDATE of 0 on a stream", raw(http2.FrameWindowUpdate, 0, same, []byte{0, 0, 0, 0}), breaksStream},
		{"HEADERS neither final nor trailers", func(p *h2peer, r h2Request) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block("x-trailer", "1"), EndHeaders: true})
		}, breaksStream},

		{"HEADERS after END_STREAM", func(p *h2peer, r h2Request) {
			answered(p, r)
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true, EndStream: true})
		}, harmless},
		{"DATA after END_STREAM", func(p *h2peer, r h2Request) {
			answered(p, r)
			p.fr.WriteData(r.stream, true, []byte("more"))
		}, harmless},
		{"RST_STREAM flood on a closed stream", func(p *h2peer, r h2Request) {
			answered(p, r)
			for range 5000 {
				p.fr.WriteRSTStream(r.stream, http2.ErrCodeCancel)
			}
		}, harmless},
		{"SETTINGS flood", func(p *h2peer, r h2Request) {
			for range 1000 {
				p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
			}
			answered(p, r)
		}, harmless},
		{"many interim responses", func(p *h2peer, r h2Request) {
			for range 200 {
				p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "103", "link", "</a>"), EndHeaders: true})
			}
			answered(p, r)
		}, harmless},
		{"trailers", func(p *h2peer, r h2Request) {
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
			p.fr.WriteData(r.stream, false, []byte("ok"))
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block("x-sum", "1"), EndHeaders: true, EndStream: true})
		}, harmless},
		{"unknown frame types and PRIORITY", func(p *h2peer, r h2Request) {
			p.fr.WriteRawFrame(0xfa, 0xff, r.stream, []byte("whatever"))
			p.fr.WritePriority(r.stream, http2.PriorityParam{StreamDep: 0, Weight: 7})
			answered(p, r)
		}, harmless},
		{"HPACK table size updates, many", func(p *h2peer, r h2Request) {
			// The table emptied a thousand times (the encoder's table is
			// empty still: this is the connection's first block), back to
			// 4096, then ":status: 200" from the static table.
			block := make([]byte, 0, 1010)
			for range 1000 {
				block = append(block, 0x20)
			}
			block = append(block, 0x3f, 0xe1, 0x1f, 0x88)
			p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: block, EndHeaders: true, EndStream: true})
		}, harmless},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startH2(t, func(p *h2peer) {
				if !p.handshake() {
					return
				}
				for {
					r, ok := p.readRequest()
					if !ok {
						return
					}
					if r.header[":path"] == "/evil" {
						tc.attack(p, r)
						continue
					}
					p.respond(r.stream, "200", "ok")
				}
			})
			c := h2Client(t, nil)
			fetch := func(path string) (string, error) {
				var body []byte
				var err error
				within(t, 5*time.Second, path, func() {
					ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
					defer cancel()
					var resp *Response
					resp, err = c.Do(ctx, &Request{Method: "GET", URL: mustURL(t, srv.URL+path)})
					if err == nil {
						body, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
				})
				return string(body), err
			}
			_, err := fetch("/evil")
			switch {
			case tc.want != harmless && !isProtocol(err):
				t.Errorf("err = %v, want a protocol error", err)
			case tc.want == harmless && err != nil:
				t.Errorf("err = %v, want none", err)
			}
			if body, err := fetch("/ok"); err != nil || body != "ok" {
				t.Errorf("the next request: %q %v", body, err)
			}
			conns := int64(1)
			if tc.want == breaksConn {
				conns = 2
			}
			if got := srv.conns.Load(); got != conns {
				t.Errorf("%d connections, want %d", got, conns)
			}
		})
	}
}

// bytesBuffer is a []byte that hpack's encoder writes to.
type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

// TestH2StallMidFrame: a server that stops in the middle of a frame costs
// the request its deadline; the connection, which has gone silent, takes
// no more requests.
func TestH2StallMidFrame(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake() {
			return
		}
		r, ok := p.readRequest()
		if !ok {
			return
		}
		if p.n == 1 {
			p.goDrain()
			// A SETTINGS frame (its ACK too) says nothing of the
			// request, then a frame that stops short.
			p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
			p.c.Write([]byte{0, 0, 9, byte(http2.FrameHeaders)}) // 4 of a frame header's 9 bytes
			<-p.done
			return
		}
		p.respond(r.stream, "200", "ok")
		p.drain()
	})
	c := h2Client(t, nil)
	start := time.Now()
	_, _, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(300 * time.Millisecond)})
	if !isTimeoutErr(err) || time.Since(start) > 2*time.Second {
		t.Errorf("stalled mid-frame: %v after %s, want a timeout at the deadline", err, time.Since(start))
	}
	if _, body, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(time.Second)}); err != nil || body != "ok" || srv.conns.Load() != 2 {
		t.Errorf("the next request: %q %v on %d connections", body, err, srv.conns.Load())
	}
}

// TestH2GoAwayRaisesItsLast: a second GOAWAY cannot raise the last stream
// of the first: the connection stays closed to new streams.
func TestH2GoAwayRaisesItsLast(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake() {
			return
		}
		r, ok := p.readRequest()
		if !ok {
			return
		}
		if p.n == 1 {
			p.fr.WriteGoAway(r.stream, http2.ErrCodeNo, nil)
			p.fr.WriteGoAway(maxStreamID, http2.ErrCodeNo, nil)
			p.respond(r.stream, "200", "first")
			if r, ok := p.readRequest(); ok {
				t.Errorf("a new stream %d after GOAWAY", r.stream)
			}
			return
		}
		p.respond(r.stream, "200", "second")
		p.drain()
	})
	c := h2Client(t, nil)
	if _, body, err := get(t, c, srv.URL+"/"); err != nil || body != "first" {
		t.Errorf("first: %q %v", body, err)
	}
	if _, body, err := get(t, c, srv.URL+"/"); err != nil || body != "second" {
		t.Errorf("second: %q %v", body, err)
	}
}

// TestH2NoStreamsAllowed: a server whose MAX_CONCURRENT_STREAMS is 0, and
// which refuses what comes anyway, costs each request a few tries, and
// the connections it took are not kept.
func TestH2NoStreamsAllowed(t *testing.T) {
	var live atomic.Int64
	srv := startH2(t, func(p *h2peer) {
		live.Add(1)
		defer live.Add(-1)
		if !p.handshake(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 0}) {
			return
		}
		for {
			r, ok := p.readRequest()
			if !ok {
				return
			}
			p.fr.WriteRSTStream(r.stream, http2.ErrCodeRefusedStream)
		}
	})
	c := h2Client(t, nil)
	for range 5 {
		_, _, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(2 * time.Second)})
		if !isRetry(err) && !isTimeoutErr(err) {
			t.Errorf("err = %v, want the refusal or a timeout", err)
		}
	}
	for end := time.Now().Add(2 * time.Second); live.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d of %d connections still open", live.Load(), srv.conns.Load())
		}
	}
	t.Logf("%d connections", srv.conns.Load())
}

// TestH2EndlessStreamOfFrames: a server whose frames never stop coming,
// so that what the client has read never ends at a frame's end, still
// has its responses delivered: the read loop does not wait for a pause
// to wake the streams (nor, meanwhile, gather control frames without
// end).
func TestH2EndlessStreamOfFrames(t *testing.T) {
	srv := startH2(t, func(p *h2peer) {
		if !p.handshake() {
			return
		}
		r, ok := p.readRequest()
		if !ok {
			return
		}
		p.goDrain()
		// Frames of a type the client ignores, 16393 bytes each, written
		// in pieces that each end 5 bytes into a frame: the client's reads
		// end in the middle of frames.
		var frame bytes.Buffer
		http2.NewFramer(&frame, nil).WriteRawFrame(0xfa, 0, 0, make([]byte, 16384))
		var one bytes.Buffer
		fr := http2.NewFramer(&one, nil)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.stream, BlockFragment: p.block(":status", "200"), EndHeaders: true})
		fr.WriteData(r.stream, true, []byte("ok"))
		stream := append(bytes.Repeat(frame.Bytes(), 4), one.Bytes()...)
		for range 60 {
			stream = append(stream, frame.Bytes()...)
		}
		f := frame.Bytes()
		p.c.Write(stream[:5])
		stream = append(stream[5:], f[:5]...)
		shifted := bytes.Repeat(append(append([]byte(nil), f[5:]...), f[:5]...), 64)
		end := time.Now().Add(2 * time.Second)
		for time.Now().Before(end) {
			if _, err := p.c.Write(stream); err != nil {
				return
			}
			stream = shifted
		}
	})
	c := h2Client(t, nil)
	start := time.Now()
	_, body, err := do(t, c, &Request{Method: "GET", URL: mustURL(t, srv.URL+"/"), Deadline: time.Now().Add(time.Second)})
	if err != nil || body != "ok" {
		t.Errorf("%q %v after %s", body, err, time.Since(start))
	}
	t.Logf("answered after %s", time.Since(start))
}
