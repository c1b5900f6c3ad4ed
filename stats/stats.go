// Package stats keeps the accounting of a run: how many records, how many
// failed and why, retries, bytes and a latency histogram. The sink feeds it
// as records are written, the fetch stage as URLs are fetched (which in
// input order can be well ahead of the writing); the progress display and
// the end-of-run summary read snapshots. Work code never prints.
package stats

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// Earlier is what an output being resumed already holds from earlier
// runs: those records count in the whole output's figures.
type Earlier struct {
	Records int64
	Failed  int64
	// NotModified counts the kept records that were 304s to --since.
	NotModified int64
	ByKind      map[record.Kind]int64
	ByClass     map[string]int64
}

// Stats accumulates counters for one run. It is safe for concurrent use.
type Stats struct {
	mu      sync.Mutex
	earlier Earlier
	start   time.Time
	records int64
	ok      int64
	// notModified counts the ok records that were 304s (--since), refused
	// those robots.txt kept trawl from (neither ok nor failed).
	notModified int64
	refused     int64
	byKind      map[record.Kind]int64
	byClass     map[string]int64
	retries     int64
	bytes       int64
	latency     Histogram
	hostCap     HostCap

	// Counted by the fetch stage's workers, concurrently and once per URL,
	// hence atomics rather than the mutex.
	fetched      atomic.Int64
	fetchedBytes atomic.Int64
	fetchFailed  atomic.Int64
	received     atomic.Int64
}

// New starts accounting at start.
func New(start time.Time) *Stats {
	return &Stats{start: start, byKind: make(map[record.Kind]int64), byClass: make(map[string]int64)}
}

// AddEarlier counts records an earlier run wrote into the output this run
// continues.
func (s *Stats) AddEarlier(e Earlier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.earlier = e
}

// Observe accounts for one finished record.
func (s *Stats) Observe(r *record.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records++
	switch {
	case r.Err == nil:
		s.ok++
		if r.NotModified {
			s.notModified++
		}
	case record.Refused(r.ErrKind):
		s.refused++
	default:
		s.byKind[r.ErrKind]++
	}
	if r.Attempts > 1 {
		s.retries += int64(r.Attempts - 1)
	}
	s.byClass[StatusClass(r.Status)]++
	if !r.NotModified {
		// A 304's bytes are the earlier body's, carried over: none came.
		s.bytes += r.Bytes
	}
	if r.Attempts > 0 {
		s.latency.Add(r.Duration)
	}
}

// Fetched accounts for a URL the fetch stage has finished, before it is
// written. In input order a slow URL holds back the records behind it, so
// only this count shows how far the fetching really is. A duplicate whose
// result is still to be copied counts as done, without bytes or failure.
func (s *Stats) Fetched(r *record.Record) {
	s.fetched.Add(1)
	if r.Bytes > 0 && !r.NotModified {
		s.fetchedBytes.Add(r.Bytes)
	}
	if r.Err != nil && !record.Refused(r.ErrKind) {
		s.fetchFailed.Add(1)
	}
}

// Received accounts for n bytes of a body as they arrive, before its URL
// is done; bodies being saved report them, so that progress moves while a
// large file downloads.
func (s *Stats) Received(n int) { s.received.Add(int64(n)) }

// SetHostCap records what the throttle measured of the per-host cap, once
// the fetching is over.
func (s *Stats) SetHostCap(h HostCap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostCap = h
}

// Snapshot is a consistent copy of the counters at one moment. Records,
// OK, Failed, ByKind and ByClass are this run's; Earlier holds what an
// output being resumed already had, and Whole adds the two. Fetched,
// FetchedBytes and FetchFailed count URLs as the fetch stage finished them,
// records written or not, and Received the bytes of bodies being saved as
// they arrive, URLs done or not (these are read without the lock, so they
// may be a moment ahead of the rest).
type Snapshot struct {
	Earlier Earlier
	Records int64
	OK      int64
	Failed  int64
	// NotModified counts the OK records that were 304s to --since;
	// Refused the records robots.txt kept trawl from, which are neither
	// OK nor Failed.
	NotModified int64
	Refused     int64
	ByKind      map[record.Kind]int64
	ByClass     map[string]int64
	Retries     int64
	Bytes       int64
	Elapsed     time.Duration
	P50         time.Duration
	P95         time.Duration
	P99         time.Duration

	Fetched      int64
	FetchedBytes int64
	FetchFailed  int64
	Received     int64
	// HostCap is set once the fetching is over.
	HostCap HostCap
}

// Snapshot copies the counters, measuring elapsed time up to now.
func (s *Stats) Snapshot(now time.Time) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		Earlier: s.earlier,
		Records: s.records,
		OK:      s.ok,
		Failed:  s.records - s.ok - s.refused,

		NotModified: s.notModified,
		Refused:     s.refused,
		ByKind:      make(map[record.Kind]int64, len(s.byKind)),
		ByClass:     make(map[string]int64, len(s.byClass)),
		Retries:     s.retries,
		Bytes:       s.bytes,
		Elapsed:     now.Sub(s.start),
		P50:         s.latency.Quantile(0.50),
		P95:         s.latency.Quantile(0.95),
		P99:         s.latency.Quantile(0.99),
		HostCap:     s.hostCap,

		Fetched:      s.fetched.Load(),
		FetchedBytes: s.fetchedBytes.Load(),
		FetchFailed:  s.fetchFailed.Load(),
		Received:     s.received.Load(),
	}
	for k, v := range s.byKind {
		snap.ByKind[k] = v
	}
	for k, v := range s.byClass {
		snap.ByClass[k] = v
	}
	return snap
}

// Totals are the counts of a whole output.
type Totals struct {
	Records     int64
	OK          int64
	Failed      int64
	NotModified int64
	Refused     int64
	ByKind      map[record.Kind]int64
	ByClass     map[string]int64
}

// Whole returns the figures of the whole output: this run's records and
// those an earlier run left in the output being resumed.
func (s Snapshot) Whole() Totals {
	t := Totals{
		Records: s.Records + s.Earlier.Records,
		Failed:  s.Failed + s.Earlier.Failed,
		ByKind:  map[record.Kind]int64{},
		ByClass: map[string]int64{},
		// --resume fetches refused URLs again: none is kept from earlier.
		Refused:     s.Refused,
		NotModified: s.NotModified + s.Earlier.NotModified,
	}
	t.OK = t.Records - t.Failed - t.Refused
	for _, m := range []map[record.Kind]int64{s.ByKind, s.Earlier.ByKind} {
		for k, v := range m {
			t.ByKind[k] += v
		}
	}
	for _, m := range []map[string]int64{s.ByClass, s.Earlier.ByClass} {
		for k, v := range m {
			t.ByClass[k] += v
		}
	}
	return t
}

// StatusClass names the class of an HTTP status: "2xx" and so on, or
// "none" when no response arrived.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// StatusClasses lists the classes StatusClass returns, in order.
func StatusClasses() []string { return []string{"1xx", "2xx", "3xx", "4xx", "5xx", "none"} }

// Rate returns records per second over the elapsed time.
func (s Snapshot) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Records) / s.Elapsed.Seconds()
}

// Summary renders the snapshot as the few lines printed at the end of a
// run: this run's figures, and when it continued an earlier output, the
// whole output's.
func (s Snapshot) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s in %s (%.1f URLs/s): %s, %d failed%s%s",
		plural(s.Records, "URL"), s.Elapsed.Round(time.Millisecond), s.Rate(), okText(s.OK, s.NotModified), s.Failed, kinds(s.Failed, s.ByKind), refusedText(s.Refused))
	fmt.Fprintf(&b, "\nretries %d, %s received, latency p50 %s p95 %s p99 %s\n",
		s.Retries, FormatBytes(s.Bytes), roundLatency(s.P50), roundLatency(s.P95), roundLatency(s.P99))
	if s.Earlier.Records > 0 {
		w := s.Whole()
		fmt.Fprintf(&b, "whole output: %s, %d from earlier runs: %s, %d failed%s%s\n",
			plural(w.Records, "record"), s.Earlier.Records, okText(w.OK, w.NotModified), w.Failed, kinds(w.Failed, w.ByKind), refusedText(w.Refused))
	}
	return b.String()
}

// okText counts the successes, and among them the 304s to --since.
func okText(ok, notModified int64) string {
	if notModified == 0 {
		return fmt.Sprintf("%d ok", ok)
	}
	return fmt.Sprintf("%d ok (%d not modified)", ok, notModified)
}

// refusedText counts the URLs robots.txt kept trawl from, when any.
func refusedText(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d refused by robots.txt", n)
}

// kinds lists the failures by kind, in the documented order.
func kinds(failed int64, byKind map[record.Kind]int64) string {
	if failed == 0 {
		return ""
	}
	var parts []string
	for _, k := range record.Kinds() {
		if n := byKind[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// FormatBytes renders n with a binary unit, such as "3.4 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	exp := 0
	for v >= unit && exp < 6 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp-1])
}

// Histogram counts durations in logarithmic buckets, each about 2% wider
// than the last, so quantiles are accurate to about 2% with a fixed,
// small amount of memory whatever the number of samples.
type Histogram struct {
	counts [histBuckets]int64
	total  int64
}

const (
	histGrowth = 1.02
	// Buckets cover 1µs to about 45 days, far past any per-URL duration.
	histBuckets = 1300
)

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	b := int(math.Ceil(math.Log(us) / math.Log(histGrowth)))
	return min(b, histBuckets-1)
}

func bucketUpper(b int) time.Duration {
	return time.Duration(math.Pow(histGrowth, float64(b)) * float64(time.Microsecond))
}

// Add records one duration.
func (h *Histogram) Add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.total++
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() int64 { return h.total }

// Quantile returns an upper bound of the q-quantile (0 < q ≤ 1), or 0 when
// nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketUpper(b)
		}
	}
	return bucketUpper(histBuckets - 1)
}
