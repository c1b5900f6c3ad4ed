package sink

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSeries writes n URLs' records for output, one file per URL when
// rotate, and returns the records (their File and Offset say where).
func writeSeries(t *testing.T, path, output string, n int, rotate bool) []string {
	t.Helper()
	opts := WARCOptions{Path: path, Output: output}
	if rotate {
		opts.MaxSize = 1
	}
	w := openTestWARC(t, opts)
	var where []string
	for i := range n {
		r := captured(exchange(fmt.Sprintf("http://example.test/%d", i), "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", strings.Repeat("x", i+1), ""))
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		where = append(where, fmt.Sprintf("%s@%d", r.Capture.File, r.Capture.Offset))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return where
}

// tear appends the first half of a gzip member, as a writer killed in the
// middle of a record leaves.
func tear(t *testing.T, path string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("WARC/1.1\r\nWARC-Type: response\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("torn ", 200)))
	zw.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b.Bytes()[:b.Len()/2])
	f.Close()
}

func split(t *testing.T, where string) (string, int64) {
	t.Helper()
	name, off, _ := strings.Cut(where, "@")
	var n int64
	fmt.Sscan(off, &n)
	return name, n
}

func targets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range warcFiles(t, dir) {
		if b, _ := os.ReadFile(f); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			continue // not a WARC of ours (a test plants one)
		}
		for _, r := range readWARC(t, f) {
			if r.get("WARC-Type") == "response" {
				out = append(out, r.get("WARC-Target-URI"))
			}
		}
	}
	return out
}

// TestWARCResumeCutsWhatNoKeptRecordPointsAt: after a kill, the resumed
// run's WARC keeps the records up to the last one a kept line points at
// and loses the rest (captures of lost lines, a torn member), other
// outputs' files untouched, and goes on with the same run's series.
func TestWARCResumeCutsWhatNoKeptRecordPointsAt(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	where := writeSeries(t, dir+"/", out, 5, true) // files 0..5: info only, then one URL each
	other := writeSeries(t, dir+"/", filepath.Join(dir, "other.jsonl"), 1, false)
	files := warcFiles(t, dir)
	last := files[len(files)-2] // this output's last file
	tear(t, last)
	empty := filepath.Join(dir, "trawl-00099-20261201000000.warc.gz")
	os.WriteFile(empty, nil, 0o644)
	foreign := filepath.Join(dir, "trawl-00098-20261201000000.warc.gz")
	os.WriteFile(foreign, []byte("not a WARC of ours"), 0o644)

	// The lines of URLs 0 and 1 were kept; those of 2..4 were lost.
	file, off := split(t, where[1])
	w := openTestWARC(t, WARCOptions{Path: dir + "/", Output: out, Resume: &Resume{WARCFile: file, WARCOffset: off}})
	// Three files of captures whose lines were lost, and the empty one.
	if !strings.Contains(w.Note, "4 WARC files no kept record points at removed") {
		t.Errorf("note %q", w.Note)
	}
	w.Close()
	got := targets(t, dir)
	want := []string{"http://example.test/0", "http://example.test/1", "http://example.test/0"} // the last from other.jsonl
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("responses left %v, want %v", got, want)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Error("an empty file of the series was left")
	}
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "not a WARC of ours" {
		t.Error("a file that is not ours was touched")
	}
	otherName, _ := split(t, other[0])
	if _, err := os.Stat(filepath.Join(dir, otherName)); err != nil {
		t.Error("another output's file was removed")
	}
	// The resumed run's file comes after every other, in the same run.
	files = warcFiles(t, dir)
	newest := files[len(files)-1]
	if !strings.HasPrefix(filepath.Base(newest), "trawl-00099-") { // the empty 00099 was removed; 00098 is the highest left
		t.Errorf("the resumed run's file is %s", filepath.Base(newest))
	}
	first, _ := readInfo(filepath.Join(dir, file))
	resumed, _ := readInfo(newest)
	if first[infoRunField] == "" || first[infoRunField] != resumed[infoRunField] || first[infoOutputField] != resumed[infoOutputField] {
		t.Errorf("the resumed run's file belongs to run %q of %q, want %q of %q", resumed[infoRunField], resumed[infoOutputField], first[infoRunField], first[infoOutputField])
	}
}

// TestWARCResumeCutsATornMember: kept records in the last file, a torn
// member after them.
func TestWARCResumeCutsATornMember(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	where := writeSeries(t, dir+"/", out, 3, false)
	name, off := split(t, where[2])
	path := filepath.Join(dir, name)
	before, _ := os.Stat(path)
	tear(t, path)
	w := openTestWARC(t, WARCOptions{Path: dir + "/", Output: out, Resume: &Resume{WARCFile: name, WARCOffset: off}})
	w.Close()
	after, _ := os.Stat(path)
	if after.Size() != before.Size() {
		t.Errorf("the file is %d bytes after the repair, %d before the tear", after.Size(), before.Size())
	}
	if !strings.Contains(w.Note, "bytes of captures no kept record points at removed from "+name) {
		t.Errorf("note %q", w.Note)
	}
	readWARC(t, path) // whole again
}

// TestWARCResumeWithNothingKept: a run killed before any line pointing at
// the WARC reached the output leaves captures no line points at: they go.
func TestWARCResumeWithNothingKept(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	writeSeries(t, dir+"/", out, 2, false)
	w := openTestWARC(t, WARCOptions{Path: dir + "/", Output: out, Resume: &Resume{}})
	w.Close()
	if got := targets(t, dir); len(got) != 0 {
		t.Errorf("responses left %v", got)
	}
	// A resume of an output whose runs wrote no WARC here touches nothing.
	writeSeries(t, dir+"/", filepath.Join(dir, "other.jsonl"), 1, false)
	w = openTestWARC(t, WARCOptions{Path: dir + "/", Output: filepath.Join(dir, "third.jsonl"), Resume: &Resume{}})
	w.Close()
	if got := targets(t, dir); len(got) != 1 {
		t.Errorf("responses left %v", got)
	}
}

func TestWARCResumeRefusesAMissingFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	writeSeries(t, dir+"/", out, 1, false)
	_, err := OpenWARC(WARCOptions{Path: dir + "/", Output: out, Resume: &Resume{WARCFile: "trawl-00007-20261201000000.warc.gz", WARCOffset: 10}})
	if err == nil || !strings.Contains(err.Error(), "trawl-00007-20261201000000.warc.gz") {
		t.Fatalf("want an error naming the missing file, got %v", err)
	}
}
