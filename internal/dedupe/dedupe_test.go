package dedupe

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSet(t *testing.T) {
	var s Set
	for i := range 100000 {
		if _, seen := s.FirstOrAdd(uint64(i+1)*0x9E3779B97F4A7C15, int64(i)); seen {
			t.Fatalf("new hash %d reported seen", i)
		}
	}
	for i := range 100000 {
		first, seen := s.FirstOrAdd(uint64(i+1)*0x9E3779B97F4A7C15, int64(i+1_000_000))
		if !seen || first != int64(i) {
			t.Fatalf("hash %d: first %d seen %v", i, first, seen)
		}
	}
	if first, seen := s.FirstOrAdd(0, 5); seen || first != 0 {
		t.Fatal("hash 0 mishandled")
	}
	if first, seen := s.FirstOrAdd(0, 9); !seen || first != 5 {
		t.Fatal("hash 0 not found again")
	}
	if s.Len() != 100001 {
		t.Fatalf("len %d", s.Len())
	}
	// 12 bytes a slot, 60–75% full.
	if per := float64(s.Bytes()) / float64(s.Len()); per < 16 || per > 20.5 {
		t.Fatalf("%.1f bytes per hash, want 16 to 20", per)
	}
	s.Free()
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("after Free: len %d, bytes %d", s.Len(), s.Bytes())
	}
	if _, seen := s.FirstOrAdd(0, 1); seen {
		t.Fatal("a freed Set still knows a hash")
	}
}

// TestSetGrowsInSmallSteps checks the documented cost per distinct URL at
// every size from a few thousand on, not only where a doubling table
// happens to be full, and that no insertion grows the table by more than
// 1% (one part by a quarter) where doubling would grow it by 100%.
func TestSetGrowsInSmallSteps(t *testing.T) {
	var s Set
	defer s.Free()
	last := 0
	for i := range 1_000_000 {
		s.FirstOrAdd(uint64(i+1)*0x9E3779B97F4A7C15, int64(i))
		b := s.Bytes()
		if i >= 20_000 && b > last+last/100 {
			t.Fatalf("%d hashes: the table grew from %d to %d bytes at once", s.Len(), last, b)
		}
		last = b
		if i >= 20_000 && i%10_000 == 0 {
			if per := float64(b) / float64(s.Len()); per < 15.9 || per > 20.5 {
				t.Fatalf("%d hashes: %.1f bytes each, want 16 to 20", s.Len(), per)
			}
		}
	}
}

// TestSetTableIsOffHeap checks that a large table is not on the Go heap,
// where the collector would let garbage grow by as much before collecting.
func TestSetTableIsOffHeap(t *testing.T) {
	if mem := mapMemory(offHeapBytes); mem == nil {
		t.Skip("this system does not map memory: tables stay on the heap")
	} else {
		unmapMemory(mem)
	}
	before := liveHeap()
	var s Set
	for i := range 1_000_000 {
		s.FirstOrAdd(uint64(i+1)*0x9E3779B97F4A7C15, int64(i))
	}
	heap := int64(liveHeap()) - int64(before)
	if s.Bytes() < 16_000_000 || heap > 1<<20 {
		t.Fatalf("a table of %d bytes added %d bytes to the Go heap", s.Bytes(), heap)
	}
	for i := range 1_000_000 {
		if first, seen := s.FirstOrAdd(uint64(i+1)*0x9E3779B97F4A7C15, 0); !seen || first != int64(i) {
			t.Fatalf("hash %d lost: %d %v", i, first, seen)
		}
	}
	s.Free()
}

// TestSetMemoryForTenMillion reports the figure the documentation gives.
func TestSetMemoryForTenMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 180 MB")
	}
	var s Set
	defer s.Free()
	for i := range 10_000_000 {
		s.FirstOrAdd(uint64(i+1)*0x9E3779B97F4A7C15, int64(i))
	}
	mb := float64(s.Bytes()) / (1 << 20)
	t.Logf("10M distinct URLs: %.0f MiB (%.1f bytes each)", mb, float64(s.Bytes())/1e7)
	if per := float64(s.Bytes()) / 1e7; per > 20.5 {
		t.Fatalf("%.0f MiB for 10M URLs: %.1f bytes each", mb, per)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func rec(t *testing.T, index int64, raw string) *record.Record {
	return &record.Record{Index: index, URL: raw, Target: mustParse(t, raw)}
}

func TestDeduperCopiesAndHolds(t *testing.T) {
	d := New(DefaultBudget)
	a0 := rec(t, 0, "http://h/a")
	b1 := rec(t, 1, "http://h/b")
	a2 := rec(t, 2, "HTTP://H/a#x")
	bad := &record.Record{Index: 3, URL: "nope"}
	for _, r := range []*record.Record{a0, b1, a2, bad} {
		d.Check(r)
	}
	if a0.Duplicate || b1.Duplicate || bad.Duplicate || !a2.Duplicate || a2.DuplicateOf != 0 || !a2.CopyPending {
		t.Fatalf("marks: %+v", a2)
	}
	// In completion order the duplicate may come first: it must wait.
	if d.Fill(a2) {
		t.Fatal("filled before the original passed")
	}
	a0.Status, a0.Attempts, a0.Values = 200, 2, []any{"title A"}
	d.Passed(a0)
	if !d.Fill(a2) || a2.Status != 200 || a2.Attempts != 0 || a2.Values[0] != "title A" || a2.CopyPending {
		t.Fatalf("copy: %+v", a2)
	}
	// A failed original's failure is copied too.
	b1.Fail(record.KindTimeout, errors.New("slow"))
	d.Passed(b1)
	b4 := rec(t, 4, "http://h/b")
	d.Check(b4)
	if !b4.CopyPending || !d.Fill(b4) || b4.ErrKind != record.KindTimeout {
		t.Fatalf("failed copy: %+v", b4)
	}
}

func TestDeduperEvictsAndRefetches(t *testing.T) {
	d := New(4096) // room for a handful of results
	big := strings.Repeat("x", 1000)
	for i := range 50 {
		r := rec(t, int64(i), fmt.Sprintf("http://h/%d", i))
		d.Check(r)
		r.Values = []any{big}
		d.Passed(r)
	}
	recent := rec(t, 100, "http://h/49")
	d.Check(recent)
	if !recent.Duplicate || !recent.CopyPending || !d.Fill(recent) {
		t.Fatalf("a recent original was not kept: %+v", recent)
	}
	old := rec(t, 101, "http://h/0")
	d.Check(old)
	if !old.Duplicate || old.DuplicateOf != 0 || old.CopyPending {
		t.Fatalf("an evicted original: %+v; want a refetch marked duplicate_of 0", old)
	}
	if d.bytes > d.budget {
		t.Fatalf("kept %d bytes, budget %d", d.bytes, d.budget)
	}
}

func TestPinnedResultsAreNotEvicted(t *testing.T) {
	d := New(1) // evicts every unpinned result at once
	a := rec(t, 0, "http://h/a")
	d.Check(a)
	dup := rec(t, 1, "http://h/a")
	d.Check(dup) // pins a before it passes
	a.Status = 200
	d.Passed(a)
	for i := range 10 {
		r := rec(t, int64(10+i), fmt.Sprintf("http://h/other%d", i))
		d.Check(r)
		d.Passed(r)
	}
	if !d.Fill(dup) || dup.Status != 200 {
		t.Fatal("a pinned result was evicted")
	}
}

func TestAbandon(t *testing.T) {
	r := &record.Record{Duplicate: true, CopyPending: true}
	Abandon(r)
	if r.ErrKind != record.KindCanceled || r.CopyPending {
		t.Fatalf("%+v", r)
	}
}

func BenchmarkCheck(b *testing.B) {
	d := New(DefaultBudget)
	u := mustParse(b, "https://example.com/some/path?query=1")
	b.ReportAllocs()
	for i := range b.N {
		r := &record.Record{Index: int64(i), Target: u}
		d.Check(r)
	}
}

// TestKeptCopyKeepsWhatIsCopied checks that the compact copy a kept result
// is changes nothing a duplicate copies: values of every shape, nil and
// empty ones apart, and the error's message and kind.
func TestKeptCopyKeepsWhatIsCopied(t *testing.T) {
	orig := rec(t, 0, "http://h/a")
	orig.FinalURL, orig.Status, orig.Proto, orig.ContentType = "http://h/b", 200, "HTTP/1.1", "text/html"
	orig.Bytes, orig.WireBytes, orig.Truncated, orig.File, orig.FileDigest = 10, 5, true, "h/b.html", "abc"
	orig.Body, orig.Header = []byte("body"), map[string][]string{"A": {"b"}}
	orig.Values = []any{
		"title", "", nil, []string{"x", ""}, []string(nil), []string{}, []any{1.5, "s", nil, []any{true}}, []any(nil),
		map[string]any{"k": []any{"v"}, "n": nil}, map[string]any(nil), map[string][]string{"h": {"v"}, "e": nil},
		map[string][]string(nil), 42, 2.5, true,
	}
	orig.Fail(record.KindTLS, fmt.Errorf("get: %w", errors.New("bad certificate")))
	c := keptCopy(orig)
	var want, got record.Record
	record.CopyResult(&want, orig)
	record.CopyResult(&got, &c)
	if got.Err.Error() != want.Err.Error() {
		t.Fatalf("error %q, want %q", got.Err, want.Err)
	}
	got.Err, want.Err = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("copied from the kept copy:\n%#v\nfrom the original:\n%#v", got, want)
	}
	if c.URL != "" || c.Target != nil || c.Body != nil || c.Header != nil {
		t.Fatalf("the kept copy holds what no duplicate copies: %+v", c)
	}
}
