package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
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
// the target. A proxy is known by the address its URL names and by the
// address it answered on, which is what a connection reports.
type proxyAddrs struct{ m sync.Map }

// wrap makes the transport's proxy function the hook through which an
// attempt's hopGuard learns of each request: the transport calls it for
// every request it sends (redirects included) just before it connects,
// and it is the one place that knows both the request's URL and whether
// the request goes through a proxy.
func (p *proxyAddrs) wrap(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		u, err := proxy(req)
		if err != nil {
			return u, err
		}
		if u != nil {
			p.m.Store(canonicalAddr(u), true)
		}
		if g, ok := req.Context().Value(hopGuardKey{}).(*hopGuard); ok {
			if err := g.route(req.URL.Hostname(), u != nil); err != nil {
				return nil, err
			}
		}
		return u, nil
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
// rebinding DNS server nor a redirect can get around it. Connections to
// a proxy are exempt, and remembered by the address they reached.
func policyDialer(base func(ctx context.Context, network, addr string) (net.Conn, error), d *net.Dialer, p *Policy, cls *netpolicy.Classifier, proxies *proxyAddrs) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := base
	if p.DenyPrivate {
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
		guarded = resolvingDialer(&checked, nil)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !proxies.has(addr) {
			return guarded(ctx, network, addr)
		}
		conn, err := base(ctx, network, addr)
		if err == nil {
			// A proxy named by host name is, to hopGuard, an IP address.
			proxies.m.Store(conn.RemoteAddr().String(), true)
		}
		return conn, err
	}
}

// hopGuard watches the hops of one attempt: if the first hop was public
// and a redirect then leads to a private address, it stops the attempt
// before the request is sent there.
//
// Each hop reaches the guard through up to three hooks, in this order:
// route, from the transport's proxy function, on every request except
// those sent over a pooled HTTP/2 connection; getConn, always; gotConn,
// always, with the connection. A direct hop is judged in gotConn by the
// address connected to, on new and pooled connections alike. Through a
// proxy that address is the proxy's, and the hop is judged by what its
// URL names instead: in route, before anything is sent to the proxy, or,
// for a pooled HTTP/2 tunnel (which skips route), in gotConn by the
// target getConn was given. A first hop through a proxy is public unless
// its host is a private address literal; a redirect through a proxy is
// refused when its host is one. A host name cannot be judged there (the
// proxy resolves it) and is let through.
type hopGuard struct {
	cls     *netpolicy.Classifier
	proxies *proxyAddrs
	cancel  context.CancelCauseFunc

	mu     sync.Mutex
	hops   int  // hops judged so far
	public bool // the first hop was public
	next   hop  // the hop route described, until getConn takes it
	cur    hop  // the hop being connected
}

// hop is what the guard knows of one request before it connects.
type hop struct {
	host    string // the URL's host, without port
	proxied bool   // route saw it go through a proxy, and judged it
	routed  bool   // route described it
}

// hopGuardKey is the context key under which an attempt's hopGuard is
// found by the transport's proxy function.
type hopGuardKey struct{}

func (g *hopGuard) route(host string, proxied bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next = hop{host: host, proxied: proxied, routed: true}
	if !proxied {
		return nil // gotConn sees the address
	}
	return g.judge(literal(host))
}

func (g *hopGuard) getConn(hostPort string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next.routed {
		g.cur = g.next
	} else {
		// A pooled HTTP/2 connection, found by its target's host:port.
		host, _, _ := net.SplitHostPort(hostPort)
		g.cur = hop{host: strings.Trim(host, "[]")}
	}
	g.next = hop{}
}

func (g *hopGuard) gotConn(info httptrace.GotConnInfo) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur.proxied {
		return // route judged it
	}
	tcp, ok := info.Conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return
	}
	var err error
	if g.proxies.has(tcp.String()) {
		err = g.judge(literal(g.cur.host)) // an HTTP/2 tunnel through the proxy
	} else if addr, ok := netip.AddrFromSlice(tcp.IP); ok {
		err = g.judge(addr, true)
	}
	if err != nil && !isHTTP2(info.Conn) {
		// Cancelling is not enough for HTTP/1: net/http writes the
		// request to the connection it handed over without looking at
		// the context again. A closed connection sends nothing. HTTP/2
		// does look before it writes the headers, and its connection may
		// be carrying other requests.
		info.Conn.Close()
	}
}

// isHTTP2 reports whether c was negotiated for HTTP/2.
func isHTTP2(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// judge counts a hop whose address is addr (if known) and refuses it if
// it leads from a public first hop to a private address. The caller
// holds g.mu.
func (g *hopGuard) judge(addr netip.Addr, known bool) error {
	private := known && g.cls.Private(addr)
	g.hops++
	if g.hops == 1 {
		g.public = !private
		return nil
	}
	if !private || !g.public {
		return nil
	}
	err := &BlockedError{Reason: fmt.Sprintf("a redirect from a public address led to the private address %s (--allow-private-redirects permits it)", addr.WithZone("").Unmap())}
	g.cancel(err)
	return err
}

// literal returns the address host spells, if it is an IP literal.
func literal(host string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(host)
	return addr, err == nil
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
	ctx = context.WithValue(ctx, hopGuardKey{}, g)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GetConn: g.getConn, GotConn: g.gotConn}), cancel
}

// blockedCause returns the policy refusal that cancelled ctx, if any.
func blockedCause(ctx context.Context) error {
	var b *BlockedError
	if cause := context.Cause(ctx); errors.As(cause, &b) {
		return b
	}
	return nil
}
