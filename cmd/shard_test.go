package cmd

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// shardEnv is a list of 300 lines over 20 made-up hosts (all resolved to
// the local test server) plus a few invalid lines, and the flags to fetch it.
type shardEnv struct {
	dir   string
	list  string
	flags []string
	lines []string
}

func newShardEnv(t *testing.T) *shardEnv {
	srv := httptest.NewServer(newTestHandler())
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	e := &shardEnv{dir: t.TempDir()}
	e.flags = []string{"-q", "-x", "title", "--max-failures", "100%", "--retries", "0"}
	for h := range 20 {
		e.flags = append(e.flags, "--resolve", fmt.Sprintf("host%d.test:%s:127.0.0.1", h, port))
	}
	for i := range 300 {
		if i%50 == 49 {
			e.lines = append(e.lines, fmt.Sprintf("not a url %d", i))
			continue
		}
		e.lines = append(e.lines, fmt.Sprintf("http://host%d.test:%s/page/%d", i%20, port, i))
	}
	e.list = filepath.Join(e.dir, "urls.txt")
	os.WriteFile(e.list, []byte(strings.Join(e.lines, "\n")+"\n"), 0o644)
	return e
}

func (e *shardEnv) run(t *testing.T, out string, extra ...string) {
	t.Helper()
	args := append(append(append([]string{}, e.flags...), extra...), "-o", out, e.list)
	if b, err := exec.Command("trawl", args...).CombinedOutput(); err != nil {
		t.Fatalf("trawl %v: %v\n%s", extra, err, b)
	}
}

// comparable reads a JSON Lines file into normalized lines: records
// without their timing, re-encoded, in file order.
func comparable(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %q", path, line)
		}
		delete(m, "duration_ms")
		delete(m, "fetched_at") // when, not what
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

// TestShardsAddUpToOneRun runs N = 1, 3 and 8 shards, by host and by URL:
// the shards must be disjoint, cover the list, keep hosts whole (by host),
// and merge into exactly what one run writes.
func TestShardsAddUpToOneRun(t *testing.T) {
	e := newShardEnv(t)
	single := filepath.Join(e.dir, "single.jsonl")
	e.run(t, single)
	want := comparable(t, single)
	if len(want) != 300 {
		t.Fatalf("single run wrote %d records", len(want))
	}
	for _, by := range []string{"host", "url"} {
		for _, n := range []int{1, 3, 8} {
			var files []string
			seen := map[int]int{}
			hostShard := map[string]int{}
			for k := range n {
				out := filepath.Join(e.dir, fmt.Sprintf("%s-%d-of-%d.jsonl", by, k, n))
				e.run(t, out, "--shard", fmt.Sprintf("%d/%d", k, n), "--shard-by", by)
				files = append(files, out)
				for _, line := range comparable(t, out) {
					var rec struct {
						Index int
						URL   string
					}
					json.Unmarshal([]byte(line), &rec)
					if prev, dup := seen[rec.Index]; dup {
						t.Fatalf("%s N=%d: index %d in shards %d and %d", by, n, rec.Index, prev, k)
					}
					seen[rec.Index] = k
					if u, err := url.Parse(rec.URL); err == nil && u.Host != "" && by == "host" {
						if prev, ok := hostShard[u.Hostname()]; ok && prev != k {
							t.Fatalf("host %s in shards %d and %d", u.Hostname(), prev, k)
						}
						hostShard[u.Hostname()] = k
					}
				}
			}
			if len(seen) != 300 {
				t.Fatalf("%s N=%d: the shards cover %d of 300 lines", by, n, len(seen))
			}
			merged := filepath.Join(e.dir, fmt.Sprintf("merged-%s-%d.jsonl", by, n))
			args := append([]string{"merge", "-q", "-o", merged}, files...)
			if b, err := exec.Command("trawl", args...).CombinedOutput(); err != nil {
				t.Fatalf("merge: %v\n%s", err, b)
			}
			got := comparable(t, merged)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s N=%d: merged shards differ from one run", by, n)
			}
		}
	}
}

func TestMergeCommandReportsDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	os.WriteFile(a, []byte(`{"index":0,"url":"x"}`+"\n"+`{"index":2,"url":"z"}`+"\n"), 0o644)
	b := filepath.Join(dir, "b.jsonl")
	os.WriteFile(b, []byte(`{"index":0,"url":"x"}`+"\n"), 0o644)
	c := exec.Command("trawl", "merge", a, b)
	out, _ := c.Output()
	if c.ProcessState.ExitCode() != exitcode.SomeFailed || strings.Count(string(out), "\n") != 2 {
		t.Fatalf("exit %d, output %q", c.ProcessState.ExitCode(), out)
	}
	stderr, _ := exec.Command("trawl", "merge", a).CombinedOutput()
	if !strings.Contains(string(stderr), "1 index missing: index 1") {
		t.Fatalf("gap not reported: %s", stderr)
	}
}
