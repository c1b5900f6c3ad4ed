// Package pipeline holds trawl's concurrent stages: Map, a generic stage that
// applies a function with a fixed number of workers in input or completion
// order, and Run, which wires source, fetch, transform and sink together.
package pipeline

import (
	"context"
	"fmt"
	"sync"
)

// Order says in which order a stage releases its results.
type Order int

const (
	// InputOrder releases results strictly in the order inputs arrived, like
	// Rust's StreamExt::buffered: a slow item holds back those behind it.
	InputOrder Order = iota
	// CompletionOrder releases each result as soon as it is ready, like
	// StreamExt::buffer_unordered.
	CompletionOrder
)

// String returns the name used on the command line.
func (o Order) String() string {
	if o == CompletionOrder {
		return "completion"
	}
	return "input"
}

// ParseOrder parses "input" or "completion".
func ParseOrder(s string) (Order, error) {
	switch s {
	case "input":
		return InputOrder, nil
	case "completion":
		return CompletionOrder, nil
	}
	return 0, fmt.Errorf("unknown order %q: want input or completion", s)
}

// Options configures one Map stage.
type Options struct {
	// Workers is the number of items processed at once; values below 1 mean 1.
	Workers int
	// Order selects input or completion order.
	Order Order
	// Window bounds, in input order, how many items may be started but not
	// yet released: the running ones plus finished ones waiting for a slower
	// item ahead of them. Values below Workers mean Workers, which makes the
	// stage behave exactly like buffered(Workers). Ignored in completion order.
	Window int
	// Lookahead bounds, for MapGated, how many items are read ahead of the
	// ones started, to find items the gate lets through. Values below 1
	// mean max(1024, 16×Workers).
	Lookahead int
	// Stop, when closed, tells MapGated to drop the items it read ahead
	// but has not started: they get no result, as if never read. Items
	// already started still produce theirs. (A graceful stop should not
	// turn a thousand read-ahead items into a thousand "canceled" ones.)
	Stop <-chan struct{}
}

func (o Options) normalized() Options {
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Window < o.Workers {
		o.Window = o.Workers
	}
	return o
}

// Map applies fn to every item received from in and sends exactly one result
// per item on the returned channel, which is closed once in is closed and
// every result has been sent.
//
// ctx governs the stage's lifetime: when it is done, the stage stops taking
// input, stops sending, and all its goroutines exit; results not yet sent are
// dropped. fn receives workCtx, so that callers can cancel the work itself
// (for example after a shutdown grace period) while still collecting every
// result; pass the same context twice when the distinction does not matter.
func Map[In, Out any](ctx, workCtx context.Context, in <-chan In, opts Options, fn func(context.Context, In) Out) <-chan Out {
	opts = opts.normalized()
	// Work must also stop when the stage itself is torn down.
	workCtx, cancelWork := context.WithCancel(workCtx)
	stopAfter := context.AfterFunc(ctx, cancelWork)
	done := func() {
		stopAfter()
		cancelWork()
	}
	if opts.Order == CompletionOrder {
		return mapUnordered(ctx, workCtx, in, opts.Workers, fn, done)
	}
	return mapOrdered(ctx, workCtx, in, opts.Workers, opts.Window, fn, done)
}

func mapUnordered[In, Out any](ctx, workCtx context.Context, in <-chan In, workers int, fn func(context.Context, In) Out, done func()) <-chan Out {
	out := make(chan Out)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				item, ok := receive(ctx, in)
				if !ok {
					return
				}
				res := fn(workCtx, item)
				select {
				case out <- res:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		done()
		close(out)
	}()
	return out
}

// receive takes the next item from in; false when in is closed or ctx is
// done first.
func receive[T any](ctx context.Context, in <-chan T) (T, bool) {
	select {
	case <-ctx.Done():
		var zero T
		return zero, false
	case v, ok := <-in:
		return v, ok
	}
}

// job carries one item to a worker together with the slot its result goes to.
type job[In, Out any] struct {
	item In
	slot chan Out
}

// mapOrdered keeps a queue of per-item result slots in input order. The
// dispatcher reserves a slot in the queue before handing the item to a
// worker, so the queue's capacity bounds started-but-unreleased items, and a
// single emitter drains the queue front to back. Each slot has room for its
// one result, so a worker never blocks on a slow emitter.
func mapOrdered[In, Out any](ctx, workCtx context.Context, in <-chan In, workers, window int, fn func(context.Context, In) Out, done func()) <-chan Out {
	out := make(chan Out)
	jobs := make(chan job[In, Out])
	// The emitter holds one slot it has taken off the queue, so the queue
	// itself needs one place fewer than the window.
	queue := make(chan chan Out, window-1)

	go func() {
		defer close(jobs)
		defer close(queue)
		for {
			item, ok := receive(ctx, in)
			if !ok {
				return
			}
			slot := make(chan Out, 1)
			select {
			case queue <- slot:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job[In, Out]{item: item, slot: slot}:
			case <-ctx.Done():
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.slot <- fn(workCtx, j.item)
			}
		})
	}

	go func() {
		defer close(out)
		defer done()
		defer wg.Wait()
		for slot := range queue {
			var res Out
			select {
			case res = <-slot:
			case <-ctx.Done():
				return
			}
			select {
			case out <- res:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
