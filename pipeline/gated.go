package pipeline

import (
	"context"
	"sync"
	"time"
)

// Gate decides when an item may start, for stages whose items compete for
// shared limits (such as requests per host). Items with the same key share
// their limits: when one is refused, the others with that key are not asked
// again in the same round. Items whose key is "" are under no limit and
// start without asking.
type Gate[T any] interface {
	// Key groups items that share limits.
	Key(item T) string
	// TryStart reserves what the item needs and reports whether it may
	// start now. When it may not, retryIn says when asking again could
	// succeed; 0 means only after some item is Done.
	TryStart(item T) (ok bool, retryIn time.Duration)
	// Done releases what TryStart reserved for an item with this key. It
	// gets the key rather than the item, which by then belongs downstream.
	Done(key string)
}

// gatedEntry is one item between input and output.
type gatedEntry[In, Out any] struct {
	item In
	seq  int64
	key  string   // set when it starts
	slot chan Out // input order only: where its result waits for release
}

// MapGated is Map for items that compete for limits kept by gate. It reads
// ahead up to opts.Lookahead items that have not started yet and starts,
// whenever a worker is free, the earliest of them that the gate lets
// through. So no worker waits idle for a busy key while items with other
// keys are waiting behind it.
//
// In input order the usual window still bounds started-but-unreleased items
// (the item at the head of the order may always start, so a full window
// never stalls); read-ahead items have not started and cost little.
func MapGated[In, Out any](ctx, workCtx context.Context, in <-chan In, opts Options, gate Gate[In], fn func(context.Context, In) Out) <-chan Out {
	opts = opts.normalized()
	lookahead := opts.Lookahead
	if lookahead < 1 {
		lookahead = max(1024, 16*opts.Workers)
	}
	ordered := opts.Order == InputOrder
	workCtx, cancelWork := context.WithCancel(workCtx)
	stopAfter := context.AfterFunc(ctx, cancelWork)

	out := make(chan Out)
	jobs := make(chan *gatedEntry[In, Out], opts.Workers)
	doneC := make(chan string, opts.Workers)
	freeC := make(chan struct{}, opts.Workers)
	// Every entry taken from the input is released exactly once, and at
	// most lookahead+window are outstanding, so sends on these never block.
	orderC := make(chan *gatedEntry[In, Out], lookahead+opts.Window+1)
	releasedC := make(chan struct{}, lookahead+opts.Window+1)

	var workers sync.WaitGroup
	for range opts.Workers {
		workers.Go(func() {
			for e := range jobs {
				key := e.key // read before the item is handed on
				res := fn(workCtx, e.item)
				doneC <- key
				if ordered {
					e.slot <- res
				} else {
					select {
					case out <- res:
						releasedC <- struct{}{}
					case <-ctx.Done():
						return
					}
				}
				freeC <- struct{}{}
			}
		})
	}

	if ordered {
		go func() {
			defer close(out)
			defer workers.Wait()
			for e := range orderC {
				var res Out
				var ok bool
				select {
				case res, ok = <-e.slot:
				case <-ctx.Done():
					return
				}
				if !ok { // dropped on stop: nothing to release
					releasedC <- struct{}{}
					continue
				}
				select {
				case out <- res:
					releasedC <- struct{}{}
				case <-ctx.Done():
					return
				}
			}
		}()
	} else {
		go func() {
			workers.Wait()
			close(out)
		}()
	}

	go func() {
		defer func() {
			stopAfter()
			cancelWork()
		}()
		defer close(orderC)
		defer close(jobs)
		d := gatedDispatcher[In, Out]{gate: gate, window: opts.Window, ordered: ordered, free: opts.Workers, refused: map[string]bool{}}
		inC := in
		stopC := opts.Stop
		var timer *time.Timer
		var timerC <-chan time.Time
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			// A stop takes precedence over starting more work.
			select {
			case <-stopC:
				stopC, inC = nil, nil
				d.drop()
			default:
			}
			retryIn := d.dispatch(jobs)
			if inC == nil && len(d.pending) == 0 && d.free == opts.Workers {
				return // everything taken has started and finished
			}
			timerC = nil
			if retryIn > 0 {
				if timer == nil {
					timer = time.NewTimer(retryIn)
				} else {
					timer.Reset(retryIn)
				}
				timerC = timer.C
			}
			readC := inC
			if len(d.pending) >= lookahead {
				readC = nil // read ahead no further
			}
			select {
			case v, ok := <-readC:
				if !ok {
					inC = nil
					continue
				}
				e := &gatedEntry[In, Out]{item: v, seq: d.taken}
				d.taken++
				if ordered {
					e.slot = make(chan Out, 1)
					orderC <- e
				}
				d.pending = append(d.pending, e)
			case key := <-doneC:
				if key != "" {
					gate.Done(key)
				}
			case <-freeC:
				d.free++
			case <-releasedC:
				d.released++
				if ordered {
					d.startedUnreleased--
				}
			case <-timerC:
			case <-stopC:
				stopC, inC = nil, nil
				d.drop()
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// drop discards every item read ahead but not started.
func (d *gatedDispatcher[In, Out]) drop() {
	for _, e := range d.pending {
		if e.slot != nil {
			close(e.slot)
		}
	}
	clear(d.pending)
	d.pending = d.pending[:0]
}

// gatedDispatcher is the scheduling state, owned by one goroutine.
type gatedDispatcher[In, Out any] struct {
	gate              Gate[In]
	window            int
	ordered           bool
	pending           []*gatedEntry[In, Out] // taken, not started, in input order
	free              int                    // idle workers
	taken, released   int64
	startedUnreleased int
	refused           map[string]bool // keys refused in the current round
}

// dispatch starts as many pending items as free workers, gate and window
// allow, earliest first. It returns when to try again for items refused
// for a while (rate limits, pauses); 0 when only events can help.
func (d *gatedDispatcher[In, Out]) dispatch(jobs chan<- *gatedEntry[In, Out]) time.Duration {
	if d.free == 0 || len(d.pending) == 0 {
		return 0
	}
	clear(d.refused)
	var soonest time.Duration
	kept := d.pending[:0]
	for i, e := range d.pending {
		if d.free == 0 {
			kept = append(kept, d.pending[i:]...)
			break
		}
		// In input order a full window admits only the head of the order,
		// which is what everything else is waiting for.
		if d.ordered && d.startedUnreleased >= d.window && e.seq != d.released {
			kept = append(kept, d.pending[i:]...)
			break
		}
		key := d.gate.Key(e.item)
		if d.refused[key] {
			kept = append(kept, e)
			continue
		}
		ok, retryIn := true, time.Duration(0)
		if key != "" {
			ok, retryIn = d.gate.TryStart(e.item)
		}
		if !ok {
			d.refused[key] = true
			if retryIn > 0 && (soonest == 0 || retryIn < soonest) {
				soonest = retryIn
			}
			kept = append(kept, e)
			continue
		}
		e.key = key
		jobs <- e
		d.free--
		if d.ordered {
			d.startedUnreleased++
		}
	}
	clear(d.pending[len(kept):])
	d.pending = kept
	return soonest
}
