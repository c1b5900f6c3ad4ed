package redact

import "testing"

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:pass@example.com/x": "http://REDACTED@example.com/x",
		"https://ghp_token@github.com/":  "https://REDACTED@github.com/",
		"http://example.com/x?a=b":       "http://example.com/x?a=b",
		"not a url at all":               "not a url at all",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderLine(t *testing.T) {
	for in, want := range map[string]string{
		"Authorization: Bearer abc": "Authorization: REDACTED",
		"cookie:a=1":                "cookie: REDACTED",
		"proxy-authorization: x":    "proxy-authorization: REDACTED",
		"X-Api-Key: k":              "X-Api-Key: REDACTED",
		"Accept: text/html":         "Accept: text/html",
		"no colon":                  "no colon",
		"Authorization Bearer abc":  "Authorization REDACTED",
	} {
		if got := HeaderLine(in); got != want {
			t.Errorf("HeaderLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecret(t *testing.T) {
	for in, want := range map[string]string{
		"alice:s3cret": "REDACTED",
		"token":        "REDACTED",
		"":             "",
	} {
		if got := Secret(in); got != want {
			t.Errorf("Secret(%q) = %q, want %q", in, got, want)
		}
	}
}
