package stats

import (
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

func TestObserveAndSummary(t *testing.T) {
	start := time.Unix(1000, 0)
	s := New(start)
	for i := range 98 {
		s.Observe(&record.Record{Attempts: 1, Bytes: 1024, Duration: time.Duration(i+1) * time.Millisecond})
	}
	timeout := &record.Record{Attempts: 3, Duration: time.Second}
	timeout.Fail(record.KindTimeout, errors.New("slow"))
	s.Observe(timeout)
	invalid := &record.Record{}
	invalid.Fail(record.KindInvalidURL, errors.New("bad"))
	s.Observe(invalid)

	snap := s.Snapshot(start.Add(2 * time.Second))
	if snap.Records != 100 || snap.OK != 98 || snap.Failed != 2 || snap.Retries != 2 || snap.Bytes != 98*1024 {
		t.Fatalf("snapshot = %+v", snap)
	}
	if snap.ByKind[record.KindTimeout] != 1 || snap.ByKind[record.KindInvalidURL] != 1 {
		t.Fatalf("by kind = %v", snap.ByKind)
	}
	if snap.Rate() != 50 {
		t.Fatalf("rate = %v", snap.Rate())
	}
	sum := snap.Summary()
	for _, want := range []string{"100 URLs in 2s (50.0 URLs/s): 98 ok, 2 failed (invalid_url 1, timeout 1)", "retries 2", "98.0 KiB", "p50 "} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

func TestHistogramQuantilesWithin2Percent(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100000 {
		d := time.Duration(rng.ExpFloat64() * float64(50*time.Millisecond))
		h.Add(d)
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, q := range []float64{0.5, 0.95, 0.99} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.021 {
			t.Errorf("q%.2f = %v, exact %v", q, got, exact)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Error("empty histogram quantile not 0")
	}
	h.Add(1000 * time.Hour) // beyond the last bucket: counted, not a crash
	if h.Count() != 100001 {
		t.Error("count wrong")
	}
}

func TestTolerance(t *testing.T) {
	for _, tc := range []struct {
		in            string
		failed, total int64
		exceeded      bool
	}{
		{"0", 0, 10, false},
		{"0", 1, 10, true},
		{"3", 3, 10, false},
		{"3", 4, 10, true},
		{"10%", 1, 10, false},
		{"10%", 2, 10, true},
		{"0.5%", 1, 1000, false},
		{"0%", 0, 0, false},
		{"100%", 10, 10, false},
	} {
		tol, err := ParseTolerance(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := tol.Exceeded(tc.failed, tc.total); got != tc.exceeded {
			t.Errorf("%q with %d/%d: exceeded = %v", tc.in, tc.failed, tc.total, got)
		}
		if tol.String() != tc.in {
			t.Errorf("String() = %q, want %q", tol.String(), tc.in)
		}
	}
	for _, bad := range []string{"", "-1", "x", "101%", "-5%", "NaN%"} {
		if _, err := ParseTolerance(bad); err == nil {
			t.Errorf("ParseTolerance(%q) accepted", bad)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestFetchedCountsAheadOfObserve: the fetch stage's counts and the bytes
// of bodies being saved stand apart from the records written.
func TestFetchedCountsAheadOfObserve(t *testing.T) {
	s := New(time.Unix(1000, 0))
	failed := &record.Record{}
	failed.Fail(record.KindDNS, errors.New("no such host"))
	s.Fetched(&record.Record{Bytes: 100})
	s.Fetched(failed)
	s.Fetched(&record.Record{CopyPending: true})
	s.Received(4096)
	snap := s.Snapshot(time.Unix(1001, 0))
	if snap.Fetched != 3 || snap.FetchedBytes != 100 || snap.FetchFailed != 1 || snap.Received != 4096 || snap.Records != 0 {
		t.Fatalf("snapshot = %+v", snap)
	}
}
