package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/trawl-dev/trawl/fetch/internal/lean"
	"github.com/trawl-dev/trawl/internal/capture"
)

// The engines a Client can send requests with.
const (
	// EngineLean is trawl's own HTTP client, HTTP/1.1 and HTTP/2 on the
	// connections it dials: no goroutines or channel handoffs per request.
	EngineLean = "lean"
	// EngineNet is Go's net/http Transport, for diagnosis and for servers
	// the lean engine mishandles.
	EngineNet = "net"
)

// EngineNames lists the engines by name, for help and completion.
func EngineNames() []string { return []string{EngineLean, EngineNet} }

// outRequest is one request of an attempt: the first, or a redirect hop.
type outRequest struct {
	method string
	url    *url.URL
	host   string // Host header override
	header http.Header
	body   []byte
	// onConn is called with the connection the request is about to use,
	// before anything is sent; an error stops the request.
	onConn func(lean.ConnInfo) error
	// deadline bounds the exchange, the body included.
	deadline time.Time
	// trace, when set, hears the phases of the request (--extra timing);
	// the context the request is sent with carries it too.
	trace *httptrace.ClientTrace
	// tap, when set, records the exchange for the WARC.
	tap *capture.Exchange
}

// response is a response from either engine.
type response struct {
	status        int
	proto         string
	contentLength int64
	body          io.ReadCloser
	header        interface {
		Get(string) string
		Values(string) []string
	}
	full func() http.Header // every header, as a map
	conn lean.ConnInfo      // the connection it came on
}

// engine sends one request and returns one response; redirects, retries,
// cookies and limits are the Client's.
type engine interface {
	roundTrip(ctx context.Context, req *outRequest) (*response, error)
	closeIdle()
}

// tlsConfig is the TLS configuration both engines start from.
func tlsConfig(opts Options) *tls.Config {
	cfg := &tls.Config{
		// Reconnecting to a host met before costs an abbreviated handshake.
		ClientSessionCache: tls.NewLRUClientSessionCache(max(64, opts.Concurrency)),
	}
	if opts.Insecure {
		cfg.InsecureSkipVerify = true //nolint:gosec // the user asked for it with --insecure
	}
	cfg.RootCAs = opts.RootCAs
	cfg.MinVersion = opts.TLSMin
	if cert := opts.ClientCert; cert != nil {
		// Given whatever the server's request says it accepts: Go's own
		// choice from Certificates sends nothing when the request lists CA
		// names that do not include the certificate's issuer, and the
		// server would then refuse without saying why. The user chose
		// this certificate; the server is the one to judge it, as with curl.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// h2Window applies trawl's HTTP/2 flow-control windows to a net/http
// Transport (and, through it, to x/net/http2 transports configured from it).
func h2Window(t *http.Transport) {
	t.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: h2StreamWindow, MaxReceiveBufferPerConnection: h2ConnWindow}
}

// leanEngine sends requests with fetch/internal/lean.
type leanEngine struct{ c *lean.Client }

func newLeanEngine(opts Options, dialTarget, dialProxy lean.DialFunc) (*leanEngine, error) {
	proxy := opts.Proxy
	var choose func(*url.URL) (*url.URL, error)
	if proxy != nil {
		choose = func(*url.URL) (*url.URL, error) { return proxy, nil }
	} else {
		env := httpproxy.FromEnvironment().ProxyFunc()
		choose = func(u *url.URL) (*url.URL, error) { return env(u) }
	}
	return &leanEngine{c: lean.New(lean.Options{
		DialTarget: dialTarget,
		DialProxy:  dialProxy,
		Proxy:      choose,
		TLS:        tlsConfig(opts),
		HTTP2:      !opts.HTTP1,
		H2: lean.H2Options{StreamWindow: h2StreamWindow, ConnWindow: h2ConnWindow,
			ConnsPerHost: h2ConnsPerHost, Concurrency: opts.Concurrency},
		HandshakeTimeout: opts.ConnectTimeout,
		MaxIdlePerHost:   max(opts.Concurrency, 2),
		IdleTimeout:      90 * time.Second,
		MaxHeaderBytes:   maxHeaderBytes,
	})}, nil
}

func (e *leanEngine) roundTrip(ctx context.Context, req *outRequest) (*response, error) {
	lr := &lean.Request{Method: req.method, URL: req.url, Host: req.host, Header: req.header, Body: req.body,
		OnConn: req.onConn, Deadline: req.deadline, Trace: req.trace}
	if req.tap != nil {
		lr.Tap = req.tap // never a nil *Exchange in the interface
	}
	resp, err := e.c.Do(ctx, lr)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.Status, proto: resp.Proto, contentLength: resp.ContentLength, body: resp.Body,
		header: resp, full: resp.Header, conn: resp.Conn}, nil
}

func (e *leanEngine) closeIdle() { e.c.CloseIdle() }

// netEngine sends requests with a net/http Transport.
type netEngine struct {
	t       *http.Transport
	proxies *proxyAddrs
}

func (e *netEngine) roundTrip(ctx context.Context, req *outRequest) (*response, error) {
	// The context must outlive this call, for the body: it ends when the
	// body is closed.
	ctx, cancelDeadline := context.WithDeadline(ctx, req.deadline)
	if req.trace != nil {
		ctx = httptrace.WithClientTrace(ctx, req.trace)
	}
	var conn lean.ConnInfo
	ctx, cancel := e.traceConn(ctx, &conn, req.onConn)
	done := func() { cancel(nil); cancelDeadline() }
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	// The URL is used as parsed: its string form may not parse again
	// with net/url (a stray % in the path, kept as browsers keep it).
	hr, err := http.NewRequestWithContext(ctx, req.method, "http://placeholder/", body)
	if err != nil {
		return nil, err
	}
	hr.URL, hr.Host = req.url, req.url.Host
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	if req.host != "" {
		hr.Host = req.host
	}
	resp, err := e.t.RoundTrip(hr)
	// A connection refused by onConn cancels the request with the refusal
	// as the cause, which is the error to report.
	var blocked *BlockedError
	if cause := context.Cause(ctx); errors.As(cause, &blocked) {
		if err == nil {
			resp.Body.Close()
		}
		done()
		return nil, blocked
	}
	if err != nil {
		done()
		if notHTTP(err) {
			return nil, &lean.ProtocolError{What: describe(err).Error()}
		}
		return nil, err
	}
	if resp.TLS != nil {
		conn.TLS = resp.TLS
	}
	return &response{status: resp.StatusCode, proto: resp.Proto, contentLength: resp.ContentLength,
		body: closeThen{resp.Body, done}, header: resp.Header,
		full: func() http.Header { return resp.Header }, conn: conn}, nil
}

// closeThen runs a function after closing a body.
type closeThen struct {
	io.ReadCloser
	then func()
}

func (c closeThen) Close() error {
	err := c.ReadCloser.Close()
	c.then()
	return err
}

// traceConn runs onConn on the connection net/http picks for the request,
// cancelling the request when it refuses. Cancelling is not enough for
// HTTP/1: net/http writes the request to the connection it handed over
// without looking at the context again, so the refused connection is
// closed, and sends nothing. HTTP/2 looks before it writes the headers,
// and its connection may be carrying other requests.
func (e *netEngine) traceConn(ctx context.Context, conn *lean.ConnInfo, onConn func(lean.ConnInfo) error) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		remote := info.Conn.RemoteAddr()
		ci := lean.ConnInfo{Remote: remote, Reused: info.Reused, Proxied: e.proxies.has(remote.String())}
		*conn = ci
		if onConn == nil {
			return
		}
		if err := onConn(ci); err != nil {
			cancel(err)
			if !isHTTP2(info.Conn) {
				info.Conn.Close()
			}
		}
	}}), cancel
}

func (e *netEngine) closeIdle() { e.t.CloseIdleConnections() }

// netHTTPNotHTTP are the messages net/http (Go 1.26) gives a response
// that is not HTTP. It has no error types for them, only these fixed
// texts, so this is the one place trawl matches errors by text: the lean
// engine reports the same cases as typed ProtocolErrors, and both engines
// must give them the same error kind.
var netHTTPNotHTTP = []string{
	"malformed HTTP response",
	"malformed HTTP status code",
	"malformed HTTP version",
	"server response headers exceeded",
	"malformed MIME header",
}

// notHTTP reports whether a net/http error means the response was not HTTP.
func notHTTP(err error) bool {
	var tp textproto.ProtocolError
	if errors.As(err, &tp) {
		return true
	}
	msg := err.Error()
	for _, m := range netHTTPNotHTTP {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// newNetEngine builds the net/http Transport, tuned for many requests to
// many hosts.
func newNetEngine(opts Options, dialer *net.Dialer, c *Client) *netEngine {
	transport := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: dialer.DialContext,
		// A custom dialer turns HTTP/2 off unless asked for explicitly.
		ForceAttemptHTTP2: true,
		// Go keeps only 2 idle connections per host by default, so with many
		// workers on one host most requests would open a new connection.
		MaxIdleConnsPerHost:    opts.Concurrency,
		MaxIdleConns:           max(100, 2*opts.Concurrency),
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    opts.ConnectTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
		TLSClientConfig:        tlsConfig(opts),
		// trawl asks for its encodings itself and decodes them.
		DisableCompression: true,
	}
	h2Window(transport)
	if opts.Proxy != nil {
		transport.Proxy = http.ProxyURL(opts.Proxy)
	}
	if opts.HTTP1 {
		// A non-nil, empty map is how net/http is told not to use HTTP/2.
		transport.ForceAttemptHTTP2 = false
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	transport.Proxy = c.proxies.wrap(transport.Proxy)
	transport.DialContext = policyDialer(dialer, opts.Resolve, &c.opts.Policy, c.cls, c.proxies)
	return &netEngine{t: transport, proxies: c.proxies}
}
