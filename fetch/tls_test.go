package fetch

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testpki"
	"github.com/trawl-dev/trawl/record"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsServer starts an HTTPS server with cert, adjusted by tune. Its
// handler answers with the common name of the client's certificate, if
// any. Handshake failures are expected, so they are not logged.
func tlsServer(t *testing.T, cert tls.Certificate, h2 bool, tune func(*tls.Config)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "none"
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "client=%s", client)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if tune != nil {
		tune(srv.TLS)
	}
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// wantTLS checks that r failed with error_kind tls, on its one attempt,
// for the reason given.
func wantTLS(t *testing.T, what string, r *record.Record, reason string) {
	t.Helper()
	t.Logf("%s: %v", what, r.Err)
	if r.ErrKind != record.KindTLS || r.Attempts != 1 || r.Err == nil || !strings.Contains(r.Err.Error(), reason) {
		t.Errorf("%s: kind %q after %d attempts, error %v; want tls after 1, saying %q", what, r.ErrKind, r.Attempts, r.Err, reason)
	}
}

// TestPrivateCA: a certificate from a private CA is refused as an unknown
// authority, and accepted once the CA's bundle (read from its file) is
// given.
func TestPrivateCA(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	srv := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "server"}), false, nil)
	o := testOptions()
	o.Retries = 2
	wantTLS(t, "without the CA", fetchOne(t, newClient(t, o), srv.URL), "certificate signed by unknown authority")

	pool, err := LoadCertPool(writeFile(t, "ca.pem", ca.PEM()))
	if err != nil {
		t.Fatal(err)
	}
	o.RootCAs = pool
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil || r.Status != 200 {
		t.Fatalf("with the CA: status %d, error %v", r.Status, r.Err)
	}
}

// TestCertificateReasons: an expired certificate and one for another name
// are error_kind tls, and the error says which.
func TestCertificateReasons(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	o := testOptions()
	o.RootCAs = ca.Pool()

	expired := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "old", Expired: true}), false, nil)
	wantTLS(t, "expired", fetchOne(t, newClient(t, o), expired.URL), "certificate has expired")

	other := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "other", DNS: []string{"other.test"}}), false, nil)
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	o.Resolve = map[string]string{"right.test:" + port: "127.0.0.1:" + port}
	wantTLS(t, "wrong name", fetchOne(t, newClient(t, o), "https://right.test:"+port+"/"), "certificate is valid for other.test, not right.test")

	// The same servers pass when nothing is wrong, so the failures above
	// are the reasons they give.
	right := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "right", DNS: []string{"right.test"}}), false, nil)
	_, port, _ = net.SplitHostPort(right.Listener.Addr().String())
	o.Resolve = map[string]string{"right.test:" + port: "127.0.0.1:" + port}
	if r := fetchOne(t, newClient(t, o), "https://right.test:"+port+"/"); r.Err != nil {
		t.Errorf("the right name: %v", r.Err)
	}
}

// TestClientCertificate: a server that requires a client certificate
// refuses a client without one (error_kind tls, not retried) and serves one
// with it, over TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2.
func TestClientCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	client := ca.Issue(t, testpki.Leaf{Name: "trawl-client", Client: true})
	cert, err := LoadClientCert(writeFile(t, "client.pem", append(testpki.CertPEM(client), testpki.KeyPEM(t, client)...)), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		max  uint16
		h2   bool
		// reason is what the refusal says: TLS 1.3 has an alert for it,
		// over 1.2 servers send a bare handshake_failure. Empty: the
		// refusal is not checked. Over TLS 1.3 the server judges the
		// certificate after the client's handshake is done, and an
		// HTTP/2 connection often fails on its first write or read
		// without the alert: x/net/http2 reports "client conn could not
		// be established" and keeps the cause to itself.
		reason string
	}{
		{"TLS 1.3", tls.VersionTLS13, false, "tls: certificate required"},
		{"TLS 1.2", tls.VersionTLS12, false, "remote error: tls: handshake failure"},
		{"TLS 1.2 HTTP/2", tls.VersionTLS12, true, "remote error: tls: handshake failure"},
		{"TLS 1.3 HTTP/2", tls.VersionTLS13, true, ""},
	} {
		srv := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "server"}), tc.h2, func(c *tls.Config) {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.ClientCAs = ca.Pool()
			c.MaxVersion = tc.max
		})
		o := testOptions()
		o.RootCAs = ca.Pool()
		o.Retries = 2
		if tc.reason != "" {
			wantTLS(t, tc.name+" without a certificate", fetchOne(t, newClient(t, o), srv.URL), tc.reason)
		}
		o.ClientCert = &cert
		r := fetchOne(t, newClient(t, o), srv.URL)
		if r.Err != nil || string(r.Body) != "client=trawl-client" {
			t.Errorf("%s with the certificate: body %q, error %v", tc.name, r.Body, r.Err)
		}
		if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[tc.h2]; r.Proto != want {
			t.Errorf("%s: spoke %s, want %s", tc.name, r.Proto, want)
		}
	}
}

// TestTLSMin: --tls-min 1.3 refuses a server that speaks at most 1.2.
func TestTLSMin(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	srv := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "server"}), false, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	o := testOptions()
	o.RootCAs = ca.Pool()
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil {
		t.Fatalf("default minimum: %v", r.Err)
	}
	o.TLSMin = tls.VersionTLS13
	wantTLS(t, "--tls-min 1.3", fetchOne(t, newClient(t, o), srv.URL), "remote error: tls: protocol version not supported")
}

// TestClientCertificateSentWhateverTheServerLists: a server whose request
// names other CAs still gets the certificate (it may accept it anyway, as
// this one does), where Go's own choice would send none.
func TestClientCertificateSentWhateverTheServerLists(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	unrelated := testpki.NewCA(t, "some other CA")
	srv := tlsServer(t, ca.Issue(t, testpki.Leaf{Name: "server"}), false, func(c *tls.Config) {
		c.ClientAuth = tls.RequireAnyClientCert
		c.ClientCAs = unrelated.Pool() // the names the request lists
	})
	cert := ca.Issue(t, testpki.Leaf{Name: "trawl-client", Client: true})
	o := testOptions()
	o.RootCAs = ca.Pool()
	o.ClientCert = &cert
	if r := fetchOne(t, newClient(t, o), srv.URL); r.Err != nil || string(r.Body) != "client=trawl-client" {
		t.Errorf("body %q, error %v", r.Body, r.Err)
	}
}

// TestLoadFilesRefusesBadOnes: each way a CA bundle or a client
// certificate file can be wrong has a message that says which file and
// what is wrong with it.
func TestLoadFilesRefusesBadOnes(t *testing.T) {
	ca := testpki.NewCA(t, "trawl test CA")
	client := ca.Issue(t, testpki.Leaf{Name: "c", Client: true})
	other := ca.Issue(t, testpki.Leaf{Name: "other", Client: true})
	dir := t.TempDir()
	file := func(name string, parts ...[]byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.Join(parts, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cert, key := file("cert.pem", testpki.CertPEM(client)), file("key.pem", testpki.KeyPEM(t, client))
	both := file("both.pem", testpki.CertPEM(client), testpki.KeyPEM(t, client))
	wrongKey := file("wrong-key.pem", testpki.KeyPEM(t, other))
	der := file("cert.der", client.Certificate[0])
	text := file("notes.txt", []byte("not a certificate\n"))
	badBlock := file("bad.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	der2, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := file("enc.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der2}))
	legacy := file("legacy.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: der2}))
	missing := filepath.Join(dir, "missing.pem")

	for _, good := range [][2]string{{cert, key}, {both, ""}, {both, both}} {
		if _, err := LoadClientCert(good[0], good[1]); err != nil {
			t.Errorf("LoadClientCert(%s, %q): %v", filepath.Base(good[0]), good[1], err)
		}
	}
	if _, err := LoadCertPool(file("bundle.pem", []byte("# comment\n"), testpki.KeyPEM(t, client), testpki.CertPEM(client), testpki.CertPEM(other))); err != nil {
		t.Errorf("a bundle with a key among its certificates: %v", err)
	}
	for _, tc := range []struct {
		what string
		err  func() error
		want string
	}{
		{"missing CA bundle", func() error { _, err := LoadCertPool(missing); return err }, "cannot read the CA bundle: open " + missing + ": no such file"},
		{"DER CA bundle", func() error { _, err := LoadCertPool(der); return err }, der + " holds no PEM certificate"},
		{"text CA bundle", func() error { _, err := LoadCertPool(text); return err }, text + " holds no PEM certificate"},
		{"broken certificate", func() error { _, err := LoadCertPool(badBlock); return err }, "certificate 1 in " + badBlock + " does not parse"},
		{"missing cert", func() error { _, err := LoadClientCert(missing, key); return err }, "cannot read the client certificate: open " + missing},
		{"missing key", func() error { _, err := LoadClientCert(cert, missing); return err }, "cannot read the client key: open " + missing},
		{"cert not PEM", func() error { _, err := LoadClientCert(der, key); return err }, der + " holds no PEM certificate"},
		{"cert without its key", func() error { _, err := LoadClientCert(cert, ""); return err }, cert + " holds no private key: give the key's file with --key"},
		{"key not PEM", func() error { _, err := LoadClientCert(cert, text); return err }, text + " holds no PEM private key"},
		{"key and cert swapped", func() error { _, err := LoadClientCert(key, cert); return err }, key + " holds no PEM certificate"},
		{"key of another cert", func() error { _, err := LoadClientCert(cert, wrongKey); return err }, "client certificate " + cert + " with the key in " + wrongKey + ": tls: private key does not match public key"},
		{"encrypted key", func() error { _, err := LoadClientCert(cert, encrypted); return err }, "the private key in " + encrypted + " is encrypted"},
		{"legacy encrypted key", func() error { _, err := LoadClientCert(cert, legacy); return err }, "the private key in " + legacy + " is encrypted"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.what, err, tc.want)
		}
	}
}

func TestParseTLSVersion(t *testing.T) {
	for in, want := range map[string]uint16{"1.2": tls.VersionTLS12, " 1.3 ": tls.VersionTLS13} {
		if got, err := ParseTLSVersion(in); err != nil || got != want {
			t.Errorf("ParseTLSVersion(%q) = %#x, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "1.1", "1.0", "TLS1.3", "1.4"} {
		if _, err := ParseTLSVersion(bad); err == nil {
			t.Errorf("ParseTLSVersion(%q) accepted", bad)
		}
	}
	o := testOptions()
	o.TLSMin = tls.VersionTLS11
	if _, err := New(o); err == nil {
		t.Error("New accepted a minimum of TLS 1.1")
	}
}
