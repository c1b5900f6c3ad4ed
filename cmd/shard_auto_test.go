package cmd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// clearEngines empties the variables --shard auto reads (empty counts as
// unset), so that tests run inside a Slurm job or GNU parallel see only
// what they set themselves.
func clearEngines(t *testing.T) {
	for _, v := range []string{
		"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT",
		"JOB_COMPLETION_INDEX", "PARALLEL_SEQ", "TRAWL_SHARD",
	} {
		t.Setenv(v, "")
	}
}

func resolveArgs(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	a := testApp()
	s, err := loadSettings(parseFlags(t, a, args...), a.options)
	if err != nil {
		t.Fatal(err)
	}
	return s.resolve([]string{"urls.txt"}, a.registry)
}

// TestShardAutoResolves reads each engine's variables through the layers,
// and puts K into every file name that holds {shard}.
func TestShardAutoResolves(t *testing.T) {
	clearEngines(t)
	t.Setenv("SLURM_ARRAY_TASK_ID", "3")
	t.Setenv("SLURM_ARRAY_TASK_MIN", "1")
	t.Setenv("SLURM_ARRAY_TASK_MAX", "4")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "4")
	cfg, err := resolveArgs(t, "--shard", "auto", "-o", "out/shard-{shard}.jsonl", "--output-dir", "bodies-{shard}",
		"--stats-file", "s-{shard}.json", "--metrics-file", "m-{shard}.prom", "--log-file", "l-{shard}.log", "--lock", "/tmp/{shard}.lock")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Shard == nil || cfg.Shard.String() != "2/4" {
		t.Fatalf("shard %v, want 2/4 (task 3 of an array from 1)", cfg.Shard)
	}
	got := []string{cfg.Output, cfg.OutputDir, cfg.StatsFile, cfg.MetricsFile, cfg.LogFile, cfg.LockFile}
	want := []string{"out/shard-2.jsonl", "bodies-2", "s-2.json", "m-2.prom", "l-2.log", "/tmp/2.lock"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("file names %q, want %q", got, want)
	}

	// Kubernetes, with the count from the environment layer.
	clearEngines(t)
	t.Setenv("JOB_COMPLETION_INDEX", "7")
	t.Setenv("TRAWL_SHARD", "auto/8")
	cfg, err = resolveArgs(t, "-o", "shard-{shard}.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Shard.String() != "7/8" || cfg.Output != "shard-7.jsonl" {
		t.Fatalf("shard %v, output %s; want 7/8 and shard-7.jsonl", cfg.Shard, cfg.Output)
	}
}

// TestShardAutoFailsAsUsage: without an engine, or with {shard} but no
// shard, nothing runs and the exit status is 2.
func TestShardAutoFailsAsUsage(t *testing.T) {
	clearEngines(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "auto"}, `invalid shard "auto" (from flag --shard): no job engine told this process its shard: none of SLURM_ARRAY_TASK_ID`},
		{[]string{"--shard", "auto/8", "-o", "shard-{shard}.jsonl"}, "outside those, write --shard K/N"},
		{[]string{"-o", "shard-{shard}.jsonl"}, `invalid output "shard-{shard}.jsonl" (from flag --output): {shard} stands for the shard's number, and there is no --shard`},
		{[]string{"--stats-file", "{shard}.json"}, `invalid stats-file "{shard}.json"`},
	} {
		_, err := resolveArgs(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || exitCode(err) != exitcode.Usage {
			t.Errorf("%q: %v (exit %d), want exit 2 and %q", c.args, err, exitCode(err), c.want)
		}
	}
}

// TestSlurmArrayShardsAddUpToOneRun runs trawl as the four tasks of
// `sbatch --array=1-4` would: the same command line, only the Slurm
// variables differ. The tasks must write shard-0 to shard-3, and their
// merge must equal one run.
func TestSlurmArrayShardsAddUpToOneRun(t *testing.T) {
	clearEngines(t)
	e := newShardEnv(t)
	single := filepath.Join(e.dir, "single.jsonl")
	e.run(t, single)
	out := filepath.Join(e.dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 4; id++ {
		args := append(append([]string{}, e.flags...), "--shard", "auto", "--resume", "-o", filepath.Join(out, "shard-{shard}.jsonl"), e.list)
		c := exec.Command("trawl", args...)
		c.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID="+fmt.Sprint(id), "SLURM_ARRAY_TASK_MIN=1",
			"SLURM_ARRAY_TASK_MAX=4", "SLURM_ARRAY_TASK_STEP=1", "SLURM_ARRAY_TASK_COUNT=4")
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("task %d: %v\n%s", id, err, b)
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if got := strings.Join(names, " "); got != "shard-0.jsonl shard-1.jsonl shard-2.jsonl shard-3.jsonl" {
		t.Fatalf("the tasks wrote %s", got)
	}
	merged := filepath.Join(e.dir, "merged.jsonl")
	if b, err := exec.Command("trawl", append([]string{"merge", "-q", "-o", merged}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("merge: %v\n%s", err, b)
	}
	if got, want := comparable(t, merged), comparable(t, single); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("merged tasks differ from one run (%d records against %d)", len(got), len(want))
	}
}

// TestShardAutoExitsTwo: outside any engine, the command fails at once
// with status 2 and fetches nothing.
func TestShardAutoExitsTwo(t *testing.T) {
	clearEngines(t)
	e := newShardEnv(t)
	out := filepath.Join(e.dir, "shard-{shard}.jsonl")
	c := exec.Command("trawl", append(append([]string{}, e.flags...), "--shard", "auto", "-o", out, e.list)...)
	b, _ := c.CombinedOutput()
	if c.ProcessState.ExitCode() != exitcode.Usage || !strings.Contains(string(b), "no job engine told this process its shard") {
		t.Fatalf("exit %d: %s", c.ProcessState.ExitCode(), b)
	}
	if files, _ := filepath.Glob(filepath.Join(e.dir, "shard-*")); len(files) != 0 {
		t.Fatalf("a failed start left %v", files)
	}
}
