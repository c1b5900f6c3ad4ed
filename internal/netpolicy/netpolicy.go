// Package netpolicy decides which addresses and hosts trawl may talk to:
// which addresses are outside the public internet (private, loopback and
// link-local ones, where cloud metadata services live, and every other
// range the IANA special-purpose registries keep from global reach), and
// host allow and deny patterns. Package fetch applies them where it dials
// and to redirects from the public internet into a private network.
package netpolicy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// rule is what the classifier makes of the addresses of a range.
type rule uint8

const (
	// notPublic ranges are never the public internet.
	notPublic rule = iota
	// public ranges are the public internet.
	public
	// lastIPv4 ranges are IPv6 spellings of the IPv4 address in their last
	// 32 bits, and are judged as that address.
	lastIPv4
	// sixToFour is 6to4 (RFC 3056, section 2): the IPv4 address of the
	// tunnel endpoint is in bits 16 to 48.
	sixToFour
	// teredo is Teredo (RFC 4380, section 4): the server's IPv4 address is
	// in bits 32 to 64, the client's in the last 32 bits, every bit
	// inverted. Either one being private makes the address private.
	teredo
)

// entry is one range of the classifier's table, as the registry names it.
type entry struct {
	prefix string
	name   string
	rfc    string
	rule   rule
}

// table is trawl's view of the address space. It is derived from the IANA
// IPv4 Special-Purpose Address Registry
// (https://www.iana.org/assignments/iana-ipv4-special-registry/, last
// updated 2020-09-04) and the IANA IPv6 Special-Purpose Address Registry
// (https://www.iana.org/assignments/iana-ipv6-special-registry/, last
// updated 2025-10-09), the latest versions found, checked against copies
// of both taken on 2026-07-18; RFC 6890 set their format. Update it from
// new versions of both, entry by entry, with a row for each new entry in
// the test.
//
// An address is judged by the most specific entry that holds it: the
// anycast address 192.0.0.9/32 is public though 192.0.0.0/24 around it is
// not. An IPv4 address that no entry holds is public.
//
// Each entry follows the registry's "Globally Reachable" column: True is
// public; False, or blank (an allocation since terminated), is not. N/A
// (Teredo and 6to4) means it depends on the IPv4 address inside, and trawl
// judges those addresses by it: a 6to4 or Teredo address that carries
// only public IPv4 addresses names a tunnel endpoint on the public
// internet and is as public as that endpoint, while one that carries a
// private address is not (a host with a 6to4 interface sends packets for
// 2002:7f00:1::1 to 127.0.0.1). Exceptions to the column, and entries the
// special-purpose registries do not have, say why where they appear.
func table() []entry {
	return []entry{
		// The IPv4 registry.
		{"0.0.0.0/8", `"This network"`, "RFC 791, section 3.2", notPublic},
		{"0.0.0.0/32", `"This host on this network"`, "RFC 1122, section 3.2.1.3", notPublic},
		{"10.0.0.0/8", "Private-Use", "RFC 1918", notPublic},
		{"100.64.0.0/10", "Shared Address Space", "RFC 6598", notPublic},
		{"127.0.0.0/8", "Loopback", "RFC 1122, section 3.2.1.3", notPublic},
		{"169.254.0.0/16", "Link Local", "RFC 3927", notPublic}, // where cloud metadata services answer
		{"172.16.0.0/12", "Private-Use", "RFC 1918", notPublic},
		{"192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890, section 2.1", notPublic},
		{"192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", notPublic},
		{"192.0.0.8/32", "IPv4 dummy address", "RFC 7600", notPublic},
		{"192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", public},
		{"192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", public},
		{"192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 section 2.2", notPublic},
		{"192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 section 2.2", notPublic},
		{"192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", notPublic},
		{"192.31.196.0/24", "AS112-v4", "RFC 7535", public},
		{"192.52.193.0/24", "AMT", "RFC 7450", public},
		{"192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", notPublic},
		{"192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", notPublic},
		{"192.168.0.0/16", "Private-Use", "RFC 1918", notPublic},
		{"192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", public},
		{"198.18.0.0/15", "Benchmarking", "RFC 2544", notPublic},
		{"198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", notPublic},
		{"203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", notPublic},
		{"240.0.0.0/4", "Reserved", "RFC 1112, section 4", notPublic},
		{"255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 section 7", notPublic},
		// Not in the registry, which leaves multicast to its own.
		{"224.0.0.0/4", "Multicast", "RFC 5771", notPublic},

		// The IPv6 registry.
		{"::1/128", "Loopback Address", "RFC 4291", notPublic},
		{"::/128", "Unspecified Address", "RFC 4291", notPublic},
		// Not globally reachable as an IPv6 destination, but Go dials
		// ::ffff:a.b.c.d as the IPv4 address a.b.c.d, so that address is
		// what it reaches: ::ffff:8.8.8.8 is public, ::ffff:127.0.0.1 not.
		{"::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", lastIPv4},
		// Globally reachable, but a NAT64 translator passes the packets on
		// to the IPv4 address inside, so 64:ff9b::a9fe:a9fe is the cloud
		// metadata address as the translator sees it.
		{"64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", lastIPv4},
		{"64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", notPublic},
		{"100::/64", "Discard-Only Address Block", "RFC 6666", notPublic},
		{"100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", notPublic},
		{"2001::/23", "IETF Protocol Assignments", "RFC 2928", notPublic},
		{"2001::/32", "TEREDO", "RFC 4380, RFC 8190", teredo},
		{"2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", public},
		{"2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", public},
		{"2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", public},
		{"2001:2::/48", "Benchmarking", "RFC 5180, RFC Errata 1752", notPublic},
		{"2001:3::/32", "AMT", "RFC 7450", public},
		{"2001:4:112::/48", "AS112-v6", "RFC 7535", public},
		{"2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", notPublic},
		{"2001:20::/28", "ORCHIDv2", "RFC 7343", public},
		{"2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", public},
		{"2001:db8::/32", "Documentation", "RFC 3849", notPublic},
		{"2002::/16", "6to4", "RFC 3056", sixToFour},
		{"2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", public},
		{"3fff::/20", "Documentation", "RFC 9637", notPublic},
		{"5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", notPublic},
		{"fc00::/7", "Unique-Local", "RFC 4193, RFC 8190", notPublic},
		{"fe80::/10", "Link-Local Unicast", "RFC 4291", notPublic},
		// Not in the registry, which leaves multicast to its own.
		{"ff00::/8", "Multicast", "RFC 4291, section 2.7", notPublic},
		// Not in the registry: older IPv6 spellings of IPv4 addresses,
		// judged as the address they spell, so that none is a way around
		// the policy. (::/128 and ::1/128 above are more specific.)
		{"::/96", "IPv4-compatible Address (deprecated)", "RFC 4291, section 2.5.5.1", lastIPv4},
		{"::ffff:0:0:0/96", "IPv4-translated Address", "RFC 2765, section 2.1", lastIPv4},
		// Not in the registry: the IANA IPv6 Address Space registry assigns
		// only 2000::/3 to global unicast and keeps the rest (apart from
		// the entries above) reserved by the IETF, so no public host lives
		// there; that includes fec0::/10, the deprecated site-local range.
		{"2000::/3", "Global Unicast", "RFC 3587, IANA IPv6 Address Space", public},
		{"::/0", "Reserved by IETF", "IANA IPv6 Address Space", notPublic},
	}
}

// span is a range of the table, parsed.
type span struct {
	prefix netip.Prefix
	rule   rule
}

// Classifier tells private addresses from public ones.
type Classifier struct {
	// spans are ordered most specific first, so that the first one
	// holding an address decides.
	spans []span
}

func newClassifier(spans []span) *Classifier {
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
	return &Classifier{spans: spans}
}

// NewClassifier returns the standard classifier, whose ranges are those of
// the IANA special-purpose address registries (see table).
func NewClassifier() *Classifier {
	t := table()
	spans := make([]span, len(t))
	for i, e := range t {
		spans[i] = span{netip.MustParsePrefix(e.prefix), e.rule}
	}
	return newClassifier(spans)
}

// NewClassifierWith returns a classifier for which only the given ranges
// are private; tests use it to play a public host on a loopback address.
// IPv6 spellings of IPv4 addresses, 6to4 and Teredo included, are still
// judged by the IPv4 address inside.
func NewClassifierWith(private []netip.Prefix) *Classifier {
	var spans []span
	for _, p := range private {
		spans = append(spans, span{p.Masked(), notPublic})
	}
	for _, e := range table() {
		if e.rule != public && e.rule != notPublic {
			spans = append(spans, span{netip.MustParsePrefix(e.prefix), e.rule})
		}
	}
	return newClassifier(spans)
}

// Private reports whether addr is outside the public internet. IPv6 forms
// that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-translated
// ::ffff:0:a.b.c.d, NAT64 64:ff9b::a.b.c.d, IPv4-compatible ::a.b.c.d,
// 6to4 and Teredo) are judged by that IPv4 address, so none of them is a
// way around the policy. An invalid address is private: what trawl cannot
// read, it does not connect to.
func (c *Classifier) Private(addr netip.Addr) bool {
	if !addr.IsValid() {
		return true
	}
	addr = addr.WithZone("") // netip.Prefix.Contains holds no zoned address
	b := addr.As16()
	switch c.rule(addr) {
	case public:
		return false
	case lastIPv4:
		return c.private4([4]byte(b[12:16]))
	case sixToFour:
		return c.private4([4]byte(b[2:6]))
	case teredo:
		client := [4]byte(b[12:16])
		for i := range client {
			client[i] ^= 0xff
		}
		return c.private4([4]byte(b[4:8])) || c.private4(client)
	}
	return true
}

// private4 judges an IPv4 address found inside an IPv6 one. IPv4 ranges
// carry no further address, so anything but public is private.
func (c *Classifier) private4(v4 [4]byte) bool {
	return c.rule(netip.AddrFrom4(v4)) != public
}

// rule returns the rule of the most specific range holding a.
func (c *Classifier) rule(a netip.Addr) rule {
	for _, s := range c.spans {
		if s.prefix.Contains(a) {
			return s.rule
		}
	}
	return public
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
