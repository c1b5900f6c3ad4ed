package fetch

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/netrc"
	"github.com/trawl-dev/trawl/internal/testpki"
)

// authServers are two servers, each telling who authenticated to it:
// "first" redirects /same to its own /landed, /cross to the other's
// /landed, and /back to the other's /back, which redirects back to
// first's /landed. Every request's credentials are logged by server name.
type authServers struct {
	first, other *httptest.Server
	seen         chan string
}

func newAuthServers(t *testing.T) *authServers {
	s := &authServers{seen: make(chan string, 16)}
	log := func(name string, r *http.Request) {
		who := "none"
		if u, p, ok := r.BasicAuth(); ok {
			who = u + ":" + p
		} else if a := r.Header.Get("Authorization"); a != "" {
			who = a
		}
		s.seen <- name + " " + who
	}
	s.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log("other", r)
		if r.URL.Path == "/back" {
			http.Redirect(w, r, s.first.URL+"/landed", http.StatusFound)
		}
	}))
	t.Cleanup(s.other.Close)
	s.first = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log("first", r)
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/landed", http.StatusFound)
		case "/same-absolute":
			http.Redirect(w, r, s.first.URL+"/landed", http.StatusFound)
		case "/cross":
			http.Redirect(w, r, s.other.URL+"/landed", http.StatusFound)
		case "/back":
			http.Redirect(w, r, s.other.URL+"/back", http.StatusFound)
		}
	}))
	t.Cleanup(s.first.Close)
	return s
}

// got fetches raw and returns what the servers saw, request by request.
func (s *authServers) got(t *testing.T, c *Client, raw string) string {
	t.Helper()
	if r := fetchOne(t, c, raw); r.Err != nil {
		t.Fatalf("%s: %v", raw, r.Err)
	}
	var seen []string
	for {
		select {
		case v := <-s.seen:
			seen = append(seen, v)
		default:
			return strings.Join(seen, ", ")
		}
	}
}

func withUserinfo(raw, userinfo string) string {
	return strings.Replace(raw, "://", "://"+userinfo+"@", 1)
}

// TestUserStaysWithTheURLsHost: --user goes to the URL's host and its
// same-host redirects, never to another host, and not even back to the
// first one after that. A URL's own credentials win over it, and go
// where it would.
func TestUserStaysWithTheURLsHost(t *testing.T) {
	s := newAuthServers(t)
	o := testOptions()
	o.User = &BasicAuth{User: "alice", Password: "s3cret"}
	c := newClient(t, o)
	for _, tc := range []struct{ url, want string }{
		{s.first.URL + "/", "first alice:s3cret"},
		{s.first.URL + "/same", "first alice:s3cret, first alice:s3cret"},
		{s.first.URL + "/cross", "first alice:s3cret, other none"},
		{s.first.URL + "/back", "first alice:s3cret, other none, first none"},
		{withUserinfo(s.first.URL, "bob:pw") + "/same", "first bob:pw, first bob:pw"},
		{withUserinfo(s.first.URL, "bob:pw") + "/cross", "first bob:pw, other none"},
		{withUserinfo(s.first.URL, "bob:pw") + "/same-absolute", "first bob:pw, first bob:pw"},
		{withUserinfo(s.first.URL, "bob:pw") + "/back", "first bob:pw, other none, first none"},
	} {
		if got := s.got(t, c, tc.url); got != tc.want {
			t.Errorf("%s: servers saw %q, want %q", tc.url, got, tc.want)
		}
	}
}

// TestURLCredentialsAreSent: a URL's userinfo is sent as basic
// authentication, to its own host only; an Authorization header given
// with the request wins over it.
func TestURLCredentialsAreSent(t *testing.T) {
	s := newAuthServers(t)
	c := newClient(t, testOptions())
	if got, want := s.got(t, c, withUserinfo(s.first.URL, "bob:pw")+"/cross"), "first bob:pw, other none"; got != want {
		t.Errorf("servers saw %q, want %q", got, want)
	}
	if got, want := s.got(t, c, withUserinfo(s.first.URL, "token")+"/"), "first token:"; got != want {
		t.Errorf("a user name alone: servers saw %q, want %q", got, want)
	}
	o := testOptions()
	o.Header = http.Header{"Authorization": {"Bearer t0ken"}}
	c = newClient(t, o)
	if got, want := s.got(t, c, withUserinfo(s.first.URL, "bob:pw")+"/"), "first Bearer t0ken"; got != want {
		t.Errorf("with -H Authorization: servers saw %q, want %q", got, want)
	}
}

// TestNetrcPerHop: on every hop the netrc entry of that hop's host is
// used, and the default entry only for the URL's own host.
func TestNetrcPerHop(t *testing.T) {
	s := newAuthServers(t)
	host := func(srv *httptest.Server) string { u, _ := url.Parse(srv.URL); return u.Hostname() }
	if host(s.first) != host(s.other) {
		t.Fatal("the servers are expected on one address, told apart by port")
	}
	// netrc knows hosts, not ports, so the second server is reached by
	// another name.
	otherURL := strings.Replace(s.other.URL, "127.0.0.1", "localhost", 1)
	_, otherPort, _ := strings.Cut(strings.TrimPrefix(s.other.URL, "http://"), ":")
	o := testOptions()
	o.Resolve = map[string]string{"localhost:" + otherPort: "127.0.0.1:" + otherPort}
	withEntries := func(text string) *Client {
		nrc, err := netrc.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		o.Netrc = nrc
		return newClient(t, o)
	}
	c := withEntries("machine 127.0.0.1 login first-user password p1\nmachine localhost login other-user password p2\n")
	if got, want := s.got(t, c, otherURL+"/"), "other other-user:p2"; got != want {
		t.Errorf("machine entry: servers saw %q, want %q", got, want)
	}
	// The other server's /back redirects to the first's /landed.
	if got, want := s.got(t, c, otherURL+"/back"), "other other-user:p2, first first-user:p1"; got != want {
		t.Errorf("per hop: servers saw %q, want %q", got, want)
	}
	if got, want := s.got(t, c, withUserinfo(otherURL, "bob:pw")+"/"), "other bob:pw"; got != want {
		t.Errorf("URL credentials over netrc: servers saw %q, want %q", got, want)
	}

	c = withEntries("machine localhost login other-user password p2\ndefault login anon password guest\n")
	if got, want := s.got(t, c, s.first.URL+"/same"), "first anon:guest, first anon:guest"; got != want {
		t.Errorf("default on the URL's own host: servers saw %q, want %q", got, want)
	}
	if got, want := s.got(t, c, otherURL+"/back"), "other other-user:p2, first none"; got != want {
		t.Errorf("default after a redirect: servers saw %q, want %q", got, want)
	}

	// --user wins over netrc on its host; past it, netrc entries apply.
	o.User = &BasicAuth{User: "alice", Password: "s3cret"}
	c = withEntries("machine localhost login other-user password p2\nmachine 127.0.0.1 login first-user password p1\n")
	if got, want := s.got(t, c, otherURL+"/back"), "other alice:s3cret, first first-user:p1"; got != want {
		t.Errorf("--user and netrc: servers saw %q, want %q", got, want)
	}
}

func TestParseUser(t *testing.T) {
	for in, want := range map[string]BasicAuth{
		"alice:s3cret":     {"alice", "s3cret"},
		"alice:":           {"alice", ""},
		"alice:pa:ss:word": {"alice", "pa:ss:word"},
		":token":           {"", "token"},
	} {
		got, err := ParseUser(in)
		if err != nil || *got != want {
			t.Errorf("ParseUser(%q) = %+v, %v", in, got, err)
		}
	}
	if _, err := ParseUser("alice"); err == nil || !strings.Contains(err.Error(), "never stops to ask for a password") {
		t.Errorf("a user without a password: %v", err)
	}
	a := BasicAuth{User: "alice", Password: "s3cret"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, a); strings.Contains(got, "alice") || strings.Contains(got, "s3cret") {
			t.Errorf("%s shows the credentials: %s", verb, got)
		}
	}
	o := testOptions()
	o.User = &a
	o.Header = http.Header{"authorization": {"Bearer x"}}
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "give one") {
		t.Errorf("--user with -H Authorization: %v", err)
	}
}

// TestCredentialsDropWithTheScheme: a redirect to the same host name with
// another scheme gets no credentials: from https to http they would go
// in the clear, and either way the port is another one.
func TestCredentialsDropWithTheScheme(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	seen := make(chan string, 4)
	show := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if to := r.URL.Query().Get("to"); to != "" {
				http.Redirect(w, r, to+"://same.test/landed", http.StatusFound)
				return
			}
			who := "none"
			if u, p, ok := r.BasicAuth(); ok {
				who = u + ":" + p
			}
			seen <- name + " " + who
		}
	}
	secure := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "same", DNS: []string{"same.test"}}), false, nil)
	secure.Config.Handler = show("https")
	plain := httptest.NewServer(show("http"))
	defer plain.Close()
	o := testOptions()
	o.RootCAs = ca.Pool()
	o.Resolve = map[string]string{"same.test:443": secure.Listener.Addr().String(), "same.test:80": plain.Listener.Addr().String()}
	for _, user := range []bool{true, false} {
		o.User = nil
		o.Header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}}
		if user {
			o.User, o.Header = &BasicAuth{User: "alice", Password: "s3cret"}, nil
		}
		c := newClient(t, o)
		for _, tc := range []struct{ url, want string }{
			{"https://same.test/landed", "https alice:s3cret"},
			{"https://same.test/?to=https", "https alice:s3cret"},
			{"https://same.test/?to=http", "http none"},
			{"http://same.test/?to=https", "https none"},
		} {
			if r := fetchOne(t, c, tc.url); r.Err != nil {
				t.Fatalf("%s: %v", tc.url, r.Err)
			}
			if got := <-seen; got != tc.want {
				t.Errorf("user=%v %s: the server saw %q, want %q", user, tc.url, got, tc.want)
			}
		}
	}
}
