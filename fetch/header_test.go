package fetch

import "testing"

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct{ in, name, value string }{
		{"X-Token: abc", "X-Token", "abc"},
		{"accept:text/html", "Accept", "text/html"},
		{"X-Empty:", "X-Empty", ""},
		{"X-Colon: a:b", "X-Colon", "a:b"},
	} {
		n, v, err := ParseHeader(tc.in)
		if err != nil || n != tc.name || v != tc.value {
			t.Errorf("ParseHeader(%q) = %q, %q, %v", tc.in, n, v, err)
		}
	}
	for _, bad := range []string{"", "novalue", ": x", "Bad Name: x", "X: a\nb", "X: a\rb"} {
		if _, _, err := ParseHeader(bad); err == nil {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}
