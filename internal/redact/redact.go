// Package redact keeps credentials out of what trawl shows: the userinfo
// of URLs and the values of headers that carry credentials. It is used for
// logs, `trawl config` and error messages; records keep URLs as given,
// since they are the data the user asked for.
package redact

import (
	"net/http"
	"net/url"
	"strings"
)

// Mask replaces a hidden value.
const Mask = "REDACTED"

// URL returns raw with any userinfo (user name and password alike, as
// tokens often travel as user names) replaced by a mask. A string that is
// not a URL is returned as it is.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User(Mask)
	return u.String()
}

// sensitive reports whether a header carries credentials.
func sensitive(name string) bool {
	switch http.CanonicalHeaderKey(strings.TrimSpace(name)) {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token":
		return true
	}
	return false
}

// HeaderLine masks the value of a "Name: value" line when the header
// carries credentials.
func HeaderLine(line string) string {
	name, _, ok := strings.Cut(line, ":")
	if ok && sensitive(name) {
		return name + ": " + Mask
	}
	// A malformed line ("Authorization Bearer x") may hold a secret too.
	if first, _, _ := strings.Cut(strings.TrimSpace(line), " "); !ok && sensitive(first) {
		return first + " " + Mask
	}
	return line
}

// Secret masks a value that is a credential as a whole, such as --user's
// USER:PASSWORD (the user name too: tokens often travel as user names).
// An empty value stays empty, so that a setting left unset still reads as
// unset.
func Secret(s string) string {
	if s == "" {
		return ""
	}
	return Mask
}
