package lean

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2stream is one request's stream. Stream objects are reused by their
// connection; the read loop, which may still hold one from a lookup made
// before it was reused, checks the stream's id under mu before touching
// it.
type h2stream struct {
	cc *h2conn
	// ready carries the read loop's news, one at a time: whoever waits
	// looks at the state again, so a stale token only costs a look.
	ready chan struct{}

	// Set by the request's goroutine before the stream is registered.
	ctx         context.Context
	done        <-chan struct{}
	deadline    time.Time
	timer       *time.Timer
	expired     <-chan time.Time
	head        bool   // a HEAD request: no body, whatever is declared
	idempotent  bool   // the request may go again if it was not answered
	framesAt    uint64 // the connection's frame count when sent
	sharedWatch bool
	stopWatch   func() bool
	// ctxDone is ctx.Done(), under cc.mu, for interruptWrites.
	ctxDone <-chan struct{}

	mu       sync.Mutex
	id       uint32
	sent     bool // HEADERS written
	sentEnd  bool // our END_STREAM written
	gotHead  bool
	heard    bool // any frame came for the stream
	status   int
	fields   h2header
	declared int64 // Content-Length as the response reports it, -1 when unknown
	length   int64 // what the body must come to, -1 when unchecked
	received int64
	drop     bool // the response has no body: DATA is dropped
	buf      dataBuf
	ended    bool  // the server's END_STREAM arrived
	err      error // why the stream failed; data already buffered is read first
	reset    bool  // RST_STREAM sent or received: nothing more goes out
	// recvWindow is what the server may still send on the stream;
	// unrefunded what the reader took and the server was not yet told.
	recvWindow int64
	unrefunded int64
	// Under cc.mu: the stream's send window, and whether its writer waits
	// for it to grow.
	sendWindow int64
	wantWindow bool

	// The read loop's own: the batch in which it was last queued for waking.
	batch uint64
}

// start readies s for req.
func (s *h2stream) start(ctx context.Context, req *Request) {
	s.ctx, s.done = ctx, ctx.Done()
	s.deadline = req.Deadline
	s.head = req.Method == http.MethodHead
	s.idempotent = idempotent(req.Method)
	s.expired = nil
	if !s.deadline.IsZero() {
		d := time.Until(s.deadline)
		if s.timer == nil {
			s.timer = time.NewTimer(d)
		} else {
			s.timer.Reset(d)
		}
		s.expired = s.timer.C
	}
	s.framesAt = s.cc.frames.Load()
	select {
	case <-s.ready: // a token left from the stream's last use
	default:
	}
	s.mu.Lock()
	s.id = 0
	s.sent, s.sentEnd, s.gotHead, s.heard, s.ended, s.reset = false, false, false, false, false, false
	s.status, s.fields, s.declared, s.length, s.received, s.err = 0, nil, -1, -1, 0, nil
	s.drop = s.head
	s.recvWindow = int64(s.cc.c.opts.H2.StreamWindow)
	s.unrefunded = 0
	s.buf.reset(s.cc.c)
	s.mu.Unlock()
}

// stop ends the request's use of s: its timer, its buffered data.
func (s *h2stream) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Lock()
	s.buf.reset(s.cc.c)
	s.id = 0 // the read loop must not mistake it for the stream it was
	s.mu.Unlock()
	s.ctx, s.done = nil, nil
}

// markSent notes the HEADERS, or the end of the request, written.
func (s *h2stream) markSent(end bool) {
	s.mu.Lock()
	s.sent = true
	s.sentEnd = s.sentEnd || end
	s.mu.Unlock()
}

// signal wakes whoever waits on s.
func (s *h2stream) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// wait blocks until the read loop has news for s, the request's context
// ends or its deadline passes.
func (s *h2stream) wait() error {
	select {
	case <-s.ready:
		return nil
	case <-s.done:
		return fmt.Errorf("HTTP/2 request: %w", s.ctx.Err())
	case <-s.expired:
		s.expired = nil // the timer fired: its channel gives nothing more
		return errH2Timeout
	}
}

// awaitHead waits for the response's head.
func (s *h2stream) awaitHead() error {
	for {
		s.mu.Lock()
		got, err := s.gotHead, s.err
		s.mu.Unlock()
		if got {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.wait(); err != nil {
			return err
		}
	}
}

// awaitWindow waits until the stream may send more of its body.
func (s *h2stream) awaitWindow() error {
	cc := s.cc
	for {
		if err := s.sendable(); err != nil {
			return err
		}
		cc.mu.Lock()
		ok := cc.closed || !s.wantWindow || s.sendWindow > 0 && cc.sendWindow > 0
		cc.mu.Unlock()
		if ok {
			return nil
		}
		if err := s.wait(); err != nil {
			return err
		}
	}
}

// sendable returns why the stream may send no more, if it may not.
func (s *h2stream) sendable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return s.err
	case s.reset || s.ended:
		// The server answered (or reset) before the request was whole:
		// what it said is the response.
		return errStopSending
	}
	return nil
}

// abort ends the stream from our side for err: the read loop forgets it
// and the server is told, unless the stream is over already.
func (s *h2stream) abort(err error) {
	cc := s.cc
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	id := s.id
	tell := s.sent && !s.reset && !(s.ended && s.sentEnd)
	s.reset = true
	s.mu.Unlock()
	if id == 0 {
		return
	}
	cc.mu.Lock()
	if cc.streams[id] == s {
		delete(cc.streams, id)
	}
	// Nothing heard on the connection since this request went out: the
	// server may be gone. New requests go to another connection.
	if isTimeoutErr(err) && cc.frames.Load() == s.framesAt {
		cc.unusable = true
	}
	cc.mu.Unlock()
	if tell {
		cc.queueControl(ctlFrame{kind: ctlReset, stream: id, n: uint32(http2.ErrCodeCancel)})
	}
}

// connFailed fails the stream for the connection's failure, unless its
// response is whole already.
func (s *h2stream) connFailed(err error) {
	s.mu.Lock()
	if s.id != 0 && s.err == nil && !s.ended {
		if !s.heard && (!s.sent || s.idempotent) && !isProtocol(err) {
			// Nothing came back, and the server did not break the
			// protocol (which it would again): the request can go again
			// elsewhere.
			err = &retryError{err: err}
		}
		s.err = err
	}
	s.mu.Unlock()
	s.signal()
}

// h2exchange holds a response and its body, allocated together.
type h2exchange struct {
	resp Response
	body h2body
}

// h2body is a response body on an HTTP/2 stream.
type h2body struct {
	s *h2stream // nil once closed
}

func (b *h2body) Read(p []byte) (int, error) {
	s := b.s
	if s == nil {
		return 0, errBodyClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.mu.Lock()
		if s.drop {
			// HEAD, 204, 304: no body, whatever the server sends.
			s.mu.Unlock()
			return 0, io.EOF
		}
		if s.buf.n > 0 {
			n := s.buf.read(s.cc.c, p)
			s.unrefunded += int64(n)
			var refund int64
			// The server is told in batches, and not at all once the
			// stream has ended.
			if !s.ended && !s.reset && s.unrefunded >= int64(s.cc.c.opts.H2.StreamWindow)/4 {
				refund, s.unrefunded = s.unrefunded, 0
				s.recvWindow += refund
			}
			var err error
			if s.buf.n == 0 && s.ended {
				err = s.endErr()
			}
			id := s.id
			s.mu.Unlock()
			if refund > 0 {
				s.cc.queueControl(ctlFrame{kind: ctlWindow, stream: id, n: uint32(refund)})
			}
			return n, err
		}
		if s.ended {
			err := s.endErr()
			s.mu.Unlock()
			return 0, err
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if err := s.wait(); err != nil {
			s.abort(err)
			return 0, err
		}
	}
}

// endErr is what a read past the end of an ended stream's data returns.
// Called with s.mu.
func (s *h2stream) endErr() error {
	if s.err != nil {
		return s.err
	}
	return io.EOF
}

// Close releases the stream: the server is told to stop if the body was
// not read to its end. The connection stays open for other requests.
func (b *h2body) Close() error {
	s := b.s
	if s == nil {
		return nil
	}
	b.s = nil
	s.mu.Lock()
	// Clean: the response read to its end, and the request sent whole (or
	// the stream reset already); otherwise the server is told to stop.
	clean := s.ended && s.buf.n == 0 && (s.sentEnd || s.reset)
	s.mu.Unlock()
	if !clean {
		s.abort(errBodyClosed)
	}
	s.cc.finish(s)
	return nil
}

// h2header is an HTTP/2 response's header fields as received: names in
// lowercase, as HTTP/2 requires.
type h2header []hpack.HeaderField

func (h h2header) get(name string) string {
	for _, f := range h {
		if lowerEqual(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

func (h h2header) values(name string) []string {
	var out []string
	for _, f := range h {
		if lowerEqual(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// httpHeader builds the map form, with names canonical as net/http
// presents them.
func (h h2header) httpHeader() http.Header {
	out := make(http.Header, len(h))
	for _, f := range h {
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		out[k] = append(out[k], f.Value)
	}
	return out
}

// lowerEqual reports whether lower, a lowercase name, equals name ignoring
// ASCII case.
func lowerEqual(lower, name string) bool {
	if len(lower) != len(name) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if lower[i] != c {
			return false
		}
	}
	return true
}

// dataBuf holds a stream's received, unread body in chunks from the
// client's pool: it never holds more than the stream's window, and gives
// each chunk back once read.
type dataBuf struct {
	chunks []*dataChunk
	r      int // read offset in chunks[0]
	n      int // unread bytes
}

// dataChunk is one piece of a dataBuf: a frame's worth.
type dataChunk struct {
	b [maxFrameSize]byte
	w int
}

func (d *dataBuf) write(c *Client, p []byte) {
	d.n += len(p)
	for len(p) > 0 {
		var last *dataChunk
		if k := len(d.chunks); k > 0 && d.chunks[k-1].w < len(d.chunks[k-1].b) {
			last = d.chunks[k-1]
		} else {
			last = c.chunks.Get().(*dataChunk)
			last.w = 0
			d.chunks = append(d.chunks, last)
		}
		m := copy(last.b[last.w:], p)
		last.w += m
		p = p[m:]
	}
}

func (d *dataBuf) read(c *Client, p []byte) int {
	n := 0
	for n < len(p) && len(d.chunks) > 0 {
		first := d.chunks[0]
		m := copy(p[n:], first.b[d.r:first.w])
		n += m
		d.r += m
		if d.r == first.w {
			if len(d.chunks) == 1 && first.w < len(first.b) {
				// Keep the last chunk for what comes next.
				break
			}
			c.chunks.Put(first)
			k := copy(d.chunks, d.chunks[1:])
			d.chunks[k] = nil
			d.chunks = d.chunks[:k]
			d.r = 0
		}
	}
	d.n -= n
	return n
}

// reset gives every chunk back.
func (d *dataBuf) reset(c *Client) {
	for i, ch := range d.chunks {
		c.chunks.Put(ch)
		d.chunks[i] = nil
	}
	d.chunks = d.chunks[:0]
	d.r, d.n = 0, 0
}
