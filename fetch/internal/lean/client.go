// Package lean is trawl's HTTP client engine for bulk fetching. HTTP/1.1
// is implemented here and runs synchronously on the caller's goroutine:
// one write and one read per request on a pooled connection, buffers
// reused, no goroutines or channel handoffs per request. When a server
// negotiates HTTP/2 (ALPN), the connection the engine dialed goes to its
// own HTTP/2 client connection (h2.go), so dialing, the address policy and
// pooling have one path for both protocols.
//
// Do sends one request and returns one response: redirects, retries,
// cookies and limits belong to the caller.
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
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// DialFunc connects to a network address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configures a Client.
type Options struct {
	// DialTarget connects to the host a URL names; the caller's address
	// policy and --resolve mapping live in it. DialProxy connects to a
	// proxy, which the policy exempts.
	DialTarget DialFunc
	DialProxy  DialFunc
	// Proxy returns the proxy for a URL, or nil for a direct connection.
	Proxy func(*url.URL) (*url.URL, error)
	// TLS is the base TLS configuration, cloned for each host.
	TLS *tls.Config
	// HTTP2 offers h2 during the TLS handshake; H2 configures the HTTP/2
	// connections.
	HTTP2 bool
	H2    H2Options
	// HandshakeTimeout bounds the TLS handshake (and a proxy's CONNECT).
	HandshakeTimeout time.Duration
	// MaxIdlePerHost bounds the idle connections kept for one host.
	MaxIdlePerHost int
	// IdleTimeout closes connections idle longer than this.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a response's status line and headers.
	MaxHeaderBytes int
}

// ConnInfo describes the connection a request used.
type ConnInfo struct {
	// Remote is the address connected to: the host's, or the proxy's.
	Remote net.Addr
	// Proxied is true when the connection goes through a proxy, whose
	// address Remote then is.
	Proxied bool
	// Reused is true for a connection that had served requests before.
	Reused bool
	// TLS is the handshake's outcome for https connections.
	TLS *tls.ConnectionState
}

// Request is one request to send.
type Request struct {
	Method string
	// URL is absolute; Host, when set, is sent as the Host header instead
	// of URL.Host.
	URL  *url.URL
	Host string
	// Header is sent as is; the caller sets User-Agent, Accept and the
	// rest.
	Header http.Header
	// Body is sent with a Content-Length; nil sends none.
	Body []byte
	// OnConn, when set, is called with the connection the request is
	// about to use, new or reused, before anything is sent; an error stops
	// the request with that error.
	OnConn func(ConnInfo) error
	// Deadline, when set, bounds the whole exchange, the body included
	// (ctx's own deadline does too). Passing it here rather than in a
	// context derived per request spares that context's cost.
	Deadline time.Time
	// Trace, when set, hears the TLS handshake, the connection chosen and
	// the first byte of the response, as net/http tells a ClientTrace.
	// DNS and connecting are told by the dialer, through the context the
	// client dials with, which it gives the trace.
	Trace *httptrace.ClientTrace
	// Tap, when set, is given the bytes of an HTTP/1.1 exchange as they
	// cross the connection, for archiving. HTTP/2 has no such bytes: its
	// requests are not tapped.
	Tap Tap
}

// Tap receives the bytes of one HTTP/1.1 exchange exactly as sent and
// received. Each call's bytes are the caller's only for the call.
type Tap interface {
	// Sent is called with the request just before it is written, head
	// and body; again if it is sent again on a new connection.
	Sent(req []byte)
	// SetHead is called with the final response's status line and
	// headers and the blank line after them (interim 1xx responses are
	// skipped). framed says that the body comes in chunked framing,
	// whose bytes then go to Framed as they are read.
	SetHead(head []byte, framed bool)
	// Framed is called with each piece of a chunked body as read from
	// the connection: chunk sizes, extensions, data, line ends, trailers.
	Framed(p []byte)
}

// Response is one response. Its Body must be closed; the connection goes
// back to the pool only when the body was read to its end first.
type Response struct {
	Status int
	Proto  string
	// ContentLength is the declared length, -1 when unknown.
	ContentLength int64
	Body          io.ReadCloser
	Conn          ConnInfo

	h1 header
	h2 h2header
}

// Get returns the first value of a response header.
func (r *Response) Get(name string) string {
	if r.h2 != nil {
		return r.h2.get(name)
	}
	return r.h1.get(name)
}

// Values returns every value of a response header.
func (r *Response) Values(name string) []string {
	if r.h2 != nil {
		return r.h2.values(name)
	}
	return r.h1.values(name)
}

// Header returns the response headers as a map (built on each call).
func (r *Response) Header() http.Header {
	if r.h2 != nil {
		return r.h2.httpHeader()
	}
	return r.h1.httpHeader()
}

// Client sends requests. It is safe for concurrent use.
type Client struct {
	opts Options

	mu     sync.Mutex
	idle   map[string][]*conn
	h2     map[string]*h2host
	closed bool
	chunks sync.Pool // of *dataChunk, for HTTP/2 bodies

	routeMu sync.Mutex
	routes  map[routeKey]route // by scheme and host, with the proxy chosen

	watchMu sync.Mutex
	watches map[<-chan struct{}]*watch
}

// routeKey is what a route depends on.
type routeKey struct{ scheme, host string }

// watch holds the connections in use by requests of one context, so that
// cancelling it wakes them all: one registration with the context for all
// the requests sharing it (a run's workers share one), rather than one
// per request.
type watch struct {
	conns map[*conn]struct{}
	stop  func() bool
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.MaxIdlePerHost < 1 {
		opts.MaxIdlePerHost = 2
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 90 * time.Second
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 1 << 20
	}
	if opts.TLS == nil {
		opts.TLS = &tls.Config{}
	}
	opts.H2 = opts.H2.withDefaults()
	c := &Client{opts: opts, idle: map[string][]*conn{}, h2: map[string]*h2host{},
		routes: map[routeKey]route{}, watches: map[<-chan struct{}]*watch{}}
	c.chunks.New = func() any { return new(dataChunk) }
	return c
}

// CloseIdle closes the idle connections.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	idle, h2s := c.idle, c.h2
	c.idle, c.h2 = map[string][]*conn{}, map[string]*h2host{}
	c.mu.Unlock()
	for _, cs := range idle {
		for _, cn := range cs {
			cn.nc.Close()
		}
	}
	for _, h := range h2s {
		for _, cc := range h.conns {
			cc.fail(errClosed)
		}
	}
}

// route is where a request's connection goes.
type route struct {
	key    string   // pool key
	scheme string   // of the target
	addr   string   // host:port of the target
	host   string   // the target's host name, for TLS
	proxy  *url.URL // nil when direct
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

func (c *Client) routeFor(u *url.URL) (route, error) {
	k := routeKey{u.Scheme, u.Host}
	c.routeMu.Lock()
	r, ok := c.routes[k]
	c.routeMu.Unlock()
	if ok {
		return r, nil
	}
	r, err := c.newRoute(u)
	if err != nil {
		return r, err
	}
	c.routeMu.Lock()
	if len(c.routes) >= maxRoutes {
		clear(c.routes) // a list of a million hosts is not kept whole
	}
	c.routes[k] = r
	c.routeMu.Unlock()
	return r, nil
}

// maxRoutes bounds the routes remembered.
const maxRoutes = 4096

func (c *Client) newRoute(u *url.URL) (route, error) {
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	host, err := asciiHost(u.Hostname())
	if err != nil {
		return route{}, err
	}
	r := route{scheme: u.Scheme, addr: net.JoinHostPort(host, port), host: host}
	if c.opts.Proxy != nil {
		p, err := c.opts.Proxy(u)
		if err != nil {
			return r, fmt.Errorf("choosing a proxy: %w", err)
		}
		r.proxy = p
	}
	r.key = r.scheme + "://" + r.addr
	if r.proxy != nil {
		r.key += " via " + r.proxy.Redacted()
	}
	return r, nil
}

// Do sends req and reads the response's head. ctx bounds the whole
// exchange, the body included: its deadline is the connection's, and
// cancelling it stops a read in progress.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	rt, err := c.routeFor(req.URL)
	if err != nil {
		return nil, err
	}
	for attempt, h2Tries := 0, 0; ; attempt++ {
		h, dialing, err := c.takeH2(ctx, rt, req)
		if err != nil {
			return nil, err
		}
		if h != nil {
			resp, err := c.doH2(ctx, h, req, true)
			if c.retryH2(ctx, req, err, &h2Tries) {
				continue
			}
			return resp, err
		}
		cn, err := c.getConn(ctx, rt, attempt > 0, req)
		if dialing {
			c.h2Dialed(rt.key, cn)
		}
		if err != nil {
			return nil, err
		}
		if cn.h2 != nil {
			resp, err := c.doH2(ctx, cn.h2, req, false)
			if c.retryH2(ctx, req, err, &h2Tries) {
				continue
			}
			return resp, err
		}
		resp, err := cn.roundTrip(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		// A connection reused from the pool may have been closed by the
		// server while it was idle; if nothing came back, the request did
		// not reach it and may go again on a new connection (once), as
		// it may always when it could not even be written.
		if attempt == 0 && cn.reused && (errors.Is(err, errNoResponse) && idempotent(req.Method) || errors.Is(err, errWrite)) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// getConn returns an idle connection for the route, or dials one. fresh
// asks for a new connection.
func (c *Client) getConn(ctx context.Context, rt route, fresh bool, req *Request) (*conn, error) {
	if !fresh {
		now := time.Now()
		c.mu.Lock()
		cs := c.idle[rt.key]
		for len(cs) > 0 {
			cn := cs[len(cs)-1]
			cs[len(cs)-1] = nil
			cs = cs[:len(cs)-1]
			if now.Sub(cn.idleSince) < c.opts.IdleTimeout {
				c.idle[rt.key] = cs
				c.mu.Unlock()
				cn.reused = true
				return cn, nil
			}
			cn.nc.Close()
		}
		c.idle[rt.key] = cs
		c.mu.Unlock()
	}
	return c.dial(ctx, rt, req)
}

// putIdle returns a connection whose response was read to its end.
func (c *Client) putIdle(cn *conn) {
	cn.idleSince = time.Now()
	c.mu.Lock()
	if !c.closed && len(c.idle[cn.key]) < c.opts.MaxIdlePerHost {
		c.idle[cn.key] = append(c.idle[cn.key], cn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cn.nc.Close()
}

// dial opens a connection for the route: to the host or through its proxy,
// with TLS for https, and HTTP/2 when the server picks it.
func (c *Client) dial(ctx context.Context, rt route, req *Request) (*conn, error) {
	if req.Trace != nil && httptrace.ContextClientTrace(ctx) != req.Trace {
		// Only a request that dials pays for the context the dialer
		// reads DNS and connect times from.
		ctx = httptrace.WithClientTrace(ctx, req.Trace)
	}
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	var nc net.Conn
	var err error
	plainProxy := false // an http:// target through an HTTP proxy: absolute-form requests
	switch {
	case rt.proxy == nil:
		nc, err = c.opts.DialTarget(ctx, "tcp", rt.addr)
	case rt.proxy.Scheme == "socks5" || rt.proxy.Scheme == "socks5h":
		nc, err = c.dialSOCKS(ctx, rt)
	default:
		nc, err = c.dialProxy(ctx, rt.proxy)
		if err == nil && rt.scheme == "https" {
			err = c.connect(ctx, nc, rt)
		} else if err == nil {
			plainProxy = true
		}
	}
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	cn := &conn{nc: nc, key: rt.key, info: ConnInfo{Remote: nc.RemoteAddr(), Proxied: rt.proxy != nil}, absoluteForm: plainProxy, proxy: rt.proxy}
	if rt.scheme == "https" {
		t := req.Trace
		if t != nil && t.TLSHandshakeStart != nil {
			t.TLSHandshakeStart()
		}
		tc, err := c.handshake(ctx, nc, rt.host)
		if t != nil && t.TLSHandshakeDone != nil {
			var st tls.ConnectionState
			if err == nil {
				st = tc.ConnectionState()
			}
			t.TLSHandshakeDone(st, err)
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
		st := tc.ConnectionState()
		cn.nc, cn.info.TLS = tc, &st
		if st.NegotiatedProtocol == "h2" && c.opts.HTTP2 {
			if req.OnConn != nil {
				if err := req.OnConn(cn.info); err != nil {
					tc.Close()
					return nil, err
				}
			}
			h, err := c.newH2(tc, rt.key, cn.info)
			if err != nil {
				tc.Close()
				return nil, err
			}
			cn.h2 = h
			return cn, nil
		}
	}
	cn.br = bufio.NewReaderSize(cn.nc, 4<<10)
	return cn, nil
}

func (c *Client) handshake(ctx context.Context, nc net.Conn, host string) (*tls.Conn, error) {
	cfg := c.opts.TLS.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"http/1.1"}
	if c.opts.HTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	hctx := ctx
	if c.opts.HandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, c.opts.HandshakeTimeout)
		defer cancel()
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// dialProxy connects to an HTTP or HTTPS proxy.
func (c *Client) dialProxy(ctx context.Context, p *url.URL) (net.Conn, error) {
	port := p.Port()
	if port == "" {
		port = defaultPort(p.Scheme)
	}
	nc, err := c.opts.DialProxy(ctx, "tcp", net.JoinHostPort(p.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("connecting to the proxy: %w", err)
	}
	if p.Scheme == "https" {
		tc, err := c.handshake(ctx, nc, p.Hostname())
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("connecting to the proxy: %w", err)
		}
		return tc, nil
	}
	return nc, nil
}

// connect opens a tunnel to the route's host through an HTTP proxy.
func (c *Client) connect(ctx context.Context, nc net.Conn, rt route) error {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	if c.opts.HandshakeTimeout > 0 {
		nc.SetDeadline(time.Now().Add(c.opts.HandshakeTimeout))
	}
	defer nc.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", rt.addr, rt.addr)
	if auth := proxyAuth(rt.proxy); auth != "" {
		fmt.Fprintf(&b, "Proxy-Authorization: %s\r\n", auth)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return fmt.Errorf("asking the proxy for a tunnel: %w", err)
	}
	// Read the answer byte by byte-ish through a small buffer, so that
	// nothing after the head (the tunnel's first bytes) is consumed.
	br := bufio.NewReaderSize(&oneByteReader{nc}, 64)
	h, _, err := readHead(br, nil, 64<<10, http.MethodConnect)
	if err != nil {
		return fmt.Errorf("asking the proxy for a tunnel: %w", err)
	}
	if h.status/100 != 2 {
		return fmt.Errorf("the proxy refused the tunnel to %s: %d", rt.addr, h.status)
	}
	return nil
}

// oneByteReader reads one byte at a time, for the proxy's answer to
// CONNECT, which must not be read past.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// proxyAuth is the Proxy-Authorization value for a proxy URL's userinfo.
func proxyAuth(p *url.URL) string {
	if p == nil || p.User == nil {
		return ""
	}
	pass, _ := p.User.Password()
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(p.User.Username(), pass)
	return req.Header.Get("Authorization")
}

// isReset reports a connection reset by the peer.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// errWrite marks a request that could not be written to its connection.
var errWrite = errors.New("cannot send the request")

// conn is one HTTP/1.1 connection, used by one request at a time.
type conn struct {
	nc           net.Conn
	br           *bufio.Reader
	key          string
	info         ConnInfo
	reused       bool
	idleSince    time.Time
	absoluteForm bool // requests go to an HTTP proxy in absolute form
	proxy        *url.URL
	h2           *h2conn // set instead of br when the server chose HTTP/2

	wbuf    []byte // the request being written, reused
	scratch []byte // the response head being read, reused
}

// aLongTimeAgo is a deadline that has passed: setting it wakes any read
// or write in progress.
var aLongTimeAgo = time.Unix(1, 0)

func (cn *conn) roundTrip(ctx context.Context, c *Client, req *Request) (*Response, error) {
	info := cn.info
	info.Reused = cn.reused
	if req.OnConn != nil {
		if err := req.OnConn(info); err != nil {
			c.putIdleOrClose(cn, true)
			return nil, err
		}
	}
	cn.nc.SetDeadline(deadline(ctx, req))
	if !c.track(ctx, cn) {
		cn.nc.Close()
		return nil, ctx.Err()
	}
	t := req.Trace
	if t != nil && t.GotConn != nil {
		t.GotConn(httptrace.GotConnInfo{Conn: cn.nc, Reused: cn.reused})
	}

	cn.wbuf = cn.appendRequest(cn.wbuf[:0], req)
	if req.Tap != nil {
		req.Tap.Sent(cn.wbuf)
	}
	if _, err := cn.nc.Write(cn.wbuf); err != nil {
		c.untrack(ctx, cn)
		cn.nc.Close()
		return nil, fmt.Errorf("%w: %w", errWrite, err)
	}
	if t != nil && t.GotFirstResponseByte != nil {
		// Waiting for one byte first tells when the answer began; an
		// error here comes again, and is reported, from readHead.
		if _, err := cn.br.Peek(1); err == nil {
			t.GotFirstResponseByte()
		}
	}
	h, scratch, err := readHead(cn.br, cn.scratch, c.opts.MaxHeaderBytes, req.Method)
	if cap(scratch) <= 64<<10 {
		cn.scratch = scratch[:0] // a huge head's buffer is not worth keeping
	}
	if err != nil {
		c.untrack(ctx, cn)
		cn.nc.Close()
		return nil, err
	}
	if req.Tap != nil {
		// scratch holds the status line and headers as read; the blank
		// line that ended them was dropped from it.
		raw := make([]byte, 0, len(scratch)+len(h.blank))
		raw = append(append(raw, scratch...), h.blank...)
		req.Tap.SetHead(raw, h.chunked && req.Method != http.MethodHead)
	}
	// The response, its body and the body's reader in one allocation.
	ex := &exchange{}
	ex.resp = Response{Status: h.status, Proto: h.proto, ContentLength: h.contentLength, Conn: info, h1: h.hdr}
	ex.body = body{c: c, cn: cn, ctx: ctx, keep: !h.close}
	switch {
	case req.Method == http.MethodHead || h.contentLength == 0 && !h.chunked:
		ex.body.r = eofReader{}
	case h.chunked:
		ex.chunked = chunkedBody{br: cn.br, tap: req.Tap}
		ex.body.r = &ex.chunked
	case h.contentLength > 0:
		ex.fixed = fixedBody{br: cn.br, remain: h.contentLength}
		ex.body.r = &ex.fixed
	default:
		ex.body.r = closeBody{cn.br}
	}
	ex.resp.Body = &ex.body
	return &ex.resp, nil
}

// exchange holds a response and its body reader, allocated together.
type exchange struct {
	resp    Response
	body    body
	fixed   fixedBody
	chunked chunkedBody
}

// deadline is the earlier of the request's and the context's deadlines.
func deadline(ctx context.Context, req *Request) time.Time {
	dl, ok := ctx.Deadline()
	if req.Deadline.IsZero() || ok && dl.Before(req.Deadline) {
		return dl
	}
	return req.Deadline
}

// track registers cn as in use by a request of ctx, so that cancelling
// ctx wakes its reads and writes; false when ctx is done already.
func (c *Client) track(ctx context.Context, cn *conn) bool {
	done := ctx.Done()
	if done == nil {
		return true // never cancelled
	}
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	w, ok := c.watches[done]
	if !ok {
		w = &watch{conns: map[*conn]struct{}{}}
		c.watches[done] = w
		w.stop = context.AfterFunc(ctx, func() { c.cancelAll(done) })
	}
	w.conns[cn] = struct{}{}
	return true
}

// untrack ends cn's use by a request of ctx. It reports false when ctx
// was cancelled meanwhile, which has poisoned the connection's deadline.
func (c *Client) untrack(ctx context.Context, cn *conn) bool {
	done := ctx.Done()
	if done == nil {
		return true
	}
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	w, ok := c.watches[done]
	if !ok {
		return false // cancelled: cancelAll took the watch
	}
	delete(w.conns, cn)
	if len(w.conns) == 0 {
		// Nothing left to wake: let the context go, and forget it.
		delete(c.watches, done)
		if !w.stop() {
			return false
		}
	}
	return ctx.Err() == nil
}

// cancelAll wakes every connection in use by requests of a cancelled
// context: a deadline in the past ends their reads and writes.
func (c *Client) cancelAll(done <-chan struct{}) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	w, ok := c.watches[done]
	if !ok {
		return
	}
	delete(c.watches, done)
	for cn := range w.conns {
		cn.nc.SetDeadline(aLongTimeAgo)
	}
}

// putIdleOrClose returns cn to the pool when it is clean, else closes it.
func (c *Client) putIdleOrClose(cn *conn, clean bool) {
	if clean {
		c.putIdle(cn)
		return
	}
	cn.nc.Close()
}

// appendRequest writes the request line and headers.
func (cn *conn) appendRequest(b []byte, req *Request) []byte {
	u := req.URL
	b = append(b, req.Method...)
	b = append(b, ' ')
	if cn.absoluteForm {
		b = append(b, u.Scheme...)
		b = append(b, "://"...)
		b = appendHostHeader(b, u)
	}
	b = append(b, requestTarget(u, cn.absoluteForm)...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if req.Host != "" {
		b = append(b, req.Host...)
	} else {
		b = appendHostHeader(b, u)
	}
	b = append(b, "\r\n"...)
	for k, vs := range req.Header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if cn.absoluteForm {
		if auth := proxyAuth(cn.proxy); auth != "" {
			b = append(b, "Proxy-Authorization: "...)
			b = append(b, auth...)
			b = append(b, "\r\n"...)
		}
	}
	if req.Body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n\r\n"...)
		return append(b, req.Body...)
	}
	return append(b, "\r\n"...)
}

// AppendRequest appends req to b as this engine writes an HTTP/1.1
// request on a direct connection. It stands for requests whose bytes were
// not seen (sent as HTTP/2, or by another engine) where the bytes are
// wanted, as in an archive.
func AppendRequest(b []byte, req *Request) []byte {
	return (&conn{}).appendRequest(b, req)
}

// requestTarget is the request line's target: the path and query, or for
// a proxy the absolute form's rest after scheme and host. A URL whose path
// net/url cannot write (a stray %) carries it in Opaque as //host/path.
func requestTarget(u *url.URL, absolute bool) string {
	t := u.RequestURI()
	if u.Opaque != "" {
		if prefix := u.Scheme + "://" + u.Host; strings.HasPrefix(t, prefix) {
			t = t[len(prefix):]
		}
	}
	if t == "" || t[0] != '/' && t[0] != '*' {
		t = "/" + t
	}
	_ = absolute // the caller writes scheme and host first for a proxy
	return t
}

// appendHostHeader writes the Host header for u: the host in its ASCII
// form, with the port only when it is not the scheme's default.
func appendHostHeader(b []byte, u *url.URL) []byte {
	h, err := asciiHost(u.Hostname())
	if err != nil {
		h = u.Hostname() // routeFor refused it already
	}
	if strings.Contains(h, ":") {
		b = append(b, '[')
		b = append(b, h...)
		b = append(b, ']')
	} else {
		b = append(b, h...)
	}
	if p := u.Port(); p != "" && p != defaultPort(u.Scheme) {
		b = append(b, ':')
		b = append(b, p...)
	}
	return b
}

// asciiHost returns a host name as it goes on the wire and to DNS: a
// unicode name in its IDNA (punycode) form.
func asciiHost(host string) (string, error) {
	for i := range len(host) {
		if host[i] >= utf8.RuneSelf {
			a, err := idna.Lookup.ToASCII(host)
			if err != nil {
				return "", fmt.Errorf("host name %q has no IDNA form: %w", host, err)
			}
			return a, nil
		}
	}
	return host, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// body is a response body on an HTTP/1.1 connection. The connection is
// reused when the body was read to its end and the response allows it.
type body struct {
	c      *Client
	cn     *conn
	ctx    context.Context
	r      io.Reader
	keep   bool
	eof    bool
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on a closed body")
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

// SpliceTo writes up to max bytes of the rest of the body to f: what the
// connection's buffer holds, then, for a body of known length, the rest
// straight from the socket, which f reads itself (on Linux a TCP
// connection's bytes then go to the file by splice(2), never through user
// space). Fewer than max bytes and no error means the body ended.
func (b *body) SpliceTo(f *os.File, max int64) (int64, error) {
	fb, ok := b.r.(*fixedBody)
	if !ok || b.closed {
		return io.Copy(writerOnly{f}, &io.LimitedReader{R: readerOnly{b}, N: max})
	}
	var n int64
	if k := min(int64(b.cn.br.Buffered()), fb.remain, max); k > 0 {
		m, err := io.CopyN(writerOnly{f}, b.cn.br, k)
		n += m
		fb.remain -= m
		if err != nil {
			return n, err
		}
	}
	if want := min(fb.remain, max-n); want > 0 {
		m, err := f.ReadFrom(&io.LimitedReader{R: b.cn.nc, N: want})
		n += m
		fb.remain -= m
		if err != nil {
			return n, err
		}
		if m < want {
			return n, io.ErrUnexpectedEOF
		}
	}
	if fb.remain == 0 {
		b.eof = true
	}
	return n, nil
}

// writerOnly and readerOnly hide methods that would make io.Copy look
// for shortcuts that lead back here.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// Close releases the connection: back to the pool when the body was read
// to its end, the response allows it and the request's context did not
// end meanwhile; closed otherwise.
func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.c.untrack(b.ctx, b.cn) {
		// The context ended: the deadline that woke the reads has
		// poisoned the connection.
		b.cn.nc.Close()
		return nil
	}
	if b.keep && b.eof && b.cn.br.Buffered() == 0 {
		b.cn.nc.SetDeadline(time.Time{})
		b.cn.reused = true
		b.c.putIdle(b.cn)
		return nil
	}
	b.cn.nc.Close()
	return nil
}
