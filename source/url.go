package source

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/trawl-dev/trawl/internal/weburl"
)

// ParseURL parses one trimmed input line as an absolute http or https URL,
// the way browsers do (the WHATWG URL Standard, see internal/weburl), and
// returns it in canonical form: an IPv4 address in any spelling inet_aton
// accepts (2130706433, 0x7f.1, 127.1) in dotted decimal, so that the
// address policy, --resolve, dedupe and throttle keys all see the real
// address; a unicode host in IDNA form; scheme and host lowercased and a
// default port dropped; spaces and other characters percent-encoded as the
// standard says, and a stray '%' kept. The error says, for a person reading
// the record, why the line is not one.
//
// Tabs and newlines inside the line are removed, as the standard does; any
// other control character is refused, since no list means one.
func ParseURL(line string) (*url.URL, error) {
	if line == "" {
		return nil, errors.New("empty URL")
	}
	for _, r := range line {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return nil, fmt.Errorf("URL contains the control character %U", r)
		}
	}
	u, err := weburl.Parse(line, nil)
	if err != nil {
		var se *weburl.SchemeError
		switch {
		case errors.Is(err, weburl.ErrMissingScheme), errors.As(err, &se) && hostWithoutScheme(line, se.Scheme):
			return nil, errors.New("not an absolute URL: it needs to start with http:// or https://")
		case se != nil:
			return nil, fmt.Errorf("unsupported scheme %q: only http and https URLs are fetched", se.Scheme)
		case errors.Is(err, weburl.ErrNoHost):
			return nil, errors.New("URL has no host")
		}
		return nil, fmt.Errorf("not a valid URL: %w", err)
	}
	// The standard allows these in a host name; HTTP does not, in the Host
	// header, so no request could be sent.
	if i := strings.IndexAny(u.Hostname(), "\"`{}"); i >= 0 {
		return nil, fmt.Errorf("not a valid URL: host %q has %q, which an HTTP request cannot carry", u.Hostname(), u.Hostname()[i:i+1])
	}
	return u.NetURL(), nil
}

// hostWithoutScheme reports whether what the standard reads as a scheme is
// a host and port written without one: "example.com:8080/x" has a dot in
// it, and in "localhost:8080/" a port number follows the colon. Those lines
// get the same advice as "www.example.com".
func hostWithoutScheme(line, scheme string) bool {
	if strings.Contains(scheme, ".") {
		return true
	}
	// The scheme is what precedes the first colon, once the parser has
	// dropped tabs and newlines.
	clean := strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(line)
	_, rest, _ := strings.Cut(clean, ":")
	digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
	return digits > 0 && (digits == len(rest) || strings.IndexByte("/?#", rest[digits]) >= 0)
}
