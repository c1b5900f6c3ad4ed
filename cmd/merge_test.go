package cmd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// writeRecords writes a JSON Lines file holding a record for each index.
func writeRecords(t *testing.T, name string, indexes ...int) string {
	t.Helper()
	var b strings.Builder
	for _, i := range indexes {
		b.WriteString(`{"index":` + strconv.Itoa(i) + `,"url":"http://example.test/"}` + "\n")
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMergeGapsFailUnlessAllowed: missing indexes mean the merged output
// is incomplete, which exits 3 unless --allow-gaps says gaps are expected.
func TestMergeGapsFailUnlessAllowed(t *testing.T) {
	gappy := writeRecords(t, "gappy.jsonl", 0, 1, 3, 4, 9)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"gaps", []string{"merge", gappy}, exitcode.SomeFailed, []string{
			"trawl: merged 5 records from 1 file\n",
			"trawl: 5 indexes missing: index 2, indexes 5-8\n",
			"\nif gaps are expected, add --allow-gaps\n",
		}},
		{"quiet gaps", []string{"merge", "-q", gappy}, exitcode.SomeFailed, []string{
			"trawl: 5 indexes missing: index 2, indexes 5-8\n",
		}},
		{"allowed gaps", []string{"merge", "--allow-gaps", gappy}, exitcode.OK, []string{
			"trawl: 5 indexes missing: index 2, indexes 5-8\n",
		}},
		{"one gap", []string{"merge", writeRecords(t, "one.jsonl", 0, 2)}, exitcode.SomeFailed, []string{
			"trawl: merged 2 records from 1 file\n",
			"trawl: 1 index missing: index 1\n",
		}},
		{"two files", []string{"merge", writeRecords(t, "a.jsonl", 0), writeRecords(t, "b.jsonl", 1)}, exitcode.OK, []string{
			"trawl: merged 2 records from 2 files\n",
		}},
		{"one record", []string{"merge", writeRecords(t, "single.jsonl", 0)}, exitcode.OK, []string{
			"trawl: merged 1 record from 1 file\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCaught(tc.args)
			if code != tc.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if tc.code == exitcode.OK && strings.Contains(stderr, "--allow-gaps") {
				t.Errorf("stderr suggests --allow-gaps although the merge succeeded:\n%s", stderr)
			}
			if stdout == "" {
				t.Error("nothing merged")
			}
		})
	}
}
