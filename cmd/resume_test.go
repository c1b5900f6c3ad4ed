package cmd

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillAndResume kills trawl with SIGKILL at random moments, resumes it
// each time, and then lets a final resume finish. Whatever the kills hit,
// the output must end with exactly one valid record per input line, and in
// input order each run's records must be in index order.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	killAndResume(t, filepath.Join(dir, "out.jsonl"), dir, nil)
}

// TestKillAndResumeOutputDir is TestKillAndResume saving bodies. A kill
// lands between a body getting its name and its record reaching the file,
// so the directory must be repaired on resume: at the end every file is
// named by exactly one record, and since every URL maps to a name of its
// own, a ~N name can only be a leftover of a kill.
func TestKillAndResumeOutputDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bodies := filepath.Join(dir, "bodies")
	out := filepath.Join(dir, "out.jsonl")
	killAndResume(t, out, dir, []string{"--output-dir", bodies})
	checkSavedFiles(t, out, bodies)
}

// killAndResume runs trawl over 1200 local URLs with extra arguments,
// killing it six times, resuming, and checking out after each step.
func killAndResume(t *testing.T, out, dir string, extra []string) {
	t.Helper()
	const n = 1200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscanf(r.URL.Path, "/p/%d", &i)
		if i%97 == 13 {
			// Always failing: retried by every resume, recorded once.
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(2 * time.Millisecond)
		fmt.Fprintf(w, "<title>page %d</title>", i)
	}))
	defer srv.Close()
	list := filepath.Join(dir, "urls.txt")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s/p/%d\n", srv.URL, i)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	args := append([]string{"--resume", "-q", "-c", "4", "--retries", "0", "--flush-interval", "10ms", "--max-failures", "100%", "-x", "title", "-o", out}, extra...)
	args = append(args, list)

	const kills = 6
	for k := range kills {
		c := exec.Command("trawl", args...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		c.Process.Kill()
		c.Wait()
		lines := checkComplete(t, out, false)
		t.Logf("after kill %d: %d complete lines", k+1, lines)
	}
	c := exec.Command("trawl", args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, stderr.String())
	}
	checkComplete(t, out, true)

	// Resuming a finished run fetches nothing again but the URLs that
	// failed transiently; every other record stays as it was.
	before := recordsByIndex(t, out)
	if err := exec.Command("trawl", args...).Run(); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, out, true)
	after := recordsByIndex(t, out)
	for i, line := range before {
		if i%97 != 13 && after[i] != line {
			t.Fatalf("record %d changed on a resume of a finished run:\n%s\n%s", i, line, after[i])
		}
	}
}

// checkSavedFiles verifies that the files under bodies and the records in
// out agree one to one: every record's file is there with its sha256, no
// two records share a file, no file lacks a record, no name has a ~N
// suffix, and trawl's partial directory is gone.
func checkSavedFiles(t *testing.T, out, bodies string) {
	t.Helper()
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]int{} // file -> index of the record naming it
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var rec struct {
			Index  int     `json:"index"`
			File   *string `json:"file"`
			SHA256 *string `json:"sha256"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a record: %q", line)
		}
		if rec.File == nil {
			if rec.Index%97 != 13 {
				t.Fatalf("index %d saved no file", rec.Index)
			}
			continue
		}
		if prev, dup := named[*rec.File]; dup {
			t.Fatalf("%s is named by the records of index %d and %d", *rec.File, prev, rec.Index)
		}
		named[*rec.File] = rec.Index
		body, err := os.ReadFile(filepath.Join(bodies, filepath.FromSlash(*rec.File)))
		if err != nil {
			t.Fatalf("index %d: %v", rec.Index, err)
		}
		if sum := sha256.Sum256(body); rec.SHA256 == nil || hex.EncodeToString(sum[:]) != *rec.SHA256 {
			t.Fatalf("index %d: %s does not have the sha256 its record gives", rec.Index, *rec.File)
		}
	}
	var orphans, suffixed []string
	err = filepath.WalkDir(bodies, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(bodies, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == ".trawl-partial" {
				t.Errorf("%s is left after a complete run", rel)
				return filepath.SkipDir
			}
			return nil
		}
		if strings.Contains(rel, "~") {
			suffixed = append(suffixed, rel)
		}
		if _, ok := named[rel]; !ok {
			orphans = append(orphans, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) > 0 {
		t.Errorf("%d files no record names, such as %q", len(orphans), orphans[0])
	}
	if len(suffixed) > 0 {
		t.Errorf("%d ~N names left by the kills, such as %q", len(suffixed), suffixed[0])
	}
}

func recordsByIndex(t *testing.T, path string) map[int]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var rec struct{ Index int }
		json.Unmarshal([]byte(line), &rec)
		out[rec.Index] = line
	}
	return out
}

// checkComplete verifies the output: every line is a record, no index
// twice, and in index order within each run (segments). With final, every
// index 0..n-1 must be there. It returns the number of lines.
func checkComplete(t *testing.T, path string, final bool) int {
	t.Helper()
	const n = 1200
	f, err := os.Open(path)
	if os.IsNotExist(err) && !final {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	seen := map[int]bool{}
	lines, descents, prev := 0, 0, -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if line != "" && final {
				t.Fatalf("final file ends in a torn line %q", line)
			}
			break // a torn line from a kill; the next resume drops it
		}
		lines++
		var rec struct {
			Index     int     `json:"index"`
			ErrorKind *string `json:"error_kind"`
			Title     *string `json:"title"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not a record: %q", lines, line)
		}
		if seen[rec.Index] {
			t.Fatalf("index %d recorded twice", rec.Index)
		}
		seen[rec.Index] = true
		if rec.Index < prev {
			descents++
		}
		prev = rec.Index
		if final && rec.Index%97 != 13 && (rec.ErrorKind != nil || rec.Title == nil || *rec.Title != fmt.Sprintf("page %d", rec.Index)) {
			t.Fatalf("index %d: error_kind %v title %v", rec.Index, rec.ErrorKind, rec.Title)
		}
	}
	// Each run appends one ascending segment (input order), so the index
	// sequence can only go down where a run starts.
	if descents > 8 {
		t.Fatalf("%d descents in the index sequence: records are out of order within a run", descents)
	}
	if final {
		if len(seen) != n || lines != n {
			t.Fatalf("%d lines, %d distinct indexes; want %d", lines, len(seen), n)
		}
	}
	return lines
}
