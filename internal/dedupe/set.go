// Package dedupe implements --dedupe: each distinct URL is fetched once,
// and every later line with the same URL gets its own record, copied from
// the first one's and marked with duplicate_of.
//
// URLs are remembered by a 64-bit hash, never as strings, in a table of 12
// bytes a slot kept between 60% and 75% full: 16 to 20 bytes per distinct
// URL, 18 on average (180 MB for ten million). The table is split in 64
// parts that grow by a quarter each, at staggered sizes, so it grows in
// small steps rather than doubling all at once; large parts live outside
// the Go heap, where the garbage collector does not count them (a table of
// 180 MB on the heap would let the heap grow by another 180 MB of garbage
// before each collection). Results kept for duplicates to copy are bounded
// apart, by a byte budget (see Deduper).
package dedupe

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"strconv"
	"unsafe"

	"github.com/trawl-dev/trawl/internal/urlkey"
	"github.com/trawl-dev/trawl/record"
)

// maxIndex is the largest line index the table can hold (indexes are
// stored as 32-bit numbers plus one); later lines are never deduplicated.
const maxIndex = 1<<32 - 2

const (
	// shardBits selects a part of the table by a hash's top bits.
	shardBits = 6
	shards    = 1 << shardBits
	// slotBytes is one slot: the hash and the index.
	slotBytes = 8 + 4
	// minSlots is the smallest part; parts start between minSlots and
	// 5/4 of it, so that they do not all grow at the same moment.
	minSlots = 64
	// offHeapBytes is the size from which a part is mapped outside the Go
	// heap: smaller ones are not worth a system call.
	offHeapBytes = 64 << 10
)

// Set maps URL hashes to the index of the line that first had them. It is
// a hash table with linear probing in 64 parts; the zero value is ready to
// use. A Set is not safe for concurrent use, and one that grew large holds
// memory outside the Go heap until Free.
type Set struct {
	parts [shards]table
	n     int
}

// table is one part of a Set.
type table struct {
	keys []uint64 // hash; 0 marks an empty slot (a real 0 is stored as 1)
	vals []uint32 // index + 1
	n    int
	mem  []byte // the mapping keys and vals live in; nil on the Go heap
}

// FirstOrAdd returns the index stored for hash and true, or stores index
// for it and returns false.
func (s *Set) FirstOrAdd(hash uint64, index int64) (int64, bool) {
	if hash == 0 {
		hash = 1
	}
	part := hash >> (64 - shardBits)
	t := &s.parts[part]
	if (t.n+1)*4 > len(t.keys)*3 {
		t.grow(int(part))
	}
	size := uint64(len(t.keys))
	for i := slot(hash, size); ; i++ {
		if i == size {
			i = 0
		}
		switch t.keys[i] {
		case hash:
			return int64(t.vals[i]) - 1, true
		case 0:
			if index < 0 || index > maxIndex {
				return 0, false
			}
			t.keys[i], t.vals[i] = hash, uint32(index+1)
			t.n++
			s.n++
			return 0, false
		}
	}
}

// slot is where hash's probe starts in a part of size slots: the hash
// bits below the part's, scaled to the size (which need not be a power of
// two).
func slot(hash, size uint64) uint64 {
	hi, _ := bits.Mul64(hash<<shardBits, size)
	return hi
}

// Len returns the number of distinct hashes stored.
func (s *Set) Len() int { return s.n }

// Bytes returns the memory the table holds, on the Go heap or off it.
func (s *Set) Bytes() int {
	n := 0
	for i := range s.parts {
		n += len(s.parts[i].keys) * slotBytes
	}
	return n
}

// Free releases the table's memory; the Set is then empty, and usable.
func (s *Set) Free() {
	for i := range s.parts {
		s.parts[i].release()
		s.parts[i] = table{}
	}
	s.n = 0
}

// grow makes room in part number part: a quarter more slots, its first
// size staggered by part. Growing in quarters keeps the table 60–75% full;
// doubling would leave it 37–75% full, and doubling every part at about the
// same count (hashes spread evenly) would double the whole table at once.
func (t *table) grow(part int) {
	size := len(t.keys) + len(t.keys)/4
	if size == 0 {
		size = minSlots + part*minSlots/(4*shards)
	}
	next := newTable(size)
	for j, k := range t.keys {
		if k == 0 {
			continue
		}
		i := slot(k, uint64(size))
		for next.keys[i] != 0 {
			if i++; i == uint64(size) {
				i = 0
			}
		}
		next.keys[i], next.vals[i] = k, t.vals[j]
	}
	next.n = t.n
	t.release()
	*t = next
}

// newTable returns an empty part of size slots, outside the Go heap when
// it is large and the system can map memory.
func newTable(size int) table {
	if size*slotBytes >= offHeapBytes {
		if mem := mapMemory(size * slotBytes); mem != nil {
			// Mappings are page-aligned and zeroed: keys first, then vals.
			return table{
				keys: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), size),
				vals: unsafe.Slice((*uint32)(unsafe.Pointer(&mem[8*size])), size),
				mem:  mem,
			}
		}
	}
	return table{keys: make([]uint64, size), vals: make([]uint32, size)}
}

func (t *table) release() {
	if t.mem != nil {
		unmapMemory(t.mem)
	}
	t.keys, t.vals, t.mem = nil, nil, nil
}

// hasher hashes requests with a seed chosen per run.
type hasher struct{ seed maphash.Seed }

// hash identifies a record's request: its URL as urlkey.Normalize spells
// it, and the body and headers its row made (--data-template, a templated
// -H), so that two rows asking different things of one URL are both sent.
// The method is the run's, the same for every record.
func (h hasher) hash(r *record.Record) uint64 {
	key := urlkey.Normalize(r.Target)
	body, header := r.ReqBody(), r.ReqHeader()
	if body == nil && header == nil {
		return maphash.String(h.seed, key)
	}
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteString(key)
	mh.WriteByte(0)
	mh.WriteString(strconv.Itoa(len(body)))
	mh.WriteByte(0)
	mh.Write(body)
	names := make([]string, 0, len(header))
	for name := range header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range header[name] {
			mh.WriteByte(0)
			mh.WriteString(name)
			mh.WriteByte(':')
			mh.WriteString(v)
		}
	}
	return mh.Sum64()
}
