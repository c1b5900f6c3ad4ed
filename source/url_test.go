package source

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/urlkey"
)

// TestParseURL is the table of input lines testers reported, with what
// trawl requests for each (the Target's String) or the error the record
// gets. Lines that were right before keep their results, except three
// changed deliberately to what browsers do: the host is lowercased
// (HTTPS://X.test/), a unicode host is held in IDNA form (it was sent in
// that form already), and "http:opaque" is http://opaque/.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, want, errHas string
	}{
		// Every spelling of an IPv4 address is that address, in dotted decimal.
		{in: "http://2130706433/", want: "http://127.0.0.1/"},
		{in: "http://0x7f.1/", want: "http://127.0.0.1/"},
		{in: "http://0x7f000001/", want: "http://127.0.0.1/"},
		{in: "http://0177.0.0.1/", want: "http://127.0.0.1/"},
		{in: "http://127.1/", want: "http://127.0.0.1/"},
		{in: "http://127.000.000.001/", want: "http://127.0.0.1/"},
		{in: "http://0/", want: "http://0.0.0.0/"},
		{in: "http://0x7f.1:8080/x?y", want: "http://127.0.0.1:8080/x?y"},
		{in: "http://0xA9.0xFE.0xA9.0xFE/latest/meta-data/", want: "http://169.254.169.254/latest/meta-data/"},
		// Hosts the standard rejects.
		{in: "http://4294967296/", errHas: `not a valid URL: invalid IPv4 address "4294967296": the last part, "4294967296", is greater than 4294967295`},
		{in: "http://1.2.3.256/", errHas: `not a valid URL: invalid IPv4 address "1.2.3.256": the last part, "256", is greater than 255`},
		{in: "http://1.2.3.4.5/", errHas: "more than 4 parts"},
		{in: "http://08.1/", errHas: "a leading 0 makes it octal"},
		{in: "http://example.123/", errHas: `"example" is not a number`},
		// A stray % is kept.
		{in: "http://h/100%.html", want: "http://h/100%.html"},
		{in: "http://h/?q=100%", want: "http://h/?q=100%"},
		// Tabs and newlines are stripped; backslashes in the path are slashes.
		{in: "http://h/a\tb", want: "http://h/ab"},
		{in: "http://h/a\rb\nc", want: "http://h/abc"},
		{in: "ht\ttp://h/", want: "http://h/"},
		{in: `http://h\a\b.html`, want: "http://h/a/b.html"},
		{in: `http:\\h\x`, want: "http://h/x"},
		// No scheme: one message, whatever the line looks like.
		{in: "127.0.0.1:28081/nohttp", errHas: "not an absolute URL: it needs to start with http:// or https://"},
		{in: "www.example.com", errHas: "not an absolute URL: it needs to start with http:// or https://"},
		{in: "x.test/page", errHas: "http:// or https://"},
		{in: "localhost:8080/x", errHas: "not an absolute URL: it needs to start with http:// or https://"},
		{in: "localhost:8080", errHas: "not an absolute URL"},
		{in: "example.com:8080/x", errHas: "not an absolute URL"},
		{in: "example.com:path", errHas: "not an absolute URL"},
		{in: "//example.com/x", errHas: "not an absolute URL"},
		{in: "[::1]:80/", errHas: "not an absolute URL"},
		{in: "ftp://x.test/", errHas: `unsupported scheme "ftp": only http and https URLs are fetched`},
		{in: "mailto:a@b.test", errHas: `unsupported scheme "mailto"`},
		{in: "FILE:///etc/passwd", errHas: `unsupported scheme "file"`},
		{in: "tel:+1-555", errHas: `unsupported scheme "tel"`},
		// Kept as they were.
		{in: "http://x.test/a b", want: "http://x.test/a%20b"},
		{in: "http://x.test/?q=a b", want: "http://x.test/?q=a%20b"},
		{in: "http://user:pass@x.test/", want: "http://user:pass@x.test/"},
		{in: "http://[::1]:8080/", want: "http://[::1]:8080/"},
		{in: "http://:80/", errHas: "URL has no host"},
		{in: "http://", errHas: "URL has no host"},
		{in: "http://x.test:port/", errHas: "not a valid URL"},
		{in: "http://x.test/\x7f", errHas: "control character"},
		{in: "http://x.test/\x00", errHas: "control character U+0000"},
		{in: "http://x.test/\u0085", errHas: "control character U+0085"},
		{in: "http://x y.test/", errHas: "not a valid URL"},
		{in: "http://a{b}.test/", errHas: `not a valid URL: host "a{b}.test" has "{", which an HTTP request cannot carry`},
		{in: "http://a%22b/", errHas: `has "\""`},
		// Changed on purpose, to what browsers do.
		{in: "HTTPS://X.test/", want: "https://x.test/"},
		{in: "http://bücher.test/ä", want: "http://xn--bcher-kva.test/%C3%A4"},
		{in: "http:opaque", want: "http://opaque/"},
		{in: "https://x.example:443", want: "https://x.example/"},
	} {
		u, err := ParseURL(tc.in)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("ParseURL(%q) = %v, %v; want an error mentioning %q", tc.in, u, err, tc.errHas)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("ParseURL(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
}

// TestAddressSpellingsShareKeys shows why the address must be canonical:
// the address policy, --resolve, the per-host throttle and --dedupe all
// read the Target, and each spelling of 127.0.0.1 must look like it.
func TestAddressSpellingsShareKeys(t *testing.T) {
	for _, in := range []string{"http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1:80/", "http://127.1", "HTTP://127.000.000.001/"} {
		u, err := ParseURL(in)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", in, err)
		}
		if _, err := netip.ParseAddr(u.Hostname()); err != nil || u.Hostname() != "127.0.0.1" {
			t.Errorf("%s: host %q is not the address 127.0.0.1", in, u.Hostname())
		}
		if h, n := urlkey.Host(u), urlkey.Normalize(u); h != "127.0.0.1:80" || n != "http://127.0.0.1/" {
			t.Errorf("%s: throttle key %q, dedupe key %q", in, h, n)
		}
	}
}

// TestStrayPercentIsSent shows that a path net/url cannot write is sent as
// the standard writes it: in the request line, "%" stays "%".
func TestStrayPercentIsSent(t *testing.T) {
	u, err := ParseURL("http://h.test/100%.html")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.RequestURI(); got != "http://h.test/100%.html" {
		t.Errorf("request URI %q", got)
	}
	if u.Hostname() != "h.test" || u.Path != "/100%.html" {
		t.Errorf("host %q path %q", u.Hostname(), u.Path)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"http://a.test/", "ftp://x", "http://[::1]:0/", "http://%zz", "https://u:p@h/?q= x#f", "\xff",
		"http://0x7f.1/", "http://1.2.3.256/", "http://h/100%.html", "localhost:80", "http://h\\a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		host := u.Hostname()
		if host == "" {
			t.Fatalf("accepted %q without host", s)
		}
		// Nothing inet_aton would read as an address reaches DNS as a name.
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Is4() && a.String() != host {
				t.Fatalf("%q: address %q not in dotted decimal", s, host)
			}
		} else if last := lastLabel(host); last != "" && strings.Trim(strings.TrimPrefix(strings.ToLower(last), "0x"), "0123456789abcdef") == "" &&
			(strings.HasPrefix(strings.ToLower(last), "0x") || strings.Trim(last, "0123456789") == "") {
			t.Fatalf("%q: host %q ends in a number but is not an address", s, host)
		}
		// The canonical form is a fixed point.
		again, err := ParseURL(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("%q parsed to %q, which parses to %v, %v", s, u, again, err)
		}
	})
}

func lastLabel(host string) string {
	host = strings.TrimSuffix(host, ".")
	return host[strings.LastIndexByte(host, '.')+1:]
}
