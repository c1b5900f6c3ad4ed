// Package stage is trawl's concurrent stage engine, the analogue of Rust's
// StreamExt::buffered(n) and buffer_unordered(n): Map applies a function to
// every item of a stream with a fixed number of workers and releases the
// results in input order or in completion order, with memory bounded by a
// window, never by the length of the stream. An optional Gate decides when
// items that share a key (a host, for trawl) may start, and the engine
// starts, whenever a worker is free, the earliest item the gate lets
// through, so no worker waits idle behind a busy key.
//
// It knows nothing of HTTP or records; trawl's fetch and transform stages
// are both built on it.
package stage

import (
	"context"
	"fmt"
	"sync"
	"time"
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

// Orders lists the orders by their command-line names.
var orderNames = [...]string{InputOrder: "input", CompletionOrder: "completion"}

// OrderNames returns the names ParseOrder accepts, for help and completion.
func OrderNames() []string { return append([]string(nil), orderNames[:]...) }

// String returns the name used on the command line.
func (o Order) String() string {
	if o == CompletionOrder {
		return orderNames[CompletionOrder]
	}
	return orderNames[InputOrder]
}

// ParseOrder parses "input" or "completion".
func ParseOrder(s string) (Order, error) {
	for o, name := range orderNames {
		if s == name {
			return Order(o), nil
		}
	}
	return 0, fmt.Errorf("unknown order %q: want input or completion", s)
}

// Gate decides when an item may start, for stages whose items compete for
// shared limits (such as requests per host). Items with the same key share
// their limits: when one is refused, the others with that key are not asked
// again until one of them is done or the time the gate named has passed.
// Items whose key is "" are under no limit and start without asking.
//
// The engine calls a Gate from one goroutine only.
type Gate[T any] interface {
	// Key groups items that share limits.
	Key(item T) string
	// TryStart reserves what the item, whose Key is key, needs and
	// reports whether it may start now. When it may not, retryIn says
	// when asking again could succeed; 0 means only after some item with
	// its key is Done.
	TryStart(item T, key string) (ok bool, retryIn time.Duration)
	// Done releases what TryStart reserved for an item with this key. It
	// gets the key rather than the item, which by then belongs downstream.
	Done(key string)
}

// Options configures one stage.
type Options[In, Out any] struct {
	// Workers is the number of items processed at once; values below 1 mean 1.
	Workers int
	// Order selects input or completion order.
	Order Order
	// Window bounds how many items may be started but not yet released:
	// the running ones plus finished ones waiting (in input order, behind
	// a slower item; in completion order, for the consumer). Values below
	// Workers mean Workers, which makes the stage behave exactly like
	// buffered(Workers) or buffer_unordered(Workers).
	Window int
	// WindowBytes, when above 0, also bounds the finished results held for
	// release by their size as Size reports it: while they hold more, no
	// item starts except the one at the head of the input order, which is
	// what they are all waiting for. Thousands of small results can then
	// wait behind a slow item while a few large ones cannot exhaust
	// memory. The results held never exceed WindowBytes plus what the jobs
	// already handed out when it was reached can add: one per worker and
	// up to as many again waiting for one (at most 64).
	WindowBytes int64
	// Size reports the bytes a result holds, for WindowBytes.
	Size func(Out) int64
	// Gate, when set, decides when each item may start.
	Gate Gate[In]
	// Lookahead bounds how many items are read ahead of the ones started,
	// to find items the gate lets through. Values below 1 mean
	// max(1024, 16×Workers) with a gate and Workers without one.
	Lookahead int
	// Stop, when closed, makes the stage drop the items it read ahead but
	// has not started: they get no result, as if never read, and no more
	// input is read. Items already started still produce theirs. (A
	// graceful stop should not turn a thousand read-ahead items into a
	// thousand "canceled" ones.)
	Stop <-chan struct{}
}

func (o Options[In, Out]) normalized() Options[In, Out] {
	o.Workers = max(o.Workers, 1)
	o.Window = max(o.Window, o.Workers)
	if o.Lookahead < 1 {
		o.Lookahead = o.Workers
		if o.Gate != nil {
			o.Lookahead = max(1024, 16*o.Workers)
		}
	}
	if o.Size == nil {
		o.WindowBytes = 0
	}
	return o
}

// job is an item on its way to a worker.
type job[In any] struct {
	seq  int64
	key  string
	item In
}

// finished is a worker's result on its way back to the scheduler.
type finished[Out any] struct {
	seq int64
	key string
	res Out
}

// Map applies fn to every item received from in and sends exactly one
// result per item on the returned channel, which is closed once in is
// closed and every result has been sent (items dropped by opts.Stop have
// none).
//
// ctx governs the stage's lifetime: when it is done, the stage stops taking
// input, stops sending, and all its goroutines exit before the output is
// closed; results not yet sent are dropped. fn receives workCtx, so that
// callers can cancel the work itself (for example after a shutdown grace
// period) while still collecting every result; workCtx is also cancelled
// when ctx is done. Pass the same context twice when the distinction does
// not matter.
//
// One scheduler goroutine owns all the stage's state; workers only run fn.
// Every send and receive, on either side, also watches ctx.
func Map[In, Out any](ctx, workCtx context.Context, in <-chan In, opts Options[In, Out], fn func(context.Context, In) Out) <-chan Out {
	opts = opts.normalized()
	workCtx, cancelWork := context.WithCancel(workCtx)
	stopAfter := context.AfterFunc(ctx, cancelWork)

	out := make(chan Out, outBuffer)
	// The scheduler hands out at most Workers+queued jobs before it has
	// received results for them, so sends on jobs, which has room for
	// that many, never block. The queued ones let a worker that finishes
	// go straight on to its next job, without waiting for the scheduler
	// to wake up and give it one; only Workers goroutines ever run fn.
	queued := queuedJobs(opts.Workers)
	jobs := make(chan job[In], opts.Workers+queued)
	results := make(chan finished[Out], opts.Workers+queued)

	var workers sync.WaitGroup
	for range opts.Workers {
		workers.Go(func() {
			for j := range jobs {
				f := finished[Out]{seq: j.seq, key: j.key, res: fn(workCtx, j.item)}
				// results has room for every worker's result unless the
				// scheduler has stopped; trying without blocking first
				// spares a select in the common case.
				select {
				case results <- f:
					continue
				default:
				}
				select {
				case results <- f:
				case <-ctx.Done():
					return
				}
			}
		})
	}

	go func() {
		defer close(out)
		defer workers.Wait()
		defer close(jobs)
		defer func() {
			stopAfter()
			cancelWork()
		}()
		s := newScheduler(opts, jobs, opts.Workers+queued)
		s.loop(ctx, in, results, out)
	}()
	return out
}

// slot is, in input order, one item between input and release.
type slot[Out any] struct {
	state slotState
	key   string // the gate's key, while pending
	res   Out    // once done, until released
	size  int64  // the result's size, taken when it finished
}

// held is, in completion order, a finished result waiting to be released.
type held[Out any] struct {
	res  Out
	size int64
}

type slotState uint8

const (
	slotPending slotState = iota // read, not started
	slotRunning
	slotDone    // finished, waiting to be released
	slotDropped // dropped by a stop: nothing to release
)

// scheduler is the state of one stage, owned by its scheduler goroutine.
//
// Pending items wait in one queue per key. A heap orders the keys that are
// not blocked by the position of their first item, so choosing the
// earliest item that may start costs O(log keys) however many items wait
// behind busy keys. A key the gate refused is blocked until one of its
// items is done, or until the time the gate named.
//
// In input order every item also has a slot, in a queue indexed by input
// position from base (the next to be released) to the newest read: a slot
// leaves the front only once its result is released in turn, and the
// window bounds how many slots are started. In completion order finished
// results wait in done, in the order they finished.
type scheduler[In, Out any] struct {
	opts    Options[In, Out]
	ordered bool
	jobs    chan<- job[In]

	free              int   // jobs that may still be handed out
	taken, base       int64 // items read; input order: the position of slots' front
	startedUnreleased int   // started but not yet released
	heldBytes         int64 // the size of finished results not yet released
	pending           int   // read, not started

	slots ring[slot[Out]] // input order: positions base..taken-1
	done  ring[held[Out]] // completion order: finished, not yet released

	queues map[string]*keyQueue[In]
	ready  keyHeap[In]
	timed  []*keyQueue[In] // blocked until a time
	spare  []*keyQueue[In] // queues of keys gone idle, for reuse
}

func newScheduler[In, Out any](opts Options[In, Out], jobs chan<- job[In], slots int) *scheduler[In, Out] {
	return &scheduler[In, Out]{
		opts:    opts,
		ordered: opts.Order == InputOrder,
		jobs:    jobs,
		free:    slots,
		queues:  map[string]*keyQueue[In]{},
	}
}

// loop runs the stage until the input is exhausted and every result is
// released, or ctx is done.
//
// While there is something to do it works with non-blocking operations on
// one channel at a time, which cost little; only when it would otherwise
// wait does it block in a select over every channel (which locks them all,
// and would cost more than the rest of the item's handling).
func (s *scheduler[In, Out]) loop(ctx context.Context, in <-chan In, results <-chan finished[Out], out chan<- Out) {
	inC := in
	stopC := s.opts.Stop
	done := ctx.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		for progress := true; progress; {
			progress = false
			select {
			case <-done:
				return
			case <-stopC:
				// A stop takes precedence over starting more work.
				stopC, inC = nil, nil
				s.drop()
			default:
			}
			s.dispatch()
			// Take every result already waiting.
			for taken := true; taken; {
				select {
				case f := <-results:
					s.finish(f)
					progress = true
				default:
					taken = false
				}
			}
			// Release what the consumer will take now.
			for {
				next, ok := s.releasable()
				if !ok {
					break
				}
				sent := false
				select {
				case out <- next:
					s.release()
					sent, progress = true, true
				default:
				}
				if !sent {
					break
				}
			}
			// Read what the input has ready, as far as it is wanted.
			for inC != nil && s.wantsInput() {
				read := false
				select {
				case v, ok := <-inC:
					if !ok {
						inC = nil
					} else {
						s.add(v)
					}
					read, progress = true, true
				default:
				}
				if !read {
					break
				}
				if s.free > 0 {
					s.dispatch()
				}
			}
		}

		next, canRelease := s.releasable()
		if inC == nil && s.pending == 0 && s.startedUnreleased == 0 && !canRelease {
			return // everything read has been started, finished and released
		}
		var outC chan<- Out
		if canRelease {
			outC = out
		}
		readC := inC
		if !s.wantsInput() {
			readC = nil // read ahead no further
		}
		var timerC <-chan time.Time
		if wake, ok := s.nextWake(); ok {
			wait := max(time.Until(wake), 0)
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			timerC = timer.C
		}
		select {
		case v, ok := <-readC:
			if !ok {
				inC = nil
				continue
			}
			s.add(v)
		case f := <-results:
			s.finish(f)
		case outC <- next:
			s.release()
		case <-timerC:
			s.wake(time.Now())
		case <-stopC:
			stopC, inC = nil, nil
			s.drop()
		case <-done:
			return
		}
	}
}

// readyAhead is how many read items the scheduler keeps pending while
// every worker is busy, so that a worker that finishes gets its next
// item at once.
const readyAhead = 64

// wantsInput reports whether to read another item: while a worker is free
// and the window admits more (the items pending are all held back by the
// gate, so later ones may be startable), up to the lookahead; and a few
// items ahead of the busy workers. Reading further ahead than that would
// only hold records in memory: with 1,000 workers over 200 hosts, eager
// read-ahead kept 16,000 records pending.
func (s *scheduler[In, Out]) wantsInput() bool {
	if s.pending >= s.opts.Lookahead {
		return false
	}
	return s.pending < readyAhead || s.free > 0 && s.admits()
}

// add queues a newly read item.
func (s *scheduler[In, Out]) add(v In) {
	seq := s.taken
	s.taken++
	key := ""
	if s.opts.Gate != nil {
		key = s.opts.Gate.Key(v)
	}
	if s.ordered {
		s.slots.push(slot[Out]{state: slotPending, key: key})
	}
	s.pending++
	q, ok := s.queues[key]
	if !ok {
		if n := len(s.spare); n > 0 {
			q, s.spare = s.spare[n-1], s.spare[:n-1]
			q.key = key
		} else {
			q = &keyQueue[In]{key: key, heapIdx: -1}
		}
		s.queues[key] = q
	}
	wasEmpty := q.empty()
	q.items = append(q.items, entry[In]{seq: seq, item: v})
	if wasEmpty && !q.blocked {
		s.ready.push(q)
	}
}

// admits reports whether the window leaves room for items other than the
// head of the input order.
func (s *scheduler[In, Out]) admits() bool {
	if s.startedUnreleased >= s.opts.Window {
		return false
	}
	return s.opts.WindowBytes <= 0 || s.heldBytes < s.opts.WindowBytes
}

// dispatch starts items, earliest first, while workers are free and the
// gate and the window allow.
func (s *scheduler[In, Out]) dispatch() {
	for s.free > 0 && s.pending > 0 {
		var q *keyQueue[In]
		switch {
		case s.admits():
			if len(s.ready) == 0 {
				return
			}
			q = s.ready[0]
		case s.ordered:
			// A full window admits only the head of the order, which is
			// what everything held is waiting for.
			head := s.slots.at(0)
			if head.state != slotPending {
				return
			}
			q = s.queues[head.key]
			if q.blocked {
				return
			}
		default:
			return
		}
		e := q.front()
		if q.key != "" {
			if ok, retryIn := s.opts.Gate.TryStart(e.item, q.key); !ok {
				s.block(q, retryIn)
				continue
			}
		}
		q.pop()
		q.running++
		if q.empty() {
			s.ready.remove(q)
		} else {
			s.ready.fix(q)
		}
		s.start(e, q.key)
	}
}

// start hands a pending item to a free worker.
func (s *scheduler[In, Out]) start(e entry[In], key string) {
	if s.ordered {
		sl := s.slots.at(int(e.seq - s.base))
		sl.state, sl.key = slotRunning, ""
	}
	s.pending--
	s.free--
	s.startedUnreleased++
	s.jobs <- job[In]{seq: e.seq, key: key, item: e.item}
}

// finish takes a worker's result.
func (s *scheduler[In, Out]) finish(f finished[Out]) {
	s.free++
	if q := s.queues[f.key]; q != nil {
		q.running--
		if f.key != "" {
			s.opts.Gate.Done(f.key)
			s.unblock(q)
		}
		s.forget(q)
	}
	// The size is taken now, while the result is the stage's alone: once
	// released it belongs downstream, where it may be changing.
	var size int64
	if s.opts.WindowBytes > 0 {
		size = s.opts.Size(f.res)
		s.heldBytes += size
	}
	if s.ordered {
		sl := s.slots.at(int(f.seq - s.base))
		sl.state, sl.res, sl.size = slotDone, f.res, size
		return
	}
	s.done.push(held[Out]{res: f.res, size: size})
}

// releasable returns the next result to send, if one is ready.
func (s *scheduler[In, Out]) releasable() (Out, bool) {
	if s.ordered {
		for s.slots.len() > 0 && s.slots.at(0).state == slotDropped {
			s.slots.pop()
			s.base++
		}
		if s.slots.len() > 0 && s.slots.at(0).state == slotDone {
			return s.slots.at(0).res, true
		}
	} else if s.done.len() > 0 {
		return s.done.at(0).res, true
	}
	var zero Out
	return zero, false
}

// release accounts for the result releasable returned, now sent (and no
// longer the stage's to look at).
func (s *scheduler[In, Out]) release() {
	var size int64
	if s.ordered {
		size = s.slots.pop().size
		s.base++
	} else {
		size = s.done.pop().size
	}
	s.startedUnreleased--
	s.heldBytes -= size
}

// gateRetry is how soon a key is asked again when the gate refused it
// without naming a time while none of its items runs: nothing finishing
// would ever unblock it otherwise.
const gateRetry = 10 * time.Millisecond

// block takes a refused key out of the running: until one of its items is
// done (retryIn 0) or for retryIn.
func (s *scheduler[In, Out]) block(q *keyQueue[In], retryIn time.Duration) {
	q.blocked = true
	s.ready.remove(q)
	if retryIn <= 0 && q.running == 0 {
		retryIn = gateRetry
	}
	if retryIn > 0 {
		q.until = time.Now().Add(retryIn)
		s.timed = append(s.timed, q)
	}
}

// unblock gives a key another chance after one of its items finished.
func (s *scheduler[In, Out]) unblock(q *keyQueue[In]) {
	if !q.blocked || !q.until.IsZero() {
		return
	}
	q.blocked = false
	if !q.empty() {
		s.ready.push(q)
	}
}

// forget drops the queue of a key that has nothing left to track,
// keeping a few for reuse: hosts go idle and come back all the time.
func (s *scheduler[In, Out]) forget(q *keyQueue[In]) {
	if !q.empty() || q.blocked || q.running != 0 {
		return
	}
	delete(s.queues, q.key)
	if len(s.spare) < maxSpareQueues && cap(q.items) <= 1024 {
		q.key, q.items, q.head, q.until, q.heapIdx = "", q.items[:0], 0, time.Time{}, -1
		s.spare = append(s.spare, q)
	}
}

// maxSpareQueues bounds the idle queues kept for reuse.
const maxSpareQueues = 256

// nextWake returns the earliest end of a timed block.
func (s *scheduler[In, Out]) nextWake() (time.Time, bool) {
	var next time.Time
	for _, q := range s.timed {
		if next.IsZero() || q.until.Before(next) {
			next = q.until
		}
	}
	return next, !next.IsZero()
}

// wake ends the timed blocks that are over.
func (s *scheduler[In, Out]) wake(now time.Time) {
	kept := s.timed[:0]
	for _, q := range s.timed {
		if q.until.After(now) {
			kept = append(kept, q)
			continue
		}
		q.blocked, q.until = false, time.Time{}
		if q.empty() {
			s.forget(q)
		} else {
			s.ready.push(q)
		}
	}
	clear(s.timed[len(kept):])
	s.timed = kept
}

// drop discards every item read ahead but not started.
func (s *scheduler[In, Out]) drop() {
	for key, q := range s.queues {
		for _, e := range q.items[q.head:] {
			if s.ordered {
				sl := s.slots.at(int(e.seq - s.base))
				sl.state, sl.key = slotDropped, ""
			}
		}
		clear(q.items)
		q.items, q.head = q.items[:0], 0
		q.blocked, q.until, q.heapIdx = false, time.Time{}, -1
		if q.running == 0 {
			delete(s.queues, key)
		}
	}
	clear(s.ready)
	s.ready = s.ready[:0]
	clear(s.timed)
	s.timed = s.timed[:0]
	s.pending = 0
}

// entry is a pending item and its input position.
type entry[In any] struct {
	seq  int64
	item In
}

// keyQueue holds the pending items of one key, in input order. It lives
// while the key has items pending or running, or is blocked.
type keyQueue[In any] struct {
	key     string
	items   []entry[In]
	head    int
	running int // items of this key started and not yet finished
	blocked bool
	until   time.Time // for a timed block
	heapIdx int       // position in the ready heap, -1 when not in it
}

func (q *keyQueue[In]) empty() bool      { return q.head == len(q.items) }
func (q *keyQueue[In]) front() entry[In] { return q.items[q.head] }

func (q *keyQueue[In]) pop() {
	q.items[q.head] = entry[In]{}
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

// keyHeap is a min-heap of key queues by the position of their first item.
type keyHeap[In any] []*keyQueue[In]

func (h keyHeap[In]) less(i, j int) bool { return h[i].front().seq < h[j].front().seq }

func (h keyHeap[In]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}

func (h *keyHeap[In]) push(q *keyQueue[In]) {
	if q.heapIdx >= 0 {
		return
	}
	q.heapIdx = len(*h)
	*h = append(*h, q)
	h.up(q.heapIdx)
}

func (h *keyHeap[In]) remove(q *keyQueue[In]) {
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

func (h *keyHeap[In]) fix(q *keyQueue[In]) {
	if q.heapIdx >= 0 {
		h.down(q.heapIdx)
		h.up(q.heapIdx)
	}
}

func (h keyHeap[In]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h keyHeap[In]) down(i int) {
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

// ring is a FIFO queue that grows as needed and reuses its space, so a
// stage that runs for ten million items allocates only for its peak.
type ring[T any] struct {
	buf        []T
	head, size int
}

func (r *ring[T]) len() int { return r.size }

// at returns the i-th element from the front.
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) push(v T) {
	if r.size == len(r.buf) {
		grown := make([]T, max(16, 2*len(r.buf)))
		for i := range r.size {
			grown[i] = *r.at(i)
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring[T]) pop() T {
	var zero T
	p := r.at(0)
	v := *p
	*p = zero // let the garbage collector have what the caller drops
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return v
}

// queuedJobs is how many jobs may wait for a worker beyond one per
// worker: as many as there are workers, up to 64.
func queuedJobs(workers int) int { return min(workers, 64) }

// outBuffer lets results leave in batches: the consumer wakes once for
// several of them rather than once each.
const outBuffer = 64
