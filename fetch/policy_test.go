package fetch

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
