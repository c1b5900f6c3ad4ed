package sink

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sinceLine is a record of an earlier run for index i, with an ETag.
func sinceLine(i int, extra string) string {
	return fmt.Sprintf(`{"index":%d,"url":"http://h.test/%d","status":200,"content_type":"text/html","bytes":%d,"truncated":false,"error":null,"error_kind":null,"etag":"\"e%d\"","last_modified":null%s}`+"\n",
		i, i, 100+i, i, extra)
}

func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prev.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSinceJoinsByIndexAndIdentity: in input order or in completion order
// (sorted in chunks), every index finds its record once; a record for
// another URL, a failed one, one without validators or without what the
// run needs (its file, its digest, a transform's output) is no previous
// record; a torn last line is left out.
func TestSinceJoinsByIndexAndIdentity(t *testing.T) {
	const n = 300
	var lines []string
	for i := range n {
		extra := `,"file":"h/` + fmt.Sprint(i) + `","sha256":"d` + fmt.Sprint(i) + `","title":"t` + fmt.Sprint(i) + `","n":12345678901234567890`
		switch i {
		case 7: // failed
			lines = append(lines, fmt.Sprintf(`{"index":7,"url":"http://h.test/7","status":500,"error":"x","error_kind":"http_status","etag":"\"e7\""%s}`+"\n", extra))
			continue
		case 8: // no validators
			lines = append(lines, `{"index":8,"url":"http://h.test/8","status":200,"error_kind":null,"etag":null,"last_modified":null,"file":"f","sha256":"d","title":"t","n":1}`+"\n")
			continue
		case 9: // no file
			extra = `,"file":null,"sha256":null,"title":"t","n":1`
		case 10: // no title column
			extra = `,"file":"f","sha256":"d","n":1`
		}
		lines = append(lines, sinceLine(i, extra))
	}
	for _, order := range []string{"input", "completion"} {
		t.Run(order, func(t *testing.T) {
			ls := append([]string(nil), lines...)
			if order == "completion" {
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
			}
			ls = append(ls, `{"index":299,"url":"http://h.te`) // torn
			s, err := OpenSince(writeLines(t, ls), SinceOptions{Files: true, Digest: "sha256", Columns: []string{"title", "n"}, TmpDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !s.Torn() {
				t.Error("the torn last line went unnoticed")
			}
			found := 0
			for i := range n + 5 {
				id := fmt.Sprintf("http://h.test/%d", i)
				if i == 20 {
					id = "http://h.test/other" // the list changed here
				}
				p, err := s.Lookup(int64(i), id)
				if err != nil {
					t.Fatal(err)
				}
				wantNone := i == 7 || i == 8 || i == 9 || i == 10 || i == 20 || i >= n
				if wantNone != (p == nil) {
					t.Fatalf("index %d: previous %+v, want none: %v", i, p, wantNone)
				}
				if p == nil {
					continue
				}
				found++
				if p.ETag != fmt.Sprintf(`"e%d"`, i) || p.Bytes != int64(100+i) || p.File != fmt.Sprintf("h/%d", i) ||
					p.FileDigest != fmt.Sprintf("d%d", i) || p.Values[0] != fmt.Sprintf("t%d", i) || fmt.Sprint(p.Values[1]) != "12345678901234567890" {
					t.Fatalf("index %d: %+v", i, p)
				}
			}
			if found != n-5 || s.Matched != int64(found) {
				t.Fatalf("%d found, %d matched, want %d", found, s.Matched, n-5)
			}
		})
	}
	// A missing file is nothing to compare with; a file that is not
	// trawl's output is an error.
	s, err := OpenSince(filepath.Join(t.TempDir(), "none.jsonl"), SinceOptions{})
	if err != nil || !s.Missing() {
		t.Fatalf("missing file: %v, %v", s, err)
	}
	if p, _ := s.Lookup(0, "x"); p != nil {
		t.Fatal("a missing file gave a record")
	}
	if _, err := OpenSince(writeLines(t, []string{"not json\n", "{}\n"}), SinceOptions{}); err == nil || !strings.Contains(err.Error(), "not a trawl record") {
		t.Fatalf("not trawl's output: %v", err)
	}
}
