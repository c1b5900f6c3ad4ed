package netpolicy

import (
	"net/netip"
	"testing"
)

func TestPrivate(t *testing.T) {
	c := NewClassifier()
	for addr, want := range map[string]bool{
		"8.8.8.8": false, "1.1.1.1": false, "93.184.216.34": false,
		"2001:4860:4860::8888": false, "2606:4700::1111": false,
		"127.0.0.1": true, "127.255.255.254": true, "10.1.2.3": true, "172.16.0.1": true, "172.31.255.255": true,
		"172.32.0.1": false, "192.168.1.1": true, "100.64.0.1": true, "100.127.255.255": true, "100.128.0.1": false,
		"169.254.169.254": true, // cloud metadata
		"0.0.0.0":         true, "255.255.255.255": true, "224.0.0.1": true, "239.255.255.250": true,
		"::": true, "::1": true, "fe80::1": true, "fe80::1%eth0": true, "fc00::1": true, "fd12:3456::1": true, "ff02::1": true,
		"fec0::1":   true,                                                                                  // deprecated site-local, outside 2000::/3
		"192.0.2.1": true, "198.51.100.7": true, "203.0.113.9": true, "2001:db8::1": true, "3fff::1": true, // documentation
		"198.18.0.1": true, "2001:2::1": true, // benchmarking
		"240.0.0.1": true, "5f00::1": true, "100:0:0:1::1": true,
	} {
		if got := c.Private(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Private(%s) = %v, want %v", addr, got, want)
		}
	}
	if !c.Private(netip.Addr{}) {
		t.Error("the zero address judged public")
	}
}

// Expectations for the addresses of one range, written out here rather
// than read from the table so that a wrong entry fails the test.
const (
	none    = iota // no address there: the edge of the address space
	pub            // public
	priv           // private
	carried        // judged by the IPv4 address inside: see TestEmbeddedIPv4
)

// registryRows are every entry of the table: for each, what its first,
// middle and last addresses are, and what the addresses just below and
// just above it are (often in an enclosing entry).
type registryRow struct {
	prefix               string
	inside, below, above int
}

func registryRows() []registryRow {
	return []registryRow{
		// IPv4 special-purpose registry, and multicast.
		{"0.0.0.0/8", priv, none, pub},
		{"0.0.0.0/32", priv, none, priv},
		{"10.0.0.0/8", priv, pub, pub},
		{"100.64.0.0/10", priv, pub, pub},
		{"127.0.0.0/8", priv, pub, pub},
		{"169.254.0.0/16", priv, pub, pub},
		{"172.16.0.0/12", priv, pub, pub},
		{"192.0.0.0/24", priv, pub, pub},
		{"192.0.0.0/29", priv, pub, priv},
		{"192.0.0.8/32", priv, priv, pub},
		{"192.0.0.9/32", pub, priv, pub},
		{"192.0.0.10/32", pub, pub, priv},
		{"192.0.0.170/32", priv, priv, priv},
		{"192.0.0.171/32", priv, priv, priv},
		{"192.0.2.0/24", priv, pub, pub},
		{"192.31.196.0/24", pub, pub, pub},
		{"192.52.193.0/24", pub, pub, pub},
		{"192.88.99.0/24", priv, pub, pub},
		{"192.88.99.2/32", priv, priv, priv},
		{"192.168.0.0/16", priv, pub, pub},
		{"192.175.48.0/24", pub, pub, pub},
		{"198.18.0.0/15", priv, pub, pub},
		{"198.51.100.0/24", priv, pub, pub},
		{"203.0.113.0/24", priv, pub, pub},
		{"224.0.0.0/4", priv, pub, priv},
		{"240.0.0.0/4", priv, priv, none},
		{"255.255.255.255/32", priv, priv, none},
		// IPv6 special-purpose registry, multicast, the older IPv4 spellings
		// and the reserved space outside 2000::/3.
		{"::1/128", priv, priv, priv},
		{"::/128", priv, none, priv},
		{"::ffff:0:0/96", carried, priv, priv},
		{"64:ff9b::/96", carried, priv, priv},
		{"64:ff9b:1::/48", priv, priv, priv},
		{"100::/64", priv, priv, priv},
		{"100:0:0:1::/64", priv, priv, priv},
		{"2001::/23", priv, pub, pub},
		{"2001::/32", carried, pub, priv},
		{"2001:1::1/128", pub, priv, pub},
		{"2001:1::2/128", pub, pub, pub},
		{"2001:1::3/128", pub, pub, priv},
		{"2001:2::/48", priv, priv, priv},
		{"2001:3::/32", pub, priv, priv},
		{"2001:4:112::/48", pub, priv, priv},
		{"2001:10::/28", priv, priv, pub},
		{"2001:20::/28", pub, priv, pub},
		{"2001:30::/28", pub, pub, priv},
		{"2001:db8::/32", priv, pub, pub},
		{"2002::/16", carried, pub, pub},
		{"2620:4f:8000::/48", pub, pub, pub},
		{"3fff::/20", priv, pub, pub},
		{"5f00::/16", priv, priv, priv},
		{"fc00::/7", priv, priv, priv},
		{"fe80::/10", priv, priv, priv},
		{"ff00::/8", priv, priv, none},
		{"::/96", carried, none, priv},
		{"::ffff:0:0:0/96", carried, priv, priv},
		{"2000::/3", pub, priv, priv},
		{"::/0", priv, none, none},
	}
}

func TestEveryTableEntry(t *testing.T) {
	c := NewClassifier()
	check := func(p netip.Prefix, where string, a netip.Addr, want int) {
		t.Helper()
		if want == none || want == carried {
			return
		}
		if !a.IsValid() {
			t.Errorf("%s: no address %s it", p, where)
			return
		}
		if got := c.Private(a); got != (want == priv) {
			t.Errorf("%s: %s (%s it) judged private=%v", p, a, where, got)
		}
	}
	for _, row := range registryRows() {
		p := netip.MustParsePrefix(row.prefix)
		first, last := p.Addr(), lastAddr(p)
		for _, a := range []netip.Addr{first, midAddr(p), last} {
			check(p, "inside", a, row.inside)
		}
		check(p, "just below", first.Prev(), row.below)
		check(p, "just above", last.Next(), row.above)
	}
}

// TestTableIsComplete keeps the table and the rows above in step: an entry
// added without its expectations, or one dropped, fails here.
func TestTableIsComplete(t *testing.T) {
	rows := map[netip.Prefix]bool{}
	for _, row := range registryRows() {
		rows[netip.MustParsePrefix(row.prefix)] = true
	}
	seen := map[netip.Prefix]bool{}
	for _, e := range table() {
		p, err := netip.ParsePrefix(e.prefix)
		switch {
		case err != nil:
			t.Errorf("entry %q: %v", e.prefix, err)
			continue
		case p != p.Masked():
			t.Errorf("entry %s has host bits set", p)
		case seen[p]:
			t.Errorf("entry %s appears twice", p)
		case e.name == "" || e.rfc == "":
			t.Errorf("entry %s lacks its name or RFC", p)
		case p.Addr().Is4() && e.rule != public && e.rule != notPublic:
			t.Errorf("IPv4 entry %s says it carries an IPv4 address", p)
		case !rows[p]:
			t.Errorf("entry %s (%s) has no expectations in registryRows", p, e.name)
		}
		seen[p] = true
	}
	for p := range rows {
		if !seen[p] {
			t.Errorf("registryRows has %s, which the table lacks", p)
		}
	}
}

// TestEmbeddedIPv4 checks the IPv6 forms that carry an IPv4 address.
func TestEmbeddedIPv4(t *testing.T) {
	c := NewClassifier()
	for addr, want := range map[string]bool{
		// IPv4-mapped
		"::ffff:127.0.0.1": true, "::ffff:169.254.169.254": true, "::ffff:192.0.2.1": true,
		"::ffff:8.8.8.8": false, "::ffff:192.0.0.9": false,
		// IPv4-translated
		"::ffff:0:10.0.0.1": true, "::ffff:0:8.8.8.8": false,
		// NAT64, well-known prefix; the local-use prefix is never public
		"64:ff9b::a9fe:a9fe": true, "64:ff9b::c000:201": true, "64:ff9b::808:808": false,
		"64:ff9b:1::808:808": true,
		// IPv4-compatible
		"::127.0.0.1": true, "::169.254.169.254": true, "::8.8.8.8": false,
		// 6to4: the IPv4 address is bits 16-48, whatever follows
		"2002:7f00:1::1": true, "2002:a9fe:a9fe::": true, "2002:a00:1:ffff:ffff:ffff:ffff:ffff": true,
		"2002:c000:201::1": true, "2002:c058:6301::1": true, "2002::1": true,
		"2002:808:808::1": false, "2002:808:808:ffff:ffff:ffff:ffff:ffff": false,
		// Teredo: server in bits 32-64, client inverted in the last 32 bits.
		// The usual worked example: server 65.54.227.120, client 192.0.2.45.
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": true,
		"2001:0:4136:e378:8000:63bf:f7f7:f7f7": false, // client 8.8.8.8
		"2001:0:4136:e378:8000:63bf:80ff:fffe": true,  // client 127.0.0.1
		"2001:0:4136:e378:8000:63bf:5601:5601": true,  // client 169.254.169.254
		"2001:0:4136:e378::7f00:1":             false, // client 128.255.255.254: the bits are inverted
		"2001:0:a00:1:8000:63bf:f7f7:f7f7":     true,  // server 10.0.0.1
		"2001:0:7f00:1:8000:63bf:f7f7:f7f7":    true,  // server 127.0.0.1
	} {
		if got := c.Private(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Private(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCustomClassifier(t *testing.T) {
	c := NewClassifierWith([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": false, "10.0.0.1": false,
		"::ffff:127.0.0.1": true, "2002:7f00:1::": true, "2001:0:4136:e378:8000:63bf:80ff:fffe": true,
		"2002:7f00:2::": false,
	} {
		if got := c.Private(netip.MustParseAddr(addr)); got != want {
			t.Errorf("custom Private(%s) = %v, want %v", addr, got, want)
		}
	}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

// midAddr returns the last address of p's lower half.
func midAddr(p netip.Prefix) netip.Addr {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr()
	}
	return lastAddr(netip.PrefixFrom(p.Addr(), p.Bits()+1))
}

func setHostBits(b []byte, bits int) {
	for i := bits; i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
}

func TestHosts(t *testing.T) {
	mustPatterns := func(ss ...string) []HostPattern {
		var ps []HostPattern
		for _, s := range ss {
			p, err := ParseHostPattern(s)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		return ps
	}
	h := Hosts{Allow: mustPatterns("example.com", "*.example.org"), Deny: mustPatterns("bad.example.org")}
	for host, ok := range map[string]bool{
		"example.com": true, "EXAMPLE.com.": true, "www.example.com": false,
		"a.example.org": true, "a.b.example.org": true, "example.org": false, "bad.example.org": false,
		"evil.com": false, "example.com.evil.com": false,
	} {
		if got := h.Check(host) == nil; got != ok {
			t.Errorf("Check(%s) allowed = %v, want %v", host, got, ok)
		}
	}
	if (Hosts{}).Check("anything") != nil {
		t.Error("empty lists refused a host")
	}
	for _, bad := range []string{"", "*.", "*", "a*.b", "http://x", "*.a/b"} {
		if _, err := ParseHostPattern(bad); err == nil {
			t.Errorf("ParseHostPattern(%q) accepted", bad)
		}
	}
}

func FuzzPrivate(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "8.8.8.8", "fe80::1%eth0", "::",
		"192.0.2.1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:1::1"} {
		f.Add(s)
	}
	c := NewClassifier()
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		got := c.Private(a)
		if got != c.Private(a.WithZone("")) {
			t.Fatalf("%s judged differently without its zone", a)
		}
		// Every IPv6 spelling of an IPv4 address is judged like the address.
		if a.Is4In6() && got != c.Private(a.Unmap()) {
			t.Fatalf("%s and %s judged differently", a, a.Unmap())
		}
		if a.Is4() {
			for _, s := range ipv6Spellings(a.As4()) {
				if c.Private(s) != got {
					t.Fatalf("%s judged private=%v, but its spelling %s private=%v", a, got, s, !got)
				}
			}
		}
		if b := a.As16(); a.Is6() && !a.Is4In6() && b[0] == 0x20 && b[1] == 0x02 {
			if v4 := netip.AddrFrom4([4]byte(b[2:6])); got != c.Private(v4) {
				t.Fatalf("6to4 %s judged private=%v, its IPv4 address %s private=%v", a, got, v4, !got)
			}
		}
		if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() {
			if !got {
				t.Fatalf("%s judged public", a)
			}
		}
	})
}

// ipv6Spellings returns the IPv6 forms that carry v4: IPv4-mapped,
// IPv4-translated, NAT64, IPv4-compatible, 6to4 and Teredo (with a public
// server, so that only the client decides).
func ipv6Spellings(v4 [4]byte) []netip.Addr {
	var out []netip.Addr
	at := func(template string, off int, v [4]byte) {
		b := netip.MustParseAddr(template).As16()
		copy(b[off:off+4], v[:])
		out = append(out, netip.AddrFrom16(b))
	}
	at("::ffff:0:0", 12, v4)
	at("::ffff:0:0:0", 12, v4)
	at("64:ff9b::", 12, v4)
	at("::", 12, v4)
	at("2002::1", 2, v4)
	inv := v4
	for i := range inv {
		inv[i] ^= 0xff
	}
	at("2001:0:4136:e378:8000:63bf::", 12, inv)
	return out
}
