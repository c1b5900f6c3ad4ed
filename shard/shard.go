// Package shard splits a URL list between N processes so that they can run
// on N machines and together do what one run would: --shard K/N keeps the
// lines whose hash modulo N is K. The hash is FNV-1a 64, a fixed public
// function, so every platform and every trawl version puts a line in the
// same shard, and a rerun or resume of one shard sees the same lines.
package shard

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"

	"github.com/trawl-dev/trawl/dedupe"
)

// By says what a shard is chosen from.
type By string

// The ways of sharding.
const (
	// ByHost keeps every URL of one host (its lowercased name, whatever
	// the port) in one shard, so per-host limits mean what they say.
	ByHost By = "host"
	// ByURL spreads URLs evenly whatever their hosts; the URL is
	// normalized as --dedupe does, so duplicates land together.
	ByURL By = "url"
)

// Spec is a parsed --shard K/N with its --shard-by.
type Spec struct {
	K, N int
	By   By
}

// Parse reads "K/N" (0 ≤ K < N) and the --shard-by value.
func Parse(s string, by string) (Spec, error) {
	k, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	ki, err1 := strconv.Atoi(strings.TrimSpace(k))
	ni, err2 := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil || ni < 1 || ki < 0 || ki >= ni {
		return Spec{}, fmt.Errorf("bad shard %q: want K/N with 0 <= K < N, like 0/8", s)
	}
	switch By(by) {
	case ByHost, ByURL:
	default:
		return Spec{}, fmt.Errorf("bad shard-by %q: want host or url", by)
	}
	return Spec{K: ki, N: ni, By: By(by)}, nil
}

// Key returns what a line is sharded by: its host or its normalized URL,
// or, for a line that is not a fetchable URL, the line itself (every line
// belongs to exactly one shard, invalid ones included).
func Key(by By, target *url.URL, line string) string {
	if target == nil {
		return line
	}
	if by == ByHost {
		return strings.ToLower(target.Hostname())
	}
	return dedupe.Normalize(target)
}

// Of returns the shard, 0..n-1, of a key.
func Of(key string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

// Keeps reports whether this shard handles the line.
func (s Spec) Keeps(target *url.URL, line string) bool {
	return Of(Key(s.By, target, line), s.N) == s.K
}

// String returns the spec as written on the command line.
func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }
