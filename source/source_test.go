package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

func readAllRecords(t *testing.T, opts Options) []*record.Record {
	t.Helper()
	recs, errc := Read(t.Context(), opts)
	var got []*record.Record
	for r := range recs {
		got = append(got, r)
	}
	select {
	case err := <-errc:
		t.Fatalf("read error: %v", err)
	default:
	}
	return got
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLinesCommentsAndIndexAcrossFiles(t *testing.T) {
	a := writeFile(t, "a.txt", "\uFEFFhttp://a.test/1\r\n\n  # comment\n   http://a.test/2  \n\t\n")
	b := writeFile(t, "b.txt", "#only comment\nhttps://b.test/x") // no final newline
	got := readAllRecords(t, Options{Paths: []string{a, "-", b}, Stdin: strings.NewReader("http://stdin.test/\n")})
	want := []string{"http://a.test/1", "http://a.test/2", "http://stdin.test/", "https://b.test/x"}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Index != int64(i) || r.URL != want[i] || r.Err != nil || r.Target == nil {
			t.Errorf("record %d = {%d %q %v}, want {%d %q nil}", i, r.Index, r.URL, r.Err, i, want[i])
		}
	}
}

func TestEmptyInput(t *testing.T) {
	if got := readAllRecords(t, Options{Stdin: strings.NewReader("")}); len(got) != 0 {
		t.Fatalf("got %d records from empty input", len(got))
	}
	if got := readAllRecords(t, Options{Stdin: strings.NewReader("\n\n# x\n")}); len(got) != 0 {
		t.Fatalf("got %d records from blank input", len(got))
	}
}

func TestBadLinesBecomeInvalidRecords(t *testing.T) {
	huge := "http://x.test/" + strings.Repeat("a", 1<<20)
	lines := []string{
		"ftp://x.test/file",
		"file:///etc/passwd",
		"relative/path",
		"\x00\x01\xff\xfe binary",
		huge,
		"http://",
		"http://x y.test/",
		"mailto:a@b.test",
		"http://ok.test/after",
	}
	got := readAllRecords(t, Options{Stdin: strings.NewReader(strings.Join(lines, "\n"))})
	if len(got) != len(lines) {
		t.Fatalf("got %d records, want %d", len(got), len(lines))
	}
	for i, r := range got[:len(lines)-1] {
		if r.ErrKind != record.KindInvalidURL || r.Target != nil || r.Err == nil {
			t.Errorf("line %d (%.30q): kind=%q err=%v, want invalid_url", i, lines[i], r.ErrKind, r.Err)
		}
	}
	long := got[4]
	if len(long.URL) > 1024 || !strings.HasPrefix(long.URL, "http://x.test/aaa") {
		t.Errorf("over-long line kept as %d bytes", len(long.URL))
	}
	if !strings.Contains(long.ErrorText(), "1048590 bytes") {
		t.Errorf("over-long line error %q does not give its length", long.ErrorText())
	}
	if last := got[len(got)-1]; last.Err != nil || last.Index != int64(len(lines)-1) {
		t.Errorf("line after the bad ones: %+v", last)
	}
}

func TestCheckAndCount(t *testing.T) {
	a := writeFile(t, "a.txt", "http://a/1\n#c\n\nnot a url\nhttp://a/2")
	if err := Check(Options{Paths: []string{a, "-"}}); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.txt")
	err := Check(Options{Paths: []string{a, missing}})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("Check of a missing file = %v", err)
	}
	if err := Check(Options{Paths: []string{t.TempDir()}}); err == nil {
		t.Fatal("Check accepted a directory")
	}
	n, err := Count(t.Context(), Options{Paths: []string{a, a}})
	if err != nil || n != 6 {
		t.Fatalf("Count = %d, %v; want 6", n, err)
	}
	if _, err := Count(t.Context(), Options{}); err == nil {
		t.Fatal("Count of stdin succeeded")
	}
	if !ReadsStdin(Options{}) || ReadsStdin(Options{Paths: []string{a}}) {
		t.Fatal("ReadsStdin wrong")
	}
}

// failingReader returns some data and then an I/O error.
type failingReader struct{ done bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.done {
		f.done = true
		return copy(p, "http://a.test/\n"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestReadErrorIsReported(t *testing.T) {
	recs, errc := Read(t.Context(), Options{Stdin: &failingReader{}})
	n := 0
	for range recs {
		n++
	}
	if n != 1 {
		t.Fatalf("got %d records before the error, want 1", n)
	}
	select {
	case err := <-errc:
		if !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "standard input") {
			t.Fatalf("error = %v", err)
		}
	default:
		t.Fatal("read error not reported")
	}
}

// TestCancelWhileBlockedOnInput shows that a stalled stdin does not keep the
// record channel open after cancellation.
func TestCancelWhileBlockedOnInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	recs, _ := Read(ctx, Options{Stdin: pr})
	if _, err := io.WriteString(pw, "http://a.test/\n"); err != nil {
		t.Fatal(err)
	}
	<-recs
	cancel()
	select {
	case _, ok := <-recs:
		if ok {
			t.Fatal("record after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("record channel still open after cancel")
	}
	pw.CloseWithError(errors.New("done")) // lets the reading goroutine exit
}

// TestStreamsWithoutLoadingEverything reads a generated endless-looking input
// and stops after a few records: nothing requires the input to end.
func TestStreamsWithoutLoadingEverything(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		for {
			if _, err := io.WriteString(pw, "http://a.test/x\n"); err != nil {
				return
			}
		}
	}()
	defer pr.Close()
	recs, _ := Read(ctx, Options{Stdin: pr})
	for i := range 1000 {
		r := <-recs
		if r.Index != int64(i) {
			t.Fatalf("index %d at position %d", r.Index, i)
		}
	}
}

func TestSkipKeepsNumbering(t *testing.T) {
	in := "http://a/0\nhttp://a/1\n#c\nhttp://a/2\nhttp://a/3\n"
	got := readAllRecords(t, Options{Stdin: strings.NewReader(in), Skip: func(r *record.Record) (bool, error) {
		return r.Index%2 == 0, nil
	}})
	if len(got) != 2 || got[0].Index != 1 || got[1].Index != 3 || got[1].URL != "http://a/3" {
		t.Fatalf("got %+v", got)
	}
	recs, errc := Read(t.Context(), Options{Stdin: strings.NewReader(in), Skip: func(r *record.Record) (bool, error) {
		if r.Index == 2 {
			return false, errors.New("line 2 changed")
		}
		return false, nil
	}})
	n := 0
	for range recs {
		n++
	}
	if err := <-errc; n != 2 || err == nil || !strings.Contains(err.Error(), "line 2 changed") {
		t.Fatalf("%d records, err %v", n, err)
	}
}
