package throttle

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// clock is a manual time source for deterministic rate tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)} }

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"10": 10, "10/s": 10, "600/m": 10, "3600/h": 1, "0.5": 0.5, " 120 / m ": 2} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "fast", "-1", "10/d", "NaN", "1e400"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func TestPerHostCap(t *testing.T) {
	th := New(Options{PerHost: 2})
	for i := range 2 {
		if ok, _ := th.TryAcquire("a:80"); !ok {
			t.Fatalf("acquire %d refused", i)
		}
	}
	if ok, wait := th.TryAcquire("a:80"); ok || wait != 0 {
		t.Fatalf("third acquire: ok %v wait %v", ok, wait)
	}
	if ok, _ := th.TryAcquire("b:80"); !ok {
		t.Fatal("another host was refused")
	}
	th.Release("a:80")
	if ok, _ := th.TryAcquire("a:80"); !ok {
		t.Fatal("refused after a release")
	}
	unlimited := New(Options{})
	for range 1000 {
		if ok, _ := unlimited.TryAcquire("a:80"); !ok {
			t.Fatal("refused without a cap")
		}
	}
}

func TestRates(t *testing.T) {
	clk := newClock()
	th := New(Options{Rate: 10, PerHostRate: 4, Now: clk.Now})
	// Per host: a burst of 4, then one every 250ms.
	for i := range 4 {
		if ok, _ := th.TryAcquire("a:80"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
		th.Release("a:80")
	}
	ok, wait := th.TryAcquire("a:80")
	if ok || wait <= 0 || wait > 250*time.Millisecond {
		t.Fatalf("fifth request: ok %v wait %v", ok, wait)
	}
	// Other hosts share the global 10/s: 6 more tokens are left.
	got := 0
	for _, h := range []string{"b:80", "c:80", "d:80"} {
		for range 4 {
			if ok, _ := th.TryAcquire(h); ok {
				got++
				th.Release(h)
			}
		}
	}
	if got != 6 {
		t.Fatalf("%d requests passed the global limit's remaining 6 tokens", got)
	}
	// A refusal consumes nothing: after 250ms, host a may go again.
	clk.add(250 * time.Millisecond)
	if ok, _ := th.TryAcquire("a:80"); !ok {
		t.Fatal("refused after waiting the announced time")
	}
}

// TestRateUpperBound drives a limiter with a simulated clock and checks the
// token-bucket guarantee: never more than burst + rate × elapsed.
func TestRateUpperBound(t *testing.T) {
	clk := newClock()
	th := New(Options{PerHostRate: 20, Now: clk.Now})
	start := clk.Now()
	n := 0
	for range 3000 {
		if ok, _ := th.TryAcquire("h:80"); ok {
			n++
			th.Release("h:80")
		}
		clk.add(time.Millisecond)
	}
	elapsed := clk.Now().Sub(start).Seconds()
	if limit := 20 + 20*elapsed; float64(n) > limit || float64(n) < 0.9*20*elapsed {
		t.Fatalf("%d requests in %.1fs at 20/s (limit %.0f)", n, elapsed, limit)
	}
}

func TestAdaptiveSlowsDownAndRecovers(t *testing.T) {
	clk := newClock()
	th := New(Options{PerHost: 8, Adaptive: true, Now: clk.Now})
	key := "api:443"
	cap := func() int {
		th.mu.Lock()
		defer th.mu.Unlock()
		return th.hosts[key].cap
	}
	th.TryAcquire(key)
	for _, want := range []int{4, 2, 1, 1} {
		th.Observe(key, http.StatusTooManyRequests, nil)
		if cap() != want {
			t.Fatalf("cap %d after a 429, want %d", cap(), want)
		}
		// More refusals within the same second are echoes of the same
		// overload and change nothing.
		th.Observe(key, http.StatusTooManyRequests, nil)
		if cap() != want {
			t.Fatalf("cap %d after a second 429 in the same second, want %d", cap(), want)
		}
		clk.add(time.Second)
	}
	th.mu.Lock()
	paced := th.hosts[key].limiter != nil
	th.mu.Unlock()
	if !paced {
		t.Fatal("no pacing after 429s")
	}
	// A plain 503 (no hints) costs concurrency, not pace.
	plain503 := New(Options{PerHost: 8, Adaptive: true, Now: clk.Now})
	plain503.TryAcquire(key)
	for range 5 {
		plain503.Observe(key, http.StatusServiceUnavailable, nil)
		clk.add(time.Second)
	}
	plain503.mu.Lock()
	h503 := plain503.hosts[key]
	if h503.cap != 1 || h503.limiter != nil {
		t.Fatalf("after plain 503s: cap %d, paced %v", h503.cap, h503.limiter != nil)
	}
	plain503.mu.Unlock()
	// Retry-After pauses the whole host.
	th.Observe(key, http.StatusServiceUnavailable, http.Header{"Retry-After": {"3"}})
	if ok, wait := th.TryAcquire(key); ok || wait != 3*time.Second {
		t.Fatalf("during Retry-After: ok %v wait %v", ok, wait)
	}
	clk.add(3 * time.Second)
	// Good answers give capacity back, ten at a time.
	for range 200 {
		th.Observe(key, http.StatusOK, nil)
	}
	if cap() < 4 {
		t.Fatalf("cap %d after 200 successes", cap())
	}
	// A pause asked for ten years lasts MaxPause (a minute by default).
	clk.add(time.Hour)
	th.Observe(key, http.StatusTooManyRequests, http.Header{"Retry-After": {"315360000"}})
	if ok, wait := th.TryAcquire(key); ok || wait != time.Minute {
		t.Fatalf("a ten-year Retry-After: ok %v wait %v", ok, wait)
	}
	// Without --adaptive, nothing changes.
	plain := New(Options{PerHost: 8, Now: clk.Now})
	plain.TryAcquire(key)
	plain.Observe(key, http.StatusTooManyRequests, http.Header{"Retry-After": {"60"}})
	if ok, _ := plain.TryAcquire(key); !ok {
		t.Fatal("non-adaptive throttle reacted to a 429")
	}
}

func TestRateLimitPause(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{http.Header{"Retry-After": {"Thu, 01 Jan 2026 00:00:30 GMT"}}, 30 * time.Second, true},
		{http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"12"}}, 12 * time.Second, true},
		{http.Header{"Ratelimit-Remaining": {"5"}, "Ratelimit-Reset": {"12"}}, 0, false},
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1767225620"}}, 20 * time.Second, true},
		{http.Header{"Retry-After": {"315360000"}}, time.Hour, true},
		{http.Header{}, 0, false},
	} {
		got, ok := rateLimitPause(tc.h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v: %v, %v; want %v, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRateCounter(t *testing.T) {
	clk := newClock()
	var c rateCounter
	for range 50 { // 10 a second for five seconds
		c.add(clk.Now())
		clk.add(100 * time.Millisecond)
	}
	if r := c.rate(clk.Now()); r < 8 || r > 12 {
		t.Fatalf("rate %.1f, want about 10", r)
	}
	clk.add(time.Minute)
	if r := c.rate(clk.Now()); r != 0 {
		t.Fatalf("rate %.1f a minute later", r)
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10", "10/s", "600/m", "3600/h", "0", "-1", "1e400", "NaN", "5/d", "/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err == nil && (r < 0 || r != r || r > 1e308) {
			t.Fatalf("ParseRate(%q) = %v", s, r)
		}
	})
}
