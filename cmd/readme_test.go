package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeFlagsAreTheHelp keeps the README's "All flags" block the same
// as what `trawl --help` prints: the flag groups, from the first group's
// heading to the help flag's line. Run with TRAWL_UPDATE_README=1 to
// write the current help into the README.
func TestReadmeFlagsAreTheHelp(t *testing.T) {
	code, help, stderr := runCaught([]string{"--help"})
	if code != 0 {
		t.Fatalf("trawl --help: status %d: %s", code, stderr)
	}
	start := strings.Index(help, "Output flags:\n")
	end := strings.Index(help, "help for trawl\n")
	if start < 0 || end < start {
		t.Fatalf("--help has no flag groups from \"Output flags:\" to the help flag:\n%s", help)
	}
	flags := help[start : end+len("help for trawl\n")]

	path := filepath.Join("..", "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	const heading = "## All flags\n"
	h := strings.Index(readme, heading)
	if h < 0 {
		t.Fatal("README.md has no \"## All flags\" section")
	}
	open := strings.Index(readme[h:], "```\n")
	if open < 0 {
		t.Fatal("the All flags section has no code block")
	}
	open += h + len("```\n")
	closing := strings.Index(readme[open:], "```\n")
	if closing < 0 {
		t.Fatal("the All flags code block is not closed")
	}
	closing += open
	if readme[open:closing] == flags {
		return
	}
	if os.Getenv("TRAWL_UPDATE_README") == "1" {
		if err := os.WriteFile(path, []byte(readme[:open]+flags+readme[closing:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md's All flags block rewritten from --help")
		return
	}
	t.Errorf("README.md's All flags block is not what --help prints; run TRAWL_UPDATE_README=1 go test ./cmd -run ReadmeFlags to update it. --help prints:\n%s", flags)
}
