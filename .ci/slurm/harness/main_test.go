package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// records writes JSON Lines to a file and reads them back as check does.
func records(t *testing.T, lines ...string) ([]rec, []string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, norm, torn, err := readRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs, norm, torn
}

func line(i int, url string, status int, kind string, attempts int) string {
	st, k := "null", "null"
	if status > 0 {
		st = fmt.Sprint(status)
	}
	if kind != "" {
		k = `"` + kind + `"`
	}
	return fmt.Sprintf(`{"index":%d,"url":%q,"status":%s,"error_kind":%s,"attempts":%d,"duration_ms":%d}`+"\n", i, url, st, k, attempts, 7*i+1)
}

// scenario is a run in which shard 1's task was killed with index 3 kept,
// index 2 written but failed with a 500 (fetched again by --resume) and
// index 4 fetched but torn: every count is what --resume allows.
func scenario(t *testing.T) checkInputs {
	all := []string{
		line(0, "http://a/p/0", 200, "", 1),
		line(1, "http://a/p/1", 404, "http_status", 1),
		line(2, "http://b/p/2", 500, "http_status", 1),
		line(3, "http://b/p/3", 200, "", 1),
		line(4, "http://b/p/4", 200, "", 1),
		line(5, "not a url", 0, "invalid_url", 0),
		line(6, "http://a/p/0", 200, "", 1),
	}
	var in checkInputs
	in.single, in.singleN, _ = records(t, all...)
	// The merged output's timings differ from the single run's.
	merged := strings.Join(all, "")
	merged = strings.ReplaceAll(merged, `"duration_ms":1}`, `"duration_ms":99}`)
	in.merged, in.mergedN, _ = records(t, merged)
	s0, _, _ := records(t, all[0], all[1], all[5], all[6])
	s1, _, _ := records(t, all[2], all[3], all[4])
	in.shards = [][]rec{s0, s1}
	in.killed = 1
	in.snapshot, _, in.snapshotTorn = records(t, all[2], all[3], all[4][:20])
	in.countsKill = map[string]int{"http://a/p/0": 1, "http://b/p/2": 1, "http://b/p/3": 1, "http://b/p/4": 1}
	in.counts = map[string]int{"http://a/p/0": 2, "http://a/p/1": 1, "http://b/p/2": 2, "http://b/p/3": 1, "http://b/p/4": 2}
	return in
}

func TestCheckPassesWhatResumePromises(t *testing.T) {
	in := scenario(t)
	if !in.snapshotTorn {
		t.Fatal("the torn last line was not seen")
	}
	sum, err := check(in)
	if err != nil {
		t.Fatalf("%v\n%s", err, sum)
	}
	for _, want := range []string{
		"merged output: 7 records, equal to the single run's",
		"shards: 4, 3 records; the largest holds 57.1% of the list",
		"killed shard 1: 1 of its 3 records kept at the kill, and an incomplete last line; 2 requests after the requeue, 2 of them again for a URL fetched before the kill",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

// TestCheckFails breaks the scenario one way at a time: each must fail,
// or a broken run on the cluster could pass.
func TestCheckFails(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(in *checkInputs)
		want   string
	}{
		{"a kept record fetched again", func(in *checkInputs) { in.counts["http://b/p/3"]++ },
			"http://b/p/3 was requested once after the requeue; --resume had to fetch it 0 times"},
		{"a lost record not fetched again", func(in *checkInputs) { in.counts["http://b/p/4"]-- },
			"http://b/p/4 was requested 0 times after the requeue; --resume had to fetch it once"},
		{"a retryable failure kept", func(in *checkInputs) { in.counts["http://b/p/2"]-- },
			"http://b/p/2 was requested 0 times after the requeue"},
		{"a URL of another shard fetched twice", func(in *checkInputs) { in.counts["http://a/p/1"]++ },
			"http://a/p/1 was requested 2 times; its records count 1 attempt"},
		{"a repeated line fetched once", func(in *checkInputs) { in.counts["http://a/p/0"]-- },
			"http://a/p/0 was requested once; its records count 2 attempts"},
		{"a request no record accounts for", func(in *checkInputs) { in.counts["http://a/elsewhere"] = 1 },
			"http://a/elsewhere was requested once but has no record"},
		{"more requests before the kill than records", func(in *checkInputs) {
			in.countsKill["http://b/p/4"], in.counts["http://b/p/4"] = 2, 3
		}, "http://b/p/4 was requested 2 times before the kill"},
		{"a record that differs", func(in *checkInputs) {
			in.mergedN[3] = strings.Replace(in.mergedN[3], `"status":200`, `"status":203`, 1)
		}, "record 3 differs"},
		{"a record missing", func(in *checkInputs) { in.mergedN, in.merged = in.mergedN[:6], in.merged[:6] },
			"merged output has 6 records, the single run 7"},
		{"an index in two shards", func(in *checkInputs) { in.shards[0] = append(in.shards[0], in.shards[1][0]) },
			"index 2 is in shards 0 and 1"},
		{"a kill before anything was written", func(in *checkInputs) {
			in.snapshot = nil
			in.countsKill = map[string]int{}
			in.counts["http://b/p/3"]++
		}, "the kill was not mid-run: 0 of shard 1's 3 records were kept"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := scenario(t)
			c.mutate(&in)
			if _, err := check(in); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("check = %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestKeptOnResumeFollowsTheREADME(t *testing.T) {
	kind := func(s string) *string { return &s }
	status := func(n int) *int { return &n }
	for _, c := range []struct {
		r    rec
		kept bool
	}{
		{rec{Status: status(200)}, true},
		{rec{Kind: kind("http_status"), Status: status(404)}, true},
		{rec{Kind: kind("http_status"), Status: status(501)}, true},
		{rec{Kind: kind("http_status"), Status: status(500)}, false},
		{rec{Kind: kind("http_status"), Status: status(429)}, false},
		{rec{Kind: kind("invalid_url")}, true},
		{rec{Kind: kind("tls")}, true},
		{rec{Kind: kind("canceled")}, false},
		{rec{Kind: kind("timeout")}, false},
		{rec{Kind: kind("connect")}, false},
	} {
		if got := keptOnResume(c.r); got != c.kept {
			t.Errorf("keptOnResume(%v %v) = %v", c.r.Kind, c.r.Status, got)
		}
	}
}

func TestListHasEveryKindOfLine(t *testing.T) {
	const n = 4000
	seen := map[string]int{}
	lines := map[string]int{}
	for i := range n {
		l := listLine(i, n, 64, 8080)
		lines[l]++
		for _, k := range []string{"/slow/", "/missing/", "/broken/", "/p/", "not a url"} {
			if strings.Contains(l, k) {
				seen[k]++
			}
		}
	}
	if seen["/slow/"] != 1 || seen["/missing/"] == 0 || seen["/broken/"] == 0 || seen["not a url"] == 0 || seen["/p/"] < n/2 {
		t.Errorf("kinds of lines: %v", seen)
	}
	repeated := 0
	for _, c := range lines {
		if c > 1 {
			repeated++
		}
	}
	if repeated == 0 {
		t.Error("no line repeats an earlier one")
	}
}

// TestGate holds a /slow/ request at the closed gate until it opens, and
// lets the waits see the request arrive and go.
func TestGate(t *testing.T) {
	s := newServer(0)
	srv := httptest.NewServer(s.handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	do := func(method, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	do("POST", "/_ci/gate/close")
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow/7", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if code, body := do("GET", "/_ci/gate/wait?hits=1&waiting=1&timeout=20s"); code != 200 {
		t.Fatalf("the request never reached the gate: %d %s", code, body)
	}
	select {
	case code := <-done:
		t.Fatalf("the request passed the closed gate: %d", code)
	default:
	}
	if code, _ := do("GET", "/_ci/gate/wait?hits=2&timeout=10ms"); code != http.StatusGatewayTimeout {
		t.Fatalf("a wait for a second hit answered %d", code)
	}
	do("POST", "/_ci/gate/open")
	if code := <-done; code != 200 {
		t.Fatalf("the held request got %d", code)
	}
	if code, body := do("GET", "/_ci/gate/wait?waiting=0&timeout=20s"); code != 200 {
		t.Fatalf("the request is still held: %d %s", code, body)
	}
	if code, _ := do("GET", "/missing/3"); code != 404 {
		t.Fatalf("/missing/ answered %d", code)
	}
	_, counts := do("GET", "/_ci/counts")
	host := strings.TrimPrefix(srv.URL, "http://")
	if want := fmt.Sprintf(`{"http://%s/missing/3":1,"http://%s/slow/7":1}`, host, host); counts != want {
		t.Fatalf("counts %s, want %s", counts, want)
	}
}
