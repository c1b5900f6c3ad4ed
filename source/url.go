package source

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// ParseURL parses one trimmed input line as an absolute http or https URL.
// The error says, for a person reading the record, why the line is not one.
//
// Spaces inside the path or query are accepted and sent percent-encoded, as
// browsers and wget do; whitespace elsewhere (in the host) is an error.
func ParseURL(line string) (*url.URL, error) {
	if line == "" {
		return nil, errors.New("empty URL")
	}
	for _, r := range line {
		if unicode.IsControl(r) {
			return nil, fmt.Errorf("URL contains the control character %U", r)
		}
	}
	u, err := url.Parse(line)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return nil, errors.New("not an absolute URL: it needs to start with http:// or https://")
	default:
		return nil, fmt.Errorf("unsupported scheme %q: only http and https URLs are fetched", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("URL has no host")
	}
	if strings.ContainsAny(u.RawQuery, " \t") {
		u.RawQuery = strings.NewReplacer(" ", "%20", "\t", "%09").Replace(u.RawQuery)
	}
	return u, nil
}
