package fetch

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ParseHeader parses a curl-style "Name: value" header argument.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	value = strings.TrimSpace(value)
	if !ok || name == "" {
		return "", "", fmt.Errorf("bad header %q: want \"Name: value\"", s)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return "", "", fmt.Errorf("bad header %q: %q is not a valid header name", s, name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return "", "", fmt.Errorf("bad header %q: the value contains characters not allowed in a header", s)
	}
	return http.CanonicalHeaderKey(name), value, nil
}
