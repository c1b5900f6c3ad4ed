// Package dedupe implements --dedupe: each distinct URL is fetched once,
// and every later line with the same URL gets its own record, copied from
// the first one's and marked with duplicate_of.
//
// URLs are remembered by a 64-bit hash, never as strings: the table costs
// 12 bytes per slot and is kept at most three quarters full, which comes to
// about 200 MB for ten million distinct URLs.
package dedupe

import (
	"hash/maphash"
	"net/url"

	"github.com/trawl-dev/trawl/internal/urlkey"
)

// maxIndex is the largest line index the table can hold (indexes are
// stored as 32-bit numbers plus one); later lines are never deduplicated.
const maxIndex = 1<<32 - 2

// Set maps URL hashes to the index of the line that first had them. It is
// an open-addressing hash table with linear probing; the zero value is
// ready to use.
type Set struct {
	keys []uint64 // hash; 0 marks an empty slot (a real 0 is stored as 1)
	vals []uint32 // index + 1
	n    int
}

// FirstOrAdd returns the index stored for hash and true, or stores index
// for it and returns false.
func (s *Set) FirstOrAdd(hash uint64, index int64) (int64, bool) {
	if hash == 0 {
		hash = 1
	}
	if len(s.keys) == 0 || (s.n+1)*4 > len(s.keys)*3 {
		s.grow()
	}
	mask := uint64(len(s.keys) - 1)
	for i := hash & mask; ; i = (i + 1) & mask {
		switch s.keys[i] {
		case hash:
			return int64(s.vals[i]) - 1, true
		case 0:
			if index < 0 || index > maxIndex {
				return 0, false
			}
			s.keys[i], s.vals[i] = hash, uint32(index+1)
			s.n++
			return 0, false
		}
	}
}

// Len returns the number of distinct hashes stored.
func (s *Set) Len() int { return s.n }

// Bytes returns the memory the table holds.
func (s *Set) Bytes() int { return len(s.keys)*8 + len(s.vals)*4 }

func (s *Set) grow() {
	size := max(1024, 2*len(s.keys))
	old, oldVals := s.keys, s.vals
	s.keys, s.vals = make([]uint64, size), make([]uint32, size)
	mask := uint64(size - 1)
	for j, k := range old {
		if k == 0 {
			continue
		}
		i := k & mask
		for s.keys[i] != 0 {
			i = (i + 1) & mask
		}
		s.keys[i], s.vals[i] = k, oldVals[j]
	}
}

// hasher hashes normalized URLs with a seed chosen per run.
type hasher struct{ seed maphash.Seed }

func (h hasher) hash(u *url.URL) uint64 { return maphash.String(h.seed, urlkey.Normalize(u)) }
