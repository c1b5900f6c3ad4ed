package lean

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// errGoneAway ends the read loop of a connection that the server is
// closing and that has nothing open.
var errGoneAway = errors.New("the server closed the idle HTTP/2 connection (GOAWAY)")

// h2Error is a connection error: the server broke the protocol.
func h2Error(code http2.ErrCode, format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf("HTTP/2 %v: %s", code, fmt.Sprintf(format, args...))}
}

// readLoop reads the connection's frames until it fails or is closed,
// then fails what is still open on it.
func (cc *h2conn) readLoop() {
	cc.batch = 1
	err := cc.readFrames()
	cc.fail(err)
	// Streams the last frames ended are no longer the connection's to
	// fail, but still wait to be woken.
	cc.endBatch()
}

func (cc *h2conn) readFrames() error {
	for {
		fh, err := cc.fr.ReadFrameHeader()
		var f http2.Frame
		if err == nil {
			f, err = cc.fr.ReadFrameForHeader(fh)
		}
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) && fh.Type == http2.FrameHeaders {
				// A HEADERS frame refused (its padding longer than
				// itself) takes its header block with it, and HPACK's
				// table with the block: what the server encodes next
				// cannot be decoded.
				return h2Error(http2.ErrCodeProtocol, "a HEADERS frame on stream %d whose header block cannot be read", se.StreamID)
			}
			if errors.As(err, &se) {
				// A frame for one stream that the framer refused (a zero
				// window increment): that stream fails, the rest go on.
				if s := cc.lookup(se.StreamID); s != nil {
					cc.failStream(s, se.StreamID, se.Code, h2Error(se.Code, "%v", se))
				}
				cc.endBatch()
				continue
			}
			return cc.readErr(err)
		}
		if _, ok := f.(*http2.SettingsFrame); !ok {
			// SETTINGS and their ACKs concern the connection, not any
			// request: they do not tell a server that went silent on
			// its requests from one that is alive.
			cc.frames.Add(1)
		}
		if !cc.settled {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				return errNoSettings
			}
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			err = cc.onData(f)
		case *http2.HeadersFrame:
			err = cc.onHeaders(f)
		case *http2.SettingsFrame:
			err = cc.onSettings(f)
		case *http2.WindowUpdateFrame:
			err = cc.onWindowUpdate(f)
		case *http2.PingFrame:
			if !f.IsAck() {
				cc.ctl = append(cc.ctl, ctlFrame{kind: ctlPing, ping: f.Data})
			}
		case *http2.RSTStreamFrame:
			err = cc.onReset(f)
		case *http2.GoAwayFrame:
			err = cc.onGoAway(f)
		case *http2.PushPromiseFrame:
			err = h2Error(http2.ErrCodeProtocol, "the server pushed a stream, which trawl does not allow")
		}
		if err != nil {
			return err
		}
		// The end of what one read brought: wake the streams it concerned
		// and send what it calls for, once. A server whose frames never
		// pause (so that reads never end at a frame's end) has its batch
		// cut after maxBatch frames: the streams must not wait for a pause
		// that may never come, nor control frames gather without bound.
		if cc.inBatch++; cc.br.Buffered() == 0 || cc.inBatch >= maxBatch {
			cc.endBatch()
		}
	}
}

// readErr describes why reading the connection stopped.
func (cc *h2conn) readErr(err error) error {
	cc.mu.Lock()
	closed, goAway, last := cc.closed, cc.goAway, cc.goAwayID
	cc.mu.Unlock()
	var ce http2.ConnectionError
	switch {
	case closed:
		return errClosed
	case errors.As(err, &ce):
		detail := "the server broke the protocol"
		if d := cc.fr.ErrorDetail(); d != nil {
			detail = d.Error()
		}
		return h2Error(http2.ErrCode(ce), "%s", detail)
	case errors.Is(err, http2.ErrFrameTooLarge):
		return h2Error(http2.ErrCodeFrameSize, "a frame larger than the %d bytes allowed", maxFrameSize)
	case errors.Is(err, io.ErrUnexpectedEOF) && cc.rs.err == nil:
		// The framer says this of a frame cut short by the connection's
		// end and of a frame too short for the fields its flags announce
		// (a pad length, a priority); only the first is the network's.
		return h2Error(http2.ErrCodeFrameSize, "a frame too short for the fields its flags announce")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if goAway {
			return fmt.Errorf("the server closed the HTTP/2 connection after GOAWAY (last stream %d): %w", last, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("the server closed the HTTP/2 connection: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("reading the HTTP/2 connection: %w", err)
}

// readSide is the connection as the read loop reads it: it remembers
// how reading it failed, to tell the connection's end from a malformed
// frame, which the framer reports alike. Read loop only.
type readSide struct {
	r   io.Reader
	err error
}

func (r *readSide) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil {
		r.err = err
	}
	return n, err
}

// endBatch wakes the streams the last frames concerned and queues the
// control frames they called for.
func (cc *h2conn) endBatch() {
	for i, s := range cc.woken {
		s.signal()
		cc.woken[i] = nil
	}
	cc.woken = cc.woken[:0]
	cc.batch++
	cc.inBatch = 0
	if len(cc.ctl) > 0 {
		cc.queueControl(cc.ctl...)
		cc.ctl = cc.ctl[:0]
	}
}

// wake queues s to be woken at the end of the batch. Read loop only.
func (cc *h2conn) wake(s *h2stream) {
	if s.batch != cc.batch {
		s.batch = cc.batch
		cc.woken = append(cc.woken, s)
	}
}

func (cc *h2conn) lookup(id uint32) *h2stream {
	cc.mu.Lock()
	s := cc.streams[id]
	cc.mu.Unlock()
	return s
}

// opened reports whether id is a stream trawl opened (and may have
// closed since).
func (cc *h2conn) opened(id uint32) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return id%2 == 1 && id < cc.nextID
}

// forget drops a stream the read loop is done with.
func (cc *h2conn) forget(id uint32, s *h2stream) {
	cc.mu.Lock()
	if cc.streams[id] == s {
		delete(cc.streams, id)
	}
	cc.mu.Unlock()
}

// failStream fails stream s (as id) for err and resets it with code.
func (cc *h2conn) failStream(s *h2stream, id uint32, code http2.ErrCode, err error) {
	s.mu.Lock()
	if s.id != id {
		s.mu.Unlock()
		return
	}
	if s.err == nil {
		s.err = err
	}
	tell := !s.reset
	s.reset = true
	s.mu.Unlock()
	cc.forget(id, s)
	if tell {
		cc.ctl = append(cc.ctl, ctlFrame{kind: ctlReset, stream: id, n: uint32(code)})
	}
	cc.wake(s)
}

func (cc *h2conn) onData(f *http2.DataFrame) error {
	n := int64(f.Length)
	if n > cc.recvConn {
		return h2Error(http2.ErrCodeFlowControl, "the server sent more than the connection's window")
	}
	// The connection's window goes back as data arrives, in batches: what
	// a stream may buffer is its own window's business.
	cc.recvConn -= n
	cc.unacked += n
	if cc.unacked >= int64(cc.c.opts.H2.ConnWindow)/4 {
		cc.ctl = append(cc.ctl, ctlFrame{kind: ctlWindow, n: uint32(cc.unacked)})
		cc.recvConn += cc.unacked
		cc.unacked = 0
	}
	id := f.StreamID
	s := cc.lookup(id)
	if s == nil {
		if !cc.opened(id) {
			return h2Error(http2.ErrCodeProtocol, "DATA on stream %d, which trawl never opened", id)
		}
		return nil // a stream closed already: its window went back above
	}
	data := f.Data()
	s.mu.Lock()
	if s.id != id {
		s.mu.Unlock()
		return nil
	}
	s.heard = true
	var fail error
	code := http2.ErrCodeProtocol
	switch {
	case s.ended:
		fail, code = h2Error(http2.ErrCodeStreamClosed, "DATA after the end of stream %d", id), http2.ErrCodeStreamClosed
	case n > s.recvWindow:
		fail, code = h2Error(http2.ErrCodeFlowControl, "the server sent more than stream %d's window", id), http2.ErrCodeFlowControl
	case !s.gotHead:
		fail = h2Error(http2.ErrCodeProtocol, "DATA before the response headers on stream %d", id)
	case s.length >= 0 && s.received+int64(len(data)) > s.length:
		fail = protocolErrorf("the server sent more body than its Content-Length of %d", s.length)
	}
	if fail != nil {
		s.mu.Unlock()
		if code == http2.ErrCodeStreamClosed {
			// The response is whole: only the extra frame is refused.
			cc.ctl = append(cc.ctl, ctlFrame{kind: ctlReset, stream: id, n: uint32(code)})
			return nil
		}
		cc.failStream(s, id, code, fail)
		return nil
	}
	s.recvWindow -= n
	if pad := n - int64(len(data)); pad > 0 {
		// Padding is nobody's to read: its window goes back now.
		s.recvWindow += pad
		cc.ctl = append(cc.ctl, ctlFrame{kind: ctlWindow, stream: id, n: uint32(pad)})
	}
	s.received += int64(len(data))
	if !s.drop && len(data) > 0 {
		s.buf.write(cc.c, data)
	}
	forget := false
	if f.StreamEnded() {
		forget = s.end()
	}
	s.mu.Unlock()
	if forget {
		cc.forget(id, s)
	}
	cc.wake(s)
	return nil
}

// end notes the server's END_STREAM, and whether the stream is closed on
// both sides now. Called with s.mu.
func (s *h2stream) end() bool {
	s.ended = true
	if s.err == nil && s.received < s.length {
		s.err = fmt.Errorf("the server ended the body at %d of its %d bytes: %w", s.received, s.length, io.ErrUnexpectedEOF)
	}
	return s.sentEnd || s.reset
}

// headerBlock is the header block being decoded.
type headerBlock struct {
	fields     h2header
	status     int
	size       int
	tooBig     bool
	drop       bool // decoded only to keep HPACK's state: nobody reads it
	trailers   bool
	sawRegular bool
	invalid    string // why the block is malformed
}

// emit receives a decoded header field.
func (cc *h2conn) emit(f hpack.HeaderField) {
	hb := &cc.hb
	if hb.tooBig || hb.invalid != "" {
		return
	}
	hb.size += int(f.Size())
	if hb.size > cc.c.opts.MaxHeaderBytes {
		// Decoding goes on (HPACK's state must follow the server's), but
		// nothing more is kept.
		hb.tooBig, hb.fields = true, nil
		cc.hdec.SetEmitEnabled(false)
		return
	}
	if f.IsPseudo() {
		if hb.trailers || hb.sawRegular || f.Name != ":status" || hb.status != 0 {
			hb.invalid = fmt.Sprintf("misplaced HTTP/2 pseudo-header %q", f.Name)
			return
		}
		if hb.status = parseStatus(f.Value); hb.status == 0 {
			hb.invalid = fmt.Sprintf("malformed :status %q", truncate([]byte(f.Value)))
		}
		return
	}
	hb.sawRegular = true
	if hb.drop {
		return
	}
	if !validWireName(f.Name) {
		hb.invalid = fmt.Sprintf("malformed header name %q", truncate([]byte(f.Name)))
		return
	}
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		hb.invalid = fmt.Sprintf("control character in header %s", f.Name)
		return
	}
	if hb.fields == nil {
		hb.fields = make(h2header, 0, 8)
	}
	hb.fields = append(hb.fields, f)
}

// parseStatus reads a three-digit status code; 0 when it is not one.
func parseStatus(v string) int {
	if len(v) != 3 {
		return 0
	}
	n := 0
	for i := range 3 {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
		n = n*10 + int(v[i]-'0')
	}
	if n < 100 {
		return 0
	}
	return n
}

// validWireName reports a field name as HTTP/2 must send it: a token, in
// lowercase.
func validWireName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' || !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

func (cc *h2conn) onHeaders(f *http2.HeadersFrame) error {
	id := f.StreamID
	s := cc.lookup(id)
	if s == nil && !cc.opened(id) {
		return h2Error(http2.ErrCodeProtocol, "HEADERS on stream %d, which trawl never opened", id)
	}
	trailers := false
	if s != nil {
		s.mu.Lock()
		if s.id != id {
			s = nil
		} else {
			trailers = s.gotHead
		}
		s.mu.Unlock()
	}
	cc.hb = headerBlock{drop: s == nil || trailers, trailers: trailers}
	cc.hdec.SetEmitEnabled(true)
	// What a header block may take on the wire, frame headers included:
	// a server that sends CONTINUATION frames without end costs this and
	// no more.
	budget := 2*cc.c.opts.MaxHeaderBytes + 64<<10
	frag := f.HeaderBlockFragment()
	used := len(frag) + 9
	if _, err := cc.hdec.Write(frag); err != nil {
		return h2Error(http2.ErrCodeCompression, "undecodable header block: %v", err)
	}
	streamEnded := f.StreamEnded()
	for done := f.HeadersEnded(); !done; {
		next, err := cc.fr.ReadFrame()
		if err != nil {
			return cc.readErr(err)
		}
		cc.frames.Add(1)
		cf, ok := next.(*http2.ContinuationFrame)
		if !ok { // the framer lets nothing else through here
			return h2Error(http2.ErrCodeProtocol, "a header block cut by another frame")
		}
		frag = cf.HeaderBlockFragment()
		if used += len(frag) + 9; used > budget {
			return h2Error(http2.ErrCodeProtocol, "a header block larger than %d bytes", budget)
		}
		if _, err := cc.hdec.Write(frag); err != nil {
			return h2Error(http2.ErrCodeCompression, "undecodable header block: %v", err)
		}
		done = cf.HeadersEnded()
	}
	if err := cc.hdec.Close(); err != nil {
		return h2Error(http2.ErrCodeCompression, "undecodable header block: %v", err)
	}
	if s == nil {
		return nil
	}
	hb := &cc.hb
	s.mu.Lock()
	if s.id != id {
		s.mu.Unlock()
		return nil
	}
	s.heard = true
	var fail error
	forget := false
	switch {
	case trailers:
		// Trailers are decoded and dropped; they must end the stream.
		if !streamEnded {
			fail = h2Error(http2.ErrCodeProtocol, "a second header block that does not end stream %d", id)
		} else {
			forget = s.end()
		}
	case hb.tooBig:
		fail = protocolErrorf("response headers exceeded %d bytes", cc.c.opts.MaxHeaderBytes)
	case hb.invalid != "":
		fail = protocolErrorf("%s", hb.invalid)
	case hb.status == 0:
		fail = protocolErrorf("HTTP/2 response without :status")
	case hb.status == http.StatusSwitchingProtocols:
		fail = protocolErrorf("unasked-for 101 Switching Protocols")
	case hb.status < 200:
		if streamEnded {
			fail = protocolErrorf("interim response %d ends the stream", hb.status)
		}
		// 100 Continue, 103 Early Hints: the response follows.
	default:
		length, err := h2ContentLength(hb.fields)
		if err != nil {
			fail = err
			break
		}
		if s.head || hb.status == http.StatusNoContent || hb.status == http.StatusNotModified {
			length = 0
			s.length, s.drop = -1, true // whatever DATA comes is dropped, not counted
		} else {
			if length < 0 && streamEnded {
				length = 0
			}
			s.length = length
		}
		if hb.fields == nil {
			hb.fields = h2header{}
		}
		s.gotHead, s.status, s.fields = true, hb.status, hb.fields
		s.declared = length
		if streamEnded {
			forget = s.end()
		}
	}
	hb.fields = nil
	s.mu.Unlock()
	if fail != nil {
		cc.failStream(s, id, http2.ErrCodeProtocol, fail)
		return nil
	}
	if forget {
		cc.forget(id, s)
	}
	cc.wake(s)
	return nil
}

// h2ContentLength reads a response's Content-Length: -1 when there is
// none; conflicting or malformed values are a protocol error, as over
// HTTP/1.1.
func h2ContentLength(fields h2header) (int64, error) {
	n := int64(-1)
	for _, f := range fields {
		if f.Name != "content-length" {
			continue
		}
		v, err := parseContentLength([]byte(f.Value))
		if err != nil {
			return 0, err
		}
		if n >= 0 && v != n {
			return 0, protocolErrorf("conflicting Content-Length headers")
		}
		n = v
	}
	return n, nil
}

func (cc *h2conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var set peerSettings
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return h2Error(http2.ErrCodeProtocol, "invalid setting %v", st)
		}
		switch st.ID {
		case http2.SettingEnablePush:
			if st.Val != 0 {
				// RFC 9113, 6.5.2: a server must not say it may push.
				return h2Error(http2.ErrCodeProtocol, "a server's SETTINGS_ENABLE_PUSH of %d", st.Val)
			}
		case http2.SettingMaxFrameSize:
			set.maxFrame = st.Val
		case http2.SettingHeaderTableSize:
			set.tableSize, set.hasTable = st.Val, true
		case http2.SettingMaxConcurrentStreams:
			cc.mu.Lock()
			cc.maxStreams = st.Val
			cc.mu.Unlock()
			cc.peerMaxStreams.Store(int64(st.Val))
		case http2.SettingInitialWindowSize:
			return cc.setInitialWindow(int64(st.Val))
		}
		return nil
	})
	if err != nil {
		return err
	}
	cc.settled = true
	cc.ctl = append(cc.ctl, ctlFrame{kind: ctlSettingsAck, set: set})
	return nil
}

// maxWindow is the largest flow-control window HTTP/2 allows.
const maxWindow = 1<<31 - 1

// setInitialWindow applies a new INITIAL_WINDOW_SIZE to the open streams.
func (cc *h2conn) setInitialWindow(v int64) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delta := v - cc.initialWindow
	cc.initialWindow = v
	for _, s := range cc.streams {
		s.sendWindow += delta
		if s.sendWindow > maxWindow {
			return h2Error(http2.ErrCodeFlowControl, "a window beyond 2^31-1")
		}
		if delta > 0 && s.wantWindow {
			s.wantWindow = false
			cc.wake(s)
		}
	}
	return nil
}

func (cc *h2conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	incr := int64(f.Increment)
	cc.mu.Lock()
	if f.StreamID == 0 {
		cc.sendWindow += incr
		if cc.sendWindow > maxWindow {
			cc.mu.Unlock()
			return h2Error(http2.ErrCodeFlowControl, "a connection window beyond 2^31-1")
		}
		for _, s := range cc.streams {
			if s.wantWindow {
				s.wantWindow = false
				cc.wake(s)
			}
		}
		cc.mu.Unlock()
		return nil
	}
	s := cc.streams[f.StreamID]
	if s == nil {
		idle := f.StreamID%2 == 0 || f.StreamID >= cc.nextID
		cc.mu.Unlock()
		if idle {
			return h2Error(http2.ErrCodeProtocol, "WINDOW_UPDATE on stream %d, which trawl never opened", f.StreamID)
		}
		return nil // a stream closed already
	}
	s.sendWindow += incr
	over := s.sendWindow > maxWindow
	if s.wantWindow {
		s.wantWindow = false
		cc.wake(s)
	}
	cc.mu.Unlock()
	if over {
		cc.failStream(s, f.StreamID, http2.ErrCodeFlowControl, h2Error(http2.ErrCodeFlowControl, "a stream window beyond 2^31-1"))
	}
	return nil
}

func (cc *h2conn) onReset(f *http2.RSTStreamFrame) error {
	id := f.StreamID
	s := cc.lookup(id)
	if s == nil {
		if !cc.opened(id) {
			return h2Error(http2.ErrCodeProtocol, "RST_STREAM on stream %d, which trawl never opened", id)
		}
		return nil
	}
	s.mu.Lock()
	if s.id != id {
		s.mu.Unlock()
		return nil
	}
	switch {
	case f.ErrCode == http2.ErrCodeRefusedStream && !s.gotHead:
		s.err = &retryError{err: errRefused}
	case f.ErrCode == http2.ErrCodeNo && s.ended:
		// A whole response, and a server that wants no more of the request.
	case s.err == nil:
		s.err = &StreamError{Code: f.ErrCode}
	}
	s.reset = true
	s.mu.Unlock()
	cc.forget(id, s)
	cc.wake(s)
	return nil
}

func (cc *h2conn) onGoAway(f *http2.GoAwayFrame) error {
	cc.mu.Lock()
	if !cc.goAway || f.LastStreamID < cc.goAwayID {
		cc.goAwayID = f.LastStreamID
	}
	cc.goAway = true
	var refused []*h2stream
	var ids []uint32
	for id, s := range cc.streams {
		if id > cc.goAwayID {
			refused = append(refused, s)
			ids = append(ids, id)
			delete(cc.streams, id)
		}
	}
	idle := cc.active == 0
	cc.mu.Unlock()
	for i, s := range refused {
		s.mu.Lock()
		if s.id == ids[i] && s.err == nil && !s.ended {
			// Streams above the last the server will process never were:
			// they may go again on another connection.
			s.err = &retryError{err: errGoingAway}
		}
		s.reset = true
		s.mu.Unlock()
		cc.wake(s)
	}
	if idle {
		return errGoneAway
	}
	return nil
}
