package sink

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"lukechampine.com/blake3"

	"github.com/trawl-dev/trawl/record"
)

// TestDigests saves a body in uneven pieces with each digest: the record
// gets the digest of exactly the bytes saved, by the algorithm asked for.
func TestDigests(t *testing.T) {
	body := make([]byte, 3*hashChunk+12345)
	rand.Read(body)
	s := sha256.Sum256(body)
	b := blake3.Sum256(body)
	want := map[Digest]string{SHA256: hex.EncodeToString(s[:]), BLAKE3: hex.EncodeToString(b[:]), NoDigest: ""}
	for d, sum := range want {
		t.Run(string(d), func(t *testing.T) {
			dir := t.TempDir()
			tmpl, _ := ParseTemplate("{index}.bin")
			dd, err := OpenDir(dir, tmpl, DirOptions{Digest: d})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse("http://h.example/x")
			r := &record.Record{Index: 7, Target: u}
			p, err := dd.Create(r, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			for rest, n := body, 1; len(rest) > 0; n = n*3 + 1 {
				k := min(n, len(rest))
				if _, err := p.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			if err := p.Commit(r); err != nil {
				t.Fatal(err)
			}
			if r.FileDigest != sum {
				t.Fatalf("digest %q, want %q", r.FileDigest, sum)
			}
			if err := dd.Close(true); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, r.File))
			if err != nil || string(got) != string(body) {
				t.Fatalf("saved %d bytes (%v), want the %d sent", len(got), err, len(body))
			}
		})
	}
}

// TestAbortStopsTheHash: an aborted file leaves no goroutine (goleak in
// TestMain would tell) and no file.
func TestAbortStopsTheHash(t *testing.T) {
	for _, d := range []Digest{SHA256, BLAKE3} {
		dir := t.TempDir()
		tmpl, _ := ParseTemplate("{index}.bin")
		dd, err := OpenDir(dir, tmpl, DirOptions{Digest: d})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse("http://h.example/x")
		p, err := dd.Create(&record.Record{Target: u}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		p.Write(make([]byte, 2*hashChunk+1))
		p.Abort()
		dd.Close(true)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s: %d entries left", d, len(entries))
		}
	}
}
