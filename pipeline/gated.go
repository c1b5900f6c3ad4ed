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
		d := newGatedDispatcher[In, Out](gate, opts.Window, ordered, opts.Workers)
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
			d.dispatch(jobs)
			if inC == nil && d.pendingCount == 0 && d.free == opts.Workers {
				return // everything taken has started and finished
			}
			timerC = nil
			if wake, ok := d.nextWake(); ok {
				wait := max(time.Until(wake), 0)
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				timerC = timer.C
			}
			readC := inC
			if d.pendingCount >= lookahead {
				readC = nil // read ahead no further
			}
			select {
			case v, ok := <-readC:
				if !ok {
					inC = nil
					continue
				}
				e := &gatedEntry[In, Out]{item: v, seq: d.taken, key: gate.Key(v)}
				d.taken++
				if ordered {
					e.slot = make(chan Out, 1)
					orderC <- e
				}
				d.add(e)
			case key := <-doneC:
				if key != "" {
					gate.Done(key)
					d.unblock(key)
				}
			case <-freeC:
				d.free++
			case <-releasedC:
				d.released++
				if ordered {
					d.startedUnreleased--
				}
			case <-timerC:
				d.wake(time.Now())
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

// gatedDispatcher is the scheduling state, owned by one goroutine. Items
// wait in one queue per key; a heap orders the keys that are not blocked by
// the input position of their first item, so choosing the earliest item
// that may start costs O(log keys), however many items wait behind busy
// keys. A key refused by the gate is blocked until one of its items is
// done, or until the time the gate named.
type gatedDispatcher[In, Out any] struct {
	gate              Gate[In]
	window            int
	ordered           bool
	free              int // idle workers
	taken, released   int64
	startedUnreleased int
	pendingCount      int
	queues            map[string]*keyQueue[In, Out]
	ready             keyHeap[In, Out]
	timed             []*keyQueue[In, Out]           // blocked until a time
	bySeq             map[int64]*gatedEntry[In, Out] // input order: pending items by position
}

// keyQueue holds the waiting items of one key, in input order.
type keyQueue[In, Out any] struct {
	key     string
	items   []*gatedEntry[In, Out]
	head    int
	blocked bool
	until   time.Time // for a timed block
	heapIdx int       // position in the ready heap, -1 when not in it
}

func (q *keyQueue[In, Out]) empty() bool                 { return q.head == len(q.items) }
func (q *keyQueue[In, Out]) front() *gatedEntry[In, Out] { return q.items[q.head] }

func (q *keyQueue[In, Out]) pop() {
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.items):
		// A queue that never empties (one host, a long list) would
		// otherwise keep growing at the back while draining at the front.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

func newGatedDispatcher[In, Out any](gate Gate[In], window int, ordered bool, workers int) *gatedDispatcher[In, Out] {
	d := &gatedDispatcher[In, Out]{gate: gate, window: window, ordered: ordered, free: workers, queues: map[string]*keyQueue[In, Out]{}}
	if ordered {
		d.bySeq = map[int64]*gatedEntry[In, Out]{}
	}
	return d
}

// add queues a newly read item.
func (d *gatedDispatcher[In, Out]) add(e *gatedEntry[In, Out]) {
	q, ok := d.queues[e.key]
	if !ok {
		q = &keyQueue[In, Out]{key: e.key, heapIdx: -1}
		d.queues[e.key] = q
	}
	wasEmpty := q.empty()
	q.items = append(q.items, e)
	d.pendingCount++
	if d.bySeq != nil {
		d.bySeq[e.seq] = e
	}
	if wasEmpty && !q.blocked {
		d.ready.push(q)
	}
}

// dispatch starts items, earliest first, while workers are free and the
// gate and the window allow.
func (d *gatedDispatcher[In, Out]) dispatch(jobs chan<- *gatedEntry[In, Out]) {
	for d.free > 0 {
		var q *keyQueue[In, Out]
		if d.ordered && d.startedUnreleased >= d.window {
			// A full window admits only the head of the order, which is
			// what everything else is waiting for.
			e, ok := d.bySeq[d.released]
			if !ok {
				return
			}
			q = d.queues[e.key]
			if q.blocked {
				return
			}
		} else if len(d.ready) > 0 {
			q = d.ready[0]
		} else {
			return
		}
		e := q.front()
		if e.key != "" {
			if ok, retryIn := d.gate.TryStart(e.item); !ok {
				d.block(q, retryIn)
				continue
			}
		}
		q.pop()
		d.pendingCount--
		if d.bySeq != nil {
			delete(d.bySeq, e.seq)
		}
		if q.empty() {
			d.ready.remove(q)
			if !q.blocked {
				delete(d.queues, q.key)
			}
		} else {
			d.ready.fix(q)
		}
		jobs <- e
		d.free--
		if d.ordered {
			d.startedUnreleased++
		}
	}
}

// block takes a refused key out of the running: until one of its items is
// done (retryIn 0) or for retryIn.
func (d *gatedDispatcher[In, Out]) block(q *keyQueue[In, Out], retryIn time.Duration) {
	q.blocked = true
	d.ready.remove(q)
	if retryIn > 0 {
		q.until = time.Now().Add(retryIn)
		d.timed = append(d.timed, q)
	}
}

// unblock gives a key another chance after one of its items finished.
func (d *gatedDispatcher[In, Out]) unblock(key string) {
	q, ok := d.queues[key]
	if !ok || !q.blocked || !q.until.IsZero() {
		return
	}
	q.blocked = false
	if q.empty() {
		delete(d.queues, key)
		return
	}
	d.ready.push(q)
}

// nextWake returns the earliest end of a timed block.
func (d *gatedDispatcher[In, Out]) nextWake() (time.Time, bool) {
	var next time.Time
	for _, q := range d.timed {
		if next.IsZero() || q.until.Before(next) {
			next = q.until
		}
	}
	return next, !next.IsZero()
}

// wake ends the timed blocks that are over.
func (d *gatedDispatcher[In, Out]) wake(now time.Time) {
	kept := d.timed[:0]
	for _, q := range d.timed {
		if q.until.After(now) {
			kept = append(kept, q)
			continue
		}
		q.blocked, q.until = false, time.Time{}
		if q.empty() {
			delete(d.queues, q.key)
		} else {
			d.ready.push(q)
		}
	}
	clear(d.timed[len(kept):])
	d.timed = kept
}

// drop discards every item read ahead but not started.
func (d *gatedDispatcher[In, Out]) drop() {
	for _, q := range d.queues {
		for _, e := range q.items[q.head:] {
			if e.slot != nil {
				close(e.slot)
			}
		}
	}
	clear(d.queues)
	clear(d.bySeq)
	d.ready = d.ready[:0]
	d.timed = d.timed[:0]
	d.pendingCount = 0
}

// keyHeap is a min-heap of key queues by the position of their first item.
type keyHeap[In, Out any] []*keyQueue[In, Out]

func (h keyHeap[In, Out]) less(i, j int) bool { return h[i].front().seq < h[j].front().seq }

func (h keyHeap[In, Out]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}

func (h *keyHeap[In, Out]) push(q *keyQueue[In, Out]) {
	if q.heapIdx >= 0 {
		return
	}
	q.heapIdx = len(*h)
	*h = append(*h, q)
	h.up(q.heapIdx)
}

func (h *keyHeap[In, Out]) remove(q *keyQueue[In, Out]) {
	i := q.heapIdx
	if i < 0 {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	q.heapIdx = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

func (h *keyHeap[In, Out]) fix(q *keyQueue[In, Out]) {
	if q.heapIdx >= 0 {
		h.down(q.heapIdx)
		h.up(q.heapIdx)
	}
}

func (h keyHeap[In, Out]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h keyHeap[In, Out]) down(i int) {
	for {
		smallest, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h.less(l, smallest) {
			smallest = l
		}
		if r < len(h) && h.less(r, smallest) {
			smallest = r
		}
		if smallest == i {
			return
		}
		h.swap(i, smallest)
		i = smallest
	}
}
