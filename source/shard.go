package source

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trawl-dev/trawl/internal/urlkey"
)

// ShardBy says what a line's shard is chosen from.
type ShardBy string

// The ways of sharding.
const (
	// ShardByHost keeps every URL of one host (its lowercased name,
	// whatever the port) in one shard, so per-host limits mean what they say.
	ShardByHost ShardBy = "host"
	// ShardByURL spreads URLs evenly whatever their hosts; the URL is
	// normalized as --dedupe does, so duplicates land together.
	ShardByURL ShardBy = "url"
)

// Shard is a parsed --shard K/N with its --shard-by: this process keeps
// the lines whose hash modulo N is K. The hash is FNV-1a 64, a fixed public
// function, so every platform and every trawl version puts a line in the
// same shard, and a rerun or resume of one shard sees the same lines.
type Shard struct {
	K, N int
	By   ShardBy
}

// ParseShard reads "K/N" (0 ≤ K < N) and the --shard-by value.
func ParseShard(s string, by string) (Shard, error) {
	k, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	ki, err1 := strconv.Atoi(strings.TrimSpace(k))
	ni, err2 := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil || ni < 1 || ki < 0 || ki >= ni {
		return Shard{}, fmt.Errorf("bad shard %q: want K/N with 0 <= K < N, like 0/8", s)
	}
	if err := CheckShardBy(by); err != nil {
		return Shard{}, err
	}
	return Shard{K: ki, N: ni, By: ShardBy(by)}, nil
}

// ShardByNames lists the values CheckShardBy accepts, for shell completion.
func ShardByNames() []string { return []string{string(ShardByHost), string(ShardByURL)} }

// CheckShardBy checks a --shard-by value.
func CheckShardBy(by string) error {
	if slices.Contains(ShardByNames(), by) {
		return nil
	}
	return fmt.Errorf("bad shard-by %q: want host or url", by)
}

// ShardKey returns what a line is sharded by: its host or its normalized
// URL, or, for a line that is not a fetchable URL, the line itself (every
// line belongs to exactly one shard, invalid ones included).
func ShardKey(by ShardBy, target *url.URL, line string) string {
	if target == nil {
		return line
	}
	if by == ShardByHost {
		return urlkey.HostName(target)
	}
	return urlkey.Normalize(target)
}

// ShardOf returns the shard, 0..n-1, of a key.
func ShardOf(key string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

// Keeps reports whether this shard handles the line.
func (s Shard) Keeps(target *url.URL, line string) bool {
	return ShardOf(ShardKey(s.By, target, line), s.N) == s.K
}

// String returns the spec as written on the command line.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// ShardPlaceholder in a file name stands for the shard's K, so that one
// command line serves every task of a job array: -o 'out/shard-{shard}.jsonl'.
const ShardPlaceholder = "{shard}"

// Expand replaces ShardPlaceholder in a file name with the shard's K.
func (s Shard) Expand(name string) string {
	return strings.ReplaceAll(name, ShardPlaceholder, strconv.Itoa(s.K))
}

// engine is a job runner that tells each process which task it is through
// environment variables. index returns K and N from them; n is the N that
// was written after the engine's name (0 when none was).
type engine struct {
	name   string // as written in --shard NAME[/N]
	title  string // for messages
	marker string // the variable whose presence means this engine started us
	index  func(env func(string) string, n int) (int, int, error)
}

// engines are the job runners --shard auto knows, in the order the error
// that finds none of them lists them.
func engines() []engine {
	return []engine{
		{"slurm", "a Slurm array", "SLURM_ARRAY_TASK_ID", slurmIndex},
		{"k8s", "a Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", k8sIndex},
		{"parallel", "GNU parallel", "PARALLEL_SEQ", parallelIndex},
	}
}

// ShardEngineNames lists the words --shard takes besides K/N, for help and
// shell completion.
func ShardEngineNames() []string {
	names := []string{"auto"}
	for _, e := range engines() {
		names = append(names, e.name)
	}
	return names
}

// ResolveShard reads a --shard value: K/N, or a job engine's name (auto,
// slurm, k8s or parallel), optionally followed by /N, in which case K, and
// N where the engine tells it, come from that engine's variables as env
// returns them. auto takes the one engine whose variables are set, and
// fails when there is none or more than one, since guessing would split
// the list wrongly without a word. An N written after the name must agree
// with the engine's own count.
func ResolveShard(spec, by string, env func(string) string) (Shard, error) {
	spec = strings.TrimSpace(spec)
	name, count, hasCount := strings.Cut(spec, "/")
	name = strings.TrimSpace(name)
	if !slices.Contains(ShardEngineNames(), name) {
		return ParseShard(spec, by)
	}
	if err := CheckShardBy(by); err != nil {
		return Shard{}, err
	}
	n := 0
	if hasCount {
		var err error
		n, err = strconv.Atoi(strings.TrimSpace(count))
		if err != nil || n < 1 {
			return Shard{}, fmt.Errorf("bad shard count in %q: want %s/N with N a whole number of at least 1, like %s/8", spec, name, name)
		}
	}
	var found []engine
	for _, e := range engines() {
		if name == e.name || name == "auto" && env(e.marker) != "" {
			found = append(found, e)
		}
	}
	switch {
	case len(found) == 0:
		var seen []string
		for _, e := range engines() {
			seen = append(seen, e.marker+" ("+e.title+")")
		}
		return Shard{}, fmt.Errorf("no job engine told this process its shard: none of %s is set\noutside those, write --shard K/N", strings.Join(seen, ", "))
	case len(found) > 1:
		var seen []string
		for _, e := range found {
			seen = append(seen, fmt.Sprintf("%s=%s (%s)", e.marker, env(e.marker), e.title))
		}
		return Shard{}, fmt.Errorf("more than one job engine is setting shards: %s\nsay which one to follow: --shard %s", strings.Join(seen, " and "), strings.Join(engineChoices(found, n), " or --shard "))
	}
	e := found[0]
	if env(e.marker) == "" {
		return Shard{}, fmt.Errorf("--shard %s needs %s, which is not set: is this process running in %s?", name, e.marker, e.title)
	}
	k, total, err := e.index(env, n)
	if err != nil {
		return Shard{}, err
	}
	if k < 0 || k >= total {
		return Shard{}, fmt.Errorf("%s gave shard %d of %d, which is not one", e.title, k, total)
	}
	return Shard{K: k, N: total, By: ShardBy(by)}, nil
}

// engineChoices spells the explicit --shard values for the engines found.
func engineChoices(found []engine, n int) []string {
	var out []string
	for _, e := range found {
		switch {
		case n > 0:
			out = append(out, fmt.Sprintf("%s/%d", e.name, n))
		case e.name == "slurm":
			out = append(out, e.name)
		default:
			out = append(out, e.name+"/N")
		}
	}
	return out
}

// envInt reads a whole number from a variable, naming it when it is not one.
func envInt(env func(string) string, name string) (int, error) {
	v := strings.TrimSpace(env(name))
	if v == "" {
		return 0, fmt.Errorf("%s is not set", name)
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a whole number", name, v)
	}
	return i, nil
}

// slurmIndex reads a Slurm array task's place. Slurm numbers tasks by
// the IDs given to --array, which need not start at 0 (--array=1-8) and
// may step (--array=0-14:2), so K counts from SLURM_ARRAY_TASK_MIN in
// steps of SLURM_ARRAY_TASK_STEP. An array with holes (--array=1,2,7) is
// refused: its tasks would not cover every shard.
func slurmIndex(env func(string) string, n int) (int, int, error) {
	id, err := envInt(env, "SLURM_ARRAY_TASK_ID")
	if err != nil {
		return 0, 0, err
	}
	count, err := envInt(env, "SLURM_ARRAY_TASK_COUNT")
	if err != nil {
		return 0, 0, fmt.Errorf("%w, though SLURM_ARRAY_TASK_ID is: Slurm sets both for every array task", err)
	}
	low, err := envInt(env, "SLURM_ARRAY_TASK_MIN")
	if err != nil {
		return 0, 0, fmt.Errorf("%w, though SLURM_ARRAY_TASK_ID is: Slurm sets both for every array task", err)
	}
	step := 1
	if env("SLURM_ARRAY_TASK_STEP") != "" {
		if step, err = envInt(env, "SLURM_ARRAY_TASK_STEP"); err != nil {
			return 0, 0, err
		}
	}
	high := low + (count-1)*step
	if env("SLURM_ARRAY_TASK_MAX") != "" {
		if high, err = envInt(env, "SLURM_ARRAY_TASK_MAX"); err != nil {
			return 0, 0, err
		}
	}
	if count < 1 || step < 1 || high != low+(count-1)*step || id < low || id > high || (id-low)%step != 0 {
		return 0, 0, fmt.Errorf("the Slurm array's task IDs are not an evenly spaced range (this is task %d; %d tasks, IDs %d to %d, step %d), so its tasks cannot be the shards of one list\nsubmit with --array=0-%d, or write --shard K/N", id, count, low, high, step, count-1)
	}
	if n > 0 && n != count {
		return 0, 0, fmt.Errorf("%d shards were asked for, but the Slurm array has %d tasks (SLURM_ARRAY_TASK_COUNT=%d)", n, count, count)
	}
	return (id - low) / step, count, nil
}

// k8sIndex reads a Kubernetes Indexed Job pod's JOB_COMPLETION_INDEX
// (0 to completions-1). A pod is not told the Job's completions, so N
// must be written after the name.
func k8sIndex(env func(string) string, n int) (int, int, error) {
	k, err := envInt(env, "JOB_COMPLETION_INDEX")
	if err != nil {
		return 0, 0, err
	}
	return countedIndex(k, n, "JOB_COMPLETION_INDEX", "a Kubernetes pod is not told its Job's completions: write --shard auto/N with N = spec.completions")
}

// parallelIndex reads GNU parallel's PARALLEL_SEQ, the job's sequence
// number from 1 (kept when parallel retries the job). PARALLEL_JOBSLOT
// does not fit: slots are reused by later jobs, so they are not shards.
func parallelIndex(env func(string) string, n int) (int, int, error) {
	seq, err := envInt(env, "PARALLEL_SEQ")
	if err != nil {
		return 0, 0, err
	}
	return countedIndex(seq-1, n, "PARALLEL_SEQ", "GNU parallel does not tell a job how many jobs there are: write --shard auto/N with N the number of jobs")
}

// countedIndex checks an index from an engine that gives no count against
// the N written on the command line.
func countedIndex(k, n int, from, noCount string) (int, int, error) {
	if n == 0 {
		return 0, 0, errors.New(noCount)
	}
	if k < 0 || k >= n {
		return 0, 0, fmt.Errorf("%s makes this shard %d, outside 0 to %d for %d shards", from, k, n-1, n)
	}
	return k, n, nil
}
