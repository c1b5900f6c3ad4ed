package lean

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 is spoken by trawl's own client connection, built for bulk
// fetching on golang.org/x/net/http2's Framer and hpack:
//
//   - One read loop per connection hands frames to streams; there is no
//     goroutine per request. The worker that sends a request encodes its
//     HEADERS (and DATA) itself, under the connection's write lock, into a
//     buffer that the last writer to leave sends in one write: requests
//     that arrive together share a syscall and a TLS record.
//   - The read loop wakes a stream once per batch of frames it read, not
//     once per frame: a small response's HEADERS and DATA wake its worker
//     once.
//   - Flow control: the server may send each stream StreamWindow bytes
//     ahead of what the reader took, which is what a stream buffers at
//     most; the connection's window is given back as data arrives, so a
//     slow reader stalls only its own stream.
//   - A host's requests share a connection while it has room, spread over
//     up to ConnsPerHost connections (see H2Options).

// H2Options configures a Client's HTTP/2 connections. Zero values take
// the defaults.
type H2Options struct {
	// StreamWindow is the receive window offered for each stream: how far
	// the server may send a body ahead of its reader, and so what one
	// stream buffers at most (default 1 MiB).
	StreamWindow int32
	// ConnWindow is the receive window offered for each connection
	// (default 4 MiB). It bounds what is in flight on the connection; it
	// is given back as data arrives, so it does not bound what is
	// buffered (the stream windows do).
	ConnWindow int32
	// ConnsPerHost spreads a host's requests over up to this many
	// connections, each with its own read loop, before any connection
	// takes more than its share (default 1).
	ConnsPerHost int
	// Concurrency is how many requests may be in flight at once; a
	// connection's share is Concurrency / ConnsPerHost, rounded up.
	Concurrency int
}

const (
	defaultStreamWindow = 1 << 20
	defaultConnWindow   = 4 << 20
	// initialWindow is HTTP/2's window before SETTINGS say otherwise.
	initialWindow = 65535
	// assumedMaxStreams is what a server is taken to allow until its
	// SETTINGS arrive (RFC 9113 recommends at least 100).
	assumedMaxStreams = 100
	maxStreamID       = 1<<31 - 1
	// maxFrameSize is the largest frame trawl reads: HTTP/2's default,
	// which trawl does not raise.
	maxFrameSize = 16 << 10
	// h2Retries bounds how often a request the server did not process
	// (refused, or above a GOAWAY) goes again.
	h2Retries = 3
	// controlTimeout bounds a write of control frames (acknowledgements,
	// window updates, resets), and any write no request's deadline covers.
	controlTimeout = 10 * time.Second
	// writeGrace is how long a write may take at least, whatever the
	// deadline of the requests it carries: a write to a server that reads
	// takes far less, and one cut short breaks the connection.
	writeGrace = time.Second
	// flushAt is how much a writer of a long request body gathers before
	// it sends, so that the write buffer stays small.
	flushAt = 64 << 10
	// maxBatch bounds the frames the read loop reads before it wakes
	// the streams they concern.
	maxBatch = 64
	// maxPending bounds the control frames waiting to be written.
	maxPending = 4096
)

func (o H2Options) withDefaults() H2Options {
	if o.StreamWindow <= 0 {
		o.StreamWindow = defaultStreamWindow
	}
	if o.ConnWindow < initialWindow {
		o.ConnWindow = defaultConnWindow
	}
	if o.ConnsPerHost < 1 {
		o.ConnsPerHost = 1
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	return o
}

// retryError marks a request that the server did not process, which may
// go again on another connection: a refused stream, a stream above a
// GOAWAY's last, a connection that broke before the request was sent.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// StreamError reports an HTTP/2 stream the server reset.
type StreamError struct {
	Code http2.ErrCode
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("the server reset the HTTP/2 stream (%s)", e.Code)
}

var (
	errRefused     = errors.New("the server refused the HTTP/2 stream (REFUSED_STREAM); it was not processed")
	errGoingAway   = errors.New("the server is closing the HTTP/2 connection (GOAWAY); the request was not processed")
	errStreamIDs   = errors.New("the HTTP/2 connection has used up its stream IDs")
	errClosed      = errors.New("the HTTP/2 connection was closed")
	errBodyClosed  = errors.New("read on a closed body")
	errH2Timeout   = fmt.Errorf("no HTTP/2 response in time: %w", errDeadline)
	errDeadline    = deadlineError{}
	errStopSending = errors.New("the server answered before the request body was sent")
	errNoSettings  = &ProtocolError{What: "the HTTP/2 server did not start with SETTINGS"}
)

// deadlineError is a request's deadline passing; it is a timeout as a
// net.Error, and matches os.ErrDeadlineExceeded.
type deadlineError struct{}

func (deadlineError) Error() string        { return "i/o timeout" }
func (deadlineError) Timeout() bool        { return true }
func (deadlineError) Temporary() bool      { return true }
func (deadlineError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// isTimeoutErr reports a request's deadline or its context's passing.
func isTimeoutErr(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// h2host is what the pool knows of one host's HTTP/2 connections.
type h2host struct {
	conns   []*h2conn
	dialing int           // dials in progress that may end in HTTP/2
	dialed  chan struct{} // closed when a dial ends
	h1      bool          // the host's last TLS dial negotiated HTTP/1.1
	failed  bool          // the last dial failed: do not wait on dials
	// maxStreams is the MAX_CONCURRENT_STREAMS the host's connections
	// were last told, 0 before any was.
	maxStreams uint32
}

// takeH2 returns an HTTP/2 connection to the route's host with a stream
// reserved for req, or nil when the caller is to get a connection with
// getConn; dial is then true when the caller must report the outcome
// with h2Dialed. Requests to a host whose protocol is not known yet wait
// for a dial in progress rather than each dialing one: if it ends in
// HTTP/2, they share its connection.
func (c *Client) takeH2(ctx context.Context, rt route, req *Request) (cc *h2conn, dial bool, err error) {
	if rt.scheme != "https" || !c.opts.HTTP2 {
		return nil, false, nil
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		h := c.h2host(rt.key)
		if h.h1 {
			c.mu.Unlock()
			return nil, false, nil
		}
		cc, wait := c.pickH2(h)
		if cc != nil {
			if req.OnConn != nil {
				if err := req.OnConn(cc.info); err != nil {
					c.mu.Unlock()
					return nil, false, err
				}
			}
			if cc.reserve() {
				c.mu.Unlock()
				return cc, false, nil
			}
			c.mu.Unlock()
			continue
		}
		if !wait {
			h.dialing++
			c.mu.Unlock()
			return nil, true, nil
		}
		ch := h.dialed
		c.mu.Unlock()
		var expired <-chan time.Time
		if !req.Deadline.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(req.Deadline))
			}
			expired = timer.C
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("waiting for a connection: %w", ctx.Err())
		case <-expired:
			return nil, false, fmt.Errorf("waiting for a connection: %w", errDeadline)
		}
	}
}

// h2host returns the pool's entry for key, creating it. Called with c.mu.
func (c *Client) h2host(key string) *h2host {
	h := c.h2[key]
	if h != nil {
		return h
	}
	if len(c.h2) >= maxRoutes {
		// A list of a million hosts is not remembered whole: forget the
		// hosts with nothing open.
		for k, o := range c.h2 {
			if len(o.conns) == 0 && o.dialing == 0 {
				delete(c.h2, k)
			}
		}
	}
	h = &h2host{dialed: make(chan struct{})}
	c.h2[key] = h
	return h
}

// pickH2 chooses a connection of h with room for another stream, the
// least loaded. With none, wait says whether to wait for a dial in
// progress rather than dial. A connection takes its share of the
// streams (Concurrency / ConnsPerHost) until the host has ConnsPerHost
// connections, and then up to the server's limit. Called with c.mu.
func (c *Client) pickH2(h *h2host) (best *h2conn, wait bool) {
	now := time.Now()
	kept := h.conns[:0]
	for _, cc := range h.conns {
		if cc.expired(now, c.opts.IdleTimeout) {
			continue
		}
		if n := cc.peerMaxStreams.Load(); n > 0 {
			h.maxStreams = uint32(n)
		}
		kept = append(kept, cc)
	}
	clear(h.conns[len(kept):])
	h.conns = kept

	o := c.opts.H2
	share := (o.Concurrency + o.ConnsPerHost - 1) / o.ConnsPerHost
	if best = leastLoaded(h.conns, share); best != nil {
		return best, false
	}
	if !h.failed {
		if len(h.conns)+h.dialing < o.ConnsPerHost {
			return nil, false // open another
		}
		if h.dialing > 0 {
			return nil, true // one is on its way
		}
	}
	return leastLoaded(h.conns, 1<<30), false
}

// leastLoaded returns the connection with the fewest streams among those
// with fewer than limit (and than the server allows), or nil.
func leastLoaded(conns []*h2conn, limit int) *h2conn {
	var best *h2conn
	bestLoad := 0
	for _, cc := range conns {
		load, max := cc.load()
		if load < min(max, limit) && (best == nil || load < bestLoad) {
			best, bestLoad = cc, load
		}
	}
	return best
}

// h2Dialed reports how a dial that takeH2 asked for ended: with cn, or
// with an error (cn nil). Requests waiting for it look again.
func (c *Client) h2Dialed(key string, cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.h2host(key)
	h.dialing = max(h.dialing-1, 0)
	h.failed = cn == nil
	if cn != nil {
		h.h1 = cn.h2 == nil
	}
	close(h.dialed)
	h.dialed = make(chan struct{})
}

// newH2 starts HTTP/2 on a connection whose TLS handshake chose it, with
// a stream reserved for the request that dialed it, and adds it to the
// pool.
func (c *Client) newH2(nc net.Conn, key string, info ConnInfo) (*h2conn, error) {
	o := c.opts.H2
	cc := &h2conn{
		c:             c,
		key:           key,
		nc:            nc,
		streams:       map[uint32]*h2stream{},
		nextID:        1,
		active:        1,
		maxStreams:    assumedMaxStreams,
		initialWindow: initialWindow,
		sendWindow:    initialWindow,
		recvConn:      int64(o.ConnWindow),
		peerMaxFrame:  maxFrameSize,
		lower:         map[string]string{},
		wsem:          make(chan struct{}, 1),
	}
	cc.info = info
	cc.info.Reused = true // for every request but the first
	cc.onCancel = cc.interruptWrites
	cc.rs.r = nc
	cc.br = bufio.NewReaderSize(&cc.rs, 32<<10)
	cc.fr = http2.NewFramer(&cc.wbuf, cc.br)
	cc.fr.SetReuseFrames()
	cc.fr.SetMaxReadFrameSize(maxFrameSize)
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	cc.hdec = hpack.NewDecoder(4096, cc.emit)
	cc.hdec.SetMaxStringLength(c.opts.MaxHeaderBytes)

	// The preface, our settings and the connection's window in one write.
	cc.wbuf.b = append(cc.wbuf.b, http2.ClientPreface...)
	err := cc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(o.StreamWindow)},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(c.opts.MaxHeaderBytes)},
	)
	if err == nil && o.ConnWindow > initialWindow {
		err = cc.fr.WriteWindowUpdate(0, uint32(o.ConnWindow-initialWindow))
	}
	if err == nil {
		nc.SetWriteDeadline(time.Now().Add(controlTimeout))
		_, err = nc.Write(cc.wbuf.b)
		cc.wbuf.b = cc.wbuf.b[:0]
	}
	if err != nil {
		return nil, fmt.Errorf("starting HTTP/2: %w", err)
	}
	c.mu.Lock()
	h := c.h2host(key)
	if h.maxStreams > 0 {
		// Until its own SETTINGS come, the connection takes what the
		// host's last one was told, rather than opening more streams
		// than the server allows and having them refused.
		cc.maxStreams = h.maxStreams
	}
	h.conns = append(h.conns, cc)
	h.h1 = false // a host may change its mind
	c.mu.Unlock()
	go cc.readLoop()
	return cc, nil
}

// h2conn is an HTTP/2 connection, shared by concurrent requests.
type h2conn struct {
	c    *Client
	key  string
	nc   net.Conn
	info ConnInfo // as requests after the first see it

	// Writing. A writer takes the write lock (wsem, a one-slot semaphore:
	// "wmu" below), appends frames to wbuf and, if no other writer is
	// waiting (waiting counts them, holder included), sends wbuf: the last
	// of a crowd sends for all.
	wsem         chan struct{}
	waiting      atomic.Int32
	wbuf         writeBuf
	fr           *http2.Framer // writes to wbuf (under wmu); reads from br (read loop)
	henc         *hpack.Encoder
	hbuf         bytes.Buffer
	lower        map[string]string // request header names, lowercased
	authHost     string            // the URL host authority was made from
	authority    string
	peerMaxFrame uint32 // the server's MAX_FRAME_SIZE
	// sendBy is the latest deadline of the requests whose frames are in
	// wbuf: a write that carries them all takes until then.
	sendBy   time.Time
	flushing atomic.Bool
	// control frames queued by those who must not block on wmu (the read
	// loop, readers giving back window, cancelled streams); whoever holds
	// wmu next sends them.
	npending atomic.Int32
	// peerMaxStreams is the server's MAX_CONCURRENT_STREAMS once it has
	// said, for the pool to remember for the host.
	peerMaxStreams atomic.Int64

	// The read loop's own.
	br       *bufio.Reader
	rs       readSide // what br reads
	hdec     *hpack.Decoder
	hb       headerBlock
	woken    []*h2stream
	batch    uint64
	inBatch  int // frames read in this batch
	ctl      []ctlFrame
	recvConn int64         // what the server may still send on the connection
	unacked  int64         // received and not yet given back
	settled  bool          // the server's first SETTINGS arrived
	frames   atomic.Uint64 // read (but SETTINGS), for telling a silent server

	mu            sync.Mutex
	streams       map[uint32]*h2stream
	free          []*h2stream
	pending       []ctlFrame
	nextID        uint32
	active        int    // streams reserved or open
	maxStreams    uint32 // the server's MAX_CONCURRENT_STREAMS
	initialWindow int64  // the server's INITIAL_WINDOW_SIZE
	sendWindow    int64  // what we may still send on the connection
	goAway        bool
	goAwayID      uint32
	unusable      bool // takes no more streams
	closed        bool
	err           error
	idleSince     time.Time
	// One context watch shared by the streams of one context (a run's
	// workers share one), so that cancelling it interrupts a blocked
	// write without a registration per request.
	watchDone <-chan struct{}
	watchRefs int
	watchStop func() bool
	onCancel  func()
}

// writeBuf gathers frames until they are sent.
type writeBuf struct{ b []byte }

func (w *writeBuf) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// ctlFrame is a control frame waiting to be written.
type ctlFrame struct {
	kind   ctlKind
	stream uint32
	n      uint32 // increment or error code
	ping   [8]byte
	set    peerSettings
}

type ctlKind uint8

const (
	ctlWindow ctlKind = iota
	ctlReset
	ctlPing
	ctlSettingsAck
)

// peerSettings are the server's settings that change how frames are
// written; they take effect, under wmu, when their ACK is written.
type peerSettings struct {
	maxFrame, tableSize uint32
	hasTable            bool
}

// reserve takes a stream slot for a request. Called with c.mu.
func (cc *h2conn) reserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed || cc.goAway || cc.unusable || uint32(cc.active) >= cc.maxStreams {
		return false
	}
	cc.active++
	return true
}

// load returns the streams in use and how many the connection takes now.
func (cc *h2conn) load() (active, limit int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed || cc.goAway || cc.unusable {
		return cc.active, 0
	}
	return cc.active, int(min(cc.maxStreams, 1<<20))
}

// expired reports a connection the pool drops: closed, or idle too long
// (which closes it).
func (cc *h2conn) expired(now time.Time, idle time.Duration) bool {
	cc.mu.Lock()
	closed := cc.closed
	stale := !closed && cc.active == 0 && now.Sub(cc.idleSince) > idle && !cc.idleSince.IsZero()
	cc.mu.Unlock()
	if stale {
		cc.fail(errClosed)
	}
	return closed || stale
}

// lockWrite takes the write lock for s's request, counting the writer as
// waiting until unlockWrite. A writer whose request ends (its context, its
// deadline) before it has the lock gives up alone: the lock's holder may
// be sending a long body, for another request, to a server that reads
// slowly, and the connection is not failed for it. A write that is stuck
// fails the connection by itself, at its deadline (see flush). With s nil
// (tests) it waits as long as it takes.
func (cc *h2conn) lockWrite(s *h2stream) error {
	cc.waiting.Add(1)
	if cc.tryLock() {
		return nil
	}
	var done <-chan struct{}
	var expired <-chan time.Time
	if s != nil {
		done, expired = s.done, s.expired
	}
	var err error
	select {
	case cc.wsem <- struct{}{}:
		return nil
	case <-done:
		err = s.ctx.Err()
	case <-expired:
		s.expired = nil
		err = errH2Timeout
	}
	cc.waiting.Add(-1)
	return fmt.Errorf("waiting to write to the HTTP/2 connection: %w", err)
}

// tryLock takes the write lock if it is free.
func (cc *h2conn) tryLock() bool {
	select {
	case cc.wsem <- struct{}{}:
		return true
	default:
		return false
	}
}

// unlockWrite writes the queued control frames, sends everything
// gathered if no other writer is waiting (one will send it otherwise),
// and releases the lock. dl is the deadline of the request whose frames
// the writer added (see sendBy), zero for a writer of control frames.
func (cc *h2conn) unlockWrite(dl time.Time) error {
	cc.sendWithin(dl)
	yielded := false
	for {
		cc.writePending()
		var err error
		if cc.waiting.Add(-1) == 0 && len(cc.wbuf.b) > 0 {
			if !yielded && len(cc.wbuf.b) < flushAt {
				// The read loop wakes several workers at once, and on few
				// CPUs they run one after another, each finding no other
				// writer waiting. Letting those ready to run go first lets
				// them add their requests to this write; whoever is last
				// then sends them all. If the lock is taken when we come
				// back, its holder (who counts itself as waiting) sends
				// ours too.
				yielded = true
				<-cc.wsem
				runtime.Gosched()
				if !cc.tryLock() {
					return nil
				}
				cc.waiting.Add(1)
				continue
			}
			err = cc.flush(time.Time{})
		}
		<-cc.wsem
		if err != nil {
			return err
		}
		// A control frame queued while we held the lock, by someone who
		// found it taken, is ours to send if nobody else takes the lock.
		if cc.npending.Load() == 0 || !cc.tryLock() {
			return nil
		}
		cc.waiting.Add(1)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sendWithin notes that frames of a request with deadline dl are in the
// write buffer. Called with wmu.
func (cc *h2conn) sendWithin(dl time.Time) {
	if !dl.IsZero() && dl.After(cc.sendBy) {
		cc.sendBy = dl
	}
}

// writeDeadline is a request's deadline as its frames' write takes it:
// one without a deadline still must not hold the write lock for ever on a
// server that stopped reading.
func writeDeadline(s *h2stream) time.Time {
	if s.deadline.IsZero() {
		return time.Now().Add(controlTimeout)
	}
	return s.deadline
}

// queueControl queues control frames and sends them unless a writer
// holds the lock (which then does): it never waits for the lock.
func (cc *h2conn) queueControl(fs ...ctlFrame) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.pending = append(cc.pending, fs...)
	n := len(cc.pending)
	cc.npending.Store(int32(n))
	cc.mu.Unlock()
	if n > maxPending {
		// A server that sends PINGs or SETTINGS faster than it takes our
		// answers would otherwise grow this queue without end.
		cc.fail(h2Error(http2.ErrCodeEnhanceYourCalm, "the server sent more than %d control frames without reading the answers", maxPending))
		return
	}
	if cc.tryLock() {
		cc.waiting.Add(1)
		cc.unlockWrite(time.Time{})
	}
}

// writePending encodes the queued control frames. Called with wmu.
func (cc *h2conn) writePending() {
	if cc.npending.Load() == 0 {
		return
	}
	cc.mu.Lock()
	fs := cc.pending
	cc.pending = nil
	cc.npending.Store(0)
	cc.mu.Unlock()
	for i := range fs {
		f := &fs[i]
		switch f.kind {
		case ctlWindow:
			cc.fr.WriteWindowUpdate(f.stream, f.n)
		case ctlReset:
			cc.fr.WriteRSTStream(f.stream, http2.ErrCode(f.n))
		case ctlPing:
			cc.fr.WritePing(true, f.ping)
		case ctlSettingsAck:
			if f.set.maxFrame != 0 {
				cc.peerMaxFrame = f.set.maxFrame
			}
			if f.set.hasTable {
				cc.henc.SetMaxDynamicTableSizeLimit(f.set.tableSize)
			}
			cc.fr.WriteSettingsAck()
		}
	}
}

// flush sends what has gathered, dl being the deadline of the caller's
// request (zero for none). Called with wmu. The frames may be several
// requests': the write takes until the latest of their deadlines, since
// cutting it short breaks the connection, and every one of them with it;
// control frames alone take controlTimeout. A failed write breaks the
// connection: frames may have gone out in part.
func (cc *h2conn) flush(dl time.Time) error {
	cc.sendWithin(dl)
	dl, cc.sendBy = cc.sendBy, time.Time{}
	if len(cc.wbuf.b) == 0 {
		return nil
	}
	now := time.Now()
	if dl.IsZero() {
		dl = now.Add(controlTimeout)
	}
	// A write that times out breaks the connection even when nothing of
	// it went out (crypto/tls takes any write error as final): a request
	// whose deadline is passing as it writes gets writeGrace more, rather
	// than failing every stream on the connection for its own lateness.
	dl = later(dl, now.Add(writeGrace))
	cc.flushing.Store(true)
	cc.nc.SetWriteDeadline(dl)
	_, err := cc.nc.Write(cc.wbuf.b)
	cc.flushing.Store(false)
	if cap(cc.wbuf.b) > 4*flushAt {
		cc.wbuf.b = nil // a burst's buffer is not worth keeping
	} else {
		cc.wbuf.b = cc.wbuf.b[:0]
	}
	if err != nil {
		cc.fail(fmt.Errorf("%w: %w", errWrite, err))
		return cc.cause()
	}
	return nil
}

// cause is why the connection failed: when the write failed because
// another party closed it, the reason that party gave.
func (cc *h2conn) cause() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// interruptWrites wakes a write in progress, for a cancelled context,
// when every stream on the connection is cancelled: a write cut short
// breaks the connection, and the write carries other requests' frames
// too, which a request's cancellation must not cost.
func (cc *h2conn) interruptWrites() {
	if !cc.flushing.Load() {
		return
	}
	cc.mu.Lock()
	all := true
	for _, s := range cc.streams {
		select {
		case <-s.ctxDone:
			continue
		default:
		}
		all = false
		break
	}
	cc.mu.Unlock()
	if all {
		cc.nc.SetWriteDeadline(aLongTimeAgo)
	}
}

// fail closes the connection for err, failing its open streams.
func (cc *h2conn) fail(err error) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.closed, cc.err = true, err
	streams := make([]*h2stream, 0, len(cc.streams))
	for id, s := range cc.streams {
		streams = append(streams, s)
		delete(cc.streams, id)
	}
	cc.pending = nil
	cc.npending.Store(0)
	cc.mu.Unlock()
	// The TCP connection itself: closing the TLS layer would first send
	// close_notify, a write that waits up to 5 seconds on a peer that
	// stopped reading, and which HTTP/2 has no need of.
	if tc, ok := cc.nc.(interface{ NetConn() net.Conn }); ok {
		tc.NetConn().Close()
	} else {
		cc.nc.Close()
	}
	for _, s := range streams {
		s.connFailed(err)
	}
}

// doH2 sends req on a connection with a stream reserved for it. reused
// is false for the request that dialed the connection.
func (c *Client) doH2(ctx context.Context, cc *h2conn, req *Request, reused bool) (*Response, error) {
	if t := req.Trace; t != nil && t.GotConn != nil {
		t.GotConn(httptrace.GotConnInfo{Reused: reused})
	}
	s := cc.newStream(ctx, req)
	if err := cc.send(s, req); err != nil {
		cc.finish(s)
		return nil, err
	}
	if err := s.awaitHead(); err != nil {
		s.abort(err)
		cc.finish(s)
		return nil, err
	}
	if t := req.Trace; t != nil && t.GotFirstResponseByte != nil {
		// The head has come: its first byte came a moment before.
		t.GotFirstResponseByte()
	}
	ex := &h2exchange{}
	ex.body.s = s
	info := cc.info
	info.Reused = reused
	s.mu.Lock()
	ex.resp = Response{Status: s.status, Proto: "HTTP/2.0", ContentLength: s.declared, Conn: info, h2: s.fields}
	s.fields = nil
	s.mu.Unlock()
	ex.resp.Body = &ex.body
	return &ex.resp, nil
}

// send writes the request's HEADERS and body, as flow control allows.
func (cc *h2conn) send(s *h2stream, req *Request) error {
	if err := validHeaders(req.Header); err != nil {
		return err
	}
	if err := cc.lockWrite(s); err != nil {
		return err
	}
	body, err := cc.writeHead(s, req)
	if ferr := cc.unlockWrite(writeDeadline(s)); err == nil && ferr != nil {
		// The write failed, and the server may never have seen the
		// request: it can go again, unless the connection failed because
		// the server broke the protocol, which it would again.
		err = ferr
		if !isProtocol(ferr) {
			err = &retryError{err: ferr}
		}
	}
	for err == nil && len(body) > 0 {
		if err = s.awaitWindow(); err != nil {
			break
		}
		if err = cc.lockWrite(s); err != nil {
			break
		}
		body, err = cc.writeData(s, body)
		if ferr := cc.unlockWrite(writeDeadline(s)); err == nil && ferr != nil {
			err = ferr
		}
	}
	if errors.Is(err, errStopSending) {
		return nil // the server's answer, or its reset, is the outcome
	}
	if err != nil {
		if cerr := s.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// A write the cancellation interrupted fails with a timeout:
			// the cancellation is what happened.
			err = fmt.Errorf("HTTP/2 request: %w (%v)", cerr, err)
		}
		s.abort(err)
	}
	return err
}

// writeHead opens the stream and writes its HEADERS, then what of the
// body the windows allow, returning the rest. Called with wmu.
func (cc *h2conn) writeHead(s *h2stream, req *Request) ([]byte, error) {
	cc.mu.Lock()
	switch {
	case cc.closed:
		err := cc.err
		cc.mu.Unlock()
		if isProtocol(err) {
			return nil, err // the server would break the protocol again
		}
		return nil, &retryError{err: fmt.Errorf("%w: %w", errClosed, err)}
	case cc.goAway:
		cc.mu.Unlock()
		return nil, &retryError{err: errGoingAway}
	case cc.nextID > maxStreamID:
		cc.unusable = true
		cc.mu.Unlock()
		return nil, &retryError{err: errStreamIDs}
	}
	id := cc.nextID
	cc.nextID += 2
	s.mu.Lock()
	s.id = id
	s.sendWindow = cc.initialWindow
	s.mu.Unlock()
	cc.streams[id] = s
	cc.mu.Unlock()

	block := cc.encodeHeaders(req)
	endStream := req.Body == nil || len(req.Body) == 0
	first := true
	for first || len(block) > 0 {
		frag := block[:min(len(block), int(cc.peerMaxFrame))]
		block = block[len(frag):]
		if first {
			cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			cc.fr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
	s.markSent(endStream)
	if endStream {
		return nil, nil
	}
	return cc.writeData(s, req.Body)
}

// writeData writes what of body the stream's and the connection's send
// windows allow, returning the rest. Called with wmu.
func (cc *h2conn) writeData(s *h2stream, body []byte) ([]byte, error) {
	for len(body) > 0 {
		if err := s.sendable(); err != nil {
			return nil, err
		}
		cc.mu.Lock()
		if cc.closed {
			err := cc.err
			cc.mu.Unlock()
			return nil, err
		}
		n := min(int64(len(body)), s.sendWindow, cc.sendWindow, int64(cc.peerMaxFrame))
		if n <= 0 {
			s.wantWindow = true
			cc.mu.Unlock()
			return body, nil
		}
		s.sendWindow -= n
		cc.sendWindow -= n
		cc.mu.Unlock()
		end := int(n) == len(body)
		cc.fr.WriteData(s.id, end, body[:n])
		body = body[n:]
		if end {
			s.markSent(true)
		}
		if len(cc.wbuf.b) >= flushAt {
			if err := cc.flush(writeDeadline(s)); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// encodeHeaders encodes the request's header block. Called with wmu.
func (cc *h2conn) encodeHeaders(req *Request) []byte {
	u := req.URL
	authority := req.Host
	if authority == "" {
		if u.Host != cc.authHost || cc.authority == "" {
			cc.authHost, cc.authority = u.Host, string(appendHostHeader(nil, u))
		}
		authority = cc.authority
	}
	cc.hbuf.Reset()
	write := func(name, value string, sensitive bool) {
		cc.henc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: sensitive})
	}
	write(":method", req.Method, false)
	write(":scheme", "https", false)
	write(":authority", authority, false)
	// Paths differ from one request to the next: indexing them would only
	// push the headers that do repeat out of the table.
	write(":path", requestTarget(u, false), true)
	for k, vs := range req.Header {
		name := cc.lowerName(k)
		switch name {
		case "host", "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade", "content-length":
			continue // HTTP/2 says these another way, or not at all
		}
		for _, v := range vs {
			if name == "te" && v != "trailers" {
				continue
			}
			write(name, v, name == "authorization" || name == "proxy-authorization" || name == "cookie")
		}
	}
	if req.Body != nil {
		write("content-length", strconv.Itoa(len(req.Body)), false)
	}
	return cc.hbuf.Bytes()
}

// lowerName returns a header name as HTTP/2 writes it, lowercased,
// remembering the few names a run uses. Called with wmu.
func (cc *h2conn) lowerName(k string) string {
	if v, ok := cc.lower[k]; ok {
		return v
	}
	v := strings.ToLower(k)
	if len(cc.lower) < 256 {
		cc.lower[k] = v
	}
	return v
}

// validHeaders refuses request headers HTTP/2 cannot carry, before
// anything is encoded.
func validHeaders(h map[string][]string) error {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid request header name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("invalid value for request header %s", k)
			}
		}
	}
	return nil
}

// newStream prepares a stream for req: reused from the connection's
// free list, or new.
func (cc *h2conn) newStream(ctx context.Context, req *Request) *h2stream {
	cc.mu.Lock()
	var s *h2stream
	if n := len(cc.free); n > 0 {
		s = cc.free[n-1]
		cc.free[n-1] = nil
		cc.free = cc.free[:n-1]
	} else {
		s = &h2stream{cc: cc, ready: make(chan struct{}, 1)}
	}
	s.ctxDone = ctx.Done()
	if done := s.ctxDone; done != nil {
		switch {
		case cc.watchDone == done:
			cc.watchRefs++
			s.sharedWatch = true
		case cc.watchDone == nil:
			cc.watchDone, cc.watchRefs = done, 1
			cc.watchStop = context.AfterFunc(ctx, cc.onCancel)
			s.sharedWatch = true
		default:
			s.stopWatch = context.AfterFunc(ctx, cc.onCancel)
		}
	}
	cc.mu.Unlock()
	s.start(ctx, req)
	return s
}

// finish ends a request's use of its stream, giving its slot back.
func (cc *h2conn) finish(s *h2stream) {
	s.stop()
	cc.mu.Lock()
	if s.id != 0 && cc.streams[s.id] == s {
		delete(cc.streams, s.id)
	}
	cc.active--
	if s.sharedWatch {
		if cc.watchRefs--; cc.watchRefs == 0 {
			cc.watchStop()
			cc.watchDone, cc.watchStop = nil, nil
		}
		s.sharedWatch = false
	} else if s.stopWatch != nil {
		s.stopWatch()
		s.stopWatch = nil
	}
	closeNow := false
	if cc.active == 0 {
		cc.idleSince = time.Now()
		// A connection that takes no more streams is not kept: nor one
		// whose server allows none (MAX_CONCURRENT_STREAMS 0), which
		// would otherwise stay open, useless, until it is idle too long.
		closeNow = cc.goAway || cc.unusable || cc.maxStreams == 0
	}
	if len(cc.free) < 256 {
		cc.free = append(cc.free, s)
	}
	cc.mu.Unlock()
	if closeNow {
		cc.fail(errClosed)
	}
}

// isProtocol reports a ProtocolError: a server that broke the protocol.
func isProtocol(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

// retryH2 reports whether a request that failed with err goes again: the
// server did not process it. tries counts the goes.
func (c *Client) retryH2(ctx context.Context, req *Request, err error, tries *int) bool {
	if err == nil || !isRetry(err) || *tries >= h2Retries || ctx.Err() != nil {
		return false
	}
	if !req.Deadline.IsZero() && !time.Now().Before(req.Deadline) {
		return false
	}
	*tries++
	return true
}

// isRetry reports an error that marks a request the server did not process.
func isRetry(err error) bool {
	var re *retryError
	return errors.As(err, &re)
}
