package fetch

import (
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// tracer times the phases of one request (--extra timing). Both engines
// tell it through the same httptrace hooks: net/http and x/net/http2 by
// themselves, the lean engine where it dials, shakes hands and reads, and
// the net package's dialer and resolver, for DNS and connecting, from the
// context either engine dials with. net/http may call them from its own
// goroutines, and may dial a connection it then does not use, hence the
// lock and the reused flag.
type tracer struct {
	mu                  sync.Mutex
	start               time.Time
	dnsStart, dnsDone   time.Time
	connStart, connDone time.Time
	tlsStart, tlsDone   time.Time
	gotConn, firstByte  time.Time
	reused              bool
	hooks               httptrace.ClientTrace // one allocation with the tracer
	trace               *httptrace.ClientTrace
}

func newTracer() *tracer {
	t := &tracer{start: time.Now()}
	t.hooks = httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { t.mark(&t.dnsStart) },
		DNSDone:           func(httptrace.DNSDoneInfo) { t.markLast(&t.dnsDone) },
		ConnectStart:      func(string, string) { t.mark(&t.connStart) },
		ConnectDone:       func(string, string, error) { t.markLast(&t.connDone) },
		TLSHandshakeStart: func() { t.mark(&t.tlsStart) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { t.markLast(&t.tlsDone) },
		GotConn: func(info httptrace.GotConnInfo) {
			now := time.Now()
			t.mu.Lock()
			// A retry on a fresh connection tells again: the last one counts.
			t.gotConn, t.reused = now, info.Reused
			t.firstByte = time.Time{}
			t.mu.Unlock()
		},
		GotFirstResponseByte: func() { t.mark(&t.firstByte) },
	}
	t.trace = &t.hooks
	return t
}

// mark notes the first time a phase event happens.
func (t *tracer) mark(at *time.Time) {
	now := time.Now()
	t.mu.Lock()
	if at.IsZero() {
		*at = now
	}
	t.mu.Unlock()
}

// markLast notes the last time a phase event happens: the last of
// several dials (happy eyeballs) ends the phase.
func (t *tracer) markLast(at *time.Time) {
	now := time.Now()
	t.mu.Lock()
	*at = now
	t.mu.Unlock()
}

// span is the time from a to b, or 0 when either is unknown or they are
// out of order.
func span(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}

// timing returns the phases, the body having ended at end.
func (t *tracer) timing(end time.Time, tm *record.Timing) *record.Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	ready := t.gotConn
	if !t.reused {
		tm.DNS = span(t.dnsStart, t.dnsDone)
		tm.Connect = span(t.connStart, t.connDone)
		tm.TLS = span(t.tlsStart, t.tlsDone)
	}
	if ready.IsZero() {
		ready = t.start
	}
	first := t.firstByte
	if first.IsZero() {
		first = ready // an engine that could not tell: all of it is transfer
	}
	tm.TTFB = span(ready, first)
	tm.Transfer = span(first, end)
	return tm
}

// facts notes the --extra facts of the final response in r.
func (c *Client) facts(r *record.Record, resp *response, tr *tracer, hops []record.Hop) {
	x := c.opts.Extra
	if !x.Any() {
		return
	}
	// The facts and their timing in one allocation.
	both := &struct {
		f record.Facts
		t record.Timing
	}{}
	f := &both.f
	if x.Timing && tr != nil {
		f.Timing = tr.timing(time.Now(), &both.t)
	}
	if x.Conn && resp.conn.Remote != nil {
		f.RemoteAddr, f.Reused = resp.conn.Remote.String(), resp.conn.Reused
	}
	if x.TLS && resp.conn.TLS != nil {
		f.TLSVersion = tls.VersionName(resp.conn.TLS.Version)
		f.TLSCipher = tls.CipherSuiteName(resp.conn.TLS.CipherSuite)
	}
	if x.Redirects {
		f.Redirects = hops
	}
	r.Facts = f
}

// conditionalMethod reports the methods a conditional request is sent
// for: those that fetch a representation (RFC 9110 13.1.1, 13.1.3).
func conditionalMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// withValidators returns header with If-None-Match and If-Modified-Since
// from the previous record, or header itself when it has neither (or
// they could not be sent as header values: a hand-edited file).
func withValidators(header http.Header, p *record.Previous) (http.Header, bool) {
	etag, lm := validHeaderValue(p.ETag), validHeaderValue(p.LastModified)
	if etag == "" && lm == "" {
		return header, false
	}
	h := header.Clone()
	if etag != "" {
		h["If-None-Match"] = []string{etag}
	}
	if lm != "" {
		// A server that knows the ETag ignores this (RFC 9110 13.1.3);
		// one that only keeps dates uses it.
		h["If-Modified-Since"] = []string{lm}
	}
	return h, true
}

// validHeaderValue returns v when it can be sent as a header value.
func validHeaderValue(v string) string {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return ""
		}
	}
	return v
}
