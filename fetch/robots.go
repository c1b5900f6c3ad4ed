package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/trawl-dev/trawl/internal/urlkey"
	"github.com/trawl-dev/trawl/record"
)

// Obeying robots.txt (--robots obey), as RFC 9309 says:
//
//   - Each host's robots.txt (scheme, host and port: the rules hold for
//     exactly that origin) is fetched once, through this client: the same
//     engine, connections, address and host policy, User-Agent and rate
//     limits as every other request. URLs of the host wait for it.
//   - The group for trawl's product token (the User-Agent up to its first
//     '/', matched case-insensitively, else '*') decides, by the longest
//     matching rule, with * and $ wildcards (github.com/temoto/robotstxt).
//     A disallowed URL, or a redirect to one, is refused without a
//     request (record.KindRobots).
//   - 4xx (but 429): there is no robots.txt, everything is allowed; so
//     too when it redirects more than five times or to no http(s) URL.
//   - 429 and 5xx: it cannot be read, and everything is disallowed until
//     it can. It is asked for again RobotsRetry later (a minute by
//     default), when the next URL of the host comes.
//   - No response at all (DNS, connecting, TLS, a timeout): everything is
//     disallowed too, and the host's URLs fail with that error, since they
//     would most likely meet it themselves; asked again as for a 5xx.
//   - Crawl-delay paces the host at one request per delay (through the
//     Limiter, when it is a CrawlDelayer), unless a stricter rate is set.
//   - A robots.txt that was read is kept for the run, up to 24 hours
//     (RFC 9309 2.4), for at most robotsMaxHosts hosts at once.

// CrawlDelayer is a Limiter that can pace one host at the delay between
// requests its robots.txt asks for. The robots.txt request itself counts
// as one of them.
type CrawlDelayer interface {
	SetCrawlDelay(u *url.URL, d time.Duration)
}

// RobotsError reports a URL robots.txt does not let trawl fetch.
type RobotsError struct {
	Reason string
}

func (e *RobotsError) Error() string { return e.Reason }

const (
	// robotsMaxBody is how much of a robots.txt is read: RFC 9309 2.5
	// asks for at least 500 KiB.
	robotsMaxBody = 512 << 10
	// robotsMaxRedirects is how many redirects of a robots.txt are
	// followed, whatever --max-redirects says (RFC 9309 2.3.1.2).
	robotsMaxRedirects = 5
	// robotsMaxAge is how long a robots.txt that was read is trusted.
	robotsMaxAge = 24 * time.Hour
	// robotsMaxHosts bounds the hosts whose robots.txt is kept.
	robotsMaxHosts = 4096
)

// robotsChecker fetches, keeps and applies the robots.txt of each host.
type robotsChecker struct {
	aux   *Client // fetches robots.txt into memory, never to --output-dir
	agent string
	retry time.Duration
	now   func() time.Time

	mu    sync.Mutex
	hosts map[string]*robotsEntry
}

// robotsEntry is what one host's robots.txt says. The fields are set
// before ready is closed and never changed afterwards.
type robotsEntry struct {
	ready   chan struct{}
	origin  string
	group   *robotstxt.Group // the rules for trawl; nil allows everything
	delay   time.Duration    // Crawl-delay
	refusal string           // set when everything is disallowed
	failure error            // set when robots.txt got no response
	expires time.Time
	// canceled: the fetch was stopped with the run; nothing is known.
	canceled bool
}

func newRobotsChecker(c *Client) *robotsChecker {
	retry := c.opts.RobotsRetry
	if retry <= 0 {
		retry = time.Minute
	}
	return &robotsChecker{aux: c.auxiliary(), agent: productToken(c.header.Get("User-Agent")), retry: retry,
		now: time.Now, hosts: make(map[string]*robotsEntry)}
}

// productToken is the part of a User-Agent that robots.txt groups name:
// "trawl" of "trawl/1.2 (+https://example.org)" (RFC 9309 2.2.1).
func productToken(ua string) string {
	tok, _, _ := strings.Cut(strings.TrimSpace(ua), "/")
	tok, _, _ = strings.Cut(tok, " ")
	return strings.ToLower(tok)
}

// auxiliary returns a client sharing c's engine, connections, policy and
// cookies that fetches small resources into memory for trawl itself:
// GET, no body, no file saved, every status an answer.
func (c *Client) auxiliary() *Client {
	o := c.opts
	o.Method, o.Body, o.RetryUnsafe = http.MethodGet, nil, false
	o.Store, o.DiscardBody, o.MaxBody, o.MaxFileSize = nil, false, robotsMaxBody, 0
	o.MaxRedirects = robotsMaxRedirects
	o.Accept, _ = ParseStatusSet("100-599")
	o.Extra, o.Robots = record.Extras{}, false
	a := &Client{opts: o, engine: c.engine, jar: c.jar, cls: c.cls, proxies: c.proxies, host: c.host, header: c.header}
	if c.header.Get("Accept-Encoding") == "" {
		a.header = c.header.Clone()
		a.header.Set("Accept-Encoding", acceptEncoding)
	}
	a.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	a.bigBufs.New = a.bufs.New
	return a
}

// admit returns nil when robots.txt lets u be fetched, else why not.
func (rc *robotsChecker) admit(ctx context.Context, u *url.URL) error {
	origin := strings.ToLower(u.Scheme) + "://" + urlkey.Host(u)
	var e *robotsEntry
	waited := false
	for {
		var mine bool
		e, mine = rc.entry(origin)
		select {
		case <-e.ready:
		default:
			waited = true
			if mine {
				rc.load(ctx, u, e)
			}
			select {
			case <-e.ready:
			case <-ctx.Done():
				return fmt.Errorf("stopped while waiting for %s/robots.txt: %w", origin, context.Cause(ctx))
			}
		}
		if !e.canceled {
			break
		}
		rc.forget(origin, e)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped while waiting for %s/robots.txt: %w", origin, err)
		}
	}
	switch {
	case e.failure != nil:
		return fmt.Errorf("%s/robots.txt: %w", origin, e.failure)
	case e.refusal != "":
		return &RobotsError{Reason: e.refusal}
	case e.group != nil && !e.group.Test(robotsPath(u)):
		return &RobotsError{Reason: fmt.Sprintf("%s/robots.txt disallows %s for %s", origin, robotsPath(u), rc.agentName())}
	}
	if e.delay > 0 {
		if cd, ok := rc.aux.opts.Limiter.(CrawlDelayer); ok {
			// Set again for every URL: the limiter forgets idle hosts.
			cd.SetCrawlDelay(u, e.delay)
			if waited {
				// This URL was started before the delay was known; it
				// waits its turn now.
				if err := rc.aux.opts.Limiter.Wait(ctx, u); err != nil {
					return fmt.Errorf("stopped while waiting for the Crawl-delay of %s: %w", origin, err)
				}
			}
		}
	}
	return nil
}

func (rc *robotsChecker) agentName() string {
	if rc.agent == "" {
		return "*"
	}
	return rc.agent
}

// parseRobots parses a robots.txt. The parser refuses a whole file for one
// bad line (a Crawl-delay of "1s", a pattern that is no expression), while
// RFC 9309 2.2 asks to use what parses; so on an error the lines that fail
// on their own are left out and the rest is parsed again.
func parseRobots(body []byte) (*robotstxt.RobotsData, error) {
	data, err := robotstxt.FromBytes(body)
	if err == nil {
		return data, nil
	}
	var kept []string
	for line := range strings.SplitSeq(string(body), "\n") {
		if _, lerr := robotstxt.FromString("User-agent: *\n" + line); lerr == nil {
			kept = append(kept, line)
		}
	}
	return robotstxt.FromString(strings.Join(kept, "\n"))
}

// robotsPath is what robots.txt rules are matched against: the path and
// query as sent.
func robotsPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}

// entry returns the host's entry, and whether the caller must load it: a
// new one when there is none, or the one kept has expired.
func (rc *robotsChecker) entry(origin string) (*robotsEntry, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e, ok := rc.hosts[origin]; ok {
		select {
		case <-e.ready:
			if rc.now().Before(e.expires) {
				return e, false
			}
		default:
			return e, false // being fetched
		}
	}
	if len(rc.hosts) >= robotsMaxHosts {
		rc.evict()
	}
	e := &robotsEntry{ready: make(chan struct{}), origin: origin}
	rc.hosts[origin] = e
	return e, true
}

// evict forgets a quarter of the hosts whose robots.txt is known (map
// order is as good as any): a list of a million hosts is not kept whole,
// and a host met again costs one more request.
func (rc *robotsChecker) evict() {
	n := len(rc.hosts) / 4
	for k, e := range rc.hosts {
		if n == 0 {
			return
		}
		select {
		case <-e.ready:
			delete(rc.hosts, k)
			n--
		default:
		}
	}
}

// forget drops e unless it was replaced meanwhile.
func (rc *robotsChecker) forget(origin string, e *robotsEntry) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hosts[origin] == e {
		delete(rc.hosts, origin)
	}
}

// load fetches the robots.txt of u's origin into e and closes e.ready.
func (rc *robotsChecker) load(ctx context.Context, u *url.URL, e *robotsEntry) {
	defer close(e.ready)
	ru := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}
	rec := &record.Record{URL: ru.String(), Target: ru}
	if l := rc.aux.opts.Limiter; l != nil {
		if err := l.Wait(ctx, ru); err != nil {
			e.canceled = true
			return
		}
	}
	rc.aux.Fetch(ctx, rec)
	now := rc.now()
	e.expires = now.Add(rc.retry)
	var tooMany *TooManyRedirectsError
	var bad *BadRedirectError
	switch {
	case rec.ErrKind == record.KindCanceled || ctx.Err() != nil:
		e.canceled = true
	case errors.As(rec.Err, &tooMany) || errors.As(rec.Err, &bad):
		e.expires = now.Add(robotsMaxAge) // unavailable: everything allowed
	case rec.Err != nil:
		e.failure = rec.Err
	case rec.Status == http.StatusTooManyRequests || rec.Status >= 500:
		e.refusal = fmt.Sprintf("%s/robots.txt answered HTTP %d, so nothing of the host is fetched until it can be read (RFC 9309); asked again after %s",
			e.origin, rec.Status, rc.retry)
	case rec.Status >= 200 && rec.Status < 300:
		e.expires = now.Add(robotsMaxAge)
		data, err := parseRobots(rec.Body)
		if err != nil {
			return // nothing in it parses: as good as none
		}
		if rc.agent == "" {
			e.group = data.FindGroup("*")
		} else {
			e.group = data.FindGroup(rc.agent)
		}
		e.delay = e.group.CrawlDelay
	default:
		// 4xx (and a 1xx or 3xx that led nowhere): no robots.txt.
		e.expires = now.Add(robotsMaxAge)
	}
}
