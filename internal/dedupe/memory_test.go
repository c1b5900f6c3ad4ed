package dedupe

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

// allocated is what new objects from alloc take on the heap, each.
func allocated(alloc func() any) int64 {
	const n = 1000
	keep := make([]any, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = alloc()
	}
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return int64(after.TotalAlloc-before.TotalAlloc) / n
}

// TestEntryOverhead measures what wrapping a kept record in an entry costs,
// against the constant the budget counts.
func TestEntryOverhead(t *testing.T) {
	rec := allocated(func() any { return new(record.Record) })
	ent := allocated(func() any { return new(entry) })
	if fp := new(record.Record).Footprint(); fp != rec {
		t.Errorf("an empty record takes %d bytes; Footprint says %d", rec, fp)
	}
	if ent-rec != entryOverhead {
		t.Errorf("an entry takes %d bytes, its record %d: entryOverhead should be %d, not %d", ent, rec, ent-rec, entryOverhead)
	}
}

// heapSetBytes is the part of d's table on the Go heap (small parts).
func heapSetBytes(d *Deduper) int64 {
	var n int64
	for i := range d.set.parts {
		if p := &d.set.parts[i]; p.mem == nil {
			n += int64(len(p.keys)) * slotBytes
		}
	}
	return n
}

// heavyError is an error whose chain holds far more than its message, as a
// certificate error holds the certificates.
type heavyError struct{ payload []byte }

func (heavyError) Error() string { return "x509: certificate signed by unknown authority" }

// fetched gives r a result like the ones fetch and the transforms produce,
// of several shapes, with strings cut from larger allocations as real ones
// are: a URL built with room to spare, values cut from its body (a copy of
// page).
func fetched(r *record.Record, page string, shape int) {
	body := strings.Clone(page) // each response has a body of its own
	r.FinalURL = r.Target.String()
	r.Proto = string([]byte("HTTP/1.1"))
	r.ContentType = string([]byte("text/html; charset=utf-8"))
	r.Status, r.Attempts, r.Bytes, r.WireBytes = 200, 1, int64(len(body)), int64(len(body))
	at := int(r.Index) % (len(body) - 100)
	switch shape % 4 {
	case 0:
		r.Values = []any{body[at : at+40]}
	case 1:
		links := make([]string, 8)
		for i := range links {
			links[i] = body[at+i : at+i+60]
		}
		r.Values = []any{body[at : at+20], links}
	case 2:
		r.Values = []any{map[string]any{"price": 12.5, "name": body[at : at+30], "tags": []any{body[at : at+10], true}}, nil}
	case 3:
		r.Status = 0
		r.Fail(record.KindTLS, fmt.Errorf("get %q: %w", r.URL, heavyError{make([]byte, 4096)}))
	}
}

// TestKeptResultsStayWithinBudget fills the cache many times over with
// results of every shape and checks the budget three ways: by Footprint
// (the accounting never goes over), by the accounting adding up, and
// measured (the live heap the cache holds is what the accounting says).
func TestKeptResultsStayWithinBudget(t *testing.T) {
	const budget = 8 << 20
	body := strings.Repeat("<p>lorem ipsum dolor sit amet</p>", 256) // 8 KiB, as a fetched body
	before := liveHeap()
	d := New(budget)
	for i := range 40_000 {
		raw := fmt.Sprintf("https://host%d.example/path/%d?q=%d", i%97, i, i)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		r := &record.Record{Index: int64(i), URL: raw, Target: u}
		d.Check(r)
		fetched(r, body, i)
		d.Passed(r)
		if b := d.Bytes(); b > budget {
			t.Fatalf("after %d results the cache counts %d bytes, over its budget of %d", i+1, b, budget)
		}
	}
	var sum int64
	for _, e := range d.kept {
		if e.size != e.rec.Footprint()+entryOverhead {
			t.Fatalf("entry %d counted %d bytes, Footprint says %d", e.rec.Index, e.size, e.rec.Footprint()+entryOverhead)
		}
		sum += e.size
	}
	if sum != d.bytes || len(d.kept) == 40_000 || d.Bytes() < budget*9/10 {
		t.Fatalf("%d results kept counting %d bytes (%d by their entries): the cache was never full", len(d.kept), d.bytes, sum)
	}
	measured := int64(liveHeap()) - int64(before) - heapSetBytes(d)
	t.Logf("%d results kept: %d bytes counted, %d measured (%.0f bytes each)", len(d.kept), d.Bytes(), measured, float64(measured)/float64(len(d.kept)))
	if measured > budget*103/100 || measured < d.Bytes()*4/5 {
		t.Fatalf("the cache holds %d bytes of heap for %d counted against a budget of %d", measured, d.Bytes(), budget)
	}
	runtime.KeepAlive(d)
}

// TestMemoryFlatWithManyDuplicates runs many lines over a few thousand
// URLs, skewed so that some duplicates find their result kept and others
// do not, with a window of records in flight as the pipeline has, and
// checks that the live heap stays within the documented bound and stops
// growing once every URL was seen.
func TestMemoryFlatWithManyDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("300,000 lines")
	}
	const (
		budget   = 4 << 20
		distinct = 20_000
		lines    = 300_000
		window   = 1024
	)
	body := strings.Repeat("<p>lorem ipsum dolor sit amet</p>", 64)
	rnd := rand.New(rand.NewPCG(1, 2))
	before := liveHeap()
	d := New(budget)
	ring := make([]*record.Record, window)
	var copied, refetched int
	pass := func(r *record.Record) {
		switch {
		case r == nil:
		case r.CopyPending:
			if !d.Fill(r) {
				t.Fatalf("line %d: its original passed, yet nothing to copy", r.Index)
			}
			copied++
		default:
			if r.Duplicate {
				refetched++
			}
			fetched(r, body, int(r.Index))
			d.Passed(r)
		}
	}
	var samples []int64
	for i := range lines {
		n := int(rnd.ExpFloat64()*distinct/8) % distinct
		raw := fmt.Sprintf("https://host%d.example/path/%d", n%97, n)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		r := &record.Record{Index: int64(i), URL: raw, Target: u}
		d.Check(r)
		pass(ring[i%window])
		ring[i%window] = r
		if (i+1)%(lines/6) == 0 {
			samples = append(samples, int64(liveHeap())-int64(before))
		}
	}
	// The bound: the table, the budget, and the window of records in
	// flight with their results (about 2 KiB each here, counted 4).
	bound := int64(20*distinct) + budget + window*4096
	t.Logf("live heap every %d lines: %v; bound %d; %d copied, %d fetched again", lines/6, samples, bound, copied, refetched)
	if copied == 0 || refetched == 0 {
		t.Fatalf("%d copied, %d fetched again: the test needs both", copied, refetched)
	}
	for _, s := range samples {
		if s > bound {
			t.Fatalf("live heap %d bytes, over the bound of %d", s, bound)
		}
	}
	if first, last := samples[1], samples[len(samples)-1]; last > first+first/10 {
		t.Fatalf("live heap grew from %d to %d bytes after every URL was seen", first, last)
	}
	runtime.KeepAlive(d)
}

// TestKeptMapShrinks fills the cache with many small results, then with a
// few large ones: the map of kept results, which a Go map never shrinks by
// itself, must be remade for the few, and its groups must stay counted.
func TestKeptMapShrinks(t *testing.T) {
	const budget = 2 << 20
	d := New(budget)
	big := strings.Repeat("x", 64<<10)
	for i := range 20_000 {
		raw := fmt.Sprintf("https://h.example/%d", i)
		u, _ := url.Parse(raw)
		r := &record.Record{Index: int64(i), URL: raw, Target: u, Status: 200}
		d.Check(r)
		if i >= 10_000 {
			r.Values = []any{big}
		}
		d.Passed(r)
		if d.Bytes() > budget {
			t.Fatalf("result %d: %d bytes counted, over the budget", i, d.Bytes())
		}
		if i == 9_999 && d.keptPeak < 4096 {
			t.Fatalf("only %d small results kept: the test proves nothing", d.keptPeak)
		}
	}
	if d.keptPeak > 1024 || len(d.kept) > 40 {
		t.Fatalf("%d large results kept in a map grown for %d", len(d.kept), d.keptPeak)
	}
}
