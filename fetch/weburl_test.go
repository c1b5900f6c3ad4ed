package fetch

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/weburl"
	"github.com/trawl-dev/trawl/record"
)

// TestRedirectToAnAddressSpelling: a redirect to http://0x7f.1/, or any
// other spelling inet_aton accepts, is judged and sent as 127.0.0.1. The
// test server is the proxy for every request, so no name is looked up and
// nothing leaves 127.0.0.1; it answers for public.example with a redirect
// to its ?to= parameter and tells every other host what it was asked for.
func TestRedirectToAnAddressSpelling(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Host)
		mu.Unlock()
		if r.URL.Host == "public.example" {
			w.Header().Set("Location", r.URL.Query().Get("to"))
			w.WriteHeader(http.StatusFound)
			return
		}
		io.WriteString(w, "reached "+r.URL.Host+r.URL.Path)
	}))
	defer proxy.Close()
	o := testOptions()
	o.Proxy, _ = ParseProxy(proxy.URL)
	via := func(to string) string { return "http://public.example/go?to=" + url.QueryEscape(to) }

	// By default a redirect from a public host to a private address is
	// refused, and the spelling is no way around that.
	c := newClient(t, o)
	for _, spelling := range []string{"0x7f.1", "2130706433", "0177.0.0.1", "127.1"} {
		r := fetchOne(t, c, via("http://"+spelling+":8080/x"))
		if r.ErrKind != record.KindBlocked || !strings.Contains(r.ErrorText(), "private address 127.0.0.1") {
			t.Errorf("redirect to %s: kind %q err %v, want blocked as 127.0.0.1", spelling, r.ErrKind, r.Err)
		}
	}
	// Allowed, the redirect goes to the address the spelling means.
	o.Policy.AllowPrivateRedirects = true
	c = newClient(t, o)
	for _, spelling := range []string{"0x7f.1", "2130706433", "0177.0.0.1", "127.1", "0X7F.000.0.1"} {
		r := fetchOne(t, c, via("http://"+spelling+":8080/x"))
		if r.Err != nil || string(r.Body) != "reached 127.0.0.1:8080/x" || r.FinalURL != "http://127.0.0.1:8080/x" {
			t.Errorf("redirect to %s: body %q final %q err %v", spelling, r.Body, r.FinalURL, r.Err)
		}
	}
	// Relative redirects resolve by the same rules.
	if r := fetchOne(t, c, via(`\\0x7f.1\y`)); r.Err != nil || string(r.Body) != "reached 127.0.0.1/y" {
		t.Errorf("scheme-relative redirect with backslashes: body %q err %v", r.Body, r.Err)
	}

	// With --deny-private the spelling does not hide the address.
	o.Policy.AllowPrivateRedirects = false
	o.Policy.DenyPrivate = true
	c = newClient(t, o)
	for _, spelling := range []string{"0x7f.1", "2130706433", "0xA9.0xFE.0xA9.0xFE"} {
		r := fetchOne(t, c, via("http://"+spelling+"/latest/meta-data/"))
		if r.ErrKind != record.KindBlocked || !strings.Contains(r.ErrorText(), "is a private address") || r.Attempts != 1 {
			t.Errorf("redirect to %s with --deny-private: kind %s attempts %d err %v", spelling, r.ErrKind, r.Attempts, r.Err)
		}
	}

	// An address the standard rejects is an invalid redirect, never sent.
	o.Policy.DenyPrivate = false
	r := fetchOne(t, newClient(t, o), via("http://1.2.3.256/"))
	if r.ErrKind != record.KindInvalidURL || !strings.Contains(r.ErrorText(), `redirected to http://1.2.3.256/: not a valid URL: invalid IPv4 address "1.2.3.256"`) {
		t.Errorf("redirect to 1.2.3.256: kind %s err %v", r.ErrKind, r.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range asked {
		if h != "public.example" && h != "127.0.0.1:8080" && h != "127.0.0.1" {
			t.Errorf("the proxy was asked for host %q", h)
		}
	}
}

// TestTargetIsSentAsParsed: a Target in canonical form goes on the wire
// as the standard writes it, even where net/url would refuse the path
// (a stray %) or rewrite it (|). A raw listener reads the request line,
// since Go's own server refuses such a request before any handler runs.
// The lean engine writes it in origin form; net/http can only write such
// a URL in absolute form, which servers must accept too (RFC 9112 3.2.2).
func TestTargetIsSentAsParsed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lines := make(chan string, 4)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			lines <- strings.TrimSpace(line)
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			conn.Close()
		}
	}()
	c := newClient(t, testOptions())
	absolute := "http://" + l.Addr().String()
	if testEngine == EngineLean {
		absolute = ""
	}
	for path, want := range map[string]string{
		"/100%.html?q=1%": "GET " + absolute + "/100%.html?q=1% HTTP/1.1",
		"/a|b":            "GET " + absolute + "/a|b HTTP/1.1",
		"/a b/%41":        "GET /a%20b/%41 HTTP/1.1",
	} {
		u, err := weburl.Parse("http://"+l.Addr().String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := &record.Record{URL: u.String(), Target: u.NetURL()}
		c.Fetch(t.Context(), r)
		if r.Err != nil || string(r.Body) != "ok" {
			t.Fatalf("%s: %v", path, r.Err)
		}
		select {
		case got := <-lines:
			if got != want {
				t.Errorf("%s: request line %q, want %q", path, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no request arrived", path)
		}
		if r.FinalURL != u.String() {
			t.Errorf("%s: final URL %q, want %q", path, r.FinalURL, u.String())
		}
	}
}
