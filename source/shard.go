package source

import (
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
