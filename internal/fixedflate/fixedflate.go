// Package fixedflate makes gzip members of small inputs fast. A member
// holds two parts: one kept as it is, in stored blocks (RFC 1951 3.2.4),
// for what rarely compresses (a WARC record's header, full of IDs and
// digests); and one compressed where it compresses, with the fixed Huffman
// codes and a greedy LZ77 match finder, switching to stored blocks once
// nothing has repeated for a while (random or already-compressed data,
// which on the web, where bodies mostly come gzip- or brotli-encoded, is
// the usual case). A general encoder builds Huffman tables fitted to each
// input, which for a record of a few KiB costs several times the matching
// itself; the fixed codes cost nothing to build, and on HTML, where most
// of the gain comes from repeats, lose a little ratio. The WARC writer
// uses it for its many small records, and a general encoder for large
// bodies.
package fixedflate

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// Encoder holds the match finder's table; reusing one spares its
// allocation. The zero value is ready; it is not safe for concurrent use.
type Encoder struct {
	// table holds, for each hash of 4 bytes, where they were last seen,
	// as base plus the position: entries below the current base are from
	// earlier inputs, so the table needs no clearing between inputs.
	table [1 << hashBits]int32
	base  int32
}

const (
	// storeAfter is how many bytes in a row without a match make the
	// rest of the input go into stored blocks.
	storeAfter  = 256
	hashBits    = 14
	minHashBits = 8
	minMatch    = 4 // shorter matches are not looked for (DEFLATE allows 3)
	maxMatch    = 258
	maxWindow   = 32 << 10
)

// gzipHeader is a gzip member's header: deflate, no flags, no time, no
// extra fields, OS unknown.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// AppendGzip appends to dst a complete gzip member (RFC 1952) holding
// store, kept as it is, then compress, compressed where it compresses.
func (e *Encoder) AppendGzip(dst, store, compress []byte) []byte {
	dst = append(dst, gzipHeader[:]...)
	w := bitWriter{out: dst}
	if len(store) > 0 {
		w.stored(store, len(compress) == 0)
	}
	if len(compress) > 0 || len(store) == 0 {
		w.out = e.AppendDeflate(w.out, compress)
	}
	dst = binary.LittleEndian.AppendUint32(w.out, crc32.Update(crc32.ChecksumIEEE(store), crc32.IEEETable, compress))
	return binary.LittleEndian.AppendUint32(dst, uint32(len(store)+len(compress)))
}

// AppendDeflate appends to dst a complete DEFLATE stream holding src,
// compressed where it compresses.
func (e *Encoder) AppendDeflate(dst, src []byte) []byte {
	if int64(e.base)+int64(len(src))+maxWindow+1 >= 1<<31-1 || e.base == 0 {
		clear(e.table[:])
		e.base = 1
	}
	base := int(e.base)
	e.base += int32(len(src)) + maxWindow + 1
	// A small input uses a small part of the table, which then stays in
	// the cache: at most one entry for every 2 bytes.
	bits := uint32(minHashBits)
	for bits < hashBits && 1<<(bits+1) <= len(src) {
		bits++
	}
	table := e.table[:1<<bits]
	shift := 32 - bits
	w := bitWriter{out: dst}
	if len(src) > storeAfter+minMatch {
		w.write(0, 1) // not final: stored blocks may follow
	} else {
		w.write(1, 1) // BFINAL
	}
	w.write(1, 2) // BTYPE 01: fixed Huffman codes
	lit := 0      // start of the literals not yet written
	misses := 0
	for i := 0; i+minMatch <= len(src); {
		if i-lit > storeAfter {
			// Nothing repeated for a while: the rest is most likely
			// random or compressed already (an image, a gzip-encoded
			// body), which fixed codes would only make larger. It goes
			// into stored blocks, at the cost of a copy.
			w.literals(src[lit:i])
			w.write(uint64(litCodes[256].code), uint(litCodes[256].len))
			return w.stored(src[i:], true)
		}
		v := binary.LittleEndian.Uint32(src[i:])
		h := (v * hashMul) >> shift
		cand := int(table[h]) - base
		table[h] = int32(base + i)
		if cand < 0 || i-cand > maxWindow || binary.LittleEndian.Uint32(src[cand:]) != v {
			// Where nothing repeats (random or compressed data), look
			// less and less often: a step of one more byte every 32 misses.
			misses++
			i += 1 + misses>>5
			continue
		}
		misses = 0
		n := minMatch
		for limit := min(maxMatch, len(src)-i); n < limit && src[cand+n] == src[i+n]; n++ {
		}
		w.literals(src[lit:i])
		w.match(n, i-cand)
		// The match's end is remembered too, so that the next repeat of
		// what follows it is found.
		if end := i + n - 2; end+minMatch <= len(src) {
			table[(binary.LittleEndian.Uint32(src[end:])*hashMul)>>shift] = int32(base + end)
		}
		i += n
		lit = i
	}
	w.literals(src[lit:])
	w.write(uint64(litCodes[256].code), uint(litCodes[256].len)) // end of block
	if len(src) > storeAfter+minMatch {
		return w.stored(nil, true) // the final block the first one promised
	}
	return w.flush()
}

// stored writes src in stored blocks, the last one final when final is
// set, and returns the stream so far.
func (w *bitWriter) stored(src []byte, final bool) []byte {
	for {
		n := min(len(src), 65535)
		last := uint64(0)
		if n == len(src) && final {
			last = 1
		}
		w.write(last, 1)
		w.write(0, 2) // BTYPE 00: stored
		w.flush()     // to the byte boundary
		w.out = binary.LittleEndian.AppendUint16(w.out, uint16(n))
		w.out = binary.LittleEndian.AppendUint16(w.out, ^uint16(n))
		w.out = append(w.out, src[:n]...)
		src = src[n:]
		if len(src) == 0 {
			return w.out
		}
	}
}

// hashMul spreads 4 bytes over the hash's bits (Knuth's multiplicative
// hashing); the top bits are the hash.
const hashMul = 2654435761

// code is a Huffman code, its bits reversed for the LSB-first stream.
type code struct {
	code uint16
	len  uint8
}

// litCodes are the fixed literal/length codes (RFC 1951 3.2.6).
var litCodes = func() (t [288]code) {
	for v := range 288 {
		var c, n int
		switch {
		case v < 144:
			c, n = 0x30+v, 8
		case v < 256:
			c, n = 0x190+v-144, 9
		case v < 280:
			c, n = v-256, 7
		default:
			c, n = 0xc0+v-280, 8
		}
		t[v] = code{uint16(bits.Reverse16(uint16(c)) >> (16 - n)), uint8(n)}
	}
	return t
}()

// lengthBase and lengthExtra describe length codes 257..285.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
)

// lengthCode maps a match length (3..258) to its code's index in
// lengthBase.
var lengthCode = func() (t [maxMatch + 1]uint8) {
	for c := range 29 {
		hi := maxMatch
		if c < 28 {
			hi = int(lengthBase[c+1]) - 1
		}
		for n := int(lengthBase[c]); n <= hi; n++ {
			t[n] = uint8(c)
		}
	}
	t[maxMatch] = 28 // 258 has a code of its own
	return t
}()

// bitWriter writes DEFLATE's LSB-first bit stream.
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

// write adds the n (at most 16) low bits of v.
func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	if w.nbits >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nbits -= 32
	}
}

// literals writes a run of literals, ASCII ones (8-bit codes) four at a
// time.
func (w *bitWriter) literals(run []byte) {
	for len(run) >= 4 {
		if binary.LittleEndian.Uint32(run)&0x80808080 != 0 {
			w.literal(run[0])
			run = run[1:]
			continue
		}
		v := uint64(litCodes[run[0]].code) | uint64(litCodes[run[1]].code)<<8 |
			uint64(litCodes[run[2]].code)<<16 | uint64(litCodes[run[3]].code)<<24
		w.acc |= v << w.nbits // nbits < 32 before, so the 64 bits hold it
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		run = run[4:]
	}
	for _, c := range run {
		w.literal(c)
	}
}

func (w *bitWriter) literal(c byte) {
	lc := litCodes[c]
	w.write(uint64(lc.code), uint(lc.len))
}

// match writes a length and a distance (1..32768).
func (w *bitWriter) match(n, dist int) {
	c := lengthCode[n]
	lc := litCodes[257+int(c)]
	w.write(uint64(lc.code), uint(lc.len))
	if e := lengthExtra[c]; e > 0 {
		w.write(uint64(n-int(lengthBase[c])), uint(e))
	}
	// Distance codes: 1..4 are 0..3; above, each pair of codes covers a
	// power of two, with extra bits for the rest.
	d := dist - 1
	var dc, extra int
	if d < 4 {
		dc = d
	} else {
		nb := bits.Len(uint(d)) // at least 3
		extra = nb - 2
		dc = 2*(nb-1) + (d>>extra)&1
	}
	w.write(uint64(bits.Reverse8(uint8(dc))>>3), 5)
	if extra > 0 {
		w.write(uint64(d&(1<<extra-1)), uint(extra))
	}
}

func (w *bitWriter) flush() []byte {
	for w.nbits > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits = max(8, w.nbits) - 8
	}
	w.acc, w.nbits = 0, 0
	return w.out
}
