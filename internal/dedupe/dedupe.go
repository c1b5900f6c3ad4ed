package dedupe

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync"

	"github.com/trawl-dev/trawl/record"
)

// DefaultBudget is how much memory the results kept for copying may use,
// as record.Footprint counts it plus what keeping them costs (entryOverhead
// each and the index of kept results): the live heap they hold.
const DefaultBudget = 64 << 20

// entryOverhead is what a kept result costs beyond its record's Footprint:
// the entry around the record (its LRU links, size and pins) makes one
// allocation of 320 bytes where the record alone would take 288.
// TestEntryOverhead measures it.
const entryOverhead = 320 - 288

// Deduper tracks, for one run, which URLs were seen and the results that
// duplicates copy. Check is called by the reader, in input order; Passed
// and Fill by the single goroutine that joins duplicates with their
// originals before the output. It is safe for that concurrent use.
//
// Results are kept for copying while duplicates may still need them: every
// original in flight, every original a pending duplicate waits for, and a
// least-recently-used set of recent originals up to a memory budget. A
// duplicate whose original's result is no longer kept is fetched again
// (still marked duplicate_of), so memory stays bounded whatever the input.
//
// What it holds: the Set (16–20 bytes per distinct URL), the kept results
// (at most the budget, plus results that duplicates already in the
// pipeline wait for), and for each original between the reader and the
// output a map entry of at most 40 bytes.
type Deduper struct {
	mu       sync.Mutex
	set      Set
	h        hasher
	inflight map[int64]int // originals not yet passed → duplicates waiting for them
	kept     map[int64]*entry
	// keptPeak is the most entries kept has held since it was made: a Go
	// map keeps the capacity it grew to, and its groups cost keptMapBytes.
	keptPeak int
	lru      lru // unpinned kept results, oldest first
	bytes    int64
	budget   int64
	closed   bool
}

// entry is a kept result, allocated in one piece.
type entry struct {
	rec        record.Record
	prev, next *entry // in the LRU, while unpinned
	size       int64  // what the budget counts for it
	pins       int    // duplicates still to copy it
}

// New returns a Deduper whose kept results hold at most budget bytes (as
// DefaultBudget counts them), beyond those that duplicates wait for.
func New(budget int64) *Deduper {
	return &Deduper{
		h:        hasher{seed: maphash.MakeSeed()},
		inflight: make(map[int64]int),
		kept:     make(map[int64]*entry),
		budget:   budget,
	}
}

// Check marks r when its URL was seen before: Duplicate and DuplicateOf
// are set, and CopyPending when the first result will be there to copy (the
// record then needs neither fetch nor transforms). Records without a target
// (invalid lines) are left alone, and so is every record after Close.
func (d *Deduper) Check(r *record.Record) {
	if r.Target == nil {
		return
	}
	hash := d.h.hash(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	first, seen := d.set.FirstOrAdd(hash, r.Index)
	if !seen {
		if r.Index <= maxIndex { // past it, the Set stores nothing for later lines to find
			d.inflight[r.Index] = 0
		}
		return
	}
	r.Duplicate, r.DuplicateOf = true, first
	if waiting, ok := d.inflight[first]; ok {
		d.inflight[first] = waiting + 1
		r.CopyPending = true
		return
	}
	if e, ok := d.kept[first]; ok {
		if e.pins == 0 {
			d.lru.remove(e)
		}
		e.pins++
		r.CopyPending = true
	}
	// Otherwise the result is gone: the duplicate is fetched again.
}

// Passed is called with every record that reaches the output. For an
// original it keeps the result for its duplicates.
func (d *Deduper) Passed(r *record.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	waiting, ok := d.inflight[r.Index]
	if !ok || r.Duplicate {
		return
	}
	delete(d.inflight, r.Index)
	e := &entry{rec: keptCopy(r), pins: waiting}
	e.size = e.rec.Footprint() + entryOverhead
	if waiting == 0 && e.size+keptMapBytes(len(d.kept)+1) > d.budget {
		return // alone over the budget: keeping it would evict every other result, then it
	}
	d.kept[r.Index] = e
	d.keptPeak = max(d.keptPeak, len(d.kept))
	d.bytes += e.size
	if waiting == 0 {
		d.lru.pushBack(e)
	}
	d.evict()
}

// keptCopy is what a kept result holds: what duplicates copy and nothing
// else. The line, the parsed URL, the body and the headers are not copied.
// Strings are copied afresh, at their length: one taken from a larger
// allocation (a URL built with room to spare, a title cut from the body)
// would hold all of it, and Footprint would not see it. The error is kept
// as its message, which is all the output shows, since an error's chain can
// hold much more (a certificate error holds the server's certificates).
func keptCopy(r *record.Record) record.Record {
	c := *r
	c.URL, c.Target, c.Body, c.Header = "", nil, nil, nil
	// The row's own data: a duplicate keeps its own.
	c.Row = nil
	for _, s := range []*string{&c.FinalURL, &c.Proto, &c.ContentType, &c.File, &c.FileDigest} {
		*s = strings.Clone(*s)
	}
	if len(r.Values) > 0 {
		c.Values = make([]any, len(r.Values))
		for i, v := range r.Values {
			c.Values[i] = cloneValue(v)
		}
	}
	if r.Err != nil {
		c.Err = errors.New(r.Err.Error())
	}
	return c
}

// cloneValue copies a transform output with every string afresh (see
// keptCopy), nil slices and maps staying nil (the output tells null from
// empty). Values of other types hold no strings that could point into a
// body and are kept as they are.
func cloneValue(v any) any {
	switch x := v.(type) {
	case string:
		return strings.Clone(x)
	case []string:
		if x == nil {
			return x
		}
		c := make([]string, len(x))
		for i, s := range x {
			c[i] = strings.Clone(s)
		}
		return c
	case []any:
		if x == nil {
			return x
		}
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	case map[string]any:
		if x == nil {
			return x
		}
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[strings.Clone(k)] = cloneValue(e)
		}
		return c
	case map[string][]string:
		if x == nil {
			return x
		}
		c := make(map[string][]string, len(x))
		for k, e := range x {
			c[strings.Clone(k)] = cloneValue(e).([]string)
		}
		return c
	}
	return v
}

// errNotKept explains a duplicate whose original never reached the output.
var errNotKept = errors.New("its first occurrence was not fetched before the run stopped")

// Fill copies the original's result into the duplicate dup. It reports
// false when the original has not passed yet; the caller holds dup until
// it has.
func (d *Deduper) Fill(dup *record.Record) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.kept[dup.DuplicateOf]
	if !ok {
		return false
	}
	record.CopyResult(dup, &e.rec)
	e.pins--
	if e.pins == 0 {
		d.lru.pushBack(e)
		d.evict()
	}
	return true
}

// Abandon marks a duplicate whose original will never pass (the run was
// stopped first) as cancelled.
func Abandon(dup *record.Record) {
	dup.CopyPending = false
	dup.Fail(record.KindCanceled, errNotKept)
}

// evict drops the oldest unpinned results until the kept ones fit the
// budget, and remakes the map of kept results once it holds a quarter of
// the entries it grew for, so that its groups shrink with it.
func (d *Deduper) evict() {
	for d.bytes+keptMapBytes(d.keptPeak) > d.budget && d.lru.head != nil {
		e := d.lru.head
		d.lru.remove(e)
		delete(d.kept, e.rec.Index)
		d.bytes -= e.size
	}
	if d.keptPeak > 1024 && len(d.kept) < d.keptPeak/4 {
		m := make(map[int64]*entry, len(d.kept))
		for i, e := range d.kept {
			m[i] = e
		}
		d.kept, d.keptPeak = m, len(m)
	}
}

// keptMapBytes is what a map[int64]*entry that grew to n entries holds in
// its groups: 8 control bytes and 8 slots of 16 bytes for every 8 slots,
// with room for n at 7/8 full rounded up to a power of two.
func keptMapBytes(n int) int64 {
	slots := int64(8)
	if n > 7 {
		slots = int64(1) << bits.Len64(uint64((n*8+6)/7-1))
	}
	return slots / 8 * (8 + 8*16)
}

// Bytes returns what the kept results count against the budget.
func (d *Deduper) Bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytes + keptMapBytes(d.keptPeak)
}

// SetBytes returns the memory held by the table of seen URLs.
func (d *Deduper) SetBytes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.set.Bytes()
}

// Close releases the table of seen URLs, much of which lives outside the
// Go heap. Later calls to Check leave records alone.
func (d *Deduper) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.set.Free()
}

// lru is a doubly linked list of entries through their own links, so that
// keeping a result costs no list element of its own.
type lru struct{ head, tail *entry }

func (l *lru) pushBack(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *lru) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
