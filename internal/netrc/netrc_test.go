package netrc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	f, err := Parse(`# a comment line
machine api.example.com login alice password s3cret
machine Other.Example login "bob smith" password "p a\"ss#" account ignored
machine nopass.example login carol
machine empty.example

macdef init
cd /pub
machine inmacro.example login mallory password x

machine after-macro.example login dave password d # trailing comment
default login anon password guest
machine after-default.example login eve password e
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host      string
		orDefault bool
		want      string
	}{
		{"api.example.com", false, "alice:s3cret"},
		{"API.EXAMPLE.COM", false, "alice:s3cret"},
		{"other.example", false, `bob smith:p a"ss#`},
		{"nopass.example", false, "carol:"},
		{"empty.example", true, "none"}, // names the host, gives nothing, and the default does not step in
		{"inmacro.example", false, "none"},
		{"after-macro.example", false, "dave:d"},
		{"unknown.example", false, "none"},
		{"unknown.example", true, "anon:guest"},
		{"after-default.example", false, "none"},
		{"after-default.example", true, "anon:guest"},
	} {
		got := "none"
		if l, p, ok := f.Lookup(tc.host, tc.orDefault); ok {
			got = l + ":" + p
		}
		if got != tc.want {
			t.Errorf("Lookup(%q, %v) = %q, want %q", tc.host, tc.orDefault, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"machine":                         "line 1: machine without a value",
		"machine a\nlogin":                "line 2: login without a value",
		"login x password y":              "line 1: login before any machine or default entry",
		"machine a password \"unclosed\n": "line 1: a quoted value is not closed",
		"\"machine\" a":                   "line 1: quoted \"machine\" where a keyword",
	} {
		_, err := Parse(text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", text, err, want)
		}
	}
}

// TestSecretsNotPrinted: a File that ends up in a message by mistake
// shows no password.
func TestSecretsNotPrinted(t *testing.T) {
	f, err := Parse("machine h login u password s3cret\ndefault login d password d3fault")
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, f); strings.Contains(got, "s3cret") || strings.Contains(got, "d3fault") {
			t.Errorf("%s shows a password: %s", verb, got)
		}
	}
}

func TestLoadAndDefaultPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "netrc")
	if err := os.WriteFile(path, []byte("machine h login u password p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if l, p, ok := f.Lookup("h", false); !ok || l != "u" || p != "p" {
		t.Errorf("Lookup = %q %q %v", l, p, ok)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "cannot read the netrc file") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("machine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+": line 1") {
		t.Errorf("bad file: %v", err)
	}

	t.Setenv("NETRC", path)
	if p, err := DefaultPath(); err != nil || p != path {
		t.Errorf("with $NETRC: %q %v", p, err)
	}
	t.Setenv("NETRC", "")
	t.Setenv("HOME", dir)
	t.Setenv("USERPROFILE", dir)
	if p, err := DefaultPath(); err != nil || filepath.Dir(p) != dir {
		t.Errorf("from the home directory: %q %v", p, err)
	}
}
