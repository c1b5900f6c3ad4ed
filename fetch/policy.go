package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"sync"
	"syscall"

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

// proxyAddrs remembers the proxies requests were sent through, since a
// proxy the user chose is exempt from the address policy: it is where
// requests are meant to go, and it is the proxy, not trawl, that dials
// the target.
type proxyAddrs struct{ m sync.Map }

func (p *proxyAddrs) wrap(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		u, err := proxy(req)
		if u != nil {
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

// policyDialer refuses, at connect time, the addresses the policy denies:
// the check sees the address actually dialed, after DNS, so neither a
// rebinding DNS server nor a redirect can get around it.
func policyDialer(base func(ctx context.Context, network, addr string) (net.Conn, error), d *net.Dialer, p *Policy, cls *netpolicy.Classifier, proxies *proxyAddrs) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if !p.DenyPrivate {
		return base
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
	guarded := resolvingDialer(&checked, nil)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if proxies.has(addr) {
			return base(ctx, network, addr)
		}
		return guarded(ctx, network, addr)
	}
}

// hopGuard watches the connections one attempt uses: if the first hop
// reached a public address and a redirect then leads to a private one, it
// stops the attempt before the request is sent there. The check runs on
// every connection, new or reused from the pool.
type hopGuard struct {
	cls     *netpolicy.Classifier
	proxies *proxyAddrs
	cancel  context.CancelCauseFunc
	public  bool
	hops    int
}

func (g *hopGuard) gotConn(info httptrace.GotConnInfo) {
	g.hops++
	tcp, ok := info.Conn.RemoteAddr().(*net.TCPAddr)
	if !ok || g.proxies.has(tcp.String()) {
		return // through a proxy the target's address is unknown
	}
	addr, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return
	}
	private := g.cls.Private(addr)
	switch {
	case g.hops == 1:
		g.public = !private
	case private && g.public:
		g.cancel(&BlockedError{Reason: fmt.Sprintf("a redirect from a public address led to the private address %s (--allow-private-redirects permits it)", addr.Unmap())})
	}
}

// guardAttempt returns the attempt's context, watched by a hopGuard unless
// private redirects are allowed (or private addresses are denied anyway).
func (c *Client) guardAttempt(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	p := &c.opts.Policy
	if p.AllowPrivateRedirects || p.DenyPrivate {
		return ctx, cancel
	}
	g := &hopGuard{cls: c.cls, proxies: c.proxies, cancel: cancel}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: g.gotConn}), cancel
}

// blockedCause returns the policy refusal that cancelled ctx, if any.
func blockedCause(ctx context.Context) error {
	var b *BlockedError
	if cause := context.Cause(ctx); errors.As(cause, &b) {
		return b
	}
	return nil
}
