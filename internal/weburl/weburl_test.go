package weburl

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) *URL {
	t.Helper()
	u, err := Parse(s, nil)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return u
}

// TestParse checks the cases testers reported against net/url, plus the
// corners of the standard around them. want is the serialization; errHas,
// when set, is part of the error wanted instead.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, base, want, errHas string
	}{
		// Every spelling inet_aton accepts is the address, in dotted decimal.
		{in: "http://2130706433/", want: "http://127.0.0.1/"},
		{in: "http://0x7f.1/", want: "http://127.0.0.1/"},
		{in: "http://0x7f000001/", want: "http://127.0.0.1/"},
		{in: "http://0X7F000001/", want: "http://127.0.0.1/"},
		{in: "http://0177.0.0.1/", want: "http://127.0.0.1/"},
		{in: "http://127.1/", want: "http://127.0.0.1/"},
		{in: "http://127.0.1/", want: "http://127.0.0.1/"},
		{in: "http://127.000.000.001/", want: "http://127.0.0.1/"},
		{in: "http://0/", want: "http://0.0.0.0/"},
		{in: "http://0x/", want: "http://0.0.0.0/"},
		{in: "http://0xffffffff/", want: "http://255.255.255.255/"},
		{in: "http://169.254.169.254./latest", want: "http://169.254.169.254/latest"},
		{in: "http://%30x7f.1/", want: "http://127.0.0.1/"},
		{in: "http://１２７.０.０.１/", want: "http://127.0.0.1/"},
		{in: "http://127.0.0.1:8080/x", want: "http://127.0.0.1:8080/x"},
		// Hosts that end in a number but are no address are errors.
		{in: "http://4294967296/", errHas: `the last part, "4294967296", is greater than 4294967295`},
		{in: "http://1.2.3.256/", errHas: `the last part, "256", is greater than 255`},
		{in: "http://1.2.65536/", errHas: "greater than 65535"},
		{in: "http://256.1.1.1/", errHas: `part "256" is greater than 255`},
		{in: "http://0x100000000/", errHas: "greater than 4294967295"},
		{in: "http://999999999999999999999/", errHas: "greater than 4294967295"},
		{in: "http://1.2.3.4.5/", errHas: "more than 4 parts"},
		{in: "http://1.2.3.09/", errHas: `"09" is not a number (a leading 0 makes it octal)`},
		{in: "http://foo.1/", errHas: `"foo" is not a number`},
		{in: "http://1..2/", errHas: "empty part"},
		{in: "http://+127.1/", errHas: `"+127" is not a number`},
		// ... and hosts that do not end in a number are names.
		{in: "http://1.foo/", want: "http://1.foo/"},
		{in: "http://-1/", want: "http://-1/"},
		{in: "http://0x-1/", want: "http://0x-1/"},
		{in: "http://0xg/", want: "http://0xg/"},
		{in: "http://1.2.3.4../", want: "http://1.2.3.4../"},
		// A stray % is kept, in path, query and fragment alike.
		{in: "http://h/100%.html", want: "http://h/100%.html"},
		{in: "https://example/%?%#%", want: "https://example/%?%#%"},
		{in: "http://h/%zz%2", want: "http://h/%zz%2"},
		// Tabs and newlines are removed anywhere, C0 and space trimmed at the ends.
		{in: "http://h/a\tb\nc\rd", want: "http://h/abcd"},
		{in: "ht\ntp://ex\tample.org/", want: "http://example.org/"},
		{in: " \x00http://h/x \x1f", want: "http://h/x"},
		// A backslash is a slash in http(s) URLs.
		{in: `http://h\a\b`, want: "http://h/a/b"},
		{in: `http:\\h\p`, want: "http://h/p"},
		{in: `\\other\x`, base: "http://h/a", want: "http://other/x"},
		{in: `\x`, base: "http://h/a/b", want: "http://h/x"},
		// One URL, three spellings, one serialization.
		{in: "https://x.example", want: "https://x.example/"},
		{in: "https://x.example/", want: "https://x.example/"},
		{in: "HTTPS://X.EXAMPLE:443/", want: "https://x.example/"},
		{in: "http://x.example:80", want: "http://x.example/"},
		{in: "https://x.example:80/", want: "https://x.example:80/"},
		{in: "http://h:0080/", want: "http://h/"},
		{in: "http://h:/", want: "http://h/"},
		{in: "http://h?q", want: "http://h/?q"},
		{in: "http://h#f", want: "http://h/#f"},
		// Without the slashes the host still comes after the scheme.
		{in: "http:opaque", want: "http://opaque/"},
		{in: "http:/h/p", want: "http://h/p"},
		{in: "http:foo", base: "http://h/a/b", want: "http://h/a/foo"},
		{in: "http:foo", base: "https://h/a/b", want: "http://foo/"},
		// Percent-encoding by component.
		{in: "http://x.test/a b", want: "http://x.test/a%20b"},
		{in: "http://x.test/?q=a b", want: "http://x.test/?q=a%20b"},
		{in: "http://h/a^b`c{d}|e[f]", want: "http://h/a%5Eb%60c%7Bd%7D|e[f]"},
		{in: "http://h/?'\"<>`{}", want: "http://h/?%27%22%3C%3E`{}"},
		{in: "http://h/#'\"<>`{}#", want: "http://h/#'%22%3C%3E%60{}#"},
		{in: "http://h/ä?ä#ä", want: "http://h/%C3%A4?%C3%A4#%C3%A4"},
		{in: "http://h/\x01\x7f", want: "http://h/%01%7F"},
		{in: "http://h/caf\xe9", want: "http://h/caf%E9"},
		{in: "http://h/%41%2f", want: "http://h/%41%2f"},
		// Dot segments.
		{in: "http://h/a/../../b/./c", want: "http://h/b/c"},
		{in: "http://h/a/%2e%2E/x", want: "http://h/x"},
		{in: "http://h/a/.%2e", want: "http://h/"},
		{in: "http://h/a/.", want: "http://h/a/"},
		{in: "http://h/.well-known/x", want: "http://h/.well-known/x"},
		{in: "http://h//a//", want: "http://h//a//"},
		// Userinfo: the last @ ends it, the first : splits it.
		{in: "http://user:pass@x.test/", want: "http://user:pass@x.test/"},
		{in: "http://::@c@d:2", want: "http://:%3A%40c@d:2/"},
		{in: "http://u@h/@x", want: "http://u@h/@x"},
		{in: "http://:@h/", want: "http://h/"},
		// Hosts.
		{in: "http://bücher.test/", want: "http://xn--bcher-kva.test/"},
		{in: "http://BÜCHER.test/", want: "http://xn--bcher-kva.test/"},
		{in: "http://faß.de/", want: "http://xn--fa-hia.de/"},
		{in: "http://ℌ.test/", want: "http://h.test/"},
		{in: "http://My_Host.Example/", want: "http://my_host.example/"},
		{in: "http://xn--a.example/", want: "http://xn--a.example/"},
		{in: "http://%41.com/", want: "http://a.com/"},
		{in: "http://a.b./", want: "http://a.b./"},
		{in: "http://[::1]:8080/", want: "http://[::1]:8080/"},
		{in: "http://[0:0:0:0:0:0:0:1]/", want: "http://[::1]/"},
		{in: "http://[1:0:0:2::3:0]/", want: "http://[1::2:0:0:3:0]/"},
		{in: "http://[::ffff:127.0.0.1]/", want: "http://[::ffff:7f00:1]/"},
		{in: "http://[2001:DB8::1]/", want: "http://[2001:db8::1]/"},
		{in: "http://[1::1::1]/", errHas: "more than one '::'"},
		{in: "http://[::1/", errHas: "no closing ]"},
		{in: "http://[fe80::1%25eth0]/", errHas: "invalid IPv6 address"},
		{in: "http://[www.example.com]/", errHas: "invalid IPv6 address"},
		{in: "http://x y.test/", errHas: `" " is not allowed in a host name`},
		{in: "http://a%00b/", errHas: `"\x00" is not allowed`},
		{in: "http://a^b/", errHas: `"^" is not allowed`},
		{in: "http://\u00ad/", errHas: "empty once IDNA is applied"},
		{in: "http://a\u00a0b/", errHas: "not allowed in a host name"},
		{in: "http://a%ffb/", errHas: "not UTF-8"},
		{in: "http://xn--a.bücher/", errHas: "invalid host"},
		// No host, bad ports.
		{in: "http://", errHas: "no host"},
		{in: "http://:80/", errHas: "no host"},
		{in: "http://user@/", errHas: "no host"},
		{in: "http:///", errHas: "no host"},
		{in: "http://x.test:port/", errHas: `port "port" is not a number`},
		{in: "http://h:65536/", errHas: "out of range"},
		{in: "http://h:99999999999999999999/", errHas: "out of range"},
		// Relative references.
		{in: "page.html", base: "https://site.example/dir/index.html", want: "https://site.example/dir/page.html"},
		{in: " /rooted.html ", base: "https://site.example/dir/index.html", want: "https://site.example/rooted.html"},
		{in: "../up", base: "https://site.example/a/b/c", want: "https://site.example/a/up"},
		{in: "//cdn.example/lib.js", base: "https://site.example/", want: "https://cdn.example/lib.js"},
		{in: "?q=1", base: "http://h/a/b?x#y", want: "http://h/a/b?q=1"},
		{in: "#%_sec_6.2", base: "https://docs.example/whatsnew/2.6.html", want: "https://docs.example/whatsnew/2.6.html#%_sec_6.2"},
		{in: "#x", base: "http://h/a/b?q", want: "http://h/a/b?q#x"},
		{in: "", base: "http://h/a/b?q#f", want: "http://h/a/b?q"},
		{in: "\n\t", base: "http://h/a", want: "http://h/a"},
		{in: "x", base: "http://u:p@h:81/a/b", want: "http://u:p@h:81/a/x"},
		{in: "/x", base: "http://u:p@h:81/a/b", want: "http://u:p@h:81/x"},
		{in: "..", base: "http://h/a/b/", want: "http://h/a/"},
		{in: "..", base: "http://h/", want: "http://h/"},
		{in: "\u00a0x", base: "http://h/", want: "http://h/%C2%A0x"},
		// Other schemes and no scheme at all.
		{in: "ftp://x.test/", errHas: `unsupported scheme "ftp"`},
		{in: "mailto:a@b.example", errHas: `unsupported scheme "mailto"`},
		{in: "JavaScript:alert(1)", errHas: `unsupported scheme "javascript"`},
		{in: "//x.test/", errHas: "no scheme"},
		{in: "www.example.com", errHas: "no scheme"},
		{in: "127.0.0.1:28081/nohttp", errHas: "no scheme"},
		{in: "", errHas: "no scheme"},
	} {
		var base *URL
		if tc.base != "" {
			base = mustParse(t, tc.base)
		}
		u, err := Parse(tc.in, base)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Parse(%q, %q) = %v, %v; want an error mentioning %q", tc.in, tc.base, u, err, tc.errHas)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("Parse(%q, %q) = %v, %v; want %s", tc.in, tc.base, u, err, tc.want)
			continue
		}
		// The standard's serialization parses back to itself.
		if again, err := Parse(u.String(), nil); err != nil || again.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; not idempotent", tc.want, again, err)
		}
	}
}

func TestErrorTypes(t *testing.T) {
	_, err := Parse("FTP://x/", nil)
	var se *SchemeError
	if !errors.As(err, &se) || se.Scheme != "ftp" {
		t.Errorf("ftp: %v", err)
	}
	if _, err := Parse("x", nil); !errors.Is(err, ErrMissingScheme) {
		t.Errorf("x: %v", err)
	}
	if _, err := Parse("https://:443", nil); !errors.Is(err, ErrNoHost) {
		t.Errorf("no host: %v", err)
	}
	if _, err := Parse("x", mustParse(t, "http://h/")); err != nil {
		t.Errorf("relative with a base: %v", err)
	}
}

// TestNetURL checks the canonical *url.URL: its String is the standard's
// serialization and its request line carries the path as the standard
// writes it, including what net/url would rewrite.
func TestNetURL(t *testing.T) {
	for _, tc := range []struct {
		in, str, requestURI, path, rawPath string
		opaque                             bool
	}{
		{in: "HTTP://Example.COM:80/a/b?q=1", str: "http://example.com/a/b?q=1", requestURI: "/a/b?q=1", path: "/a/b"},
		{in: "http://0x7f.1:8080", str: "http://127.0.0.1:8080/", requestURI: "/", path: "/"},
		{in: "http://h/a b", str: "http://h/a%20b", requestURI: "/a%20b", path: "/a b"},
		{in: "http://h/a%2Fb", str: "http://h/a%2Fb", requestURI: "/a%2Fb", path: "/a/b", rawPath: "/a%2Fb"},
		{in: "http://h/%41", str: "http://h/%41", requestURI: "/%41", path: "/A", rawPath: "/%41"},
		{in: "http://h/[x]", str: "http://h/[x]", requestURI: "/[x]", path: "/[x]", rawPath: "/[x]"},
		{in: "http://h/?", str: "http://h/?", requestURI: "/?", path: "/"},
		{in: "http://h/?a%zz b", str: "http://h/?a%zz%20b", requestURI: "/?a%zz%20b", path: "/"},
		{in: "http://h/100%.html?x", str: "http://h/100%.html?x", requestURI: "http://h/100%.html?x", path: "/100%.html", opaque: true},
		{in: "http://h:81/a|b", str: "http://h:81/a|b", requestURI: "http://h:81/a|b", path: "/a|b", opaque: true},
		{in: "http://[::1]/x", str: "http://[::1]/x", requestURI: "/x", path: "/x"},
		{in: "http://a{b}/x", str: "http://a{b}/x", requestURI: "http://a{b}/x", path: "/x", opaque: true},
		{in: "http://h/p#frag", str: "http://h/p#frag", requestURI: "/p", path: "/p"},
	} {
		nu := mustParse(t, tc.in).NetURL()
		if got := nu.String(); got != tc.str {
			t.Errorf("%q: String() = %q, want %q", tc.in, got, tc.str)
		}
		if got := nu.RequestURI(); got != tc.requestURI {
			t.Errorf("%q: RequestURI() = %q, want %q", tc.in, got, tc.requestURI)
		}
		if nu.Path != tc.path || nu.RawPath != tc.rawPath || (nu.Opaque != "") != tc.opaque {
			t.Errorf("%q: Path %q RawPath %q Opaque %q", tc.in, nu.Path, nu.RawPath, nu.Opaque)
		}
		if !tc.opaque {
			// net/url reads it back as the same URL.
			back, err := url.Parse(nu.String())
			if err != nil || back.String() != tc.str {
				t.Errorf("%q: url.Parse(%q) = %v, %v", tc.in, nu.String(), back, err)
			}
		}
	}
	// Userinfo keeps its decoded name and password.
	nu := mustParse(t, "http://us%20er:p%40ss@h/").NetURL()
	if p, _ := nu.User.Password(); nu.User.Username() != "us er" || p != "p@ss" || nu.Host != "h" {
		t.Errorf("userinfo: %#v", nu.User)
	}
}

func TestResolveNet(t *testing.T) {
	base, _ := url.Parse("http://h.example/a/b")
	for ref, want := range map[string]string{
		"http://0x7f.1/x": "http://127.0.0.1/x",
		"/c":              "http://h.example/c",
		"d?e":             "http://h.example/a/d?e",
		"//2130706433:81": "http://127.0.0.1:81/",
		`\\h2\y`:          "http://h2/y",
	} {
		u, err := ResolveNet(ref, base)
		if err != nil || u.String() != want {
			t.Errorf("ResolveNet(%q) = %v, %v; want %s", ref, u, err, want)
		}
	}
	if _, err := ResolveNet("http://1.2.3.256/", base); err == nil {
		t.Error("an invalid address resolved")
	}
}

// FuzzParse checks, on any input and against a few bases, the promises
// the rest of trawl relies on: no panic, only http(s) URLs with a host,
// an ASCII serialization that parses back to itself (the standard's
// idempotence), and a canonical *url.URL that serializes the same way.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"http://a.test/", "http://0x7f.1/", "http://[::1]:0/", "http://%zz", "https://u:p@h/?q= x#f",
		"\xff", "../a/./b/..", "//h\\p", "?q", "#f", "http:x", "http://1.2.3.4.5", "http://h/100%.html", "http://xn--bcher-kva.test/ä"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	bases := []*URL{nil, mustParse(f, "http://u:p@h.example:8080/a/b/c?q#f"), mustParse(f, "https://h/")}
	f.Fuzz(func(t *testing.T, s string, b uint8) {
		u, err := Parse(s, bases[int(b)%len(bases)])
		if err != nil {
			return
		}
		if u.Scheme() != "http" && u.Scheme() != "https" || u.Hostname() == "" {
			t.Fatalf("Parse(%q) gave %q", s, u)
		}
		href := u.String()
		for i := 0; i < len(href); i++ {
			if href[i] <= ' ' || href[i] >= 0x7f {
				t.Fatalf("Parse(%q) serialized to %q, which is not printable ASCII", s, href)
			}
		}
		again, err := Parse(href, nil)
		if err != nil || again.String() != href {
			t.Fatalf("Parse(%q) = %q, which parses to %v, %v", s, href, again, err)
		}
		nu := u.NetURL()
		if nu.User == nil && !u.hasFrag && nu.String() != href {
			t.Fatalf("Parse(%q) = %q, but NetURL gives %q", s, href, nu.String())
		}
		if nu.Opaque == "" {
			back, err := url.Parse(nu.String())
			if err != nil || back.String() != nu.String() {
				t.Fatalf("NetURL of %q is %q, which net/url reads as %v, %v", s, nu.String(), back, err)
			}
		}
	})
}

// typical is a URL as input lists and pages commonly hold them.
const typical = "https://www.example.com/products/shoes/running?color=blue&size=42&ref=homepage"

// BenchmarkParse measures parsing a typical URL into its canonical
// *url.URL, against net/url parsing the same line (BenchmarkNetURLParse).
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		u, err := Parse(typical, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = u.NetURL()
	}
}

func BenchmarkNetURLParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := url.Parse(typical); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolve measures what the links transform does per link: a
// relative reference resolved and serialized without its fragment,
// against net/url doing the same (BenchmarkNetURLResolve).
func BenchmarkResolve(b *testing.B) {
	base := mustParse(b, "https://www.example.com/news/2026/11/record-catch.html")
	b.ReportAllocs()
	for b.Loop() {
		u, err := Parse("../12/story-0.html?page=2#comments", base)
		if err != nil {
			b.Fatal(err)
		}
		_ = u.StringNoFragment()
	}
}

func BenchmarkNetURLResolve(b *testing.B) {
	base, _ := url.Parse("https://www.example.com/news/2026/11/record-catch.html")
	b.ReportAllocs()
	for b.Loop() {
		u, err := base.Parse("../12/story-0.html?page=2#comments")
		if err != nil {
			b.Fatal(err)
		}
		u.Fragment = ""
		_ = u.String()
	}
}
