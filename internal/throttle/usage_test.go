package throttle

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestUsageCountsIdleWorkersBehindTheCap plays the scheduler by hand: four
// workers, a cap of two per host, one host.
func TestUsageCountsIdleWorkersBehindTheCap(t *testing.T) {
	c := newClock()
	th := New(Options{PerHost: 2, Workers: 4, Now: c.Now})
	acquire := func(want bool) {
		t.Helper()
		if ok, _ := th.TryAcquire("a:80"); ok != want {
			t.Fatalf("TryAcquire = %v, want %v", ok, want)
		}
	}
	acquire(true)
	acquire(true)
	c.add(time.Second) // two in flight, nothing waiting: not held
	acquire(false)     // the cap refuses a URL with two workers free
	c.add(3 * time.Second)
	acquire(false) // asking again changes nothing
	c.add(time.Second)
	th.Release("a:80") // a release ends the wait until the next refusal
	c.add(time.Second)
	acquire(true)
	acquire(false)
	c.add(2 * time.Second)

	u := th.Usage()
	if u.PerHost != 2 || u.Workers != 4 || u.Span != 8*time.Second || u.Held != 6*time.Second || u.Idle != 12*time.Second {
		t.Fatalf("usage = %+v, want span 8s, held 6s, idle 12s", u)
	}
}

// TestUsageIgnoresOtherLimits: a host paced by a rate, paused by its server
// or capped lower by adaptive backoff holds workers idle too, but raising
// --per-host would not help, so none of that counts.
func TestUsageIgnoresOtherLimits(t *testing.T) {
	for name, tc := range map[string]struct {
		opts    Options
		prepare func(th *Throttle)
	}{
		"rate": {opts: Options{PerHost: 4, PerHostRate: 1}},
		"paused": {opts: Options{PerHost: 4, Adaptive: true}, prepare: func(th *Throttle) {
			th.Observe("a:80", http.StatusServiceUnavailable, http.Header{"Retry-After": {"30"}})
		}},
		"lowered cap": {opts: Options{PerHost: 4, Adaptive: true}, prepare: func(th *Throttle) {
			th.TryAcquire("a:80")
			th.TryAcquire("a:80")
			th.Observe("a:80", http.StatusTooManyRequests, http.Header{}) // cap 4 → 1
		}},
	} {
		c := newClock()
		tc.opts.Workers, tc.opts.Now = 8, c.Now
		th := New(tc.opts)
		if tc.prepare != nil {
			tc.prepare(th)
		}
		refused := false
		for range 5 {
			if ok, _ := th.TryAcquire("a:80"); !ok {
				refused = true
			}
		}
		if !refused {
			t.Fatalf("%s: nothing was refused: the test proves nothing", name)
		}
		c.add(5 * time.Second)
		if u := th.Usage(); u.Held != 0 || u.Idle != 0 {
			t.Errorf("%s: usage = %+v, want nothing held", name, u)
		}
	}
}

func TestUsageOffWithoutWorkers(t *testing.T) {
	c := newClock()
	th := New(Options{PerHost: 1, Now: c.Now})
	th.TryAcquire("a:80")
	th.TryAcquire("a:80")
	c.add(time.Minute)
	if u := th.Usage(); u != (Usage{PerHost: 1}) {
		t.Fatalf("usage = %+v", u)
	}
}

// BenchmarkAcquireRelease is the throttle's cost per URL, with and without
// the accounting of Usage.
func BenchmarkAcquireRelease(b *testing.B) {
	for _, workers := range []int{0, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			th := New(Options{PerHost: 8, Workers: workers})
			for b.Loop() {
				th.TryAcquire("a:80")
				th.Release("a:80")
			}
		})
	}
}
