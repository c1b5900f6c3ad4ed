package sink

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func line(i int) string {
	return fmt.Sprintf(`{"index":%d,"url":"http://h/%d","status":200}`+"\n", i, i)
}

func write(t *testing.T, dir, name string, idx []int, tail string) string {
	t.Helper()
	var b strings.Builder
	for _, i := range idx {
		b.WriteString(line(i))
	}
	b.WriteString(tail)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func indexes(t *testing.T, out string) []int {
	var got []int
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var i int
		if _, err := fmt.Sscanf(l, `{"index":%d`, &i); err != nil {
			t.Fatalf("bad output line %q", l)
		}
		got = append(got, i)
	}
	return got
}

func TestMergeShards(t *testing.T) {
	dir := t.TempDir()
	// Shard outputs: one sorted, one with two segments (a resumed run that
	// retried 3 at the end), one shuffled (completion order: many runs).
	a := write(t, dir, "a.jsonl", []int{0, 4, 8, 12}, "")
	b := write(t, dir, "b.jsonl", []int{1, 5, 9, 13, 3}, "")
	var shuffled []int
	for i := 14; i < 1000; i++ {
		shuffled = append(shuffled, i)
	}
	shuffled = append(shuffled, 2, 6, 7, 10, 11)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	c := write(t, dir, "c.jsonl", shuffled, `{"index":1000,"url":"torn`)
	var out bytes.Buffer
	rep, err := Merge(&out, []string{a, b, c}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := indexes(t, out.String())
	if len(got) != 1000 || rep.Records != 1000 || rep.DuplicateCount != 0 || rep.GapRecords != 0 || rep.TornLines != 1 {
		t.Fatalf("%d records, report %+v", len(got), rep)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("position %d holds index %d", i, v)
		}
	}
	if !strings.Contains(out.String(), line(7)) {
		t.Fatal("lines were not copied as they are")
	}
}

func TestMergeReportsDuplicatesAndGaps(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.jsonl", []int{0, 1, 5, 6}, "")
	b := write(t, dir, "b.jsonl", []int{1, 9}, "")
	var out bytes.Buffer
	rep, err := Merge(&out, []string{a, b}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, out.String()); fmt.Sprint(got) != "[0 1 5 6 9]" {
		t.Fatalf("merged %v", got)
	}
	if rep.DuplicateCount != 1 || !strings.Contains(rep.Duplicates[0], "index 1 in ") {
		t.Fatalf("duplicates %+v", rep)
	}
	if rep.GapRecords != 5 || fmt.Sprint(rep.Gaps) != "[indexes 2-4 indexes 7-8]" {
		t.Fatalf("gaps %+v", rep)
	}
}

func TestMergeRejectsNonRecords(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.jsonl", []int{0}, "not json\n"+line(1))
	if _, err := Merge(&bytes.Buffer{}, []string{bad}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "bad.jsonl line 2") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Merge(&bytes.Buffer{}, []string{filepath.Join(dir, "missing")}, t.TempDir()); err == nil {
		t.Fatal("a missing file merged")
	}
}
