package weburl

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// parseHost runs the standard's host parser for an http(s) URL and returns
// the serialized host. s is not empty.
func parseHost(s string) (string, error) {
	if s[0] == '[' {
		if s[len(s)-1] != ']' {
			return "", fmt.Errorf("invalid IPv6 address %q: no closing ]", s)
		}
		addr, err := parseIPv6(s[1 : len(s)-1])
		if err != nil {
			return "", fmt.Errorf("invalid IPv6 address %q: %w", s, err)
		}
		return "[" + addr.String() + "]", nil
	}
	domain := s
	if strings.IndexByte(s, '%') >= 0 {
		domain = unescape(s)
	}
	if !utf8.ValidString(domain) {
		return "", fmt.Errorf("invalid host %q: not UTF-8 once percent-decoded", s)
	}
	ascii, err := domainToASCII(domain)
	if err != nil {
		return "", err
	}
	if endsInNumber(ascii) {
		return parseIPv4(ascii)
	}
	return ascii, nil
}

// domainToASCII is the standard's domain parser, not strict: an ASCII
// domain is only lowercased, whatever IDNA would say of it (web pages rely
// on names such as "a_b.example" and "xn--invalid"), and any other goes
// through UTS #46 ToASCII, so "Bücher.example" becomes
// "xn--bcher-kva.example".
func domainToASCII(domain string) (string, error) {
	result := domain
	if isASCII(domain) {
		result = lowerASCII(domain)
	} else {
		// The profile is built per call, rather than kept in a package
		// variable, for the rare host that is not ASCII; it is cheap.
		p := idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false),
			idna.CheckHyphens(false), idna.CheckJoiners(true), idna.StrictDomainName(false), idna.VerifyDNSLength(false))
		var err error
		if result, err = p.ToASCII(domain); err != nil {
			return "", fmt.Errorf("invalid host %q: %w", domain, err)
		}
	}
	if result == "" {
		return "", fmt.Errorf("invalid host %q: empty once IDNA is applied", domain)
	}
	for i := 0; i < len(result); i++ {
		if forbiddenInDomain(result[i]) {
			return "", fmt.Errorf("invalid host %q: %q is not allowed in a host name", domain, result[i:i+1])
		}
	}
	return result, nil
}

// endsInNumber reports whether the last label of a domain (a trailing dot
// aside) is a number — decimal digits, or 0x and hex digits — which makes
// the whole host an IPv4 address or an error: "127.1" and "0x7f.1" are
// addresses, "1.example" is a name, and "example.1" is invalid.
func endsInNumber(s string) bool {
	s = strings.TrimSuffix(s, ".")
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last == "" {
		return false
	}
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		last = last[2:]
		for i := 0; i < len(last); i++ {
			if !isHex(last[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if !isDigit(last[i]) {
			return false
		}
	}
	return true
}

// maxIPv4 is more than any IPv4 address; numbers are capped there while
// parsing, so that no part can overflow.
const maxIPv4 = 1 << 32

// parseIPv4 parses a host in any of the forms inet_aton accepts — one to
// four parts, each decimal, octal (a leading 0) or hex (0x), the last
// filling the bytes the others leave — and returns it in dotted decimal.
func parseIPv4(host string) (string, error) {
	// The usual spelling, four decimal parts without leading zeros, is
	// already canonical: no parts to split, no string to build.
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return host, nil
	}
	s := strings.TrimSuffix(host, ".")
	if s == "" {
		s = host
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return "", fmt.Errorf("invalid IPv4 address %q: more than 4 parts", host)
	}
	var addr uint64
	for i, part := range parts {
		n, err := parseIPv4Number(part)
		if err != nil {
			return "", fmt.Errorf("invalid IPv4 address %q: %w", host, err)
		}
		if i < len(parts)-1 {
			if n > 255 {
				return "", fmt.Errorf("invalid IPv4 address %q: part %q is greater than 255", host, part)
			}
			addr |= n << (8 * (3 - i))
			continue
		}
		// The last part fills all the bytes the others left.
		limit := uint64(1) << (8 * (5 - len(parts)))
		if n >= limit {
			return "", fmt.Errorf("invalid IPv4 address %q: the last part, %q, is greater than %d", host, part, limit-1)
		}
		addr |= n
	}
	return netip.AddrFrom4([4]byte{byte(addr >> 24), byte(addr >> 16), byte(addr >> 8), byte(addr)}).String(), nil
}

// parseIPv4Number parses one part of an IPv4 address, capped at maxIPv4.
func parseIPv4Number(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty part")
	}
	orig, base := s, uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := uint64(36)
		if c := s[i]; isDigit(c) {
			d = uint64(c - '0')
		} else if isHex(c) {
			d = uint64(unhex(c))
		}
		if d >= base {
			if base == 8 {
				return 0, fmt.Errorf("%q is not a number (a leading 0 makes it octal)", orig)
			}
			return 0, fmt.Errorf("%q is not a number", orig)
		}
		n = min(n*base+d, maxIPv4)
	}
	return n, nil
}

// ipv6 is an IPv6 address as its eight 16-bit pieces.
type ipv6 [8]uint16

// parseIPv6 is the standard's IPv6 parser; s is the text between the
// brackets. (Zone identifiers such as %eth0 are not part of URLs.)
func parseIPv6(s string) (ipv6, error) {
	var a ipv6
	piece, compress, i := 0, -1, 0
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0 // the end
	}
	if at(0) == ':' {
		if at(1) != ':' {
			return a, errors.New("starts with a single ':'")
		}
		i, piece, compress = 2, 1, 1
	}
	for i < len(s) {
		if piece == 8 {
			return a, errors.New("more than 8 pieces")
		}
		if s[i] == ':' {
			if compress >= 0 {
				return a, errors.New("more than one '::'")
			}
			i++
			piece++
			compress = piece
			continue
		}
		value, length := 0, 0
		for length < 4 && isHex(at(i)) {
			value = value<<4 | int(unhex(s[i]))
			i++
			length++
		}
		switch at(i) {
		case '.':
			// An IPv4 address in the last 32 bits: ::ffff:127.0.0.1.
			if length == 0 {
				return a, errors.New("an IPv4 part is empty")
			}
			i -= length
			if piece > 6 {
				return a, errors.New("no room for an IPv4 address")
			}
			seen := 0
			for i < len(s) {
				if seen > 0 {
					if s[i] != '.' || seen >= 4 {
						return a, errors.New("malformed IPv4 part")
					}
					i++
				}
				if !isDigit(at(i)) {
					return a, errors.New("malformed IPv4 part")
				}
				v := -1
				for isDigit(at(i)) {
					d := int(s[i] - '0')
					switch {
					case v < 0:
						v = d
					case v == 0:
						return a, errors.New("an IPv4 part has a leading 0")
					default:
						v = v*10 + d
					}
					if v > 255 {
						return a, errors.New("an IPv4 part is greater than 255")
					}
					i++
				}
				a[piece] = a[piece]<<8 | uint16(v)
				seen++
				if seen == 2 || seen == 4 {
					piece++
				}
			}
			if seen != 4 {
				return a, errors.New("the IPv4 address has fewer than 4 parts")
			}
			return a.compress(piece, compress)
		case ':':
			i++
			if i == len(s) {
				return a, errors.New("ends with a single ':'")
			}
		case 0:
			if i < len(s) {
				return a, fmt.Errorf("%q is not allowed", s[i:i+1])
			}
		default:
			return a, fmt.Errorf("%q is not allowed", s[i:i+1])
		}
		a[piece] = uint16(value)
		piece++
	}
	return a.compress(piece, compress)
}

// compress moves the pieces after a "::" to the end of the address.
func (a ipv6) compress(piece, compress int) (ipv6, error) {
	if compress < 0 {
		if piece != 8 {
			return a, errors.New("fewer than 8 pieces")
		}
		return a, nil
	}
	swaps := piece - compress
	for piece = 7; piece != 0 && swaps > 0; piece, swaps = piece-1, swaps-1 {
		a[piece], a[compress+swaps-1] = a[compress+swaps-1], a[piece]
	}
	return a, nil
}

// String serializes the address as the standard does: lowercase hex, the
// first longest run of two or more zero pieces written as "::".
func (a ipv6) String() string {
	start, size := -1, 1
	for i := 0; i < 8; {
		if a[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && a[j] == 0 {
			j++
		}
		if j-i > size {
			start, size = i, j-i
		}
		i = j
	}
	var b strings.Builder
	for i := 0; i < 8; i++ {
		if i == start {
			if i == 0 {
				b.WriteString("::")
			} else {
				b.WriteByte(':')
			}
			i += size - 1
			continue
		}
		b.WriteString(strconv.FormatUint(uint64(a[i]), 16))
		if i != 7 {
			b.WriteByte(':')
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// lowerASCII lowercases s without allocating when it is lowercase already,
// as nearly every host is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
