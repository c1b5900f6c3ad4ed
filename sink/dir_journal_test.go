package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

// deadPID stands for a process that is gone: it is far above any pid_max.
const deadPID = 999999999

// crash abandons d as a kill would: files are closed without any cleanup,
// and d's journal and partial files are made to look like those of a
// process that is gone.
func crash(t *testing.T, d *Dir) {
	t.Helper()
	d.journal.f.Close()
	d.root.Close()
	dir := filepath.Join(d.root.Name(), partialDir)
	entries, _ := os.ReadDir(dir)
	mine := fmt.Sprintf("%d-", os.Getpid())
	for _, e := range entries {
		if rest, ok := strings.CutPrefix(e.Name(), mine); ok {
			if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, fmt.Sprintf("%d-%s", deadPID, rest))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// testURL is the URL of input line i in the journal tests. Lines below 12
// all map to "same" under the {path} template, the rest to names of their
// own, in directories of their own for a third of them.
func testURL(i int) string {
	switch {
	case i < 12:
		return "http://h/same"
	case i%3 == 0:
		return fmt.Sprintf("http://h/d%d/f%d", i, i)
	}
	return fmt.Sprintf("http://h/f%d", i)
}

func body(i int) string { return fmt.Sprintf("body of line %d", i) }

// writeRecords appends the records of recs to out as trawl's writer would.
func writeRecords(t *testing.T, out string, recs []*record.Record) {
	t.Helper()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range recs {
		line, _ := json.Marshal(map[string]any{"index": r.Index, "url": r.URL, "status": 200, "file": r.File, "sha256": r.FileDigest})
		f.Write(append(line, '\n'))
	}
}

// filesUnder lists the regular files under base, outside the partial
// directory, as slash-separated relative names.
func filesUnder(t *testing.T, base string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(base, p)
		if e.IsDir() && rel == partialDir {
			return filepath.SkipDir
		}
		if !e.IsDir() {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(files)
	return files
}

// TestDirKilledRunsAreUndone kills runs that save many bodies for one
// name, in an order that is not input order, with only some of the
// records on disk at each kill. After every resume, the directory must
// hold exactly the files the kept records name; after the last, every
// line has its file, named as if no kill had happened.
func TestDirKilledRunsAreUndone(t *testing.T) {
	const n = 900 // enough claims that the journal spans several blocks
	base := filepath.Join(t.TempDir(), "bodies")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	tmpl, _ := ParseTemplate("{path}")
	rng := rand.New(rand.NewPCG(1, 2))
	for kill := range 4 {
		res, err := LoadResume(out, ResumeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := OpenDir(base, tmpl, DirOptions{Output: out, Resume: res})
		if err != nil {
			t.Fatal(err)
		}
		checkDirMatchesRecords(t, base, out, false)
		var todo []int
		for i := range n {
			if done, _ := res.Done(int64(i), testURL(i)); !done {
				todo = append(todo, i)
			}
		}
		// Completion order, and a kill that lets only some records through.
		rng.Shuffle(len(todo), func(a, b int) { todo[a], todo[b] = todo[b], todo[a] })
		var flushed []*record.Record
		for k, i := range todo {
			r, err := save(t, d, testURL(i), int64(i), body(i))
			if err != nil {
				t.Fatal(err)
			}
			if k%3 != 0 {
				flushed = append(flushed, r)
			}
		}
		writeRecords(t, out, flushed)
		// A body half written when the kill came.
		p, err := d.Create(&record.Record{Target: mustURL(t, testURL(0))}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte("half"))
		if p.hash != nil {
			p.hash.stop() // the killed process's goroutines die with it
		}
		crash(t, d)
		t.Logf("kill %d: %d bodies saved, %d records written", kill+1, len(todo), len(flushed))
	}

	res, err := LoadResume(out, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(base, tmpl, DirOptions{Output: out, Resume: res})
	if err != nil {
		t.Fatal(err)
	}
	var last []*record.Record
	for i := range n {
		if done, _ := res.Done(int64(i), testURL(i)); !done {
			r, err := save(t, d, testURL(i), int64(i), body(i))
			if err != nil {
				t.Fatal(err)
			}
			last = append(last, r)
		}
	}
	writeRecords(t, out, last)
	if err := d.Close(true); err != nil {
		t.Fatal(err)
	}
	checkDirMatchesRecords(t, base, out, true)
	files := filesUnder(t, base)
	var want []string
	for i := range n {
		if i == 0 {
			want = append(want, "same")
		} else if i < 12 {
			want = append(want, fmt.Sprintf("same~%d", i))
		} else {
			want = append(want, strings.TrimPrefix(mustURL(t, testURL(i)).Path, "/"))
		}
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("files after the last resume differ from a run without kills:\n got %d: %.300q\nwant %d: %.300q", len(files), files, len(want), want)
	}
	if _, err := os.Stat(filepath.Join(base, partialDir)); !os.IsNotExist(err) {
		t.Errorf("%s left after the run completed: %v", partialDir, err)
	}
}

// checkDirMatchesRecords checks that the files under base and the records
// in out agree one to one, each file holding the body of its line; with
// final, every line must have its record.
func checkDirMatchesRecords(t *testing.T, base, out string, final bool) {
	t.Helper()
	data, err := os.ReadFile(out)
	if os.IsNotExist(err) && !final {
		data, err = nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var rec struct {
			Index  int64  `json:"index"`
			File   string `json:"file"`
			SHA256 string `json:"sha256"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if prev, dup := named[rec.File]; dup {
			t.Fatalf("%s named by the records of lines %d and %d", rec.File, prev, rec.Index)
		}
		named[rec.File] = rec.Index
		got, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(rec.File)))
		sum := sha256.Sum256(got)
		if err != nil || string(got) != body(int(rec.Index)) || hex.EncodeToString(sum[:]) != rec.SHA256 {
			t.Fatalf("line %d: %s holds %q, %v", rec.Index, rec.File, got, err)
		}
	}
	for _, f := range filesUnder(t, base) {
		if _, ok := named[f]; !ok {
			t.Fatalf("%s is named by no record", f)
		}
	}
}

// TestDirUndoSparesFilesTrawlDidNotLink replaces a body left without a
// record by a file of the same name and size: the resume must keep it,
// and so must it keep a body whose record made it to disk.
func TestDirUndoSparesFilesTrawlDidNotLink(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	tmpl, _ := ParseTemplate("{path}")
	d, err := OpenDir(base, tmpl, DirOptions{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := save(t, d, "http://h/kept", 0, "same body")
	save(t, d, "http://h/theirs", 1, "same body")
	// The https twin of line 0, with the same body: it claimed kept~1
	// after losing kept, and neither claim may remove line 0's file.
	save(t, d, "https://h/kept", 2, "same body")
	writeRecords(t, out, []*record.Record{kept})
	crash(t, d)
	// Created at once after the removal, the new file may well get the
	// freed inode number; it has the same size but not the same bytes.
	theirs := filepath.Join(base, "theirs")
	os.Remove(theirs)
	os.WriteFile(theirs, []byte("SAME BODY"), 0o644)

	res, err := LoadResume(out, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err = OpenDir(base, tmpl, DirOptions{Output: out, Resume: res})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	if got := filesUnder(t, base); !slices.Equal(got, []string{"kept", "theirs"}) {
		t.Errorf("after the resume: %q, want kept and theirs", got)
	}
}

// TestDirJournalsBelongToTheirOutput kills a run and then opens the
// directory for other runs: a resume of another output leaves the killed
// run's journal for later, a new run of the same output without --resume
// drops the journal but no file, and after a killed --atomic run nothing
// it saved is named by any record, so all of it goes.
func TestDirJournalsBelongToTheirOutput(t *testing.T) {
	tmpl, _ := ParseTemplate("{path}")
	killed := func(t *testing.T, base, out string, atomic bool) {
		d, err := OpenDir(base, tmpl, DirOptions{Output: out, Atomic: atomic})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := save(t, d, "http://h/a/orphan", 0, "x"); err != nil {
			t.Fatal(err)
		}
		crash(t, d)
	}
	open := func(t *testing.T, base string, opts DirOptions) {
		d, err := OpenDir(base, tmpl, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(true); err != nil {
			t.Fatal(err)
		}
	}
	journals := func(base string) int {
		m, _ := filepath.Glob(filepath.Join(base, partialDir, "*"+journalSuffix))
		return len(m)
	}
	nothingKept := &Resume{}

	t.Run("other output", func(t *testing.T) {
		base, tmp := t.TempDir(), t.TempDir()
		a, b := filepath.Join(tmp, "a.jsonl"), filepath.Join(tmp, "b.jsonl")
		killed(t, base, a, false)
		open(t, base, DirOptions{Output: b, Resume: nothingKept})
		if got := filesUnder(t, base); len(got) != 1 || journals(base) != 1 {
			t.Fatalf("a resume of %s touched %s's run: files %q, %d journals", b, a, got, journals(base))
		}
		// The same output spelled through a symlinked directory.
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(tmp, link); err != nil {
			t.Skip("no symlinks here:", err)
		}
		open(t, base, DirOptions{Output: filepath.Join(link, "a.jsonl"), Resume: nothingKept})
		if got := filesUnder(t, base); len(got) != 0 || journals(base) != 0 {
			t.Fatalf("the resume of %s left files %q and %d journals", a, got, journals(base))
		}
		if _, err := os.Stat(filepath.Join(base, "a")); !os.IsNotExist(err) {
			t.Errorf("the directory made for the orphan was kept: %v", err)
		}
	})
	t.Run("run again without resume", func(t *testing.T) {
		base, out := t.TempDir(), filepath.Join(t.TempDir(), "out.jsonl")
		killed(t, base, out, false)
		open(t, base, DirOptions{Output: out})
		if got := filesUnder(t, base); !slices.Equal(got, []string{"a/orphan"}) || journals(base) != 0 {
			t.Fatalf("files %q, %d journals; want the file kept and the journal gone", got, journals(base))
		}
	})
	t.Run("atomic", func(t *testing.T) {
		base, out := t.TempDir(), filepath.Join(t.TempDir(), "out.jsonl")
		killed(t, base, out, true)
		// Even where the output kept from before has a record for the line.
		older := &Resume{}
		older.mark(0, "http://h/a/orphan")
		open(t, base, DirOptions{Output: out, Resume: older})
		if got := filesUnder(t, base); len(got) != 0 || journals(base) != 0 {
			t.Fatalf("files %q, %d journals after a killed --atomic run", got, journals(base))
		}
	})
	t.Run("standard output", func(t *testing.T) {
		base := t.TempDir()
		killed(t, base, "-", false)
		open(t, base, DirOptions{Output: filepath.Join(t.TempDir(), "out.jsonl"), Resume: nothingKept})
		if got := filesUnder(t, base); len(got) != 1 || journals(base) != 0 {
			t.Fatalf("files %q, %d journals; want the file kept and the journal gone", got, journals(base))
		}
	})
}

// TestDirTornJournal ends a journal in half a line, as a kill in the middle
// of a write would: the line is ignored, the rest is undone.
func TestDirTornJournal(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	tmpl, _ := ParseTemplate("{path}")
	d, err := OpenDir(base, tmpl, DirOptions{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	save(t, d, "http://h/x", 0, "x")
	os.WriteFile(filepath.Join(base, "y"), []byte("y"), 0o644)
	fi, err := os.Stat(filepath.Join(base, "y"))
	if err != nil {
		t.Fatal(err)
	}
	dev, ino, ok := inode(fi)
	if !ok {
		t.Skip("no inode numbers here")
	}
	// A claim of y with y's true identity, but with no newline: the kill
	// came before the write was whole, so before any link.
	sum := sha256.Sum256([]byte("y"))
	d.journal.write(fmt.Sprintf(`f 1 %d %d 1 %x "y"`, dev, ino, sum))
	crash(t, d)
	d, err = OpenDir(base, tmpl, DirOptions{Output: out, Resume: &Resume{}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	if got := filesUnder(t, base); !slices.Equal(got, []string{"y"}) {
		t.Fatalf("files %q, want only y", got)
	}
}

// TestEachLineBackward reads lines that straddle blocks, one longer than a
// block, and a torn last line.
func TestEachLineBackward(t *testing.T) {
	var want []string
	var b bytes.Buffer
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		n := rng.IntN(200)
		if i == 1500 {
			n = journalBlock + 10
		}
		line := fmt.Sprintf("%d %s", i, strings.Repeat("x", n))
		want = append(want, line)
		b.WriteString(line + "\n")
	}
	b.WriteString("torn")
	f, err := os.CreateTemp(t.TempDir(), "j")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(b.Bytes())
	var got []string
	if err := eachLineBackward(f, func(line string) error { got = append(got, line); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
}

// TestDirPartialDirRemovedAtTheEnd checks when the partial directory goes:
// after a complete run, unless something is still in it.
func TestDirPartialDirRemovedAtTheEnd(t *testing.T) {
	tmpl, _ := ParseTemplate("{path}")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	exists := func(base string) bool {
		_, err := os.Stat(filepath.Join(base, partialDir))
		return err == nil
	}
	base := t.TempDir()
	d, _ := OpenDir(base, tmpl, DirOptions{Output: out})
	save(t, d, "http://h/x", 0, "x")
	if err := d.Close(true); err != nil || exists(base) {
		t.Errorf("complete run: %s left (%v)", partialDir, err)
	}

	// An interrupted run keeps its journal for the resume.
	base = t.TempDir()
	d, _ = OpenDir(base, tmpl, DirOptions{Output: out})
	save(t, d, "http://h/x", 0, "x")
	if err := d.Close(false); err != nil || !exists(base) {
		t.Errorf("interrupted run: journal removed (%v)", err)
	}

	// A body still in flight, or another live run's file, keeps it.
	base = t.TempDir()
	d, _ = OpenDir(base, tmpl, DirOptions{Output: out})
	p, _ := d.Create(&record.Record{Target: mustURL(t, "http://h/y")}, 0, "")
	if err := d.Close(true); err != nil || !exists(base) {
		t.Errorf("in flight: %s removed (%v)", partialDir, err)
	}
	p.Abort()
	base = t.TempDir()
	d, _ = OpenDir(base, tmpl, DirOptions{Output: out})
	other := filepath.Join(base, partialDir, fmt.Sprintf("%d-other.part", os.Getpid()))
	os.WriteFile(other, nil, 0o644)
	if err := d.Close(true); err != nil || !exists(base) {
		t.Errorf("other run's file: %s removed (%v)", partialDir, err)
	}
	if names, _ := os.ReadDir(filepath.Join(base, partialDir)); len(names) != 1 || names[0].Name() != path.Base(other) {
		t.Errorf("partial directory holds %v", names)
	}
}
