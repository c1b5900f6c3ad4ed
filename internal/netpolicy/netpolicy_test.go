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
		"::ffff:127.0.0.1": true, "::ffff:169.254.169.254": true, "::ffff:8.8.8.8": false, // IPv4-mapped
		"::ffff:0:10.0.0.1": true, "::ffff:0:8.8.8.8": false, // IPv4-translated
		"64:ff9b::a9fe:a9fe": true, "64:ff9b::808:808": false, // NAT64
		"::127.0.0.1": true, "::169.254.169.254": true, // IPv4-compatible
		"2001:db8::1": true,
	} {
		if got := c.Private(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Private(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCustomClassifier(t *testing.T) {
	c := NewClassifierWith([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if !c.Private(netip.MustParseAddr("127.0.0.1")) || c.Private(netip.MustParseAddr("127.0.0.2")) {
		t.Fatal("custom ranges not honoured")
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
	for _, s := range []string{"127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "8.8.8.8", "fe80::1%eth0", "::"} {
		f.Add(s)
	}
	c := NewClassifier()
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		// An IPv6 spelling of an IPv4 address is judged like the address.
		if a.Is4In6() && c.Private(a) != c.Private(a.Unmap()) {
			t.Fatalf("%s and %s judged differently", a, a.Unmap())
		}
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
			if !c.Private(a) {
				t.Fatalf("%s judged public", a)
			}
		}
	})
}
