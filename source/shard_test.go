package source

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	s, err := ParseShard("3/8", "host")
	if err != nil || s.K != 3 || s.N != 8 || s.By != ShardByHost || s.String() != "3/8" {
		t.Fatalf("%+v, %v", s, err)
	}
	for _, bad := range [][2]string{{"8/8", "host"}, {"-1/8", "host"}, {"1/0", "url"}, {"1", "url"}, {"a/b", "url"}, {"0/2", "ip"}} {
		if _, err := ParseShard(bad[0], bad[1]); err == nil {
			t.Errorf("ParseShard(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// TestHashIsFixed pins the function: these values must never change, or a
// resumed shard would see other lines than the run it resumes. They were
// computed apart from this code, from the FNV-1a definition (offset basis
// 0xcbf29ce484222325, prime 0x100000001b3): "example.com" hashes to
// 0x576846634e2714c6, "" to the offset basis itself.
func TestHashIsFixed(t *testing.T) {
	for key, want := range map[string]int{"example.com": 6, "": 5, "http://example.com/a": 0, "a": 4} {
		if got := ShardOf(key, 8); got != want {
			t.Errorf("ShardOf(%q, 8) = %d, want %d", key, got, want)
		}
	}
}

func TestHostsStayTogether(t *testing.T) {
	for _, raw := range []string{"http://Example.com/a", "https://example.com:8443/b?c", "http://EXAMPLE.COM./x"} {
		u, _ := url.Parse(raw)
		if k := ShardKey(ShardByHost, u, raw); k != "example.com" && k != "example.com." {
			t.Errorf("ShardKey(%s) = %q", raw, k)
		}
	}
}

// TestBalance measures the shard sizes for 1M synthetic URLs over 10k hosts
// (100 URLs each) and reports the largest shard against the mean.
func TestBalance(t *testing.T) {
	if testing.Short() {
		t.Skip("1M URLs")
	}
	for _, by := range []ShardBy{ShardByHost, ShardByURL} {
		const n = 8
		var sizes [n]int
		for h := range 10000 {
			host := "host" + strconv.Itoa(h) + ".example"
			for p := range 100 {
				// Built, not parsed: a million url.Parse calls are most
				// of this test's time under the race detector.
				u := &url.URL{Scheme: "https", Host: host, Path: "/page/" + strconv.Itoa(p)}
				sizes[ShardOf(ShardKey(by, u, ""), n)]++
			}
		}
		mean := 1_000_000.0 / n
		largest := 0
		for _, s := range sizes {
			largest = max(largest, s)
		}
		over := (float64(largest) - mean) / mean * 100
		t.Logf("shard-by %s, N=8: sizes %v, largest %.1f%% above the mean", by, sizes, over)
		if over > 5 {
			t.Errorf("shard-by %s: largest shard %.1f%% above the mean", by, over)
		}
	}
}

// TestResolveShard takes K and N from each engine's variables, as the
// engines set them, and refuses what would split the list wrongly.
func TestResolveShard(t *testing.T) {
	slurm := func(id, low, high, step, count string) map[string]string {
		return map[string]string{"SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": id, "SLURM_ARRAY_TASK_MIN": low,
			"SLURM_ARRAY_TASK_MAX": high, "SLURM_ARRAY_TASK_STEP": step, "SLURM_ARRAY_TASK_COUNT": count}
	}
	with := func(env map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range env {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	k8s := map[string]string{"JOB_COMPLETION_INDEX": "5"}
	isSpec := regexp.MustCompile(`^[0-9]+/[0-9]+$`)
	parallel := map[string]string{"PARALLEL_SEQ": "1", "PARALLEL_JOBSLOT": "2", "PARALLEL_PID": "77"}
	for _, c := range []struct {
		name, spec string
		env        map[string]string
		want       string // K/N, or a part of the error
	}{
		{"slurm --array=0-3", "auto", slurm("2", "0", "3", "1", "4"), "2/4"},
		{"slurm --array=1-8 (MIN=1)", "auto", slurm("1", "1", "8", "1", "8"), "0/8"},
		{"slurm --array=1-8, last task", "auto", slurm("8", "1", "8", "1", "8"), "7/8"},
		{"slurm --array=3-7:2", "auto", slurm("7", "3", "7", "2", "3"), "2/3"},
		{"slurm without STEP and MAX", "auto", slurm("2", "0", "", "", "4"), "2/4"},
		{"slurm by name", "slurm", slurm("2", "0", "3", "1", "4"), "2/4"},
		{"slurm, count written and matching", "auto/4", slurm("2", "0", "3", "1", "4"), "2/4"},
		{"slurm, count written and not matching", "auto/8", slurm("2", "0", "3", "1", "4"),
			"8 shards were asked for, but the Slurm array has 4 tasks (SLURM_ARRAY_TASK_COUNT=4)"},
		{"slurm --array=1,2,7", "auto", slurm("7", "1", "7", "1", "3"), "the Slurm array's task IDs are not an evenly spaced range (this is task 7; 3 tasks, IDs 1 to 7, step 1), so its tasks cannot be the shards of one list\nsubmit with --array=0-2"},
		{"slurm task off the step", "auto", slurm("4", "3", "7", "2", "3"), "not an evenly spaced range"},
		{"slurm without COUNT", "auto", slurm("2", "0", "3", "1", ""),
			"SLURM_ARRAY_TASK_COUNT is not set, though SLURM_ARRAY_TASK_ID is"},
		{"slurm without MIN", "auto", slurm("2", "", "3", "1", "4"), "SLURM_ARRAY_TASK_MIN is not set"},
		{"slurm, not a number", "auto", slurm("two", "0", "3", "1", "4"), `SLURM_ARRAY_TASK_ID="two" is not a whole number`},
		{"slurm job that is no array", "auto", map[string]string{"SLURM_JOB_ID": "41", "SLURM_PROCID": "0"}, "no job engine told this process its shard"},

		{"kubernetes", "auto/8", k8s, "5/8"},
		{"kubernetes by name", "k8s/8", k8s, "5/8"},
		{"kubernetes index 0", "auto/8", map[string]string{"JOB_COMPLETION_INDEX": "0"}, "0/8"},
		{"kubernetes without a count", "auto", k8s, "a Kubernetes pod is not told its Job's completions: write --shard auto/N"},
		{"kubernetes index past the count", "auto/5", k8s, "JOB_COMPLETION_INDEX makes this shard 5, outside 0 to 4 for 5 shards"},

		{"parallel", "auto/4", parallel, "0/4"},
		{"parallel, last job", "auto/4", with(parallel, "PARALLEL_SEQ", "4"), "3/4"},
		{"parallel past the count", "auto/4", with(parallel, "PARALLEL_SEQ", "5"), "PARALLEL_SEQ makes this shard 4, outside 0 to 3"},
		{"parallel without a count", "auto", parallel, "GNU parallel does not tell a job how many jobs there are"},
		{"parallel's job slot alone", "auto/4", map[string]string{"PARALLEL_JOBSLOT": "2"}, "no job engine told this process its shard"},

		{"none", "auto", nil, "no job engine told this process its shard: none of SLURM_ARRAY_TASK_ID (a Slurm array), JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), PARALLEL_SEQ (GNU parallel) is set\noutside those, write --shard K/N"},
		{"none, with a count", "auto/8", nil, "no job engine told this process its shard"},
		{"empty counts as unset", "auto/8", map[string]string{"JOB_COMPLETION_INDEX": ""}, "no job engine told this process its shard"},
		{"named engine absent", "k8s/8", parallel, "--shard k8s needs JOB_COMPLETION_INDEX, which is not set"},
		{"two engines", "auto/4", with(slurm("2", "0", "3", "1", "4"), "PARALLEL_SEQ", "3"),
			"more than one job engine is setting shards: SLURM_ARRAY_TASK_ID=2 (a Slurm array) and PARALLEL_SEQ=3 (GNU parallel)\nsay which one to follow: --shard slurm/4 or --shard parallel/4"},
		{"two engines, without a count", "auto", with(k8s, "PARALLEL_SEQ", "3"), "say which one to follow: --shard k8s/N or --shard parallel/N"},
		{"two engines, one named", "parallel/4", with(slurm("2", "0", "3", "1", "4"), "PARALLEL_SEQ", "3"), "2/4"},

		{"bad count", "auto/0", k8s, `bad shard count in "auto/0": want auto/N with N a whole number of at least 1`},
		{"bad count text", "auto/x", k8s, `bad shard count in "auto/x"`},
		{"K/N as before", "3/8", k8s, "3/8"},
		{"unknown word", "sge", k8s, `bad shard "sge": want K/N`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ResolveShard(c.spec, "host", func(k string) string { return c.env[k] })
			switch {
			case isSpec.MatchString(c.want) && (err != nil || s.String() != c.want || s.By != ShardByHost):
				t.Errorf("ResolveShard(%q) = %+v, %v; want %s by host", c.spec, s, err, c.want)
			case !isSpec.MatchString(c.want) && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("ResolveShard(%q) = %+v, %v; want an error with %q", c.spec, s, err, c.want)
			}
		})
	}
	if _, err := ResolveShard("auto/8", "ip", func(k string) string { return k8s[k] }); err == nil || !strings.Contains(err.Error(), `bad shard-by "ip"`) {
		t.Errorf("auto with a bad --shard-by: %v", err)
	}
}

func TestExpand(t *testing.T) {
	s := Shard{K: 3, N: 8, By: ShardByHost}
	for in, want := range map[string]string{
		"out/shard-{shard}.jsonl":   "out/shard-3.jsonl",
		"{shard}/{shard}.log":       "3/3.log",
		"out.jsonl":                 "out.jsonl",
		"{Shard} {shards} {shard-}": "{Shard} {shards} {shard-}",
	} {
		if got := s.Expand(in); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
