package weburl

// encodeSet is one of the standard's percent-encode sets. Every set holds
// the C0 controls and everything above '~' (so every byte of a non-ASCII
// character); the sets differ in the ASCII punctuation they add. Each is a
// pair of constant bitmaps over the ASCII bytes, 0-63 and 64-127.
type encodeSet uint8

const (
	fragmentSet     encodeSet = iota // the fragment percent-encode set
	specialQuerySet                  // the special-query percent-encode set (queries of http and https URLs)
	pathSet                          // the path percent-encode set
	userinfoSet                      // the userinfo percent-encode set
)

// bit returns the bit for an ASCII byte within its half of a bitmap.
func bit(c byte) uint64 { return 1 << (c % 64) }

const (
	c0Lo  = 1<<32 - 1 // the C0 controls, 0x00 to 0x1F
	c0Hi  = 1 << 63   // DEL, 0x7F, which is above '~'
	fragL = c0Lo | 1<<' ' | 1<<'"' | 1<<'<' | 1<<'>'
	fragH = c0Hi | 1<<('`'-64)
	// The query percent-encode set lacks '`', which the fragment set has.
	queryL   = c0Lo | 1<<' ' | 1<<'"' | 1<<'#' | 1<<'<' | 1<<'>'
	queryH   = c0Hi
	sQueryL  = queryL | 1<<'\''
	sQueryH  = queryH
	pathL    = queryL | 1<<'?'
	pathH    = queryH | 1<<('^'-64) | 1<<('`'-64) | 1<<('{'-64) | 1<<('}'-64)
	userL    = pathL | 1<<'/' | 1<<':' | 1<<';' | 1<<'='
	userH    = pathH | 1<<('@'-64) | 1<<('['-64) | 1<<('\\'-64) | 1<<(']'-64) | 1<<('|'-64)
	forbidDL = c0Lo | 1<<' ' | 1<<'#' | 1<<'%' | 1<<'/' | 1<<':' | 1<<'<' | 1<<'>' | 1<<'?'
	forbidDH = c0Hi | 1<<('@'-64) | 1<<('['-64) | 1<<('\\'-64) | 1<<(']'-64) | 1<<('^'-64) | 1<<('|'-64)
)

// has reports whether c is percent-encoded in the set.
func (s encodeSet) has(c byte) bool {
	if c >= 0x80 {
		return true
	}
	var lo, hi uint64
	switch s {
	case fragmentSet:
		lo, hi = fragL, fragH
	case specialQuerySet:
		lo, hi = sQueryL, sQueryH
	case pathSet:
		lo, hi = pathL, pathH
	default:
		lo, hi = userL, userH
	}
	if c < 64 {
		return lo&bit(c) != 0
	}
	return hi&bit(c) != 0
}

// forbiddenInDomain reports whether c is a forbidden domain code point.
func forbiddenInDomain(c byte) bool {
	if c >= 0x80 {
		return false // a domain is ASCII by the time it is checked
	}
	if c < 64 {
		return forbidDL&bit(c) != 0
	}
	return forbidDH&bit(c) != 0
}

// encode percent-encodes the bytes of s that are in set. A '%' is never
// encoded: the standard leaves "%41" and a stray '%' alike as they are.
func encode(s string, set encodeSet) string {
	for i := 0; i < len(s); i++ {
		if set.has(s[i]) {
			return string(appendEncoded(make([]byte, 0, len(s)+16), s, set))
		}
	}
	return s
}

// appendEncoded appends s to b, percent-encoding the bytes in set.
func appendEncoded(b []byte, s string, set encodeSet) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; set.has(c) {
			b = append(b, s[start:i]...)
			b = append(b, '%', hex[c>>4], hex[c&15])
			start = i + 1
		}
	}
	return append(b, s[start:]...)
}
