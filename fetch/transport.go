package fetch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// ParseResolve parses a curl-style --resolve HOST:PORT:ADDR entry, which
// sends connections for HOST:PORT to ADDR instead of what DNS says. ADDR
// may be an IPv6 address in brackets. It returns the "host:port" key and
// the address to dial.
func ParseResolve(s string) (key, addr string, err error) {
	host, rest, ok1 := strings.Cut(s, ":")
	port, ip, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || host == "" || ip == "" {
		return "", "", fmt.Errorf("bad --resolve %q: want HOST:PORT:ADDR, like example.com:443:127.0.0.1", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", "", fmt.Errorf("bad --resolve %q: %q is not a port", s, port)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if net.ParseIP(ip) == nil {
		return "", "", fmt.Errorf("bad --resolve %q: %q is not an IP address", s, ip)
	}
	return net.JoinHostPort(strings.ToLower(host), port), net.JoinHostPort(ip, port), nil
}

// ParseProxy checks a --proxy URL.
func ParseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad proxy %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("bad proxy %q: want an http://, https:// or socks5:// URL", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bad proxy %q: no host", s)
	}
	return u, nil
}

// resolvingDialer sends connections for mapped host:port pairs elsewhere.
func resolvingDialer(d *net.Dialer, resolve map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(resolve) == 0 {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil {
			if to, ok := resolve[net.JoinHostPort(strings.ToLower(host), port)]; ok {
				addr = to
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// HTTP/2 flow-control windows. Go's client lets each stream receive 4 MiB
// and each connection 1 GiB before the reader has taken any: with bodies
// streamed to disk more slowly than the network delivers them, 32 streams
// of 3 MB bodies held 182 MiB, against 40 MiB over HTTP/1.1. A window of
// 1 MiB per stream still covers 80 Mbit/s at 100 ms of round trip.
const (
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 4<<20 - 1 // net/http takes values below 4 MiB
)

// h2ConnsPerHost is how many HTTP/2 connections the lean engine spreads
// one host's requests over.
const h2ConnsPerHost = 1

// newJar returns an in-memory cookie jar that keeps cookies to the domains
// that set them, using the public suffix list.
func newJar() http.CookieJar {
	jar, _ := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	return jar
}
