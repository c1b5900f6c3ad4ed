package throttle

import (
	"net/http"
	"testing"
	"time"
)

// TestCrawlDelay: robots.txt's Crawl-delay becomes the host's pace, the
// robots.txt request counting as the first, unless --per-host-rate is
// stricter; other hosts are not touched, and adaptive speed-ups never go
// past it.
func TestCrawlDelay(t *testing.T) {
	clk := newClock()
	th := New(Options{Adaptive: true, Now: clk.Now})
	th.SetCrawlDelay("a:80", 2*time.Second)
	th.SetCrawlDelay("a:80", 2*time.Second) // said again for every URL: no new token
	if ok, wait := th.TryAcquire("a:80"); ok || wait < 1900*time.Millisecond {
		t.Fatalf("right after robots.txt: ok %v wait %v, want a refusal for about 2s", ok, wait)
	}
	if ok, _ := th.TryAcquire("b:80"); !ok {
		t.Fatal("another host was paced too")
	}
	clk.add(2 * time.Second)
	if ok, _ := th.TryAcquire("a:80"); !ok {
		t.Fatal("refused after the delay")
	}
	th.Release("a:80")
	// Good answers do not speed the host past its Crawl-delay.
	for range 50 {
		th.Observe("a:80", http.StatusOK, nil)
	}
	clk.add(time.Second)
	if ok, _ := th.TryAcquire("a:80"); ok {
		t.Fatal("a second request one second later: the Crawl-delay of 2s was lifted")
	}

	// A stricter --per-host-rate wins; a looser one gives way.
	strict := New(Options{PerHostRate: 0.25, Now: clk.Now})
	strict.TryAcquire("a:80")
	strict.SetCrawlDelay("a:80", time.Second)
	if _, wait := strict.TryAcquire("a:80"); wait < 3*time.Second {
		t.Fatalf("--per-host-rate 0.25 with Crawl-delay 1: wait %v, want about 4s", wait)
	}
	loose := New(Options{PerHostRate: 100, Now: clk.Now})
	loose.SetCrawlDelay("a:80", time.Second)
	if ok, wait := loose.TryAcquire("a:80"); ok || wait < 900*time.Millisecond {
		t.Fatalf("--per-host-rate 100 with Crawl-delay 1: ok %v wait %v, want about 1s", ok, wait)
	}
}

// TestCrawlDelayOutlastsAdaptivePacing: a host paced by adaptive backoff
// when its Crawl-delay comes keeps the delay once it has recovered.
func TestCrawlDelayOutlastsAdaptivePacing(t *testing.T) {
	clk := newClock()
	th := New(Options{Adaptive: true, Now: clk.Now})
	for range 20 {
		if ok, _ := th.TryAcquire("a:80"); ok {
			th.Release("a:80")
		}
	}
	th.Observe("a:80", http.StatusTooManyRequests, nil) // paced now, adaptively
	th.SetCrawlDelay("a:80", 100*time.Millisecond)      // 10/s: looser than that pace
	for range 500 {
		clk.add(time.Second)
		th.Observe("a:80", http.StatusOK, nil)
	}
	clk.add(time.Second)
	started := 0
	for range 50 {
		if ok, _ := th.TryAcquire("a:80"); ok {
			started++
			th.Release("a:80")
		}
	}
	if started > 2 {
		t.Fatalf("%d requests at once after recovering: the Crawl-delay of 100ms was dropped with the adaptive pace", started)
	}
}
