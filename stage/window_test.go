package stage

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestWindowBytesBoundsHeldResults blocks the head item and lets the rest
// finish: how many start behind it is bounded by the bytes their results
// hold, not by the (much larger) record window.
func TestWindowBytesBoundsHeldResults(t *testing.T) {
	for _, gated := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gated"}[gated], func(t *testing.T) {
			ctx := t.Context()
			release := make(chan struct{})
			var started, held, peak atomic.Int64
			const size, budget, workers = 10, 1000, 4
			fn := func(ctx context.Context, i int) int {
				started.Add(1)
				if i == 0 {
					<-release
				}
				if h := held.Add(size); h > peak.Load() {
					peak.Store(h)
				}
				return i
			}
			opts := Options[int, int]{Workers: workers, Window: 100000, WindowBytes: budget, Size: func(int) int64 { return size }}
			if gated {
				opts.Gate = newKeyGate(0, func(int) string { return "k" })
			}
			out := Map(ctx, ctx, feed(ctx, 5000), opts, fn)
			// budget/size results fill the window; the jobs then handed
			// out (one per worker and those queued) add at most one each.
			want := int64(budget/size + workers + queuedJobs(workers))
			deadline := time.Now().Add(10 * time.Second)
			for started.Load() < budget/size && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := started.Load(); got < budget/size || got > want {
				t.Fatalf("started %d items behind the stuck head, want %d to %d", got, budget/size, want)
			}
			close(release)
			n := 0
			for v := range out {
				if v != n {
					t.Fatalf("result %d = %d: out of order", n, v)
				}
				held.Add(-size)
				n++
			}
			if n != 5000 {
				t.Fatalf("%d results, want 5000", n)
			}
			// Jobs handed out before the budget was reached may still
			// finish after it (the workers' and the queued ones), and
			// released results may wait in the output channel's buffer,
			// which this count sees but the window no longer holds.
			slack := workers + queuedJobs(workers) + outBuffer
			if p := peak.Load(); p > budget+int64(slack)*size {
				t.Fatalf("held %d bytes at the peak, budget %d plus %d × %d", p, budget, slack, size)
			}
		})
	}
}

// TestWindowBytesNeverStuckOnOneHugeItem: results each larger than the
// whole budget still flow, one at a time behind the head.
func TestWindowBytesNeverStuckOnOneHugeItem(t *testing.T) {
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx := t.Context()
			opts := Options[int, int]{Workers: 3, Order: order, Window: 1000, WindowBytes: 100, Size: func(int) int64 { return 1000 }}
			got := collect(t, Map(ctx, ctx, feed(ctx, 300), opts, scrambledDelay()))
			if len(got) != 300 {
				t.Fatalf("%d results, want 300", len(got))
			}
		})
	}
}

// TestUngatedAndGatedAgree runs the same input through the engine with no
// gate and with a gate that never refuses: the outputs must be identical in
// input order, and hold the same items in completion order.
func TestUngatedAndGatedAgree(t *testing.T) {
	ctx := t.Context()
	plain := collect(t, Map(ctx, ctx, feed(ctx, 500), Options[int, int]{Workers: 7}, scrambledDelay()))
	gated := collect(t, Map(ctx, ctx, feed(ctx, 500), Options[int, int]{Workers: 7, Gate: newKeyGate(0, func(i int) string { return string(rune('a' + i%3)) })}, scrambledDelay()))
	if len(plain) != 500 || len(gated) != 500 {
		t.Fatalf("%d and %d results", len(plain), len(gated))
	}
	for i := range plain {
		if plain[i] != gated[i] {
			t.Fatalf("result %d: %d without a gate, %d with one", i, plain[i], gated[i])
		}
	}
}

// TestSizeIsTakenBeforeRelease: once a result is released it belongs to
// the consumer, which may change it at once; the stage must not read it
// again (the race detector catches a stage that sizes it on release).
func TestSizeIsTakenBeforeRelease(t *testing.T) {
	type box struct{ n int64 }
	for _, order := range []Order{InputOrder, CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			ctx := t.Context()
			in := make(chan *box)
			go func() {
				defer close(in)
				for i := range 2000 {
					select {
					case in <- &box{n: int64(i % 7)}:
					case <-ctx.Done():
						return
					}
				}
			}()
			opts := Options[*box, *box]{Workers: 4, Order: order, WindowBytes: 50, Size: func(b *box) int64 { return b.n }}
			n := 0
			for b := range Map(ctx, ctx, in, opts, func(_ context.Context, b *box) *box { return b }) {
				b.n = -1 // the consumer's now
				n++
			}
			if n != 2000 {
				t.Fatalf("%d results", n)
			}
		})
	}
}
