package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadCertPool reads a PEM bundle of CA certificates, for Options.RootCAs.
// Blocks other than certificates are skipped, as in the bundles operating
// systems ship; a bundle without a single certificate is an error, so that
// a wrong file (a DER certificate, a key) is not taken for an empty trust
// store that refuses every server.
func LoadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d in %s does not parse: %w", n+1, file, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----); "+
			"a DER file converts with: openssl x509 -inform der -in FILE", file)
	}
	return pool, nil
}

// LoadClientCert reads a client certificate and its private key, both
// PEM. keyFile may be empty when certFile holds the key too, as curl
// allows for --cert.
func LoadClientCert(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot read the client certificate: %w", err)
	}
	keyPEM, keyName := certPEM, certFile
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, fmt.Errorf("cannot read the client key: %w", err)
		}
		keyName = keyFile
	}
	// tls.X509KeyPair's own messages speak of "input" without naming the
	// file, and cannot tell a forgotten --key from a broken file.
	if !hasPEM(certPEM, isCert) {
		return tls.Certificate{}, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", certFile)
	}
	if hasPEM(keyPEM, isEncryptedKey) {
		return tls.Certificate{}, fmt.Errorf("the private key in %s is encrypted, and trawl never stops to ask for a passphrase; "+
			"decrypt it with: openssl pkey -in FILE -out KEYFILE", keyName)
	}
	if !hasPEM(keyPEM, isKey) {
		if keyFile == "" {
			return tls.Certificate{}, fmt.Errorf("%s holds no private key: give the key's file with --key", certFile)
		}
		return tls.Certificate{}, fmt.Errorf("%s holds no PEM private key (-----BEGIN PRIVATE KEY-----)", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate %s with the key in %s: %w", certFile, keyName, err)
	}
	return cert, nil
}

// hasPEM reports whether data holds a PEM block that match accepts.
func hasPEM(data []byte, match func(*pem.Block) bool) bool {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return false
		}
		if match(block) {
			return true
		}
	}
}

func isCert(b *pem.Block) bool { return b.Type == "CERTIFICATE" }

func isKey(b *pem.Block) bool { return strings.HasSuffix(b.Type, "PRIVATE KEY") }

// isEncryptedKey matches PKCS #8 encrypted keys and the legacy OpenSSL
// form, whose encryption is announced in a header.
func isEncryptedKey(b *pem.Block) bool {
	return b.Type == "ENCRYPTED PRIVATE KEY" || isKey(b) && strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED")
}

// TLSVersionNames lists the versions ParseTLSVersion takes, for help and
// completion.
func TLSVersionNames() []string { return []string{"1.2", "1.3"} }

// ParseTLSVersion reads --tls-min: 1.2 or 1.3. Older versions are not
// offered: Go's client refuses them by default, for their known weaknesses,
// and a flag named "minimum" should not be the way to lower the floor.
func ParseTLSVersion(s string) (uint16, error) {
	switch strings.TrimSpace(s) {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, errors.New("want 1.2 or 1.3")
}

// checkTLSMin accepts the versions Options.TLSMin may name.
func checkTLSMin(v uint16) error {
	switch v {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
		return nil
	}
	return fmt.Errorf("unsupported minimum TLS version %#04x: want TLS 1.2 or 1.3", v)
}
