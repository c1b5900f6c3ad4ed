package urlkey

import (
	"net/url"
	"testing"
)

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestHost(t *testing.T) {
	for raw, want := range map[string]string{
		"http://Example.com/x":      "example.com:80",
		"http://example.com:80/":    "example.com:80",
		"https://example.com":       "example.com:443",
		"HTTPS://example.com":       "example.com:443",
		"https://example.com:8443/": "example.com:8443",
		"http://[::1]:8080/":        "::1:8080",
	} {
		if got := Host(mustParse(t, raw)); got != want {
			t.Errorf("Host(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestHostName(t *testing.T) {
	for _, raw := range []string{"http://Example.com/a", "https://example.com:8443/b?c"} {
		if got := HostName(mustParse(t, raw)); got != "example.com" {
			t.Errorf("HostName(%s) = %q", raw, got)
		}
	}
}

func TestNormalize(t *testing.T) {
	same := [][]string{
		{"http://Example.COM/a", "HTTP://example.com:80/a", "http://example.com/a#frag"},
		{"https://example.com", "https://example.com:443/", "https://EXAMPLE.com/#x"},
		{"http://[::1]:8080/x", "http://[::1]:8080/x#y"},
	}
	for _, group := range same {
		want := Normalize(mustParse(t, group[0]))
		for _, s := range group[1:] {
			if got := Normalize(mustParse(t, s)); got != want {
				t.Errorf("Normalize(%s) = %s, want %s", s, got, want)
			}
		}
	}
	different := []string{"http://example.com/a", "https://example.com/a", "http://example.com/A", "http://example.com/a?x=1", "http://example.com:8080/a"}
	seen := map[string]string{}
	for _, s := range different {
		n := Normalize(mustParse(t, s))
		if prev, dup := seen[n]; dup {
			t.Errorf("%s and %s normalize alike (%s)", s, prev, n)
		}
		seen[n] = s
	}
}
