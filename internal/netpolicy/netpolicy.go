// Package netpolicy decides which addresses and hosts trawl may talk to:
// private, loopback and link-local addresses (where cloud metadata
// services live), host allow and deny patterns, and redirects from the
// public internet into a private network.
package netpolicy

import (
	"fmt"
	"net/netip"
	"strings"
)

// privatePrefixes are the ranges that are not the public internet.
func privatePrefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network", including the unspecified address
		"10.0.0.0/8",     // RFC 1918
		"100.64.0.0/10",  // CGNAT (RFC 6598)
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, where cloud metadata services answer
		"172.16.0.0/12",  // RFC 1918
		"192.0.0.0/24",   // IETF protocol assignments
		"192.168.0.0/16", // RFC 1918
		"198.18.0.0/15",  // benchmarking
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, and the broadcast address
		"::/128",         // unspecified
		"::1/128",        // loopback
		"fc00::/7",       // unique local
		"fe80::/10",      // link-local
		"ff00::/8",       // multicast
		"100::/64",       // discard
		"2001:db8::/32",  // documentation
		"64:ff9b:1::/48", // local-use IPv4/IPv6 translation
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// Classifier tells private addresses from public ones.
type Classifier struct {
	prefixes []netip.Prefix
	custom   bool // only prefixes count, not the unicast rule
}

// NewClassifier returns the standard classifier.
func NewClassifier() *Classifier { return &Classifier{prefixes: privatePrefixes()} }

// NewClassifierWith returns a classifier for which only the given ranges
// are private; tests use it to play a public host on a loopback address.
func NewClassifierWith(private []netip.Prefix) *Classifier {
	return &Classifier{prefixes: private, custom: true}
}

// Private reports whether addr is outside the public internet. IPv6 forms
// that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-translated
// ::ffff:0:a.b.c.d, NAT64 64:ff9b::a.b.c.d, IPv4-compatible ::a.b.c.d) are
// judged by that IPv4 address, so none of them is a way around the policy.
func (c *Classifier) Private(addr netip.Addr) bool {
	addr = addr.WithZone("")
	if v4, ok := embeddedIPv4(addr); ok {
		addr = v4
	}
	for _, p := range c.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return !c.custom && !addr.IsGlobalUnicast()
}

// embeddedIPv4 extracts the IPv4 address that some IPv6 forms carry.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	var v4 [4]byte
	copy(v4[:], b[12:])
	switch {
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && allZero(b[4:12]): // 64:ff9b::/96 (NAT64)
		return netip.AddrFrom4(v4), true
	case allZero(b[:8]) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0: // ::ffff:0:0:0/96
		return netip.AddrFrom4(v4), true
	case allZero(b[:12]) && !allZero(b[12:14]): // ::a.b.c.d (deprecated IPv4-compatible)
		return netip.AddrFrom4(v4), true
	}
	return netip.Addr{}, false
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// HostPattern matches host names: "example.com" matches exactly that host,
// "*.example.com" any host below it (not example.com itself).
type HostPattern struct {
	suffix string // for "*." patterns, including the leading dot
	exact  string
}

// ParseHostPattern parses an --allow-host or --deny-host value.
func ParseHostPattern(s string) (HostPattern, error) {
	p := strings.ToLower(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(p, "*."); ok {
		if rest == "" || strings.ContainsAny(rest, "*/:") {
			return HostPattern{}, fmt.Errorf("bad host pattern %q: want example.com or *.example.com", s)
		}
		return HostPattern{suffix: "." + rest}, nil
	}
	if p == "" || strings.ContainsAny(p, "*/") {
		return HostPattern{}, fmt.Errorf("bad host pattern %q: want example.com or *.example.com", s)
	}
	return HostPattern{exact: strings.Trim(p, "[]")}, nil
}

// Match reports whether host (a name or an IP, without port) matches.
func (p HostPattern) Match(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if p.suffix != "" {
		return strings.HasSuffix(host, p.suffix)
	}
	return host == p.exact
}

// Hosts is an allow list and a deny list of host patterns.
type Hosts struct {
	Allow []HostPattern
	Deny  []HostPattern
}

// Check returns an error saying why host may not be fetched, or nil. The
// deny list wins; a non-empty allow list admits only what it matches.
func (h Hosts) Check(host string) error {
	for _, p := range h.Deny {
		if p.Match(host) {
			return fmt.Errorf("host %s is denied (--deny-host)", host)
		}
	}
	if len(h.Allow) == 0 {
		return nil
	}
	for _, p := range h.Allow {
		if p.Match(host) {
			return nil
		}
	}
	return fmt.Errorf("host %s is not allowed (--allow-host)", host)
}
