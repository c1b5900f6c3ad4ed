// Package urlkey says when two URLs count as the same thing, in the three
// ways trawl asks: the same host for per-host limits (Host), the same
// request for --dedupe and --shard-by url (Normalize), and the same host
// name for --shard-by host (HostName). Each rule is written once, here.
package urlkey

import (
	"net/url"
	"strings"
)

// Host returns the host key of a URL for per-host limits: the lowercased
// host:port, with the scheme's default port made explicit, so http://a and
// http://A:80 share their limits.
func Host(u *url.URL) string {
	// The usual case, a lowercase name or IPv4 address with its port
	// written out, is its own key: no string to build.
	if h := u.Host; h != "" && h[0] != '[' && strings.IndexByte(h, ':') > 0 && h[len(h)-1] != ':' && lowercase(h) {
		return h
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

func lowercase(s string) bool {
	for i := range len(s) {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

// HostName returns the lowercased host name without the port: all URLs of
// a host, whatever the port, share it.
func HostName(u *url.URL) string { return strings.ToLower(u.Hostname()) }

// Normalize returns the form of a URL that --dedupe compares: scheme and
// host lowercased, a default port dropped, an empty path made "/", and the
// fragment dropped (it is never sent). Path and query are kept as they are,
// since servers may treat their case and order as significant.
func Normalize(u *url.URL) string {
	n := *u
	n.Scheme = strings.ToLower(n.Scheme)
	host, port := strings.ToLower(n.Hostname()), n.Port()
	if n.Scheme == "http" && port == "80" || n.Scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	n.Host = host
	if n.Path == "" && n.RawPath == "" && n.Opaque == "" {
		n.Path = "/"
	}
	n.Fragment, n.RawFragment = "", ""
	return n.String()
}
