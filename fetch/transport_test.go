package fetch

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseResolveAndProxy(t *testing.T) {
	for in, want := range map[string][2]string{
		"Example.com:443:127.0.0.1": {"example.com:443", "127.0.0.1:443"},
		"h:80:[::1]":                {"h:80", "[::1]:80"},
		"h:8080:::1":                {"h:8080", "[::1]:8080"},
	} {
		k, a, err := ParseResolve(in)
		if err != nil || k != want[0] || a != want[1] {
			t.Errorf("ParseResolve(%q) = %q, %q, %v", in, k, a, err)
		}
	}
	for _, bad := range []string{"", "h", "h:80", "h:x:1.2.3.4", "h:0:1.2.3.4", ":80:1.2.3.4", "h:80:not-an-ip"} {
		if _, _, err := ParseResolve(bad); err == nil {
			t.Errorf("ParseResolve(%q) accepted", bad)
		}
	}
	if _, err := ParseProxy("socks5://127.0.0.1:1080"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"ftp://p:1", "http://", "::"} {
		if _, err := ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) accepted", bad)
		}
	}
}

func TestResolveSendsConnectionsElsewhere(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	key, addr, _ := ParseResolve("named.example:" + port + ":127.0.0.1")
	o := testOptions()
	o.Resolve = map[string]string{key: addr}
	r := fetchOne(t, newClient(t, o), "http://named.example:"+port+"/")
	if r.Err != nil || string(r.Body) != "named.example:"+port {
		t.Fatalf("body %q err %v", r.Body, r.Err)
	}
}

func TestProxyOption(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proxied %s", r.URL)
	}))
	defer srv.Close()
	o := testOptions()
	o.Proxy, _ = ParseProxy(srv.URL)
	r := fetchOne(t, newClient(t, o), "http://far.example/x")
	if r.Err != nil || string(r.Body) != "proxied http://far.example/x" {
		t.Fatalf("body %q err %v", r.Body, r.Err)
	}
}

func TestInsecureAndHTTP1(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	o := testOptions()
	o.Insecure = true
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil || r.Proto != "HTTP/2.0" {
		t.Fatalf("insecure: proto %q err %v", r.Proto, r.Err)
	}
	o.HTTP1 = true
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil || r.Proto != "HTTP/1.1" {
		t.Fatalf("http1: proto %q err %v", r.Proto, r.Err)
	}
}

func TestCookiesAreKeptOnlyWhenAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc", Path: "/"})
			return
		}
		c, err := r.Cookie("session")
		if err != nil {
			io.WriteString(w, "none")
			return
		}
		io.WriteString(w, c.Value)
	}))
	defer srv.Close()
	for _, jar := range []bool{false, true} {
		o := testOptions()
		o.Cookies = jar
		c := newClient(t, o)
		fetchOne(t, c, srv.URL+"/set")
		r := fetchOne(t, c, srv.URL+"/get")
		want := map[bool]string{false: "none", true: "abc"}[jar]
		if string(r.Body) != want {
			t.Errorf("cookies=%v: server saw %q", jar, r.Body)
		}
	}
}
