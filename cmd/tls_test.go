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
	"sync/atomic"
	"testing"

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

// TestBadCredentialFilesStopBeforeFetching: a CA bundle, certificate, key
// or netrc file that is missing or wrong, and a --user without a password,
// end the run with status 2 before a single request.
func TestBadCredentialFilesStopBeforeFetching(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	ca := testpki.NewCA(t, "trawl test CA")
	client := ca.Issue(t, testpki.Leaf{Name: "client", Client: true})
	for name, data := range map[string][]byte{
		"urls.txt":   []byte(srv.URL + "/\n"),
		"client.pem": testpki.CertPEM(client),
		"client.key": testpki.KeyPEM(t, client),
		"other.key":  testpki.KeyPEM(t, ca.Issue(t, testpki.Leaf{Name: "other", Client: true})),
		"bad-netrc":  []byte("machine"),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, stderr := runCaught([]string{"-q", "--cacert", "", "urls.txt"}); code != 0 || hits.Load() != 1 {
		t.Fatalf("the good run: status %d, %d requests, %s", code, hits.Load(), stderr)
	}
	hits.Store(0)
	for _, args := range [][]string{
		{"--cacert", "missing.pem"},
		{"--cacert", "urls.txt"},
		{"--cert", "missing.pem"},
		{"--cert", "client.pem"},
		{"--cert", "client.pem", "--key", "urls.txt"},
		{"--cert", "client.pem", "--key", "other.key"},
		{"--key", "client.key"},
		{"--tls-min", "1.0"},
		{"--user", "alice"},
		{"--netrc-file", "missing"},
		{"--netrc-file", "bad-netrc"},
	} {
		code, _, stderr := runCaught(append(append([]string{"-q"}, args...), "urls.txt"))
		if code != 2 || !strings.Contains(stderr, "Run 'trawl --help' for usage.") {
			t.Errorf("%v: status %d, want 2 with the usage hint:\n%s", args, code, stderr)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests were sent despite the bad settings", n)
	}
}
