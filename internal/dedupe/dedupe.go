package dedupe

import (
	"container/list"
	"errors"
	"hash/maphash"
	"sync"

	"github.com/trawl-dev/trawl/record"
)

// DefaultBudget is how much memory the results kept for copying may use.
const DefaultBudget = 64 << 20

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
type Deduper struct {
	mu       sync.Mutex
	set      Set
	h        hasher
	inflight map[int64]int // originals not yet passed → duplicates waiting for them
	kept     map[int64]*kept
	lru      *list.List // unpinned kept results, oldest first
	bytes    int64
	budget   int64
	closed   bool
}

type kept struct {
	result *record.Record
	pins   int // duplicates still to copy it
	elem   *list.Element
	size   int64
}

// New returns a Deduper keeping at most budget bytes of unpinned results.
func New(budget int64) *Deduper {
	return &Deduper{
		h:        hasher{seed: maphash.MakeSeed()},
		inflight: make(map[int64]int),
		kept:     make(map[int64]*kept),
		lru:      list.New(),
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
	hash := d.h.hash(r.Target)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	first, seen := d.set.FirstOrAdd(hash, r.Index)
	if !seen {
		d.inflight[r.Index] = 0
		return
	}
	r.Duplicate, r.DuplicateOf = true, first
	if waiting, ok := d.inflight[first]; ok {
		d.inflight[first] = waiting + 1
		r.CopyPending = true
		return
	}
	if k, ok := d.kept[first]; ok {
		if k.pins == 0 {
			d.lru.Remove(k.elem)
			k.elem = nil
		}
		k.pins++
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
	c := *r
	c.Values = append([]any(nil), r.Values...)
	c.Body, c.Header, c.Target = nil, nil, nil
	k := &kept{result: &c, pins: waiting, size: estimate(&c)}
	d.kept[r.Index] = k
	d.bytes += k.size
	if waiting == 0 {
		k.elem = d.lru.PushBack(r.Index)
	}
	d.evict()
}

// errNotKept explains a duplicate whose original never reached the output.
var errNotKept = errors.New("its first occurrence was not fetched before the run stopped")

// Fill copies the original's result into the duplicate dup. It reports
// false when the original has not passed yet; the caller holds dup until
// it has.
func (d *Deduper) Fill(dup *record.Record) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.kept[dup.DuplicateOf]
	if !ok {
		return false
	}
	record.CopyResult(dup, k.result)
	k.pins--
	if k.pins == 0 {
		k.elem = d.lru.PushBack(dup.DuplicateOf)
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

func (d *Deduper) evict() {
	for d.bytes > d.budget && d.lru.Len() > 0 {
		idx := d.lru.Remove(d.lru.Front()).(int64)
		if k, ok := d.kept[idx]; ok {
			d.bytes -= k.size
			delete(d.kept, idx)
		}
	}
}

// estimate guesses the memory a kept result holds.
func estimate(r *record.Record) int64 {
	n := int64(256 + len(r.FinalURL) + len(r.Proto) + len(r.ContentType) + len(r.File) + len(r.FileSHA256))
	if r.Err != nil {
		n += int64(len(r.Err.Error()))
	}
	for _, v := range r.Values {
		n += valueSize(v, 0)
	}
	return n
}

func valueSize(v any, depth int) int64 {
	switch x := v.(type) {
	case string:
		return int64(16 + len(x))
	case []string:
		n := int64(24)
		for _, s := range x {
			n += int64(16 + len(s))
		}
		return n
	case []any:
		n := int64(24)
		for _, e := range x {
			if depth < 4 {
				n += valueSize(e, depth+1)
			} else {
				n += 64
			}
		}
		return n
	case map[string]any:
		n := int64(48)
		for k, e := range x {
			n += int64(16+len(k)) + valueSize(e, depth+1)
		}
		return n
	case map[string][]string:
		n := int64(48)
		for k, e := range x {
			n += int64(16+len(k)) + valueSize(e, depth+1)
		}
		return n
	}
	return 16
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
