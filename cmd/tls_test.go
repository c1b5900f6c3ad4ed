package cmd

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/trawl-dev/trawl/internal/testpki"
)

// scriptT lets testpki report to a script.
type scriptT struct{ *testscript.TestScript }

func (scriptT) Helper() {}

// cmdTLSPKI starts HTTPS servers for a script and writes the files
// that trust and reach them into $WORK, made afresh for the run:
//
//	$TLSSRV     certificate from the CA in ca.pem (also cadir/ca.pem)
//	$TLSOTHER   certificate from another CA, in other-ca.pem
//	$MTLSSRV    requires a client certificate from ca.pem's CA
//	$TLS12SRV   speaks TLS 1.2 at most
//
// client.pem and client.key are a client certificate from that CA and
// its key, client-both.pem the two in one file, other.key a key of
// another certificate. Every server answers with a title naming the
// client certificate it was given: client=NAME or client=none.
//
//	tlspki
func cmdTLSPKI(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: tlspki")
	}
	t := scriptT{ts}
	ca, other := testpki.NewCA(t, "trawl script CA"), testpki.NewCA(t, "another CA")
	client := ca.Issue(t, testpki.Leaf{Name: "script-client", Client: true})
	write := func(name string, parts ...[]byte) {
		var data []byte
		for _, p := range parts {
			data = append(data, p...)
		}
		path := ts.MkAbs(name)
		ts.Check(os.MkdirAll(filepath.Dir(path), 0o755))
		ts.Check(os.WriteFile(path, data, 0o600))
	}
	write("ca.pem", ca.PEM())
	write("cadir/ca.pem", ca.PEM())
	write("other-ca.pem", other.PEM())
	write("client.pem", testpki.CertPEM(client))
	write("client.key", testpki.KeyPEM(t, client))
	write("client-both.pem", testpki.CertPEM(client), testpki.KeyPEM(t, client))
	write("other.key", testpki.KeyPEM(t, ca.Issue(t, testpki.Leaf{Name: "someone else", Client: true})))

	start := func(env string, cert tls.Certificate, tune func(*tls.Config)) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := "none"
			if len(r.TLS.PeerCertificates) > 0 {
				name = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<title>client=%s</title>", name)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		if tune != nil {
			tune(srv.TLS)
		}
		srv.StartTLS()
		ts.Defer(srv.Close)
		ts.Setenv(env, srv.URL)
	}
	start("TLSSRV", ca.Issue(t, testpki.Leaf{Name: "server"}), nil)
	start("TLSOTHER", other.Issue(t, testpki.Leaf{Name: "other server"}), nil)
	start("MTLSSRV", ca.Issue(t, testpki.Leaf{Name: "server"}), func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = ca.Pool()
	})
	start("TLS12SRV", ca.Issue(t, testpki.Leaf{Name: "server"}), func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
}

// cmdAuthSrv starts two servers that answer with a title naming the
// basic authentication they were given (auth=USER:PASSWORD or auth=none):
// $AUTHSRV (host and port in $AUTHHOST), whose /cross redirects to
// $AUTHOTHER and /deny answers 401, and $AUTHOTHER.
//
//	authsrv
func cmdAuthSrv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: authsrv")
	}
	show := func(w http.ResponseWriter, r *http.Request) {
		who := "none"
		if u, p, ok := r.BasicAuth(); ok {
			who = u + ":" + p
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>auth=%s</title>", who)
	}
	other := httptest.NewServer(http.HandlerFunc(show))
	ts.Defer(other.Close)
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cross":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/deny":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			show(w, r)
		}
	}))
	ts.Defer(first.Close)
	ts.Setenv("AUTHSRV", first.URL)
	ts.Setenv("AUTHHOST", strings.TrimPrefix(first.URL, "http://"))
	ts.Setenv("AUTHOTHER", other.URL)
}
