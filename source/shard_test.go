package source

import (
	"fmt"
	"net/url"
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
			for p := range 100 {
				raw := fmt.Sprintf("https://host%d.example/page/%d", h, p)
				u, _ := url.Parse(raw)
				sizes[ShardOf(ShardKey(by, u, raw), n)]++
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
