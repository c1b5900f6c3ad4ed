package stage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyGate allows at most cap items per key at once (0 = no cap), and can
// hold back one key until it is opened.
type keyGate struct {
	mu      sync.Mutex
	cap     int
	running map[string]int
	peak    map[string]int
	closed  map[string]bool
	key     func(int) string
}

func newKeyGate(cap int, key func(int) string) *keyGate {
	return &keyGate{cap: cap, running: map[string]int{}, peak: map[string]int{}, closed: map[string]bool{}, key: key}
}

func (g *keyGate) Key(i int) string { return g.key(i) }

func (g *keyGate) TryStart(i int, _ string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.key(i)
	if g.closed[k] {
		return false, time.Millisecond
	}
	if g.cap > 0 && g.running[k] >= g.cap {
		return false, 0
	}
	g.running[k]++
	g.peak[k] = max(g.peak[k], g.running[k])
	return true, 0
}

func (g *keyGate) Done(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running[key]--
}

func (g *keyGate) setClosed(k string, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed[k] = closed
}

func TestGatedKeepsOrderAndCaps(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx := t.Context()
			gate := newKeyGate(2, func(i int) string { return fmt.Sprint(i % 5) })
			const n = 500
			got := collect(t, Map(ctx, ctx, feed(ctx, n), Options[int, int]{Workers: 8, Order: order, Gate: gate}, scrambledDelay()))
			if len(got) != n {
				t.Fatalf("%d results, want %d", len(got), n)
			}
			seen := map[int]bool{}
			for i, v := range got {
				if seen[v] {
					t.Fatalf("%d twice", v)
				}
				seen[v] = true
				if order == InputOrder && v != i*10 {
					t.Fatalf("result %d = %d: out of order", i, v)
				}
			}
			for k, p := range gate.peak {
				if p > 2 {
					t.Fatalf("key %s had %d at once, cap 2", k, p)
				}
			}
			if gate.peak["0"] < 2 {
				t.Fatal("the cap was never reached: the test proves nothing")
			}
		})
	}
}

// TestGatedDoesNotStarveOtherKeys: a busy key with stuck items must not hold
// up items of other keys queued behind them.
func TestGatedDoesNotStarveOtherKeys(t *testing.T) {
	ctx := t.Context()
	release := make(chan struct{})
	gate := newKeyGate(2, func(i int) string {
		if i < 20 {
			return "slow"
		}
		return fmt.Sprint("fast", i%7)
	})
	var fastDone atomic.Int64
	fn := func(ctx context.Context, i int) int {
		if i < 20 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		} else {
			fastDone.Add(1)
		}
		return i
	}
	out := Map(ctx, ctx, feed(ctx, 220), Options[int, int]{Workers: 4, Order: CompletionOrder, Gate: gate}, fn)
	// All 200 fast items finish while the 20 slow ones (2 running, 18
	// queued ahead of every fast one) are stuck.
	for range 200 {
		select {
		case v := <-out:
			if v < 20 {
				t.Fatalf("slow item %d finished while stuck", v)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("fast items starved: %d of 200 done", fastDone.Load())
		}
	}
	close(release)
	if rest := collect(t, out); len(rest) != 20 {
		t.Fatalf("%d slow results, want 20", len(rest))
	}
}

// TestGatedFullWindowAdmitsTheHead holds back the first item's key until
// the window is full of later finished items: the head must still start.
func TestGatedFullWindowAdmitsTheHead(t *testing.T) {
	ctx := t.Context()
	gate := newKeyGate(0, func(i int) string {
		if i == 0 {
			return "late"
		}
		return "early"
	})
	gate.setClosed("late", true)
	var started atomic.Int64
	fn := func(_ context.Context, i int) int {
		started.Add(1)
		return i
	}
	out := Map(ctx, ctx, feed(ctx, 50), Options[int, int]{Workers: 2, Window: 2, Gate: gate}, fn)
	deadline := time.Now().Add(10 * time.Second)
	for started.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := started.Load(); n != 2 {
		t.Fatalf("%d items started while the head was held back, want the window's 2", n)
	}
	gate.setClosed("late", false)
	got := collect(t, out)
	if len(got) != 50 || got[0] != 0 {
		t.Fatalf("%d results, first %v", len(got), got[:1])
	}
}

func TestGatedRetriesAfterWait(t *testing.T) {
	ctx := t.Context()
	gate := newKeyGate(0, func(int) string { return "k" })
	gate.setClosed("k", true)
	time.AfterFunc(30*time.Millisecond, func() { gate.setClosed("k", false) })
	got := collect(t, Map(ctx, ctx, feed(ctx, 10), Options[int, int]{Workers: 2, Order: CompletionOrder, Gate: gate}, func(_ context.Context, i int) int { return i }))
	if len(got) != 10 {
		t.Fatalf("%d results", len(got))
	}
}

func TestGatedCancellation(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			gate := newKeyGate(1, func(i int) string { return fmt.Sprint(i % 3) })
			in := make(chan int)
			var wg sync.WaitGroup
			wg.Go(func() {
				defer close(in)
				for i := 0; ; i++ {
					select {
					case in <- i:
					case <-ctx.Done():
						return
					}
				}
			})
			out := Map(ctx, ctx, in, Options[int, int]{Workers: 4, Order: order, Gate: gate}, func(ctx context.Context, i int) int {
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(i%5) * time.Millisecond):
				}
				return i
			})
			for range 30 {
				<-out
			}
			cancel()
			collect(t, out)
			wg.Wait()
		})
	}
}

func BenchmarkMapGated(b *testing.B) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		b.Run(order.String(), func(b *testing.B) {
			ctx := b.Context()
			gate := newKeyGate(8, func(i int) string { return fmt.Sprint(i % 100) })
			b.ReportAllocs()
			for range Map(ctx, ctx, feed(ctx, b.N), Options[int, int]{Workers: 32, Order: order, Gate: gate}, func(_ context.Context, i int) int { return i }) {
			}
		})
	}
}

// TestGatedStopDropsReadAhead closes Stop while items are stuck: only the
// started ones produce results; the read-ahead ones vanish, in both orders.
func TestGatedStopDropsReadAhead(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx := t.Context()
			stop := make(chan struct{})
			release := make(chan struct{})
			var started atomic.Int64
			gate := newKeyGate(0, func(int) string { return "k" })
			out := Map(ctx, ctx, feed(ctx, 1000), Options[int, int]{Workers: 4, Order: order, Lookahead: 100, Stop: stop, Gate: gate}, func(ctx context.Context, i int) int {
				started.Add(1)
				<-release
				return i
			})
			deadline := time.Now().Add(10 * time.Second)
			for started.Load() < 4 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			close(stop)
			close(release)
			got := collect(t, out)
			if len(got) != 4 || started.Load() != 4 {
				t.Fatalf("%d results from %d started items, want 4 and 4", len(got), started.Load())
			}
		})
	}
}

// TestKeyQueueStaysSmall feeds a queue that never empties, as one host with
// a long list does: its backing array must not grow with the items seen.
func TestKeyQueueStaysSmall(t *testing.T) {
	q := &keyQueue[int]{heapIdx: -1}
	for i := range 1_000_000 {
		q.items = append(q.items, entry[int]{seq: int64(i)})
		if i >= 100 {
			if q.front().seq != int64(i-100) {
				t.Fatalf("front %d, want %d", q.front().seq, i-100)
			}
			q.pop()
		}
	}
	if c := cap(q.items); c > 4096 {
		t.Fatalf("a queue of 100 items holds an array of %d", c)
	}
}

// capGate caps each of 100 keys at 8 items, with no locking: the
// benchmark below drives the scheduler from one goroutine.
type capGate struct{ running [100]int }

func (g *capGate) Key(i int) string { return keys100[i%100] }

func (g *capGate) TryStart(i int, _ string) (bool, time.Duration) {
	if g.running[i%100] >= 8 {
		return false, 0
	}
	g.running[i%100]++
	return true, 0
}

func (g *capGate) Done(key string) { g.running[keyIndex[key]]-- }

var keys100, keyIndex = func() ([]string, map[string]int) {
	ks, idx := make([]string, 100), map[string]int{}
	for i := range ks {
		ks[i] = fmt.Sprint("host", i)
		idx[ks[i]] = i
	}
	return ks, idx
}()

// BenchmarkSchedulerPerItem measures the per-host scheduler's own work
// per item (queueing, choosing by the gate, finishing, releasing in input
// order), without the goroutines and channels around it.
func BenchmarkSchedulerPerItem(b *testing.B) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		b.Run(order.String(), func(b *testing.B) {
			const workers = 32
			jobs := make(chan job[int], 2*workers)
			opts := Options[int, int]{Workers: workers, Order: order, Window: 4096, Gate: &capGate{}}.normalized()
			s := newScheduler(opts, jobs, 2*workers)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.add(i)
				s.dispatch()
				// Finish one job whenever every slot is handed out.
				for s.free == 0 {
					j := <-jobs
					s.finish(finished[int]{seq: j.seq, key: j.key, res: j.item})
					for {
						if _, ok := s.releasable(); !ok {
							break
						}
						s.release()
					}
					s.dispatch()
				}
			}
		})
	}
}

// TestGatedReadsAheadOnlyWhatItNeeds: while every worker is busy and the
// gate holds nothing back, the stage reads only a few items ahead, not
// its whole lookahead: read-ahead items are records held in memory (with
// 1,000 workers, 16,000 of them).
func TestGatedReadsAheadOnlyWhatItNeeds(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			const workers = 4
			var read atomic.Int64
			in := make(chan int)
			go func() {
				defer close(in)
				for i := 0; i < 5000; i++ {
					select {
					case in <- i:
						read.Add(1)
					case <-ctx.Done():
						return
					}
				}
			}()
			release := make(chan struct{})
			started := make(chan struct{}, 5000)
			gate := newKeyGate(0, func(i int) string { return fmt.Sprint(i % 3) })
			out := Map(ctx, ctx, in, Options[int, int]{Workers: workers, Order: order, Gate: gate}, func(ctx context.Context, i int) int {
				started <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
				return i
			})
			for range workers {
				select {
				case <-started:
				case <-time.After(5 * time.Second):
					t.Fatal("the workers did not start")
				}
			}
			// Give an eager scheduler time to read on.
			time.Sleep(100 * time.Millisecond)
			// Workers, the jobs queued for them, the items kept ready, and
			// one in each channel's hand.
			limit := int64(workers + queuedJobs(workers) + readyAhead + 2)
			if n := read.Load(); n > limit {
				t.Errorf("read %d items with every worker busy, want at most %d (the lookahead is %d)", n, limit, max(1024, 16*workers))
			}
			close(release)
			n := 0
			for range out {
				n++
			}
			if n != 5000 {
				t.Errorf("%d results, want 5000", n)
			}
		})
	}
}
