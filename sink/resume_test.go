package sink

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeOutput(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	ok0      = `{"index":0,"url":"http://a/0","status":200,"error_kind":null}` + "\n"
	ok1      = `{"index":1,"url":"http://a/1","status":200,"error_kind":null}` + "\n"
	gone2    = `{"index":2,"url":"http://a/2","status":404,"error_kind":"http_status"}` + "\n"
	busy3    = `{"index":3,"url":"http://a/3","status":503,"error_kind":"http_status"}` + "\n"
	slow4    = `{"index":4,"url":"http://a/4","status":null,"error_kind":"timeout"}` + "\n"
	bad5     = `{"index":5,"url":"ftp://a/5","status":null,"error_kind":"invalid_url"}` + "\n"
	limited6 = `{"index":6,"url":"http://a/6","status":429,"error_kind":"http_status"}` + "\n"
)

func TestResumeKeepsDoneAndDropsRetries(t *testing.T) {
	p := writeOutput(t, ok0+ok1+gone2+busy3+slow4+bad5+limited6+`{"index":7,"url":"http://a/7","sta`)
	res, err := LoadResume(p, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != 4 || res.Retry != 3 || !res.Torn {
		t.Fatalf("kept %d retry %d torn %v", res.Kept, res.Retry, res.Torn)
	}
	got, _ := os.ReadFile(p)
	if string(got) != ok0+ok1+gone2+bad5 {
		t.Fatalf("file after repair:\n%s", got)
	}
	for i, want := range []bool{true, true, true, false, false, true, false, false} {
		u := "http://a/" + string(rune('0'+i))
		if i == 5 {
			u = "ftp://a/5"
		}
		d, err := res.Done(int64(i), u)
		if err != nil || d != want {
			t.Errorf("Done(%d) = %v, %v; want %v", i, d, err, want)
		}
	}
	if res.Unmatched() != 0 {
		t.Errorf("unmatched %d", res.Unmatched())
	}
}

func TestResumeRetryFailed(t *testing.T) {
	p := writeOutput(t, ok0+gone2+bad5)
	res, err := LoadResume(p, ResumeOptions{RetryFailed: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != 1 || res.Retry != 2 {
		t.Fatalf("kept %d retry %d", res.Kept, res.Retry)
	}
	if got, _ := os.ReadFile(p); string(got) != ok0 {
		t.Fatalf("file: %s", got)
	}
}

func TestResumeTornLineOnly(t *testing.T) {
	for _, tail := range []string{`{"index":2,"url":"http:`, "{\"index\":2,\"url\":\"http://a/2\",\"error_kind\":null}", "garbage\n"} {
		p := writeOutput(t, ok0+ok1+tail)
		res, err := LoadResume(p, ResumeOptions{})
		if err != nil {
			t.Fatalf("%q: %v", tail, err)
		}
		if !res.Torn || res.Kept != 2 {
			t.Errorf("%q: torn %v kept %d", tail, res.Torn, res.Kept)
		}
		if got, _ := os.ReadFile(p); string(got) != ok0+ok1 {
			t.Errorf("%q: file after cut: %q", tail, got)
		}
	}
}

func TestResumeDetectsChangedInput(t *testing.T) {
	p := writeOutput(t, ok0+ok1)
	res, err := LoadResume(p, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Done(1, "http://a/other"); !errors.Is(err, ErrInputChanged) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("changed line: %v", err)
	}
	res.Done(0, "http://a/0")
	if res.Unmatched() != 1 {
		t.Fatalf("unmatched %d, want the index the input no longer matches", res.Unmatched())
	}
}

func TestResumeDuplicatesAndCorruption(t *testing.T) {
	p := writeOutput(t, ok0+ok0+ok1)
	res, err := LoadResume(p, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 1 || res.Kept != 2 {
		t.Fatalf("dups %d kept %d", res.Duplicates, res.Kept)
	}
	if got, _ := os.ReadFile(p); string(got) != ok0+ok1 {
		t.Fatalf("file: %s", got)
	}
	for _, bad := range []string{ok0 + "not json\n" + ok1, ok0 + `{"index":-1,"url":"x"}` + "\n" + ok1, `{"index":99999999999,"url":"x"}` + "\n" + ok1, "index,url\n" + ok1} {
		if _, err := LoadResume(writeOutput(t, bad), ResumeOptions{}); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestResumeMissingFileIsFresh(t *testing.T) {
	res, err := LoadResume(filepath.Join(t.TempDir(), "none.jsonl"), ResumeOptions{})
	if err != nil || res.Kept != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	if d, _ := res.Done(0, "http://a/0"); d {
		t.Fatal("done without a file")
	}
}
