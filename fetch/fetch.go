// Package fetch is trawl's HTTP client: two engines (fetch/internal/lean,
// trawl's own HTTP/1.1 with HTTP/2 through x/net/http2, and net/http for
// diagnosis) behind one redirect loop that applies trawl's rules on every
// hop (address and host policy, credentials, cookies, rate limits), and
// per-attempt timeouts, retries with exponential backoff, full jitter and
// Retry-After, and caps on body size before and after decoding.
//
// Every outcome, good or bad, is written into the record passed to Fetch;
// Fetch itself never fails, so the caller always has a record to write.
package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/fetch/internal/lean"
	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/internal/netpolicy"
	"github.com/trawl-dev/trawl/internal/netrc"
	"github.com/trawl-dev/trawl/record"
)

// Options configures a Client; Defaults returns trawl's. An empty Engine
// or Method means the default one; timeouts must be positive.
type Options struct {
	// Engine is EngineLean (the default) or EngineNet.
	Engine string
	// Concurrency is the number of requests the caller runs at once; it sizes
	// the idle connection pool so finished requests leave reusable connections.
	Concurrency int
	// Timeout bounds one attempt: connecting, sending, headers and the body.
	Timeout time.Duration
	// ConnectTimeout bounds the TCP connect and the TLS handshake.
	ConnectTimeout time.Duration
	// Retries is how many times a failed attempt is repeated.
	Retries int
	// RetryDelay is the base of the exponential backoff between attempts.
	RetryDelay time.Duration
	// MaxRetryWait caps any single wait between attempts; a server asking
	// (with Retry-After) for a longer wait gets no further attempts.
	MaxRetryWait time.Duration
	// MaxRedirects is the longest redirect chain followed; 0 follows none.
	MaxRedirects int
	// Method is the request method: any token (GET by default).
	Method string
	// Body, when set, is sent with every request (records may carry their
	// own, made from their rows).
	Body []byte
	// RetryUnsafe lets a request whose method is not idempotent (POST,
	// PATCH, ...) be sent again after a failure: without it such a
	// request is sent once, since a retry after it may have reached the
	// server is how an API gets duplicate orders.
	RetryUnsafe bool
	// Header is sent with every request; it may override User-Agent.
	Header http.Header
	// UserAgent is sent unless Header sets one.
	UserAgent string
	// MaxBody caps how many body bytes are kept in memory (for transforms);
	// longer bodies are cut there. Without a Store, reading stops there too.
	MaxBody int64
	// DiscardBody drops the body instead of keeping it in the record, for
	// runs where nothing reads it; bytes are still counted.
	DiscardBody bool
	// Store, when set, receives every body whose status is accepted, as it
	// arrives, so that bodies of any size are saved with flat memory use.
	Store BodyStore
	// MaxFileSize caps a saved body; 0 means no cap. A longer body is not
	// saved at all (a cut file would look complete).
	MaxFileSize int64
	// RawEncoding keeps compressed bodies as sent instead of decoding them.
	RawEncoding bool
	// Proxy, when set, is used for every request instead of the
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY environment variables.
	Proxy *url.URL
	// Insecure skips TLS certificate verification.
	Insecure bool
	// RootCAs, when set, are the certificate authorities trusted instead
	// of the system's (see LoadCertPool).
	RootCAs *x509.CertPool
	// ClientCert, when set, is presented to every server that asks for a
	// client certificate (see LoadClientCert).
	ClientCert *tls.Certificate
	// TLSMin is the oldest TLS version offered: tls.VersionTLS12 (what 0
	// means too) or tls.VersionTLS13.
	TLSMin uint16
	// User, when set, is sent as basic authentication to the host of each
	// URL. Like every Authorization header, it goes with redirects to the
	// same host (another port or scheme is another host) and is dropped
	// for good at the first redirect to another host. Credentials in a URL
	// (user:password@host) win over it; a Header that sets Authorization
	// too is refused.
	User *BasicAuth
	// Netrc, when set, gives basic authentication to requests that have
	// none otherwise: on every hop, the entry of the hop's own host, and
	// the default entry only on the URL's own host.
	Netrc *netrc.File
	// HTTP1 keeps to HTTP/1.1 even where a server offers HTTP/2.
	HTTP1 bool
	// Cookies keeps the cookies servers set, in memory, for the run.
	Cookies bool
	// Resolve maps "host:port" to the "addr:port" to connect to instead.
	Resolve map[string]string
	// Limiter, when set, paces requests and hears every response.
	Limiter Limiter
	// Policy says which addresses and hosts may be reached.
	Policy Policy
	// Accept is the set of statuses that count as success.
	Accept StatusSet
	// Extra asks for the opt-in facts of each URL's final request.
	Extra record.Extras
	// Robots obeys robots.txt: each host's is fetched once, and URLs it
	// disallows are refused without a request (see robots.go).
	Robots bool
	// RobotsRetry is how long a robots.txt that could not be read keeps
	// its host refused before it is asked for again; 0 means a minute.
	RobotsRetry time.Duration
	// Capture, when set, records the exchanges of each URL's last
	// attempt in its record for the WARC (see capture.go): bodies are
	// then read to their end, past MaxBody, up to the Spooler's cap.
	Capture *capture.Spooler
}

// Limiter paces requests. Wait is asked before every request except a
// URL's first, which the caller's scheduler paid for when it started the
// URL: before each retry (outside the attempt's timeout, so that waiting
// for a token does not eat into --timeout) and before each redirect hop.
// Observe hears every response, for adaptive backoff.
type Limiter interface {
	Wait(ctx context.Context, u *url.URL) error
	Observe(u *url.URL, status int, header interface{ Get(string) string })
}

// ValidMethod reports whether m is a method token (RFC 9110 9.1).
func ValidMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := range len(m) {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// idempotent reports whether sending a request twice has the effect of
// sending it once (RFC 9110 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// maxHeaderBytes bounds a response's headers.
const maxHeaderBytes = 1 << 20

// Defaults returns the options trawl uses when nothing is configured.
func Defaults() Options {
	accept, _ := ParseStatusSet("200-399")
	return Options{
		Engine:         EngineLean,
		Concurrency:    32,
		Timeout:        30 * time.Second,
		ConnectTimeout: 10 * time.Second,
		Retries:        2,
		RetryDelay:     time.Second,
		MaxRetryWait:   60 * time.Second,
		MaxRedirects:   10,
		Method:         http.MethodGet,
		MaxBody:        10 << 20,
		Accept:         accept,
	}
}

// Client fetches URLs into records. It is safe for concurrent use.
type Client struct {
	opts    Options
	engine  engine
	jar     http.CookieJar
	cls     *netpolicy.Classifier
	proxies *proxyAddrs
	// header is what every first request sends; host overrides the Host.
	header http.Header
	host   string
	// bufs recycles read buffers: a fresh 32 KiB per response was the
	// largest allocation per URL, and the garbage collector's main work.
	// bigBufs are for bodies being saved, read in larger pieces.
	bufs, bigBufs sync.Pool
	// robots obeys robots.txt, when asked to.
	robots *robotsChecker
}

// New builds a Client from opts. Zero values take the defaults.
func New(opts Options) (*Client, error) {
	def := Defaults()
	switch opts.Engine {
	case "":
		opts.Engine = def.Engine
	case EngineLean, EngineNet:
	default:
		return nil, fmt.Errorf("unknown engine %q: want %s", opts.Engine, strings.Join(EngineNames(), " or "))
	}
	if opts.Method == "" {
		opts.Method = def.Method
	}
	if !ValidMethod(opts.Method) {
		return nil, fmt.Errorf("invalid method %q: a method is a token such as GET, POST or PATCH", opts.Method)
	}
	if opts.Timeout <= 0 || opts.ConnectTimeout <= 0 {
		return nil, errors.New("timeouts must be positive")
	}
	if opts.MaxBody < 0 {
		return nil, errors.New("body cap must not be negative")
	}
	if err := checkTLSMin(opts.TLSMin); err != nil {
		return nil, err
	}
	if opts.User != nil && hasAuthorization(opts.Header) {
		return nil, errors.New("both a user (--user) and an Authorization header (-H) are given: give one")
	}
	opts.Concurrency = max(opts.Concurrency, 1)
	c := &Client{opts: opts, cls: opts.Policy.classifier(), proxies: &proxyAddrs{}}
	c.header = http.Header{"Accept": {"*/*"}}
	if opts.Method != http.MethodHead {
		// Setting this ourselves turns off Go's transparent gzip, which
		// knows neither br nor zstd and hides the wire size.
		c.header.Set("Accept-Encoding", acceptEncoding)
	}
	if opts.UserAgent != "" {
		c.header.Set("User-Agent", opts.UserAgent)
	}
	if opts.User != nil {
		// In the first request's headers, nextRequest drops it for good at
		// the first redirect to another host, as it does a -H one.
		c.header.Set("Authorization", opts.User.header())
	}
	for k, vs := range opts.Header {
		if strings.EqualFold(k, "Host") {
			c.host = vs[len(vs)-1]
			continue
		}
		c.header[k] = vs
	}
	dialer := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	if opts.Engine == EngineNet {
		c.engine = newNetEngine(opts, dialer, c)
	} else {
		e, err := newLeanEngine(opts, targetDialer(dialer, opts.Resolve, &c.opts.Policy, c.cls), dialer.DialContext)
		if err != nil {
			return nil, err
		}
		c.engine = e
	}
	c.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	c.bigBufs.New = func() any { b := make([]byte, 256<<10); return &b }
	if opts.Cookies {
		c.jar = newJar()
	}
	if opts.Robots {
		c.robots = newRobotsChecker(c)
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.engine.closeIdle() }

// Fetch requests r.Target and fills in r's response fields, or its error.
// Records that already carry an error (invalid lines) are left untouched.
func (c *Client) Fetch(ctx context.Context, r *record.Record) {
	if r.Err != nil || r.Target == nil {
		return
	}
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()
	if c.opts.Capture != nil {
		// The last attempt's records are compressed here, on this worker.
		defer func() { r.Capture.Prepare() }()
	}
	if err := c.checkHost(r.Target, ""); err != nil {
		r.Fail(record.KindBlocked, err)
		return
	}
	if c.robots != nil {
		if err := c.robots.admit(ctx, r.Target); err != nil {
			r.Fail(classify(ctx, err), err)
			return
		}
	}
	r.FetchedAt = start
	for {
		if r.Attempts > 0 && c.opts.Limiter != nil {
			if err := c.opts.Limiter.Wait(ctx, r.Target); err != nil {
				r.Fail(record.KindCanceled, fmt.Errorf("stopped while waiting for the rate limit: %w", err))
				return
			}
		}
		r.Attempts++
		res := c.attempt(ctx, r)
		if res.err == nil {
			return
		}
		if r.Attempts > c.opts.Retries || !res.retryable || ctx.Err() != nil || !c.opts.RetryUnsafe && !idempotent(c.opts.Method) {
			r.Fail(classify(ctx, res.err), res.err)
			return
		}
		wait := backoff(c.opts.RetryDelay, c.opts.MaxRetryWait, r.Attempts)
		if res.retryAfterSet {
			if res.retryAfter > c.opts.MaxRetryWait {
				err := fmt.Errorf("%w; the server asked to wait %s before retrying, longer than the %s allowed (--max-retry-wait)",
					res.err, res.retryAfter.Round(time.Second), c.opts.MaxRetryWait)
				r.Fail(classify(ctx, res.err), err)
				return
			}
			wait = res.retryAfter
		}
		if !sleep(ctx, wait) {
			r.Fail(record.KindCanceled, fmt.Errorf("stopped while waiting to retry: %w", res.err))
			return
		}
	}
}

// checkHost applies the host patterns and, with --deny-private, refuses a
// private address written in the URL before any connection: through a
// proxy the dial-time check never sees the target. via names the hop for
// messages ("" for the URL itself).
func (c *Client) checkHost(u *url.URL, via string) error {
	if err := c.opts.Policy.Hosts.Check(u.Hostname()); err != nil {
		return &BlockedError{Reason: via + err.Error()}
	}
	return c.checkLiteral(u.Hostname())
}

// attemptResult is the outcome of one request.
type attemptResult struct {
	err           error
	retryable     bool
	retryAfter    time.Duration
	retryAfterSet bool
}

// attempt sends one request, follows its redirects and reads the final
// body, all under the per-attempt timeout, writing the response fields of
// r as it goes so that the record describes the last response even when
// that response is a failure.
func (c *Client) attempt(ctx context.Context, r *record.Record) attemptResult {
	// The timeout is a deadline carried by each request rather than a
	// context derived per attempt, which would cost more than the rest of
	// the attempt's bookkeeping.
	deadline := time.Now().Add(c.opts.Timeout)
	var guard *hopGuard
	u := r.Target
	req := &outRequest{method: c.opts.Method, url: u, host: c.host, header: c.header, body: c.opts.Body, deadline: deadline}
	if b := r.ReqBody(); b != nil {
		req.body = b
	}
	if h := r.ReqHeader(); h != nil {
		req.header = c.header.Clone()
		for k, vs := range h {
			req.header[k] = vs
		}
	}
	kept, keptValidator, resumable := c.keptPart(r, req)
	if kept > 0 {
		// Ask for the rest only, unless the body changed since (If-Range).
		withRange := *req
		withRange.header = req.header.Clone()
		withRange.header.Set("Range", "bytes="+strconv.FormatInt(kept, 10)+"-")
		withRange.header.Set("If-Range", keptValidator)
		req = &withRange
	}
	conditional := false
	if r.Prev != nil && conditionalMethod(req.method) {
		req.header, conditional = withValidators(req.header, r.Prev)
	}
	capt := c.startCapture(r)
	if capt != nil {
		defer capt.Seal()
	}
	var ex *capture.Exchange
	var resp *response
	var tr *tracer
	var followed []record.Hop
	for hops := 0; ; hops++ {
		if hops > 0 && c.opts.Limiter != nil {
			wctx, cancel := context.WithDeadline(ctx, deadline)
			err := c.opts.Limiter.Wait(wctx, u)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					err = &timeoutError{what: fmt.Sprintf("no response within %s (--timeout): waiting for the rate limit", c.opts.Timeout), err: err}
				}
				return attemptResult{err: err}
			}
		}
		if guard != nil {
			host := u.Hostname()
			req.onConn = func(info lean.ConnInfo) error { return guard.judge(host, info) }
		}
		req = c.withCredentials(req, r.Target)
		send := req
		if c.jar != nil {
			withJar := *req
			withJar.header = withCookies(req.header, c.jar.Cookies(u))
			send = &withJar
		}
		if capt != nil {
			ex = capt.Begin(c.opts.Capture, time.Now(), archivedURI(u))
			send.tap = ex
		}
		var err error
		if c.opts.Extra.Timing {
			tr = newTracer()
			send.trace = tr.trace
		}
		resp, err = c.engine.roundTrip(ctx, send)
		if err != nil {
			if ex != nil {
				capt.Drop(ex)
			}
			return c.requestFailed(ctx, err)
		}
		if ex != nil {
			completeHead(ex, send, resp)
		}
		if hops == 0 && isRedirect(resp.status) {
			// Only now can a hop go from public to private: the guard
			// starts with the first hop, judged by the connection it came on.
			if guard = c.newGuard(); guard != nil {
				guard.judge(u.Hostname(), resp.conn)
			}
		}
		if c.opts.Limiter != nil {
			c.opts.Limiter.Observe(u, resp.status, resp.header)
		}
		if c.jar != nil {
			if set := resp.header.Values("Set-Cookie"); len(set) > 0 {
				c.jar.SetCookies(u, (&http.Response{Header: http.Header{"Set-Cookie": set}}).Cookies())
			}
		}
		loc := resp.header.Get("Location")
		if !isRedirect(resp.status) || loc == "" {
			break
		}
		if ex != nil {
			c.captureRedirect(resp, ex)
		} else {
			discard(resp.body)
		}
		next, err := c.redirect(u, loc, hops+1)
		if err != nil {
			return attemptResult{err: err}
		}
		if c.robots != nil {
			if err := c.robots.admit(ctx, next); err != nil {
				return attemptResult{err: err}
			}
		}
		if c.opts.Extra.Redirects {
			followed = append(followed, record.Hop{URL: u.String(), Status: resp.status})
		}
		req = c.nextRequest(req, u, next, resp.status)
		req.deadline = deadline
		u = next
	}
	defer resp.body.Close()

	r.FinalURL = u.String()
	r.Status = resp.status
	r.Proto = resp.proto
	r.ContentType = resp.header.Get("Content-Type")
	r.Header = nil
	if !c.opts.DiscardBody {
		r.Header = resp.full() // for the transforms
	}
	r.Body, r.Bytes, r.WireBytes, r.Truncated = nil, 0, 0, false
	r.File, r.FileDigest = "", ""
	r.ETag, r.LastModified = resp.header.Get("ETag"), resp.header.Get("Last-Modified")

	// A 304 to a request made conditional by --since is the answer asked
	// for, whatever --accept says: the body the earlier run had is current.
	notModified := conditional && resp.status == http.StatusNotModified
	var from BodyStart
	if kept > 0 && !notModified {
		if res, ok := c.continues(resp, kept, r); !ok {
			return res
		}
		if resp.status == http.StatusPartialContent {
			from.Offset = kept
		}
	}
	if resumable && resp.header.Get("Content-Encoding") == "" && (resp.status == http.StatusOK || from.Offset > 0) {
		from.Validator = validator(resp.header)
	}
	// A continued body stands for the whole one, which would have been 200.
	accepted := notModified || c.opts.Accept.Contains(resp.status) || from.Offset > 0 && c.opts.Accept.Contains(http.StatusOK)
	var file BodyFile
	var err error
	if accepted && c.opts.Store != nil && req.method != http.MethodHead && !notModified {
		if file, err = c.opts.Store.Create(r, from); err != nil {
			return attemptResult{err: &SaveError{Err: err}}
		}
	}
	res := c.readBody(resp, req.method, file, from.Offset, r, ex)
	if res.err == nil && ex != nil {
		if err := ex.Err(); err != nil {
			res = attemptResult{err: &SaveError{Err: err}}
		}
	}
	if res.err != nil {
		if file != nil {
			var saveErr *SaveError
			if res.retryable || ctx.Err() != nil && !errors.As(res.err, &saveErr) {
				file.Keep() // for the next attempt, or --resume
			} else {
				file.Abort()
			}
		}
		return res
	}
	if file != nil {
		if err := file.Commit(r); err != nil {
			return attemptResult{err: &SaveError{Err: err}}
		}
	}
	if c.opts.Extra.Any() {
		c.facts(r, resp, tr, followed)
	}
	if notModified {
		r.CarryOver()
	}

	if accepted {
		return attemptResult{}
	}
	res = attemptResult{
		err:       &StatusError{Code: resp.status, Reason: fmt.Sprintf("HTTP %d %s", resp.status, statusText(resp.status))},
		retryable: record.RetryableStatus(resp.status),
	}
	res.retryAfter, res.retryAfterSet = ParseRetryAfter(resp.header.Get("Retry-After"), time.Now())
	return res
}

// keptPart returns what the store keeps of r's body from an earlier
// attempt or run, and whether this request's body may be kept if it is cut
// short. Only a GET whose body goes to the store alone qualifies: a body
// transforms read must arrive whole in one response, and a Range set by
// the user is theirs.
func (c *Client) keptPart(r *record.Record, req *outRequest) (int64, string, bool) {
	rs, ok := c.opts.Store.(Resumable)
	if !ok || !c.opts.DiscardBody || req.method != http.MethodGet || req.header.Get("Range") != "" {
		return 0, "", false
	}
	n, v := rs.Kept(r)
	if v == "" {
		n = 0
	}
	return n, v, true
}

// continues checks the answer to a request for the rest of a kept body: a
// 206 must start where the kept part ends, with no Content-Encoding; a
// 200 means the body changed (or the server ignores ranges) and is saved
// from the start. Anything else drops the kept part, and the attempt fails
// so that the next one asks for the whole body.
func (c *Client) continues(resp *response, kept int64, r *record.Record) (attemptResult, bool) {
	rs := c.opts.Store.(Resumable)
	switch resp.status {
	case http.StatusOK:
		rs.Drop(r)
		return attemptResult{}, true
	case http.StatusPartialContent:
		cr := resp.header.Get("Content-Range")
		if start, ok := rangeStart(cr); ok && start == kept && resp.header.Get("Content-Encoding") == "" {
			return attemptResult{}, true
		}
		rs.Drop(r)
		return attemptResult{err: &BodyError{Err: fmt.Errorf("asked for the body from byte %d on, the server answered with Content-Range %q; asking for all of it again", kept, cr)}, retryable: true}, false
	case http.StatusRequestedRangeNotSatisfiable:
		rs.Drop(r)
		return attemptResult{err: &BodyError{Err: fmt.Errorf("asked for the body from byte %d on, the server answered 416 Range Not Satisfiable; asking for all of it again", kept)}, retryable: true}, false
	}
	return attemptResult{}, true // judged like any other status
}

// rangeStart reads the first byte position of a Content-Range header
// ("bytes 100-199/200").
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return n, err == nil && n >= 0
}

// validator returns what an If-Range may name for a response: its ETag
// when strong (RFC 9110 13.1.5 forbids weak ones there), else its
// Last-Modified date; "" when it has neither.
func validator(h interface{ Get(string) string }) string {
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		return etag
	}
	return h.Get("Last-Modified")
}

// discard reads a little of a body before closing it, so that the short
// body of a redirect leaves its connection reusable.
func discard(body io.ReadCloser) {
	io.CopyN(io.Discard, body, 4<<10)
	body.Close()
}

// requestFailed describes a request that got no response. Whether it is
// worth another attempt is record.Permanent's rule, with two refinements
// that only hold within seconds: a policy refusal would be refused again,
// and a name DNS says does not exist does not exist a moment later either.
func (c *Client) requestFailed(ctx context.Context, err error) attemptResult {
	if isTimeout(err) && ctx.Err() == nil && !isRedirectRefusal(err) {
		return attemptResult{
			err:       &timeoutError{what: fmt.Sprintf("no response within %s (--timeout)", c.opts.Timeout), err: err},
			retryable: true,
		}
	}
	err = describe(err)
	kind := classify(ctx, err)
	var dnsErr *net.DNSError
	notFound := errors.As(err, &dnsErr) && dnsErr.IsNotFound
	retryable := !record.Permanent(kind, 0) && kind != record.KindBlocked && !notFound
	return attemptResult{err: err, retryable: retryable}
}

// isRedirectRefusal reports errors from trawl's own redirect checks.
func isRedirectRefusal(err error) bool {
	var tooMany *TooManyRedirectsError
	var badRedir *BadRedirectError
	var blocked *BlockedError
	return errors.As(err, &tooMany) || errors.As(err, &badRedir) || errors.As(err, &blocked)
}
