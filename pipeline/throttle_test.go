package pipeline

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/stage"
)

// peakServer counts requests in flight and remembers the peak.
type peakServer struct {
	*httptest.Server
	running, peak, total atomic.Int64
}

func newPeakServer(delay time.Duration) *peakServer {
	s := &peakServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.running.Add(1)
		defer s.running.Add(-1)
		s.total.Add(1)
		for {
			old := s.peak.Load()
			if n <= old || s.peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(delay)
		io.WriteString(w, "ok")
	}))
	return s
}

func TestPerHostCapUnderLoad(t *testing.T) {
	a, b := newPeakServer(5*time.Millisecond), newPeakServer(5*time.Millisecond)
	defer a.Close()
	defer b.Close()
	var urls []string
	for i := range 200 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		urls = append(urls, fmt.Sprintf("%s/%d", srv.URL, i))
	}
	for _, order := range []stage.Order{stage.InputOrder, stage.CompletionOrder} {
		a.peak.Store(0)
		b.peak.Store(0)
		var buf lockedBuffer
		cfg := testConfig(t, urls, &buf)
		cfg.FetchStage = Stage{Workers: 32, Order: order}
		cfg.Throttle = throttle.Options{PerHost: 3}
		if res, err := Run(t.Context(), cfg); err != nil || res.Outcome != "ok" {
			t.Fatal(res, err)
		}
		if n := len(parseLines(t, buf.String())); n != 200 {
			t.Fatalf("%d records", n)
		}
		for name, s := range map[string]*peakServer{"a": a, "b": b} {
			if p := s.peak.Load(); p > 3 || p < 2 {
				t.Errorf("%s: server %s saw %d requests at once, want 2..3", order, name, p)
			}
		}
	}
}

// TestSlowHostDoesNotStarveFastHosts puts 40 URLs of a slow host ahead of
// 400 URLs of a fast one: with a per-host cap, the fast ones must all be
// done before the slow host gets far. It logs the fast URLs' throughput
// with and without the slow host ahead of them.
func TestSlowHostDoesNotStarveFastHosts(t *testing.T) {
	slow := newPeakServer(100 * time.Millisecond)
	fast := newPeakServer(0)
	defer slow.Close()
	defer fast.Close()
	var slowURLs, fastURLs []string
	for i := range 40 {
		slowURLs = append(slowURLs, fmt.Sprintf("%s/slow/%d", slow.URL, i))
	}
	for i := range 400 {
		fastURLs = append(fastURLs, fmt.Sprintf("%s/fast/%d", fast.URL, i))
	}
	// run fetches urls and returns the records and when the last fast one
	// was written.
	run := func(urls []string) ([]line, time.Duration) {
		var buf lockedBuffer
		cfg := testConfig(t, urls, &buf)
		cfg.FetchStage = Stage{Workers: 8, Order: stage.CompletionOrder}
		cfg.TransformStage.Order = stage.CompletionOrder
		cfg.Throttle = throttle.Options{PerHost: 2}
		start := time.Now()
		var lastFast atomic.Int64
		cfg.Observe = func(r *record.Record) {
			if strings.Contains(r.URL, "/fast/") {
				lastFast.Store(int64(time.Since(start)))
			}
		}
		if _, err := Run(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		return parseLines(t, buf.String()), time.Duration(lastFast.Load())
	}
	_, alone := run(fastURLs)
	lines, beside := run(append(slowURLs, fastURLs...))
	slowSeen := 0
	for _, l := range lines {
		if strings.Contains(l.URL, "/slow/") {
			slowSeen++
			continue
		}
		if slowSeen > 20 {
			t.Fatalf("a fast URL was written after %d of the slow ones: the slow host held workers", slowSeen)
		}
	}
	t.Logf("400 fast URLs: %.0f/s alone, %.0f/s behind 40 URLs of a 100 ms host (per-host 2, 8 workers)",
		400/alone.Seconds(), 400/beside.Seconds())
}

// rateLimitedServer enforces 20 requests/s with a token bucket and answers
// 429 with Retry-After: 1 beyond it, counting the rejections.
func rateLimitedServer() (*httptest.Server, *atomic.Int64) {
	var rejected atomic.Int64
	lim := rate.NewLimiter(20, 5)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !lim.Allow() {
			rejected.Add(1)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, "ok")
	}))
	return srv, &rejected
}

func TestAdaptiveBackoffReducesRejections(t *testing.T) {
	var mu sync.Mutex
	rejections := map[bool]int64{}
	// The two runs have servers of their own and wait on the clock, not
	// the CPU: side by side they take half the time.
	t.Run("runs", func(t *testing.T) {
		for _, adaptive := range []bool{false, true} {
			t.Run(fmt.Sprintf("adaptive=%v", adaptive), func(t *testing.T) {
				t.Parallel()
				rejectionsOf(t, adaptive, &mu, rejections)
			})
		}
	})
	if t.Failed() {
		return
	}
	if rejections[true]*4 > rejections[false] {
		t.Fatalf("adaptive backoff got %d rejections, plain retries %d: want under a quarter", rejections[true], rejections[false])
	}
}

// rejectionsOf fetches 40 URLs from a rate-limited server and notes how
// many requests it rejected.
func rejectionsOf(t *testing.T, adaptive bool, mu *sync.Mutex, rejections map[bool]int64) {
	{
		srv, rejected := rateLimitedServer()
		urls := make([]string, 40)
		for i := range urls {
			urls[i] = fmt.Sprintf("%s/%d", srv.URL, i)
		}
		var buf lockedBuffer
		cfg := testConfig(t, urls, &buf)
		cfg.FetchStage = Stage{Workers: 16, Order: stage.CompletionOrder}
		cfg.Fetch.Retries = 20
		cfg.Fetch.RetryDelay = 50 * time.Millisecond
		cfg.Fetch.MaxRetryWait = 5 * time.Second
		cfg.Throttle = throttle.Options{PerHost: 16, Adaptive: adaptive}
		start := time.Now()
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		snap := res.Snapshot
		t.Logf("adaptive=%v: %d URLs ok of 40, %d rejections, %s", adaptive, snap.OK, rejected.Load(), time.Since(start).Round(time.Millisecond))
		if snap.OK != 40 {
			t.Fatalf("adaptive=%v: %d of 40 URLs succeeded", adaptive, snap.OK)
		}
		mu.Lock()
		rejections[adaptive] = rejected.Load()
		mu.Unlock()
	}
}
