package pipeline

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/internal/lockfile"
	"github.com/trawl-dev/trawl/stats"
)

// countingServer answers 404 for /gone/ paths and 200 otherwise, and
// counts requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasPrefix(r.URL.Path, "/gone/") {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "<title>%s</title>", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func writeList(t *testing.T, dir, name string, urls []string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(urls, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileConfig(t *testing.T, list, out string) Config {
	cfg := testConfig(t, nil, nil)
	cfg.Stdin = nil
	cfg.Inputs = []string{list}
	cfg.Output = out
	return cfg
}

// TestResumeChangedListFetchesNothing: a list that no longer matches the
// output being resumed is refused with exit status 2 before any request.
func TestResumeChangedListFetchesNothing(t *testing.T) {
	srv, hits := countingServer(t)
	dir := t.TempDir()
	var urls []string
	for i := range 50 {
		urls = append(urls, fmt.Sprintf("%s/p/%d", srv.URL, i))
	}
	out := filepath.Join(dir, "out.jsonl")
	if _, err := Run(t.Context(), fileConfig(t, writeList(t, dir, "a.txt", urls[:20]), out)); err != nil {
		t.Fatal(err)
	}
	for name, list := range map[string][]string{
		"changed line": append(append([]string{urls[0] + "?other"}, urls[1:20]...), urls[20:]...),
		"shorter list": urls[:10],
	} {
		hits.Store(0)
		cfg := fileConfig(t, writeList(t, dir, "b.txt", list), out)
		cfg.Resume = true
		_, err := Run(t.Context(), cfg)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "the input list has changed") {
			t.Fatalf("%s: err = %v (exit %d), want exit 2", name, err, exitcode.Of(err))
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("%s: %d requests sent before the mismatch was reported", name, n)
		}
	}
}

// TestResumedRunAnswersForTheWholeOutput: failures kept from an earlier
// run count when a resumed run decides its exit status and figures.
func TestResumedRunAnswersForTheWholeOutput(t *testing.T) {
	srv, _ := countingServer(t)
	dir := t.TempDir()
	var urls []string
	for i := range 20 {
		if i < 5 {
			urls = append(urls, fmt.Sprintf("%s/gone/%d", srv.URL, i)) // 404: kept, not fetched again
		} else {
			urls = append(urls, fmt.Sprintf("%s/p/%d", srv.URL, i))
		}
	}
	out := filepath.Join(dir, "out.jsonl")
	first := fileConfig(t, writeList(t, dir, "first.txt", urls[:10]), out)
	if _, err := Run(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	cfg := fileConfig(t, writeList(t, dir, "all.txt", urls), out)
	cfg.Resume = true
	cfg.MaxFailures, _ = stats.ParseTolerance("2")
	res, err := Run(t.Context(), cfg)
	if exitcode.Of(err) != exitcode.SomeFailed || !strings.Contains(err.Error(), "5 of 20 URLs failed in the whole output") {
		t.Fatalf("err = %v, want exit 3 for the 5 kept failures", err)
	}
	w := res.Snapshot.Whole()
	if res.Snapshot.Records != 10 || res.Snapshot.Failed != 0 || w.Records != 20 || w.Failed != 5 || w.ByKind["http_status"] != 5 {
		t.Fatalf("this run %d/%d failed, whole %d/%d failed %v", res.Snapshot.Failed, res.Snapshot.Records, w.Failed, w.Records, w.ByKind)
	}
	if !strings.Contains(res.Snapshot.Summary(), "whole output: 20 records, 10 from earlier runs: 15 ok, 5 failed (http_status 5)") {
		t.Fatalf("summary:\n%s", res.Snapshot.Summary())
	}
}

// TestOutputsThatAreInputsAreRefused: no file trawl writes may be one of
// its input lists; the list must be left untouched.
func TestOutputsThatAreInputsAreRefused(t *testing.T) {
	srv, hits := countingServer(t)
	dir := t.TempDir()
	list := writeList(t, dir, "same.txt", []string{srv.URL + "/p/1"})
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink(list, link); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(list)
	for _, set := range []func(*Config){
		func(c *Config) { c.Output = list },
		func(c *Config) { c.Output = link },
		func(c *Config) { c.Output = list; c.Atomic = true },
		func(c *Config) { c.Output = filepath.Join(dir, "out.jsonl"); c.StatsFile = list },
		func(c *Config) { c.MetricsFile = list },
		func(c *Config) { c.LogFile = link },
		func(c *Config) { c.LockFile = list },
		func(c *Config) { c.Output = filepath.Join(dir, "o.jsonl"); c.StatsFile = filepath.Join(dir, "o.jsonl") },
	} {
		cfg := fileConfig(t, list, "")
		cfg.Stdout = &lockedBuffer{}
		set(&cfg)
		_, err := Run(t.Context(), cfg)
		if exitcode.Of(err) != exitcode.Usage {
			t.Fatalf("err = %v, want exit 2", err)
		}
		if after, _ := os.ReadFile(list); string(after) != string(before) {
			t.Fatalf("the input list was changed to %q (%v)", after, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests sent", hits.Load())
	}
}

// TestTwoResumesOfOneFile: while one run resumes an output, another run
// resuming the same file exits 4 without touching it.
func TestTwoResumesOfOneFile(t *testing.T) {
	srv, hits := countingServer(t)
	dir := t.TempDir()
	list := writeList(t, dir, "l.txt", []string{srv.URL + "/p/1", srv.URL + "/p/2"})
	out := filepath.Join(dir, "out.jsonl")
	if err := os.WriteFile(out, []byte(`{"index":0,"url":"`+srv.URL+`/p/1","status":200,"error_kind":null}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := lockfile.Hold(out) // the run already resuming it
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	cfg := fileConfig(t, list, out)
	cfg.Resume = true
	_, err = Run(t.Context(), cfg)
	if exitcode.Of(err) != exitcode.Locked {
		t.Fatalf("err = %v, want exit 4", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests sent", hits.Load())
	}
}
