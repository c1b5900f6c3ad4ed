// Package throttle keeps trawl polite: at most N requests in flight per
// host, token-bucket rate limits for the whole run and per host, and
// adaptive backoff for hosts that answer 429 or 503, which slows that host
// down as a whole, honours Retry-After and RateLimit headers, and speeds up
// again gradually while the host answers well.
//
// Every request pays a token: the first of a URL when the scheduler starts
// it (TryAcquire), retries and redirects before they are sent (Wait).
//
// Given the number of workers, it also measures how much the per-host cap,
// rather than the workers, held the run back (Usage): a cap nobody notices
// is a run far slower than it needs to be.
package throttle

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Getter reads a response header; http.Header is one.
type Getter interface{ Get(name string) string }

// Options configures a Throttle.
type Options struct {
	// PerHost caps requests in flight to one host; 0 means no cap.
	PerHost int
	// Rate limits requests per second over the whole run; 0 means none.
	Rate float64
	// PerHostRate limits requests per second to each host; 0 means none.
	PerHostRate float64
	// Adaptive slows hosts down when they answer 429 or 503.
	Adaptive bool
	// MaxPause caps how long a host is left alone on its request
	// (Retry-After, RateLimit-Reset); 0 means a minute. A server asking
	// for ten years gets MaxPause.
	MaxPause time.Duration
	// Workers is how many requests the run can have in flight at once (the
	// fetch stage's workers), for Usage; 0 measures nothing.
	Workers int
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// Throttle holds the limits of one run. It is safe for concurrent use.
type Throttle struct {
	opts   Options
	mu     sync.Mutex
	global *rate.Limiter
	hosts  map[string]*host
	ops    int
	use    capUse
}

// capUse integrates, between the events that change it, the state "a worker
// is free while a URL waits for a host at its configured cap". The
// scheduler asks for a URL only when a worker is free and asks again for a
// refused host only once one of its requests ends, so a refusal at the cap
// stands, until that host's next Release, for a URL that a higher cap would
// have started. It costs a few additions per request under the lock the
// request takes anyway, and a clock read per release while a host waits.
type capUse struct {
	start, since time.Time
	inflight     int // requests in flight, all hosts
	waiting      int // hosts whose URL was refused at the cap since their last release
	held         time.Duration
	idle         time.Duration // worker-time
}

// advance accounts for the time since the last event. While no host waits
// there is nothing to account for, and since is set again when one starts
// to, so a caller may skip it then.
func (u *capUse) advance(now time.Time, workers int) {
	if u.waiting > 0 && u.inflight < workers {
		dt := now.Sub(u.since)
		u.held += dt
		u.idle += dt * time.Duration(workers-u.inflight)
	}
	u.since = now
}

// Usage is how much the per-host cap held a run back; see stats.HostCap,
// which mirrors it field for field.
type Usage struct {
	// PerHost is the configured cap, 0 for none.
	PerHost int
	// Workers is Options.Workers.
	Workers int
	// Span is the time measured, from New to the call to Usage.
	Span time.Duration
	// Held is the time during which at least one worker was free while a
	// URL waited for a host at its cap.
	Held time.Duration
	// Idle is the workers' idle time during Held.
	Idle time.Duration
}

// host is the state kept for one host while it needs any.
type host struct {
	inflight  int
	cap       int           // current concurrency cap (0 = none); lowered by adaptation
	limiter   *rate.Limiter // configured or adaptive rate; nil = none
	adaptive  bool          // limiter was created by adaptation, not configured
	troubleAt rate.Limit    // the rate at which an adaptive limiter started
	paused    time.Time     // no new requests before this
	good      int           // successes since the last adjustment
	slowedAt  time.Time     // the last slow-down, to react once per round trip
	starts    rateCounter   // recent starts, to estimate the host's rate
	oks       rateCounter   // recent successes, to estimate what the host accepts
	lastUsed  time.Time
	waiting   bool       // a URL was refused at the configured cap since the last release
	crawl     rate.Limit // the rate robots.txt's Crawl-delay asks for; 0 = none
}

// New returns a Throttle for opts.
func New(opts Options) *Throttle {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPause <= 0 {
		opts.MaxPause = time.Minute
	}
	t := &Throttle{opts: opts, hosts: make(map[string]*host)}
	if opts.Workers > 0 {
		t.use.start = opts.Now()
		t.use.since = t.use.start
	}
	if opts.Rate > 0 {
		t.global = rate.NewLimiter(rate.Limit(opts.Rate), burst(opts.Rate))
	}
	return t
}

// burst allows short bursts of up to a second's worth of requests (at least
// one), the usual token-bucket setting.
func burst(r float64) int { return max(1, int(math.Ceil(r))) }

func (t *Throttle) host(key string, now time.Time) *host {
	h, ok := t.hosts[key]
	if !ok {
		h = &host{cap: t.opts.PerHost}
		if t.opts.PerHostRate > 0 {
			h.limiter = rate.NewLimiter(rate.Limit(t.opts.PerHostRate), burst(t.opts.PerHostRate))
		}
		t.hosts[key] = h
	}
	h.lastUsed = now
	return h
}

// TryAcquire starts a request to the host if its cap, any pause and the
// rate limits allow it now, paying the first attempt's tokens. Otherwise it
// reports how long until asking again may succeed (0 when only a finishing
// request can help).
func (t *Throttle) TryAcquire(key string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	t.sweep(now)
	h := t.host(key, now)
	if now.Before(h.paused) {
		return false, h.paused.Sub(now)
	}
	if h.cap > 0 && h.inflight >= h.cap {
		// Only the configured cap counts: one that adaptive backoff
		// lowered is the server's doing, which --per-host cannot lift.
		if t.opts.Workers > 0 && h.cap == t.opts.PerHost && !h.waiting {
			t.use.advance(now, t.opts.Workers)
			h.waiting = true
			t.use.waiting++
		}
		return false, 0
	}
	if wait := t.reserve(h, now); wait > 0 {
		return false, wait
	}
	if t.opts.Workers > 0 {
		t.use.advance(now, t.opts.Workers)
		t.use.inflight++
	}
	h.inflight++
	h.starts.add(now)
	return true, 0
}

// reserve takes a token from the global and the host limiter, or neither,
// returning how long until both would have one.
func (t *Throttle) reserve(h *host, now time.Time) time.Duration {
	var rs []*rate.Reservation
	var wait time.Duration
	for _, l := range []*rate.Limiter{t.global, h.limiter} {
		if l == nil {
			continue
		}
		r := l.ReserveN(now, 1)
		rs = append(rs, r)
		wait = max(wait, r.DelayFrom(now))
	}
	if wait > 0 {
		for _, r := range rs {
			r.CancelAt(now)
		}
	}
	return wait
}

// Release ends a request started by TryAcquire.
func (t *Throttle) Release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.hosts[key]
	if !ok || h.inflight == 0 {
		return
	}
	if t.opts.Workers > 0 {
		if t.use.waiting > 0 {
			// Only then can time have been held: the clock is read
			// only for runs the cap is holding anyway.
			t.use.advance(t.opts.Now(), t.opts.Workers)
		}
		t.use.inflight--
		if h.waiting {
			t.use.waiting--
		}
	}
	h.inflight--
	h.waiting = false
}

// Usage reports how much the per-host cap held the run back so far. It
// measures nothing (and returns zeros but PerHost) unless Options.Workers
// was set.
func (t *Throttle) Usage() Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := Usage{PerHost: t.opts.PerHost, Workers: t.opts.Workers}
	if t.opts.Workers <= 0 {
		return u
	}
	now := t.opts.Now()
	t.use.advance(now, t.opts.Workers)
	u.Span, u.Held, u.Idle = now.Sub(t.use.start), t.use.held, t.use.idle
	return u
}

// Wait blocks until another attempt to the host (a retry or a redirect) may
// be sent: after any pause, with a token from each rate limit.
func (t *Throttle) Wait(ctx context.Context, key string) error {
	for {
		t.mu.Lock()
		now := t.opts.Now()
		h := t.host(key, now)
		wait := h.paused.Sub(now)
		if wait <= 0 {
			wait = t.reserve(h, now)
			if wait <= 0 {
				h.starts.add(now)
			}
		}
		t.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}

// SetCrawlDelay paces the host at one request per d, as its robots.txt
// asks, unless --per-host-rate is as strict already; the request that
// fetched robots.txt counts as the first. Setting the same delay again
// does nothing, so the caller may say it for every URL of the host (a
// host idle for a while is forgotten, its delay with it).
func (t *Throttle) SetCrawlDelay(key string, d time.Duration) {
	if d <= 0 {
		return
	}
	lim := rate.Every(d)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	h := t.host(key, now)
	if h.crawl == lim {
		return
	}
	h.crawl = lim
	switch {
	case t.opts.PerHostRate > 0 && rate.Limit(t.opts.PerHostRate) <= lim:
		// The user's own rate is the stricter one.
	case h.limiter == nil:
		h.limiter = rate.NewLimiter(lim, 1)
		h.limiter.AllowN(now, 1)
	case h.limiter.Limit() > lim:
		h.limiter.SetLimitAt(now, lim)
		h.limiter.SetBurstAt(now, 1)
		h.limiter.AllowN(now, 1)
		h.adaptive = false // from now on it is robots.txt's pace
	}
}

// ceiling is the fastest the host may be paced at: the stricter of
// --per-host-rate and its Crawl-delay; 0 means no limit.
func (t *Throttle) ceiling(h *host) rate.Limit {
	c := rate.Limit(t.opts.PerHostRate)
	if h.crawl > 0 && (c == 0 || h.crawl < c) {
		c = h.crawl
	}
	return c
}

// Observe feeds a response back for adaptive backoff: 429 and 503 slow the
// host down, successes speed it up again.
func (t *Throttle) Observe(key string, status int, header Getter) {
	if !t.opts.Adaptive {
		return
	}
	if header == nil {
		header = http.Header(nil)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	h := t.host(key, now)
	pause, hinted := rateLimitPause(header, now)
	if hinted && pause > 0 {
		if until := now.Add(min(pause, t.opts.MaxPause)); until.After(h.paused) {
			h.paused = until
		}
	}
	switch {
	case status == http.StatusTooManyRequests:
		t.slowDown(h, now, true)
	case status == http.StatusServiceUnavailable:
		t.slowDown(h, now, hinted)
	case status >= 200 && status < 400:
		h.oks.add(now)
		t.speedUp(h)
	}
}

// slowDown reacts to a refusal by halving the requests in flight to the
// host. When the refusal is explicitly about rate (a 429, or a 503 with
// Retry-After or RateLimit headers) it also paces the host: first at the
// rate it has recently accepted (at least a quarter of the rate that
// overloaded it, and at least one a second), then a quarter slower at each
// further refusal. A plain 503 may be one broken URL rather than an
// overloaded host, so it only costs concurrency. Refusals of requests sent
// before the last reaction say nothing new: it reacts at most once a second.
func (t *Throttle) slowDown(h *host, now time.Time, pace bool) {
	h.good = 0
	if now.Sub(h.slowedAt) < time.Second {
		return
	}
	h.slowedAt = now
	if h.cap == 0 {
		h.cap = max(1, h.inflight)
	}
	h.cap = max(1, h.cap/2)
	switch {
	case !pace:
	case h.limiter == nil:
		h.troubleAt = rate.Limit(max(1, h.starts.rate(now)))
		h.limiter = rate.NewLimiter(max(1, rate.Limit(h.oks.rate(now)), h.troubleAt/4), 1)
		h.adaptive = true
	default:
		h.limiter.SetLimitAt(now, max(0.5, h.limiter.Limit()*0.75))
	}
}

// speedUp gives something back after every five good answers: a fifth more
// rate, or one more request in flight, up to what was configured.
func (t *Throttle) speedUp(h *host) {
	h.good++
	if h.good < 5 {
		return
	}
	h.good = 0
	ceil := t.ceiling(h)
	switch {
	case h.limiter != nil && h.adaptive:
		next := h.limiter.Limit() * 1.2
		switch {
		case ceil > 0 && next >= ceil:
			h.limiter.SetLimit(ceil)
			h.adaptive = false
		case next >= h.troubleAt:
			h.limiter, h.adaptive = nil, false // back where trouble began: stop pacing
		default:
			h.limiter.SetLimit(next)
		}
	case h.limiter != nil && ceil > 0 && h.limiter.Limit() < ceil:
		h.limiter.SetLimit(min(ceil, h.limiter.Limit()*1.25))
	case t.opts.PerHost > 0 && h.cap < t.opts.PerHost:
		h.cap++
	case t.opts.PerHost == 0 && h.cap > 0:
		h.cap++
		if h.cap > 64 {
			h.cap = 0 // back to no cap
		}
	}
}

// rateCounter counts events per second over the last few seconds, in a
// fixed ring of per-second buckets: memory does not grow with the rate.
type rateCounter struct {
	counts [6]int64
	second int64     // the Unix second of counts[second%6]
	since  time.Time // the first event counted, for a short history
}

func (c *rateCounter) advance(now time.Time) {
	sec := now.Unix()
	if sec-c.second >= int64(len(c.counts)) {
		c.counts = [6]int64{}
		c.since = time.Time{}
	} else {
		for s := c.second + 1; s <= sec; s++ {
			c.counts[s%int64(len(c.counts))] = 0
		}
	}
	if sec > c.second {
		c.second = sec
	}
}

func (c *rateCounter) add(now time.Time) {
	c.advance(now)
	if c.since.IsZero() {
		c.since = now
	}
	c.counts[now.Unix()%int64(len(c.counts))]++
}

// rate returns events per second over the last five seconds, counting the
// current second only for the part of it that has passed.
func (c *rateCounter) rate(now time.Time) float64 {
	c.advance(now)
	cur := now.Unix() % int64(len(c.counts))
	var n int64
	for i, v := range c.counts {
		if int64(i) != (cur+1)%int64(len(c.counts)) { // the bucket about to be reused is the oldest
			n += v
		}
	}
	// Over five seconds, or less when counting started later (but at
	// least one second, so a burst is not taken for a sustained rate).
	span := min(5+float64(now.Nanosecond())/1e9, max(1, now.Sub(c.since).Seconds()))
	return float64(n) / span
}

// sweep forgets hosts idle for a while, so a list of millions of hosts does
// not keep millions of entries. It runs every 4096 calls.
func (t *Throttle) sweep(now time.Time) {
	t.ops++
	if t.ops%4096 != 0 {
		return
	}
	for k, h := range t.hosts {
		if h.inflight == 0 && now.Sub(h.lastUsed) > time.Minute && now.After(h.paused) {
			delete(t.hosts, k)
		}
	}
}

// rateLimitPause reads how long a host asks to be left alone: Retry-After
// (seconds or a date), or RateLimit-Reset / X-RateLimit-Reset when the
// matching Remaining header says nothing is left. Reset values above 10^9
// are read as Unix times, as some APIs send them.
// rateLimitHeaders are the Remaining and Reset headers of the RateLimit
// draft and of the older X-RateLimit convention.
var rateLimitHeaders = [...][2]string{
	{"RateLimit-Remaining", "RateLimit-Reset"},
	{"X-RateLimit-Remaining", "X-RateLimit-Reset"},
}

func rateLimitPause(h Getter, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After"); v != "" {
		if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && secs >= 0 {
			return time.Duration(min(secs, 3600)) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return at.Sub(now), true
		}
	}
	for _, names := range rateLimitHeaders {
		// Reset matters only once nothing remains; most responses say
		// neither, and each lookup costs.
		if strings.TrimSpace(h.Get(names[0])) != "0" {
			continue
		}
		reset := strings.TrimSpace(h.Get(names[1]))
		if reset == "" {
			continue
		}
		v, err := strconv.ParseFloat(reset, 64)
		if err != nil || v < 0 {
			continue
		}
		if v > 1e9 {
			return time.Unix(int64(v), 0).Sub(now), true
		}
		return time.Duration(min(v, 3600) * float64(time.Second)), true
	}
	return 0, false
}

// ParseRate reads a rate such as "10", "10/s", "600/m" or "3600/h" as
// requests per second.
func ParseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("bad rate %q: want requests per second like 10, 10/s, 600/m or 3600/h", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "s", "sec":
		return v, nil
	case "m", "min":
		return v / 60, nil
	case "h", "hour":
		return v / 3600, nil
	}
	return 0, fmt.Errorf("bad rate %q: the unit after / must be s, m or h", s)
}
