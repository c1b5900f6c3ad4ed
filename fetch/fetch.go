// Package fetch is trawl's HTTP client: a transport tuned for many requests
// to many hosts, per-attempt timeouts, retries with exponential backoff, full
// jitter and Retry-After, redirect limits and a cap on body size.
//
// Every outcome, good or bad, is written into the record passed to Fetch;
// Fetch itself never fails, so the caller always has a record to write.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/internal/netpolicy"
	"github.com/trawl-dev/trawl/internal/weburl"
	"github.com/trawl-dev/trawl/record"
)

// Options configures a Client. Zero durations and counts fall back to the
// documented defaults via Defaults; negative retries mean none.
type Options struct {
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
	// Method is GET or HEAD.
	Method string
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
	// HTTP1 keeps to HTTP/1.1 even where a server offers HTTP/2.
	HTTP1 bool
	// Cookies keeps the cookies servers set, in memory, for the run.
	Cookies bool
	// Resolve maps "host:port" to the "addr:port" to connect to instead.
	Resolve map[string]string
	// WrapTransport, when set, wraps the HTTP transport, for example to
	// rate-limit every request and watch every response.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Policy says which addresses and hosts may be reached.
	Policy Policy
	// BeforeAttempt, when set, is called before each attempt (1 for the
	// first) with the URL's context, outside the per-attempt timeout, so
	// that waiting for a rate limit does not eat into --timeout. It
	// returns the context for the attempt's request.
	BeforeAttempt func(ctx context.Context, r *record.Record, attempt int) (context.Context, error)
	// Accept is the set of statuses that count as success.
	Accept StatusSet
}

// Defaults returns the options trawl uses when nothing is configured.
func Defaults() Options {
	accept, _ := ParseStatusSet("200-399")
	return Options{
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
	opts      Options
	transport *http.Transport
	http      *http.Client
	cls       *netpolicy.Classifier
	proxies   *proxyAddrs
	// bufs recycles read buffers: a fresh 32 KiB per response was the
	// largest allocation per URL, and the garbage collector's main work.
	bufs sync.Pool
}

// New builds a Client from opts.
func New(opts Options) (*Client, error) {
	switch opts.Method {
	case http.MethodGet, http.MethodHead:
	default:
		return nil, fmt.Errorf("unsupported method %q: use GET or HEAD", opts.Method)
	}
	if opts.Timeout <= 0 || opts.ConnectTimeout <= 0 {
		return nil, errors.New("timeouts must be positive")
	}
	if opts.MaxBody < 0 {
		return nil, errors.New("body cap must not be negative")
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	dialer := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
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
		MaxResponseHeaderBytes: 1 << 20,
	}
	configureTransport(transport, dialer, opts)
	c := &Client{opts: opts, transport: transport, cls: opts.Policy.classifier(), proxies: &proxyAddrs{}}
	transport.Proxy = c.proxies.wrap(transport.Proxy)
	transport.DialContext = policyDialer(transport.DialContext, dialer, &c.opts.Policy, c.cls, c.proxies)
	c.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	var rt http.RoundTripper = transport
	if opts.WrapTransport != nil {
		rt = opts.WrapTransport(transport)
	}
	c.http = &http.Client{
		Transport:     rt,
		CheckRedirect: c.checkRedirect,
	}
	if opts.Cookies {
		c.http.Jar = newJar()
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.opts.MaxRedirects {
		return &TooManyRedirectsError{Max: c.opts.MaxRedirects}
	}
	// net/http resolved the Location header by net/url's rules, which send
	// http://0x7f.1/ to DNS as a name. Resolve it again by the rules input
	// lines and links follow (the WHATWG URL Standard), so that the checks
	// below, the cookie jar and the request itself all see 127.0.0.1.
	// Replacing req.URL in place is safe: net/http sends req, and picks its
	// cookies, only after this returns, and the one decision it took on its
	// own parse, dropping credentials for another host, is taken again
	// below on the canonical host.
	loc := req.URL.String()
	if req.Response != nil && req.Response.Header.Get("Location") != "" {
		loc = req.Response.Header.Get("Location")
	}
	target, err := weburl.ResolveNet(loc, via[len(via)-1].URL)
	if err != nil {
		var se *weburl.SchemeError
		if errors.As(err, &se) {
			return &BadRedirectError{Location: req.URL.Redacted()}
		}
		return &BadRedirectError{Location: req.URL.Redacted(), Reason: "not a valid URL: " + err.Error()}
	}
	*req.URL = *target
	if err := c.opts.Policy.Hosts.Check(req.URL.Hostname()); err != nil {
		return &BlockedError{Reason: "redirected: " + err.Error()}
	}
	if err := c.checkLiteral(req.URL.Hostname()); err != nil {
		return err
	}
	// Credentials given for one host are not for another. (Go keeps them
	// for subdomains; trawl is stricter.)
	if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
			req.Header.Del(h)
		}
	}
	return nil
}

// Fetch requests r.Target and fills in r's response fields, or its error.
// Records that already carry an error (invalid lines) are left untouched.
func (c *Client) Fetch(ctx context.Context, r *record.Record) {
	if r.Err != nil || r.Target == nil {
		return
	}
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()
	if err := c.opts.Policy.Hosts.Check(r.Target.Hostname()); err != nil {
		r.Fail(record.KindBlocked, &BlockedError{Reason: err.Error()})
		return
	}
	if err := c.checkLiteral(r.Target.Hostname()); err != nil {
		r.Fail(record.KindBlocked, err)
		return
	}

	for {
		actx := ctx
		if c.opts.BeforeAttempt != nil {
			var err error
			if actx, err = c.opts.BeforeAttempt(ctx, r, r.Attempts+1); err != nil {
				r.Fail(record.KindCanceled, fmt.Errorf("stopped while waiting for the rate limit: %w", err))
				return
			}
		}
		r.Attempts++
		res := c.attempt(actx, r)
		if res.err == nil {
			return
		}
		if r.Attempts > c.opts.Retries || !res.retryable || ctx.Err() != nil {
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

// attemptResult is the outcome of one request.
type attemptResult struct {
	err           error
	retryable     bool
	retryAfter    time.Duration
	retryAfterSet bool
}

// attempt sends one request and reads its body under the per-attempt
// timeout, writing the response fields of r as it goes so that the record
// describes the last response even when that response is a failure.
func (c *Client) attempt(ctx context.Context, r *record.Record) (res attemptResult) {
	gctx, stop := c.guardAttempt(ctx)
	defer stop(nil)
	actx, cancel := context.WithTimeout(gctx, c.opts.Timeout)
	defer cancel()
	defer func() {
		if b := blockedCause(gctx); b != nil {
			res = attemptResult{err: b}
		}
	}()

	// The request is built from the Target itself: parsing its String
	// again with net/url would refuse or rewrite what the WHATWG rules keep,
	// such as the stray % of /100%.html.
	req, err := http.NewRequestWithContext(actx, c.opts.Method, "/", nil)
	if err != nil {
		return attemptResult{err: err}
	}
	target := *r.Target
	req.URL, req.Host = &target, target.Host
	req.Header.Set("Accept", "*/*")
	if req.Method != http.MethodHead {
		// Setting this ourselves turns off Go's transparent gzip, which
		// knows neither br nor zstd and hides the wire size.
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	for k, vs := range c.opts.Header {
		if strings.EqualFold(k, "Host") {
			req.Host = vs[len(vs)-1]
			continue
		}
		req.Header[k] = vs
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return c.requestFailed(ctx, err)
	}
	defer resp.Body.Close()

	r.FinalURL = resp.Request.URL.String()
	r.Status = resp.StatusCode
	r.Proto = resp.Proto
	r.ContentType = resp.Header.Get("Content-Type")
	r.Header = resp.Header
	r.Body, r.Bytes, r.WireBytes, r.Truncated = nil, 0, 0, false
	r.File, r.FileSHA256 = "", ""

	accepted := c.opts.Accept.Contains(resp.StatusCode)
	var file BodyFile
	if accepted && c.opts.Store != nil && req.Method != http.MethodHead {
		if file, err = c.opts.Store.Create(r); err != nil {
			return attemptResult{err: &SaveError{Err: err}}
		}
	}
	res = c.readBody(resp, file, r)
	if res.err != nil {
		if file != nil {
			file.Abort()
		}
		return res
	}
	if file != nil {
		if err := file.Commit(r); err != nil {
			return attemptResult{err: &SaveError{Err: err}}
		}
	}

	if accepted {
		return attemptResult{}
	}
	res = attemptResult{
		err:       &StatusError{Code: resp.StatusCode, Reason: "HTTP " + resp.Status},
		retryable: record.RetryableStatus(resp.StatusCode),
	}
	res.retryAfter, res.retryAfterSet = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return res
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
