package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/trawl-dev/trawl/record"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNames(t *testing.T) {
	def, _ := ParseTemplate(DefaultTemplate)
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		tmpl, url, ct, want string
	}{
		{"", "http://Example.COM/a/b.html", "", "example.com/a/b.html"},
		{"", "https://example.com/", "", "example.com/index.html"},
		{"", "https://example.com", "", "example.com/index.html"},
		{"", "https://example.com/dir/", "", "example.com/dir/index.html"},
		{"", "http://example.com:8080/x", "", "example.com_8080/x"},
		{"", "https://example.com:443/x", "", "example.com/x"},
		{"", "http://example.com/page.php?id=3", "", "example.com/page.q-" + hash8("id=3") + ".php"},
		{"", "http://example.com/?q=1", "", "example.com/index.q-" + hash8("q=1") + ".html"},
		{"", "http://example.com/a%20b/c%C3%A9", "", "example.com/a b/cé"},
		// Traversal attempts all stay inside.
		{"", "http://example.com/../../etc/passwd", "", "example.com/_../_../etc/passwd"},
		{"", "http://example.com/%2e%2e/%2e%2e/etc/passwd", "", "example.com/_../_../etc/passwd"},
		{"", "http://example.com/a%2f..%2f..%2fb", "", "example.com/a/_../_../b"},
		{"", `http://example.com/..\..\windows\x`, "", "example.com/.._.._windows_x"},
		{"", "http://example.com/a%00b%0a%1bc", "", "example.com/a_b__c"},
		{"", "http://example.com/%ff%fe", "", "example.com/__"},
		{"", "http://example.com/.trawl-partial/x", "", "example.com/_.trawl-partial/x"},
		{"{path}", "http://example.com/.trawl-partial/x", "", "_.trawl-partial/x"},
		{"/etc/{path}", "http://example.com/passwd", "", "etc/passwd"},
		{"../../{path}", "http://example.com/x", "", "_../_../x"},
		{"{index}.{ext}", "http://example.com/report", "application/pdf", "7.pdf"},
		{"{index}.{ext}", "http://example.com/a.JSON", "text/html", "7.json"},
		{"{index}.{ext}", "http://example.com/x", "application/x-unknown-thing", "7.bin"},
		{"{sha256}", "http://example.com/x", "", "deadbeef"},
		// {ext} after a "." adjusts: it adds nothing to a name that already
		// ends in the extension, in any case, and fills in a missing one.
		{"{host}/{path}.{ext}", "http://example.com/x.html", "text/html", "example.com/x.html"},
		{"{host}/{path}.{ext}", "http://example.com/X.HTML", "text/html", "example.com/X.HTML"},
		{"{host}/{path}.{ext}", "http://example.com/", "text/html", "example.com/index.html"},
		{"{host}/{path}.{ext}", "http://example.com/dir/", "text/html", "example.com/dir/index.html"},
		{"{host}/{path}.{ext}", "http://example.com/report", "application/pdf", "example.com/report.pdf"},
		{"{host}/{path}.{ext}", "http://example.com/a.b/report", "text/html", "example.com/a.b/report.html"},
		{"{host}/{path}.{ext}", "http://example.com/p.php?id=3", "text/html", "example.com/p.q-" + hash8("id=3") + ".php"},
		{"{host}/{path}.{ext}", "http://example.com/data.json", "text/html", "example.com/data.json"},
		{"{path}.{ext}", "http://example.com/dir/", "application/json", "dir/index.html.json"},
		{"{path}.{ext}", "http://example.com/html", "text/html", "html.html"},
		// Elsewhere {ext} is always written out.
		{"{path}-{ext}", "http://example.com/x.html", "", "x.html-html"},
		{"{index}.{ext}.{ext}", "http://example.com/x", "text/html", "7.html"},
		{"", "http://example.com/" + long + ".html", "", "example.com/" + strings.Repeat("a", 185) + "~" + hash8(long+".html") + ".html"},
	} {
		tmpl := def
		if tc.tmpl != "" {
			var err error
			if tmpl, err = ParseTemplate(tc.tmpl); err != nil {
				t.Fatal(err)
			}
		}
		got := tmpl.Name(NameInput{URL: mustURL(t, tc.url), Index: 7, ContentType: tc.ct, SHA256: "deadbeef"})
		if got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.tmpl, tc.url, got, tc.want)
		}
	}
}

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestVeryLongNamesFallBackToHash(t *testing.T) {
	tmpl, _ := ParseTemplate(DefaultTemplate)
	u := mustURL(t, "http://example.com/"+strings.Repeat("d/", 600)+"x.html")
	got := tmpl.Name(NameInput{URL: u})
	if !strings.HasPrefix(got, "_long/") || !strings.HasSuffix(got, ".html") || len(got) > 60 {
		t.Fatalf("name = %q", got)
	}
}

func TestParseTemplate(t *testing.T) {
	for _, bad := range []string{"", "{host", "{nope}/x", "{HOST}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", bad)
		}
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"http://h/../x", "http://h/%2e%2e/%2F", "http://h/a?b", "http://[::1]:8/x", "http://h/" + strings.Repeat("é", 300)} {
		f.Add(s, "{host}/{path}")
	}
	f.Fuzz(func(t *testing.T, raw, tmplText string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		tmpl, err := ParseTemplate(tmplText)
		if err != nil {
			return
		}
		name := tmpl.Name(NameInput{URL: u, ContentType: "text/html", SHA256: "ab"})
		if name == "" || strings.HasPrefix(name, "/") || len(name) > maxName {
			t.Fatalf("bad name %q", name)
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "\x00\\") || len(c) > maxComponent+20 {
				t.Fatalf("bad component %q in %q", c, name)
			}
			if c == partialDir {
				t.Fatalf("name %q uses the partial directory", name)
			}
		}
		if filepath.IsAbs(name) || !filepath.IsLocal(filepath.FromSlash(name)) {
			t.Fatalf("name %q is not local", name)
		}
	})
}

// save runs one body through a Dir as fetch would.
func save(t *testing.T, d *Dir, rawURL string, index int64, body string) (*record.Record, error) {
	t.Helper()
	r := &record.Record{Index: index, URL: rawURL, Target: mustURL(t, rawURL), ContentType: "text/html"}
	p, err := d.Create(r, 0, "")
	if err != nil {
		return r, err
	}
	if _, err := p.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	return r, p.Commit(r)
}

func TestDirSavesAndNeverOverwrites(t *testing.T) {
	base := t.TempDir()
	tmpl, _ := ParseTemplate(DefaultTemplate)
	d, err := OpenDir(base, tmpl, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	r1, err := save(t, d, "http://example.com/a/page.html", 0, "first")
	if err != nil {
		t.Fatal(err)
	}
	// The https twin and a case variant of the host map to the same name.
	r2, err := save(t, d, "https://example.com/a/page.html", 1, "second")
	if err != nil {
		t.Fatal(err)
	}
	r3, err := save(t, d, "https://EXAMPLE.com/a/page.html", 2, "third")
	if err != nil {
		t.Fatal(err)
	}
	want := map[*record.Record]string{r1: "example.com/a/page.html", r2: "example.com/a/page~1.html", r3: "example.com/a/page~2.html"}
	for r, name := range want {
		if r.File != name {
			t.Errorf("index %d saved as %q, want %q", r.Index, r.File, name)
		}
	}
	for r, body := range map[*record.Record]string{r1: "first", r2: "second", r3: "third"} {
		got, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(r.File)))
		if err != nil || string(got) != body {
			t.Errorf("%s holds %q, %v; want %q", r.File, got, err, body)
		}
		sum := sha256.Sum256([]byte(body))
		if r.FileDigest != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 %s", r.File, r.FileDigest)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(base, partialDir))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), journalSuffix) {
			t.Errorf("partial file left: %v", e)
		}
	}
}

func TestDirConcurrentCommitsToOneName(t *testing.T) {
	base := t.TempDir()
	tmpl, _ := ParseTemplate("same.txt")
	d, err := OpenDir(base, tmpl, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	names := map[string]string{}
	for i := range 20 {
		wg.Go(func() {
			body := fmt.Sprintf("body %d", i)
			r, err := save(t, d, "http://h/x", int64(i), body)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := names[r.File]; dup {
				t.Errorf("%s written twice (%q and %q)", r.File, prev, body)
			}
			names[r.File] = body
		})
	}
	wg.Wait()
	for name, body := range names {
		if got, _ := os.ReadFile(filepath.Join(base, name)); string(got) != body {
			t.Errorf("%s holds %q, want %q", name, got, body)
		}
	}
}

func TestDirAbortLeavesNothing(t *testing.T) {
	base := t.TempDir()
	tmpl, _ := ParseTemplate(DefaultTemplate)
	d, _ := OpenDir(base, tmpl, DirOptions{})
	r := &record.Record{Target: mustURL(t, "http://h/x")}
	p, err := d.Create(r, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("half a bo"))
	p.Abort()
	// Even an interrupted run leaves nothing when it saved nothing.
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(base, func(p string, e os.DirEntry, _ error) error {
		if !e.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("files after abort: %v", files)
	}
	if _, err := os.Stat(filepath.Join(base, partialDir)); !os.IsNotExist(err) {
		t.Fatalf("%s left: %v", partialDir, err)
	}
}

// TestDirSymlinkCannotEscape plants symlinks inside the directory that point
// outside it: saving must pick another name (or fail), and never write
// outside.
func TestDirSymlinkCannotEscape(t *testing.T) {
	base := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(base, "evil.example")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	os.MkdirAll(filepath.Join(base, "h"), 0o755)
	os.Symlink(filepath.Join(outside, "target"), filepath.Join(base, "h", "file"))
	tmpl, _ := ParseTemplate(DefaultTemplate)
	d, err := OpenDir(base, tmpl, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	if r, err := save(t, d, "http://evil.example/passwd", 0, "pwned"); err == nil && r.File != "evil.example~1/passwd" {
		t.Errorf("saved as %q, want evil.example~1/passwd next to the symlink", r.File)
	}
	r, err := save(t, d, "http://h/file", 1, "safe")
	if err != nil {
		t.Fatal(err)
	}
	if r.File != "h/file~1" {
		t.Errorf("saved as %q, want h/file~1 next to the symlink", r.File)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside the directory: %v", entries)
	}
}

func TestStalePartialsAreRemoved(t *testing.T) {
	base := t.TempDir()
	os.MkdirAll(filepath.Join(base, partialDir), 0o755)
	// A PID far above any pid_max stands for a process that is gone.
	stale := filepath.Join(base, partialDir, "999999999-abc.part")
	mine := filepath.Join(base, partialDir, fmt.Sprintf("%d-abc.part", os.Getpid()))
	os.WriteFile(stale, []byte("x"), 0o644)
	os.WriteFile(mine, []byte("x"), 0o644)
	tmpl, _ := ParseTemplate(DefaultTemplate)
	d, err := OpenDir(base, tmpl, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close(true)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale partial file kept")
	}
	if _, err := os.Stat(mine); err != nil {
		t.Error("a live process's partial file was removed")
	}
}

// TestDirReservedNames gives bodies the names of the run's own files, and
// of directories with those names: they get ~N, so that nothing the run
// writes at the end replaces a body, or fails on a directory in its way.
func TestDirReservedNames(t *testing.T) {
	base := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(base, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	tmpl, _ := ParseTemplate("{path}")
	// The directory is named through a symlink, the files directly.
	d, err := OpenDir(link, tmpl, DirOptions{
		Output:   filepath.Join(base, "index.jsonl"),
		Reserved: []string{filepath.Join(base, "stats.json"), "", filepath.Join(t.TempDir(), "elsewhere")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	for _, tc := range []struct{ url, want string }{
		{"http://h/index.jsonl", "index~1.jsonl"},
		{"http://h/INDEX.jsonl", "INDEX~1.jsonl"}, // a case-folding file system would clash
		{"http://h/index.jsonl/x", "index.jsonl~1/x"},
		{"http://h/stats.json", "stats~1.json"},
		{"http://h/elsewhere", "elsewhere"},
	} {
		r, err := save(t, d, tc.url, 0, "body")
		if err != nil {
			t.Fatal(err)
		}
		if r.File != tc.want {
			t.Errorf("%s saved as %q, want %q", tc.url, r.File, tc.want)
		}
	}
}

// TestDirFileAndDirectoryCompete saves a file and then a directory of the
// same name, and the other way round: the second gets ~N on the component
// that collides, as a second file would.
func TestDirFileAndDirectoryCompete(t *testing.T) {
	base := t.TempDir()
	tmpl, _ := ParseTemplate("{path}")
	d, err := OpenDir(base, tmpl, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(true)
	os.WriteFile(filepath.Join(base, "file~1"), []byte("not trawl's"), 0o644)
	os.MkdirAll(filepath.Join(base, "real"), 0o755)
	os.Symlink("real", filepath.Join(base, "inside"))
	for _, tc := range []struct{ url, want string }{
		{"http://h/file", "file"},
		{"http://h/file/child", "file~2/child"}, // file~1 is a file too
		{"http://h/file/", "file~2/index.html"},
		{"http://h/file/a/b", "file~2/a/b"},
		{"http://h/dir/child", "dir/child"},
		{"http://h/dir", "dir~1"},
		{"http://h/dir/child/x", "dir/child~1/x"},
		{"http://h/inside/x", "inside/x"}, // a symlink to a directory inside is followed
	} {
		r, err := save(t, d, tc.url, 0, tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if r.File != tc.want {
			t.Errorf("%s saved as %q, want %q", tc.url, r.File, tc.want)
		}
		if got, _ := os.ReadFile(filepath.Join(base, filepath.FromSlash(r.File))); string(got) != tc.url {
			t.Errorf("%s holds %q", r.File, got)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(base, "file~1")); string(got) != "not trawl's" {
		t.Errorf("file~1 overwritten: %q", got)
	}
}
