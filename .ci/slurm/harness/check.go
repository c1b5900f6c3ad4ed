package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

const checkUsage = `usage: harness check -single FILE -merged FILE -counts FILE
        [-killed K -snapshot FILE -counts-at-kill FILE] SHARD-FILE...

Checks that the merged output equals the single run's record for record
(every field but duration_ms and fetched_at), and that the test server saw exactly the
requests the records account for. SHARD-FILE K is shard K's output. With
-killed, shard K's task was killed and requeued: -snapshot is its output
as the kill left it and -counts-at-kill the server's counts at that moment;
then a URL of that shard may have been fetched before the kill and again
after it only where --resume did not keep its record.`

// rec is the part of a record the request accounting reads.
type rec struct {
	Index    *int64  `json:"index"`
	URL      string  `json:"url"`
	Status   *int    `json:"status"`
	Kind     *string `json:"error_kind"`
	Attempts int     `json:"attempts"`
}

// readRecords reads a JSON Lines file: the records of its complete lines,
// each also normalized (without its timing) for comparing, and whether an
// incomplete last line was left out, as a killed writer leaves one.
func readRecords(path string) (recs []rec, norm []string, torn bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, false, err
	}
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte("\n"))
		data = rest
		if !complete {
			return recs, norm, true, nil
		}
		var r rec
		var m map[string]any
		if err := errors.Join(json.Unmarshal(line, &r), json.Unmarshal(line, &m)); err != nil || r.Index == nil {
			return nil, nil, false, fmt.Errorf("%s:%d: not a trawl record: %q", path, n, line)
		}
		delete(m, "duration_ms")
		delete(m, "fetched_at")   // when, not what: it differs between runs like duration_ms
		b, err := json.Marshal(m) // map keys sorted: field order does not matter
		if err != nil {
			return nil, nil, false, err
		}
		recs, norm = append(recs, r), append(norm, string(b))
	}
	return recs, norm, false, nil
}

func readCounts(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	if err := json.Unmarshal(data, &counts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return counts, nil
}

// retryable are the statuses trawl retries and --resume fetches again
// (the README's list), rather than keeping their records as done.
var retryable = []int{408, 425, 429, 500, 502, 503, 504}

// keptOnResume says whether --resume keeps a complete record as done
// rather than fetching its URL again: successes and the failures that
// cannot pass by trying again (the README's --resume-retry-failed). It is
// written here from the README, not taken from trawl's code, so that the
// test checks trawl against its documentation.
func keptOnResume(r rec) bool {
	if r.Kind == nil {
		return true
	}
	switch *r.Kind {
	case "invalid_url", "tls", "protocol", "too_many_redirects", "transform":
		return true
	case "http_status":
		return r.Status != nil && !slices.Contains(retryable, *r.Status)
	}
	return false
}

// report collects the problems found, keeping the first few of each kind.
type report struct {
	problems []string
	counts   map[string]int
}

func (r *report) fail(kind, format string, args ...any) {
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[kind]++
	if r.counts[kind] <= 5 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	} else if r.counts[kind] == 6 {
		r.problems = append(r.problems, fmt.Sprintf("(more %s problems left out)", kind))
	}
}

func (r *report) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(r.problems, "\n"))
}

// checkInputs are check's arguments, read.
type checkInputs struct {
	single, merged     []rec
	singleN, mergedN   []string
	counts, countsKill map[string]int
	shards             [][]rec
	killed             int // -1 when no task was killed
	snapshot           []rec
	snapshotTorn       bool
}

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	single := fs.String("single", "", "")
	merged := fs.String("merged", "", "")
	counts := fs.String("counts", "", "")
	killed := fs.Int("killed", -1, "")
	snapshot := fs.String("snapshot", "", "")
	countsKill := fs.String("counts-at-kill", "", "")
	if err := fs.Parse(args); err != nil || *single == "" || *merged == "" || *counts == "" || fs.NArg() == 0 ||
		(*killed >= 0) != (*snapshot != "") || (*snapshot != "") != (*countsKill != "") || *killed >= fs.NArg() {
		return errors.New(checkUsage)
	}
	in := checkInputs{killed: *killed}
	var err error
	var torn bool
	if in.single, in.singleN, torn, err = readRecords(*single); err != nil || torn {
		return errors.Join(err, errorIf(torn, "%s ends in an incomplete line", *single))
	}
	if in.merged, in.mergedN, torn, err = readRecords(*merged); err != nil || torn {
		return errors.Join(err, errorIf(torn, "%s ends in an incomplete line", *merged))
	}
	if in.counts, err = readCounts(*counts); err != nil {
		return err
	}
	for _, path := range fs.Args() {
		recs, _, torn, err := readRecords(path)
		if err != nil || torn {
			return errors.Join(err, errorIf(torn, "%s ends in an incomplete line", path))
		}
		in.shards = append(in.shards, recs)
	}
	if in.killed >= 0 {
		if in.snapshot, _, in.snapshotTorn, err = readRecords(*snapshot); err != nil {
			return err
		}
		if in.countsKill, err = readCounts(*countsKill); err != nil {
			return err
		}
	}
	summary, err := check(in)
	fmt.Print(summary)
	return err
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func errorIf(cond bool, format string, args ...any) error {
	if !cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// check runs every assertion and returns a summary of what it found.
func check(in checkInputs) (string, error) {
	var rep report
	var sum strings.Builder

	// The merged output is the single run's, record for record.
	if len(in.mergedN) != len(in.singleN) {
		rep.fail("records", "merged output has %d records, the single run %d", len(in.mergedN), len(in.singleN))
	}
	for i := range min(len(in.mergedN), len(in.singleN)) {
		if in.mergedN[i] != in.singleN[i] {
			rep.fail("records", "record %d differs:\n  merged: %s\n  single: %s", i, in.mergedN[i], in.singleN[i])
		}
	}
	for i, r := range in.merged {
		if *r.Index != int64(i) {
			rep.fail("order", "merged record %d has index %d", i, *r.Index)
		}
	}
	if len(rep.problems) == 0 {
		fmt.Fprintf(&sum, "merged output: %d records, equal to the single run's record for record (all fields but duration_ms and fetched_at)\n", len(in.merged))
	}

	// The shards split the list: every record in exactly one shard.
	shardOf := map[int64]int{}
	largest := 0
	var sizes []string
	for k, recs := range in.shards {
		for _, r := range recs {
			if prev, dup := shardOf[*r.Index]; dup {
				rep.fail("shards", "index %d is in shards %d and %d", *r.Index, prev, k)
			}
			shardOf[*r.Index] = k
		}
		largest = max(largest, len(recs))
		sizes = append(sizes, fmt.Sprint(len(recs)))
	}
	if len(shardOf) != len(in.merged) {
		rep.fail("shards", "the shards hold %d records, the merged output %d", len(shardOf), len(in.merged))
	}
	if len(in.merged) > 0 {
		fmt.Fprintf(&sum, "shards: %s records; the largest holds %.1f%% of the list (an even split: %.1f%%)\n",
			strings.Join(sizes, ", "), 100*float64(largest)/float64(len(in.merged)), 100/float64(len(in.shards)))
	}

	// Requests: every attempt a final record counts was one request, and
	// there was no other request, except where a kill lost records that
	// --resume then fetched again.
	want := map[string]int{}      // attempts of the final records, by URL
	wantAfter := map[string]int{} // of those in the killed shard: not kept at the kill
	inKilled := map[string]bool{}
	for _, r := range in.merged {
		want[r.URL] += r.Attempts
		if k, ok := shardOf[*r.Index]; ok && k == in.killed {
			inKilled[r.URL] = true
		}
	}
	keptAt := map[int64]bool{}
	keptAttempts := map[string]int{}
	if in.killed >= 0 {
		for _, r := range in.snapshot {
			if keptAt[*r.Index] || !keptOnResume(r) {
				continue
			}
			keptAt[*r.Index] = true
			keptAttempts[r.URL] += r.Attempts
		}
		for _, r := range in.shards[in.killed] {
			if !keptAt[*r.Index] {
				wantAfter[r.URL] += r.Attempts
			}
		}
	}
	for u := range in.counts {
		if _, ok := want[u]; !ok {
			rep.fail("requests", "%s was requested %s but has no record", u, times(in.counts[u]))
		}
	}
	refetched, lost := 0, 0
	for u, w := range want {
		got := in.counts[u]
		if !inKilled[u] {
			if got != w {
				rep.fail("requests", "%s was requested %s; its records count %s", u, times(got), attempts(w))
			}
			continue
		}
		before, after := in.countsKill[u], got-in.countsKill[u]
		if after != wantAfter[u] {
			rep.fail("requests", "%s was requested %s after the requeue; --resume had to fetch it %s (its records kept at the kill count %s)",
				u, times(after), times(wantAfter[u]), attempts(keptAttempts[u]))
		}
		if before < keptAttempts[u] || before-keptAttempts[u] > w-keptAttempts[u] {
			rep.fail("requests", "%s was requested %s before the kill; its records kept then count %s, all its records %s",
				u, times(before), attempts(keptAttempts[u]), attempts(w))
		}
		refetched += after
		lost += before - keptAttempts[u]
	}
	if in.killed >= 0 {
		shard := in.shards[in.killed]
		// A kill before anything was written, or after everything was,
		// would leave nothing for --resume to prove.
		if len(keptAt) == 0 || len(keptAt) == len(shard) {
			rep.fail("kill", "the kill was not mid-run: %d of shard %d's %d records were kept", len(keptAt), in.killed, len(shard))
		}
		torn := ""
		if in.snapshotTorn {
			torn = ", and an incomplete last line"
		}
		fmt.Fprintf(&sum, "killed shard %d: %d of its %d records kept at the kill%s; %d requests after the requeue, %d of them again for a URL fetched before the kill (its record unwritten, torn, or failed in a way --resume retries)\n",
			in.killed, len(keptAt), len(shard), torn, refetched, lost)
	}
	if rep.counts["requests"] == 0 {
		total, fetched := 0, 0
		for _, c := range in.counts {
			total += c
		}
		for _, w := range want {
			if w > 0 {
				fetched++
			}
		}
		fmt.Fprintf(&sum, "requests: %d for %d URLs, each one an attempt of a record, except the %d a kill cost\n", total, fetched, lost)
	}
	return sum.String(), rep.err()
}
