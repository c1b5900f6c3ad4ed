package fetch

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trawl-dev/trawl/internal/netpolicy"
	"github.com/trawl-dev/trawl/record"
)

// serverOn starts a test server on a given loopback address.
func serverOn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestDenyPrivateRefusesAtConnect(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	o := testOptions()
	o.Policy.DenyPrivate = true
	// A name is checked on the address it resolves to, at connect time;
	// an address written in the URL is refused before any attempt.
	for u, attempts := range map[string]int{
		strings.Replace(srv.URL, "127.0.0.1", "localhost", 1): 1,
		srv.URL: 0,
		strings.Replace(srv.URL, "127.0.0.1", "[::ffff:127.0.0.1]", 1): 0,
	} {
		r := fetchOne(t, newClient(t, o), u)
		if r.ErrKind != record.KindBlocked || r.Attempts != attempts || !strings.Contains(r.ErrorText(), "private address") {
			t.Errorf("%s: kind %s attempts %d err %v", u, r.ErrKind, r.Attempts, r.Err)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("a request reached the private server")
	}
	// The proxy a user names is exempt: it is where requests are meant to go.
	o.Proxy, _ = ParseProxy(srv.URL)
	if r := fetchOne(t, newClient(t, o), "http://far.example/"); r.Err != nil {
		t.Fatalf("through a private proxy: %v", r.Err)
	}
}

// TestDenyPrivateLiteralThroughProxy: through a proxy trawl never dials
// the target, so an address written in the URL is the one thing it can
// check itself, for the first hop and for redirects.
func TestDenyPrivateLiteralThroughProxy(t *testing.T) {
	var proxied []string
	var mu sync.Mutex
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proxied = append(proxied, r.URL.String())
		mu.Unlock()
		if r.URL.Host == "public.example" && r.URL.Path == "/to-metadata" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
			return
		}
		io.WriteString(w, "via proxy")
	}))
	defer proxy.Close()
	o := testOptions()
	o.Policy.DenyPrivate = true
	o.Proxy, _ = ParseProxy(proxy.URL)
	c := newClient(t, o)
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1%25eth0]/", "http://10.1.2.3:8080/admin", "http://public.example/to-metadata"} {
		r := fetchOne(t, c, u)
		if r.ErrKind != record.KindBlocked || !strings.Contains(r.ErrorText(), "private address") {
			t.Errorf("%s: kind %q err %v", u, r.ErrKind, r.Err)
		}
	}
	if r := fetchOne(t, c, "http://93.184.215.14/"); r.Err != nil || string(r.Body) != "via proxy" {
		t.Errorf("a public address through the proxy: %v", r.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"http://public.example/to-metadata", "http://93.184.215.14/"}
	if fmt.Sprint(proxied) != fmt.Sprint(want) {
		t.Errorf("the proxy was asked for %q, want %q", proxied, want)
	}
}

// TestPublicToPrivateRedirect plays the public internet on 127.0.0.2 and a
// private network on 127.0.0.1.
func TestPublicToPrivateRedirect(t *testing.T) {
	var privateHits atomic.Int64
	private := serverOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		privateHits.Add(1)
		if r.URL.Path == "/hop" {
			http.Redirect(w, r, "/secret", http.StatusFound)
			return
		}
		io.WriteString(w, "secret")
	}))
	public := serverOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-private":
			http.Redirect(w, r, private.URL+"/secret", http.StatusFound)
		default:
			io.WriteString(w, "public")
		}
	}))
	o := testOptions()
	o.Policy.Classifier = netpolicy.NewClassifierWith([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	c := newClient(t, o)
	// Private to private is fine, and leaves a pooled connection to reuse.
	if r := fetchOne(t, c, private.URL+"/hop"); r.Err != nil || string(r.Body) != "secret" {
		t.Fatalf("private to private: %v", r.Err)
	}
	before := privateHits.Load()
	r := fetchOne(t, c, public.URL+"/to-private")
	if r.ErrKind != record.KindBlocked || r.Attempts != 1 || !strings.Contains(r.ErrorText(), "--allow-private-redirects") {
		t.Fatalf("public to private: kind %s attempts %d err %v", r.ErrKind, r.Attempts, r.Err)
	}
	if privateHits.Load() != before {
		t.Fatal("the redirected request reached the private server")
	}
	o.Policy.AllowPrivateRedirects = true
	if r := fetchOne(t, newClient(t, o), public.URL+"/to-private"); r.Err != nil || string(r.Body) != "secret" {
		t.Fatalf("with --allow-private-redirects: %v", r.Err)
	}
}

func TestHostPatternsOnEveryHop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, strings.Replace("http://"+r.Host, "127.0.0.1", "localhost", 1)+"/there", http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	allow, _ := netpolicy.ParseHostPattern("127.0.0.1")
	deny, _ := netpolicy.ParseHostPattern("localhost")
	o := testOptions()
	o.Policy.Hosts = netpolicy.Hosts{Allow: []netpolicy.HostPattern{allow}}
	c := newClient(t, o)
	if r := fetchOne(t, c, srv.URL+"/"); r.Err != nil {
		t.Fatalf("allowed host: %v", r.Err)
	}
	if r := fetchOne(t, c, srv.URL+"/away"); r.ErrKind != record.KindBlocked || !strings.Contains(r.ErrorText(), "not allowed") {
		t.Fatalf("redirect off the allow list: %s %v", r.ErrKind, r.Err)
	}
	o.Policy.Hosts = netpolicy.Hosts{Deny: []netpolicy.HostPattern{deny}}
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	if r := fetchOne(t, newClient(t, o), "http://localhost"+port+"/"); r.ErrKind != record.KindBlocked || r.Attempts != 0 {
		t.Fatalf("denied host: %s attempts %d", r.ErrKind, r.Attempts)
	}
}

func TestCredentialsStayWithTheirHost(t *testing.T) {
	seen := make(chan string, 4)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- fmt.Sprintf("other auth=%q cookie=%q", r.Header.Get("Authorization"), r.Header.Get("Cookie"))
	}))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/landed", http.StatusFound)
		case "/cross":
			http.Redirect(w, r, other.URL+"/landed", http.StatusFound)
		case "/landed":
			seen <- fmt.Sprintf("same auth=%q", r.Header.Get("Authorization"))
		}
	}))
	defer first.Close()
	o := testOptions()
	o.Header = http.Header{"Authorization": {"Bearer s3cret"}, "Cookie": {"id=1"}}
	c := newClient(t, o)
	fetchOne(t, c, first.URL+"/same")
	if got := <-seen; got != `same auth="Bearer s3cret"` {
		t.Errorf("same-host redirect: %s", got)
	}
	// Another port is another host (and, here, another server).
	fetchOne(t, c, first.URL+"/cross")
	if got := <-seen; got != `other auth="" cookie=""` {
		t.Errorf("cross-host redirect: %s", got)
	}
	// Userinfo credentials do not follow either.
	u := strings.Replace(first.URL, "http://", "http://user:pw@", 1) + "/cross"
	fetchOne(t, c, u)
	if got := <-seen; got != `other auth="" cookie=""` {
		t.Errorf("userinfo across hosts: %s", got)
	}
}

// forwardProxy is an HTTP forward proxy for tests. It forwards requests
// (and tunnels CONNECTs) only for the hosts it maps to an upstream
// address, and answers every other request itself, as the private
// service at that address would, so that it never dials anything it was
// not told to. It logs every request it is asked to forward.
type forwardProxy struct {
	upstream map[string]string // host as requested → address to dial
	local    http.Handler
	tr       *http.Transport
	url      *url.URL

	mu      sync.Mutex
	asked   []string
	tunnels []net.Conn
}

func newForwardProxy(t *testing.T, upstream map[string]string, local http.Handler) *forwardProxy {
	t.Helper()
	p := &forwardProxy{upstream: upstream, local: local, tr: &http.Transport{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(p.closeTunnels) // before srv.Close: a tunnel holds its handler
	t.Cleanup(p.tr.CloseIdleConnections)
	p.url, _ = url.Parse(srv.URL)
	return p
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	asked := r.Method + " " + r.Host
	if r.Method != http.MethodConnect {
		asked = r.Method + " " + r.URL.String()
	}
	p.mu.Lock()
	p.asked = append(p.asked, asked)
	p.mu.Unlock()
	to, ok := p.upstream[r.Host]
	switch {
	case !ok:
		p.local.ServeHTTP(w, r)
	case r.Method == http.MethodConnect:
		p.tunnel(w, to)
	default:
		out := r.Clone(r.Context())
		out.RequestURI, out.URL.Host = "", to
		resp, err := p.tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}
}

func (p *forwardProxy) tunnel(w http.ResponseWriter, to string) {
	up, err := net.Dial("tcp", to)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.mu.Lock()
	p.tunnels = append(p.tunnels, up, down)
	p.mu.Unlock()
	io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		io.Copy(up, buf)
		up.Close()
	}()
	io.Copy(down, up)
	down.Close()
}

func (p *forwardProxy) closeTunnels() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.tunnels {
		c.Close()
	}
}

// take returns the requests asked for since the last call.
func (p *forwardProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.asked
	p.asked = nil
	return a
}

// hopHandler plays a host: /redirect?to=URL redirects there; anything
// else answers with body.
func hopHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); r.URL.Path == "/redirect" && to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		io.WriteString(w, body)
	})
}

// TestPrivateRedirectThroughProxy: through a proxy trawl never sees the
// address a hop connects to, so a redirect is judged by its target, and
// one from a public host to a private address literal must never reach
// the proxy. The public internet is played by a server on 127.0.0.2 (with
// a classifier for which it is public) and by a name the proxy maps to it
// (with the standard classifier).
func TestPrivateRedirectThroughProxy(t *testing.T) {
	origin := serverOn(t, "127.0.0.2", hopHandler("public"))
	originHost := strings.TrimPrefix(origin.URL, "http://")
	proxy := newForwardProxy(t, map[string]string{originHost: originHost, "public.example": originHost}, hopHandler("private"))
	custom := netpolicy.NewClassifierWith([]netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("169.254.0.0/16"),
	})
	targets := []string{"http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/admin", "http://[::1]:8080/admin"}
	for _, tc := range []struct {
		origin string
		cls    *netpolicy.Classifier
	}{
		{origin.URL, custom},
		{"http://public.example", nil},
	} {
		o := testOptions()
		o.Proxy = proxy.url
		o.Policy.Classifier = tc.cls
		c := newClient(t, o)
		for _, to := range targets {
			start := tc.origin + "/redirect?to=" + url.QueryEscape(to)
			r := fetchOne(t, c, start)
			if r.ErrKind != record.KindBlocked || r.Attempts != 1 || !strings.Contains(r.ErrorText(), "--allow-private-redirects") {
				t.Errorf("%s: kind %q attempts %d err %v", start, r.ErrKind, r.Attempts, r.Err)
			}
			if asked := proxy.take(); len(asked) != 1 || asked[0] != "GET "+start {
				t.Errorf("%s: the proxy was asked for %q, want only the first hop", start, asked)
			}
		}
		// A redirect to a public host goes through as before.
		start := tc.origin + "/redirect?to=" + url.QueryEscape(tc.origin+"/landed")
		if r := fetchOne(t, c, start); r.Err != nil || string(r.Body) != "public" {
			t.Errorf("%s: a public redirect through the proxy: %v", start, r.Err)
		}
		if asked := proxy.take(); len(asked) != 2 {
			t.Errorf("%s: the proxy was asked for %q, want both hops", start, asked)
		}
	}

	// A first hop whose host is a private address is the list's own
	// choice, and so is where it redirects.
	o := testOptions()
	o.Proxy = proxy.url
	c := newClient(t, o)
	start := "http://10.1.2.3/redirect?to=" + url.QueryEscape(targets[0])
	if r := fetchOne(t, c, start); r.Err != nil || string(r.Body) != "private" {
		t.Errorf("private to private through the proxy: %v", r.Err)
	}
	proxy.take()
	// --allow-private-redirects lets the redirect through.
	o.Policy.AllowPrivateRedirects = true
	start = "http://public.example/redirect?to=" + url.QueryEscape(targets[0])
	if r := fetchOne(t, newClient(t, o), start); r.Err != nil || string(r.Body) != "private" {
		t.Errorf("with --allow-private-redirects: %v", r.Err)
	}
	if asked := proxy.take(); len(asked) != 2 || asked[1] != "GET "+targets[0] {
		t.Errorf("with --allow-private-redirects the proxy was asked for %q", asked)
	}
}

// tlsServerOn starts an HTTPS test server speaking HTTP/2 on a given
// loopback address.
func tlsServerOn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestRedirectThroughProxyTunnel: an HTTPS target reached through a
// CONNECT tunnel may speak HTTP/2, and net/http then reuses the tunnel
// for later requests to that target without asking which proxy to use.
// A redirect onto such a tunnel from a public host is refused if its
// target is a private address, and followed if it is a public one, also
// when the proxy is named by a host name and has a private address (as
// proxies often do). The private network is 127.0.0.1, the public
// internet 127.0.0.2.
func TestRedirectThroughProxyTunnel(t *testing.T) {
	var privateHits atomic.Int64
	private := tlsServerOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		privateHits.Add(1)
		io.WriteString(w, "private")
	}))
	public := tlsServerOn(t, "127.0.0.2", hopHandler("public tls"))
	origin := serverOn(t, "127.0.0.2", hopHandler("public"))
	host := func(s *httptest.Server) string { return s.Listener.Addr().String() }
	proxy := newForwardProxy(t, map[string]string{
		"public.example": host(origin), host(private): host(private), host(public): host(public),
	}, hopHandler("unknown"))
	named := *proxy.url
	named.Host = "localhost:" + proxy.url.Port()

	for _, proxyURL := range []*url.URL{proxy.url, &named} {
		o := testOptions()
		o.Proxy = proxyURL
		o.Insecure = true
		o.Policy.Classifier = netpolicy.NewClassifierWith([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
		c := newClient(t, o)
		// The list names both servers itself, which leaves a tunnel to each.
		for _, s := range []*httptest.Server{private, public} {
			if r := fetchOne(t, c, s.URL+"/"); r.Err != nil || r.Proto != "HTTP/2.0" {
				t.Fatalf("via %s, %s: proto %q err %v (without HTTP/2 the test proves nothing)", proxyURL, s.URL, r.Proto, r.Err)
			}
		}
		before := privateHits.Load()
		start := "http://public.example/redirect?to=" + url.QueryEscape(private.URL+"/secret")
		r := fetchOne(t, c, start)
		if r.ErrKind != record.KindBlocked || !strings.Contains(r.ErrorText(), "--allow-private-redirects") {
			t.Errorf("via %s, onto the private tunnel: kind %q err %v", proxyURL, r.ErrKind, r.Err)
		}
		if privateHits.Load() != before {
			t.Errorf("via %s, the redirected request reached the private server", proxyURL)
		}
		start = "http://public.example/redirect?to=" + url.QueryEscape(public.URL+"/landed")
		if r := fetchOne(t, c, start); r.Err != nil || string(r.Body) != "public tls" || r.Proto != "HTTP/2.0" {
			t.Errorf("via %s, onto the public tunnel: proto %q err %v", proxyURL, r.Proto, r.Err)
		}
		if asked := proxy.take(); len(asked) != 4 {
			// Two tunnels, two first hops: the redirects reuse the tunnels.
			t.Errorf("via %s, the proxy was asked for %q", proxyURL, asked)
		}
	}
}
