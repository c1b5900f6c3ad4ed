package lean

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/net/proxy"
)

// dialFunc adapts a DialFunc to what golang.org/x/net/proxy calls.
type dialFunc DialFunc

func (d dialFunc) Dial(network, addr string) (net.Conn, error) {
	return d(context.Background(), network, addr)
}

func (d dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

// dialSOCKS connects to the route's host through a SOCKS5 proxy, which
// resolves the name itself (socks5 and socks5h alike, as curl's
// socks5h and net/http do).
func (c *Client) dialSOCKS(ctx context.Context, rt route) (net.Conn, error) {
	var auth *proxy.Auth
	if u := rt.proxy.User; u != nil {
		pass, _ := u.Password()
		auth = &proxy.Auth{User: u.Username(), Password: pass}
	}
	port := rt.proxy.Port()
	if port == "" {
		port = "1080"
	}
	d, err := proxy.SOCKS5("tcp", net.JoinHostPort(rt.proxy.Hostname(), port), auth, dialFunc(c.opts.DialProxy))
	if err != nil {
		return nil, fmt.Errorf("SOCKS proxy: %w", err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("SOCKS proxy: no dialer that takes a context")
	}
	nc, err := cd.DialContext(ctx, "tcp", rt.addr)
	if err != nil {
		return nil, fmt.Errorf("through the SOCKS proxy: %w", err)
	}
	return nc, nil
}
