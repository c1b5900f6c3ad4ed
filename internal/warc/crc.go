package warc

import "sync"

// CRC-32 (IEEE) arithmetic, for a gzip member whose parts were checksummed
// apart: the writer knows the CRC of a record's header and, from the
// worker that compressed it, of its body, and the member's trailer needs
// the CRC of both. A CRC is the remainder of a polynomial division, so the
// CRC of a‖b is that of a "shifted" by len(b) bytes plus that of b: the
// shift is a multiplication by x^(8·len(b)) modulo the polynomial.
//
// Polynomials are kept as the CRC keeps them, reflected: bit 31 holds the
// coefficient of x^0, bit 0 that of x^31.

// ieee is the CRC-32 polynomial, reflected (x^32 is implied).
const ieee = 0xedb88320

// mulMod returns a·b modulo the polynomial.
func mulMod(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0 && a != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			a &^= m
		}
		// b·x: one degree up is one bit down; an x^32 term is reduced.
		if b&1 != 0 {
			b = b>>1 ^ ieee
		} else {
			b >>= 1
		}
	}
	return p
}

// pow2 holds x^(2^k) modulo the polynomial, for k up to 63.
var pow2 = sync.OnceValue(func() (t [64]uint32) {
	t[0] = 1 << 30 // x^1
	for k := 1; k < len(t); k++ {
		t[k] = mulMod(t[k-1], t[k-1])
	}
	return t
})

// CombineCRC returns the CRC-32 (IEEE) of a‖b from the CRC of a, the CRC
// of b and the length of b.
func CombineCRC(crcA, crcB uint32, lenB int64) uint32 {
	// x^(8·lenB), from the binary digits of 8·lenB.
	shift := uint32(1) << 31 // x^0
	t := pow2()
	for k, n := 3, uint64(lenB); n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			shift = mulMod(t[k], shift)
		}
	}
	return mulMod(shift, crcA) ^ crcB
}
