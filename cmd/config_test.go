package cmd

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/trawl-dev/trawl/internal/units"
	"github.com/trawl-dev/trawl/stage"
	"github.com/trawl-dev/trawl/transform"
)

func testApp() *app {
	a := &app{version: "test", registry: transform.Builtin()}
	a.options = optionTable(a.version)
	return a
}

// parseFlags returns a flag set with every option, parsed from args.
func parseFlags(t *testing.T, a *app, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addFlags(fs, a.options)
	fs.String("config", "", "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// sameValue compares two spellings of a setting by what they mean: 0 and
// 0s are the same duration, 64MiB and 67108864 the same size.
func sameValue(k kind, a, b string) bool {
	switch k {
	case kindDuration:
		da, errA := units.ParseDuration(a)
		db, errB := units.ParseDuration(b)
		return errA == nil && errB == nil && da == db
	case kindSize:
		sa, errA := units.ParseSize(a)
		sb, errB := units.ParseSize(b)
		return errA == nil && errB == nil && sa == sb
	}
	return a == b
}

// TestExampleConfigDocumentsAndLoads keeps configs/trawl.example.yaml in step
// with the option table: it must load cleanly, name every key, and give
// each exactly the default the table defines.
func TestExampleConfigDocumentsAndLoads(t *testing.T) {
	path := filepath.Join("..", "configs", "trawl.example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := testApp()
	for _, o := range a.options {
		prefix := `(?m)^`
		if machineDefaults[o.name] {
			prefix = `(?m)^# `
		}
		if !regexp.MustCompile(prefix + regexp.QuoteMeta(o.name) + `:`).Match(data) {
			t.Errorf("example config does not document %q", o.name)
		}
	}
	fs := parseFlags(t, a, "--config", path)
	s, err := loadSettings(fs, a.options)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range a.options {
		st := s.byName[o.name]
		if machineDefaults[o.name] {
			if st.from.layer != "default" {
				t.Errorf("%s is set by the example file, which should leave it to the machine", o.name)
			}
			continue
		}
		if st.from.layer != "config" {
			t.Errorf("%s came from %s, not the example file", o.name, st.from)
		}
		if got := strings.Join(append(st.items, st.text), ""); !sameValue(o.kind, got, o.def) {
			t.Errorf("example config sets %s to %q, the default is %q", o.name, got, o.def)
		}
	}
	cfg, err := s.resolve(nil, a.registry)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FetchStage.Workers != 32 || cfg.Fetch.MaxBody != 10<<20 || cfg.FetchStage.Order != stage.InputOrder {
		t.Errorf("example config does not match the defaults: %+v", cfg)
	}
}

// TestLayers checks flag > env > file > default on one key in-process.
// TestEveryConfigExampleLoads keeps every example under configs/ valid.
func TestEveryConfigExampleLoads(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "configs", "*.example.yaml"))
	if err != nil || len(paths) < 2 {
		t.Fatalf("examples: %v, %v", paths, err)
	}
	for _, path := range paths {
		a := testApp()
		s, err := loadSettings(parseFlags(t, a, "--config", path), a.options)
		if err == nil {
			_, err = s.resolve([]string{"urls.txt"}, a.registry)
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("retries: 4\ntimeout: 9s\nmax-body: 1KiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRAWL_RETRIES", "6")
	t.Setenv("TRAWL_TIMEOUT", "8s")
	a := testApp()
	fs := parseFlags(t, a, "--config", file, "--retries", "7")
	s, err := loadSettings(fs, a.options)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.resolve(nil, a.registry)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fetch.Retries != 7 || cfg.Fetch.Timeout.String() != "8s" || cfg.Fetch.MaxBody != 1024 || cfg.Fetch.MaxRedirects != 10 {
		t.Fatalf("layers resolved to retries=%d timeout=%s max-body=%d max-redirects=%d",
			cfg.Fetch.Retries, cfg.Fetch.Timeout, cfg.Fetch.MaxBody, cfg.Fetch.MaxRedirects)
	}
	for name, want := range map[string]string{
		"retries": "flag --retries", "timeout": "env TRAWL_TIMEOUT",
		"max-body": "config file " + file, "max-redirects": "default",
	} {
		if got := s.byName[name].from.String(); got != want {
			t.Errorf("%s from %q, want %q", name, got, want)
		}
	}
}

func TestUnorderedOverridesBothStages(t *testing.T) {
	a := testApp()
	s, err := loadSettings(parseFlags(t, a, "--unordered"), a.options)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.resolve(nil, a.registry)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FetchStage.Order != stage.CompletionOrder || cfg.TransformStage.Order != stage.CompletionOrder {
		t.Fatal("--unordered did not set completion order")
	}
}

func TestSplitList(t *testing.T) {
	got, err := splitList(`title, "regex=a,b",sha256`)
	if err != nil || strings.Join(got, "|") != "title|regex=a,b|sha256" {
		t.Fatalf("splitList = %q, %v", got, err)
	}
	if got, _ := splitList("  "); got != nil {
		t.Fatalf("blank list = %q", got)
	}
}

func TestYAMLScalar(t *testing.T) {
	for in, want := range map[string]string{
		"30s": "30s", "-": `"-"`, "true": `"true"`, "": `""`, "a b": `"a b"`, "10MiB": "10MiB", "200-399": "200-399",
	} {
		if got := yamlScalar(in); got != want {
			t.Errorf("yamlScalar(%q) = %s, want %s", in, got, want)
		}
	}
}
