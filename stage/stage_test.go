package stage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// feed sends 0..n-1 on a new channel and closes it.
func feed(ctx context.Context, n int) <-chan int {
	ch := make(chan int)
	go func() {
		defer close(ch)
		for i := range n {
			select {
			case ch <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// collect drains ch, failing the test if that takes longer than a generous bound.
func collect[T any](t *testing.T, ch <-chan T) []T {
	t.Helper()
	var got []T
	timeout := time.After(20 * time.Second)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, v)
		case <-timeout:
			t.Fatalf("stage did not finish; got %d results so far", len(got))
		}
	}
}

func TestParseOrder(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Order
		wantErr bool
	}{
		{"input", InputOrder, false},
		{"completion", CompletionOrder, false},
		{"random", 0, true},
		{"", 0, true},
	} {
		got, err := ParseOrder(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("ParseOrder(%q) = %v, %v", tc.in, got, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

// scrambledDelay gives items uneven durations, so that completion order
// differs from input order whenever several items run at once.
func scrambledDelay() func(context.Context, int) int {
	return func(ctx context.Context, i int) int {
		d := time.Duration((i*7919)%13) * 50 * time.Microsecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return i * 10
	}
}

func TestInputOrderKeepsOrder(t *testing.T) {
	for _, workers := range []int{1, 3, 16} {
		for _, window := range []int{0, 40} {
			t.Run(fmt.Sprintf("workers=%d/window=%d", workers, window), func(t *testing.T) {
				ctx := t.Context()
				const n = 200
				got := collect(t, Map(ctx, ctx, feed(ctx, n), Options[int, int]{Workers: workers, Window: window}, scrambledDelay()))
				if len(got) != n {
					t.Fatalf("got %d results, want %d", len(got), n)
				}
				for i, v := range got {
					if v != i*10 {
						t.Fatalf("result %d = %d, want %d (out of order)", i, v, i*10)
					}
				}
			})
		}
	}
}

func TestCompletionOrderDeliversEachOnceAndReorders(t *testing.T) {
	ctx := t.Context()
	const n = 200
	// Item 0 waits until item n-1 has finished, so completion order must
	// put 0 after n-1 (possible only with more than one worker).
	lastDone := make(chan struct{})
	fn := func(ctx context.Context, i int) int {
		switch i {
		case 0:
			select {
			case <-lastDone:
			case <-ctx.Done():
			}
		case n - 1:
			defer close(lastDone)
		}
		return i
	}
	got := collect(t, Map(ctx, ctx, feed(ctx, n), Options[int, int]{Workers: 4, Order: CompletionOrder}, fn))
	seen := make(map[int]int)
	pos := make(map[int]int)
	for p, v := range got {
		seen[v]++
		pos[v] = p
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("got %d results (%d distinct), want %d each once", len(got), len(seen), n)
	}
	if pos[0] < pos[n-1] {
		t.Fatalf("item 0 released at %d before item %d at %d: not completion order", pos[0], n-1, pos[n-1])
	}
}

// concurrencyProbe records the highest number of calls running at once.
type concurrencyProbe struct {
	running, peak atomic.Int64
}

func (p *concurrencyProbe) enter() {
	n := p.running.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			return
		}
	}
}

func (p *concurrencyProbe) leave() { p.running.Add(-1) }

func TestNeverMoreThanWorkersInFlight(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx := t.Context()
			const workers = 5
			var probe concurrencyProbe
			fn := func(ctx context.Context, i int) int {
				probe.enter()
				defer probe.leave()
				time.Sleep(100 * time.Microsecond) // keep workers overlapping
				return i
			}
			got := collect(t, Map(ctx, ctx, feed(ctx, 300), Options[int, int]{Workers: workers, Order: order, Window: 50}, fn))
			if len(got) != 300 {
				t.Fatalf("got %d results, want 300", len(got))
			}
			if p := probe.peak.Load(); p > workers {
				t.Fatalf("peak concurrency %d exceeds %d workers", p, workers)
			} else if p < 2 {
				t.Fatalf("peak concurrency %d: workers never overlapped, test proves nothing", p)
			}
		})
	}
}

// TestInputOrderWindowBoundsBacklog blocks item 0 and counts how many later
// items get started: exactly the window minus the blocked one, never more.
func TestInputOrderWindowBoundsBacklog(t *testing.T) {
	for _, tc := range []struct{ workers, window, wantStarted int }{
		{4, 0, 4},   // buffered(4): nothing past the 4 in flight
		{4, 10, 10}, // a wider window lets 9 more start behind the stuck head
	} {
		t.Run(fmt.Sprintf("workers=%d/window=%d", tc.workers, tc.window), func(t *testing.T) {
			ctx := t.Context()
			release := make(chan struct{})
			var started atomic.Int64
			fn := func(ctx context.Context, i int) int {
				started.Add(1)
				if i == 0 {
					<-release
				}
				return i
			}
			out := Map(ctx, ctx, feed(ctx, 1000), Options[int, int]{Workers: tc.workers, Window: tc.window}, fn)
			// Wait until the stage has started all it is allowed to, then
			// give it more time to (wrongly) start extra items.
			deadline := time.Now().Add(10 * time.Second)
			for started.Load() < int64(tc.wantStarted) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := started.Load(); got != int64(tc.wantStarted) {
				t.Fatalf("started %d items while item 0 was stuck, want %d", got, tc.wantStarted)
			}
			select {
			case v := <-out:
				t.Fatalf("released %d while item 0 was unfinished", v)
			default:
			}
			close(release)
			got := collect(t, out)
			if len(got) != 1000 {
				t.Fatalf("got %d results, want 1000", len(got))
			}
		})
	}
}

func TestCancellationStopsEverything(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			var calls atomic.Int64
			var sawCancel atomic.Int64
			fn := func(ctx context.Context, i int) int {
				calls.Add(1)
				select {
				case <-ctx.Done():
					sawCancel.Add(1)
				case <-time.After(time.Duration(i%7) * time.Millisecond):
				}
				return i
			}
			// An endless input: only cancellation can end this stage.
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
			out := Map(ctx, ctx, in, Options[int, int]{Workers: 8, Order: order}, fn)
			for range 50 {
				<-out
			}
			cancel()
			// Nobody reads out any more except to see it close.
			collect(t, out)
			wg.Wait()
			if calls.Load() < 50 {
				t.Fatalf("only %d calls", calls.Load())
			}
			// goleak in TestMain checks that every goroutine exited.
		})
	}
}

// TestWorkContextCancelKeepsResults cancels only the work context: every
// input must still produce its result, so nothing is lost on shutdown.
func TestWorkContextCancelKeepsResults(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx := t.Context()
			workCtx, cancelWork := context.WithCancel(ctx)
			const n = 100
			fn := func(ctx context.Context, i int) int {
				if i == 10 {
					cancelWork()
				}
				if i > 10 {
					<-ctx.Done() // would hang forever without the cancellation
				}
				return i
			}
			got := collect(t, Map(ctx, workCtx, feed(ctx, n), Options[int, int]{Workers: 4, Order: order}, fn))
			if len(got) != n {
				t.Fatalf("got %d results, want %d", len(got), n)
			}
		})
	}
}

func TestZeroWorkersMeansOne(t *testing.T) {
	ctx := t.Context()
	got := collect(t, Map(ctx, ctx, feed(ctx, 10), Options[int, int]{Workers: 0}, func(_ context.Context, i int) int { return i }))
	if len(got) != 10 {
		t.Fatalf("got %d results, want 10", len(got))
	}
}

func BenchmarkMap(b *testing.B) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		for _, workers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/workers=%d", order, workers), func(b *testing.B) {
				ctx := b.Context()
				b.ReportAllocs()
				out := Map(ctx, ctx, feed(ctx, b.N), Options[int, int]{Workers: workers, Order: order}, func(_ context.Context, i int) int { return i })
				for range out {
				}
			})
		}
	}
}
