package fetch

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

// alertServer answers every TLS ClientHello with a fatal protocol_version
// alert, as a server that speaks no TLS version the client offers does.
func alertServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				// alert record: content type 21, TLS 1.2, length 2, fatal (2), protocol_version (70)
				c.Write([]byte{21, 3, 3, 0, 2, 2, 70})
			}()
		}
	}()
	return "https://" + l.Addr().String() + "/"
}

// TestTLSRefusalsArePermanent: a server's TLS alert and plain HTTP on an
// https:// URL are error_kind tls, and not retried.
func TestTLSRefusalsArePermanent(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") }))
	defer plain.Close()
	for name, u := range map[string]string{
		"alert":      alertServer(t),
		"plain http": strings.Replace(plain.URL, "http://", "https://", 1),
	} {
		o := testOptions()
		o.Retries = 3
		r := fetchOne(t, newClient(t, o), u)
		if r.ErrKind != record.KindTLS || r.Attempts != 1 {
			t.Errorf("%s: kind %q after %d attempts (%v), want tls after 1", name, r.ErrKind, r.Attempts, r.Err)
		}
	}
}
