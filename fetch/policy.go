package fetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"

	"github.com/trawl-dev/trawl/fetch/internal/lean"
	"github.com/trawl-dev/trawl/internal/netpolicy"
)

// Policy says which addresses and hosts requests may reach.
type Policy struct {
	// DenyPrivate refuses to connect to any address outside the public
	// internet (loopback, RFC 1918, link-local and the rest).
	DenyPrivate bool
	// AllowPrivateRedirects lets a redirect lead from a public address to
	// a private one, which is refused by default.
	AllowPrivateRedirects bool
	// Hosts are the --allow-host and --deny-host patterns.
	Hosts netpolicy.Hosts
	// Classifier tells private addresses from public ones; nil means the
	// standard ranges. Tests substitute their own.
	Classifier *netpolicy.Classifier
}

func (p *Policy) classifier() *netpolicy.Classifier {
	if p.Classifier == nil {
		return netpolicy.NewClassifier()
	}
	return p.Classifier
}

// checkLiteral refuses a URL whose host is a private IP address written
// out, before any connection: through a proxy the dial-time check never
// sees the target, and an address literal (169.254.169.254) is the usual
// way such URLs reach a list.
func (c *Client) checkLiteral(host string) error {
	if !c.opts.Policy.DenyPrivate {
		return nil
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a name: checked where it is dialed
	}
	if addr = addr.WithZone(""); c.cls.Private(addr) {
		return &BlockedError{Reason: fmt.Sprintf("%s is a private address (--deny-private)", addr)}
	}
	return nil
}

// proxyAddrs remembers, for the net/http engine, the proxies requests
// were sent through, since a proxy the user chose is exempt from the
// address policy: it is where requests are meant to go, and it is the
// proxy, not trawl, that dials the target. A proxy is known by the address
// its URL names and by the address it answered on, which is what a
// connection reports.
type proxyAddrs struct{ m sync.Map }

// wrap records every proxy the transport chooses.
func (p *proxyAddrs) wrap(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		u, err := proxy(req)
		if err == nil && u != nil {
			p.m.Store(canonicalAddr(u), true)
		}
		return u, err
	}
}

func (p *proxyAddrs) has(addr string) bool {
	_, ok := p.m.Load(addr)
	return ok
}

func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// targetDialer connects to the hosts URLs name: to the address --resolve
// maps a host:port to, and, with --deny-private, only to public addresses.
// The check sees the address actually dialed, after DNS, so neither a
// rebinding DNS server nor a redirect can get around it.
func targetDialer(d *net.Dialer, resolve map[string]string, p *Policy, cls *netpolicy.Classifier) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if !p.DenyPrivate {
		return resolvingDialer(d, resolve)
	}
	checked := *d
	checked.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &BlockedError{Reason: fmt.Sprintf("cannot tell what address %s is", address)}
		}
		if cls.Private(ap.Addr()) {
			return &BlockedError{Reason: fmt.Sprintf("%s is a private address (--deny-private)", ap.Addr())}
		}
		return nil
	}
	return resolvingDialer(&checked, resolve)
}

// policyDialer is the net/http engine's dialer: targets through
// targetDialer, the proxies it recorded unchecked, and remembered by the
// address they reached.
func policyDialer(d *net.Dialer, resolve map[string]string, p *Policy, cls *netpolicy.Classifier, proxies *proxyAddrs) func(ctx context.Context, network, addr string) (net.Conn, error) {
	target := targetDialer(d, resolve, p, cls)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !proxies.has(addr) {
			return target(ctx, network, addr)
		}
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			// A proxy named by host name is, to the hop guard, an IP address.
			proxies.m.Store(conn.RemoteAddr().String(), true)
		}
		return conn, err
	}
}

// hopGuard watches the hops of one attempt: if the first hop was public
// and a redirect then leads to a private address, it stops the attempt
// before the request is sent there. Each hop is judged once, with the
// connection it is about to use, new or pooled: a direct hop by the
// address connected to; a hop through a proxy, whose connection reaches
// the proxy, by what its URL names instead. A first hop through a proxy
// is public unless its host is a private address literal; a redirect
// through a proxy is refused when its host is one. A host name cannot be
// judged there (the proxy resolves it) and is let through.
type hopGuard struct {
	cls    *netpolicy.Classifier
	mu     sync.Mutex // the net/http engine may call from its own goroutines
	hops   int
	public bool
}

// newGuard returns a guard for one attempt, or nil when private redirects
// are allowed (or private addresses are refused anyway).
func (c *Client) newGuard() *hopGuard {
	p := &c.opts.Policy
	if p.AllowPrivateRedirects || p.DenyPrivate {
		return nil
	}
	return &hopGuard{cls: c.cls}
}

// judge counts a hop to host over the connection info describes and
// refuses it when it leads from a public first hop to a private address.
func (g *hopGuard) judge(host string, info lean.ConnInfo) error {
	var addr netip.Addr
	known := false
	if info.Proxied {
		addr, known = literal(host)
	} else if tcp, ok := info.Remote.(*net.TCPAddr); ok {
		addr, known = netip.AddrFromSlice(tcp.IP)
	}
	private := known && g.cls.Private(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hops++
	if g.hops == 1 {
		g.public = !private
		return nil
	}
	if !private || !g.public {
		return nil
	}
	return &BlockedError{Reason: fmt.Sprintf("a redirect from a public address led to the private address %s (--allow-private-redirects permits it)", addr.WithZone("").Unmap())}
}

// literal returns the address host spells, if it is an IP literal.
func literal(host string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return addr, err == nil
}

// isHTTP2 reports whether c was negotiated for HTTP/2.
func isHTTP2(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}
