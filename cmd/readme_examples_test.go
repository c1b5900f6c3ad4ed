package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadmeExamples runs the README's examples. Every fenced block that
// shows a command and its output ("$ COMMAND" lines, each followed by what
// it prints on stdout and stderr) is run as one sh -c script with the real
// trawl binary on PATH, in an empty directory, and each command's output
// must be what the README shows, once the parts that vary from run to run
// (ports, durations, rates, latencies, timestamps, the DNS server) are
// normalised. Every other fenced block must be listed in readmeNotRun with
// the reason it is not run, so that a new example cannot slip into the
// README unchecked.
//
// The examples that name 127.0.0.1:8000 talk to readmeServer, started on a
// free port that replaces 8000 in the commands; `go run . demo` is run as
// `trawl demo`; a `cat FILE` step is given FILE with the content it shows.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseReadmeBlocks(string(data))
	if err != nil {
		t.Fatal(err)
	}

	// Every block is run, skipped with a reason, or not an example;
	// every entry of the lists names a block that is still there.
	usedSkip := map[string]bool{}
	usedNotRun := map[int]bool{}
	var run []readmeBlock
	for _, b := range blocks {
		if len(b.steps) > 0 {
			if _, ok := readmeSkipped[b.steps[0].cmd]; ok {
				usedSkip[b.steps[0].cmd] = true
				continue
			}
			run = append(run, b)
			continue
		}
		matched := -1
		for i, n := range readmeNotRun {
			if n.info == b.info && strings.HasPrefix(b.first, n.prefix) {
				if matched >= 0 {
					t.Errorf("README.md:%d: block matches two readmeNotRun entries (%q and %q)", b.line, readmeNotRun[matched].prefix, n.prefix)
				}
				matched = i
			}
		}
		if matched < 0 {
			t.Errorf("README.md:%d: a ```%s block that is neither an example this test runs (no \"$ \" command lines) nor listed in readmeNotRun; its first line: %q. Show its commands as \"$ COMMAND\" followed by their output, or add it to readmeNotRun with the reason it cannot be run", b.line, b.info, b.first)
			continue
		}
		if usedNotRun[matched] {
			t.Errorf("README.md:%d: readmeNotRun entry %q matches more than one block; make its prefix longer", b.line, readmeNotRun[matched].prefix)
		}
		usedNotRun[matched] = true
	}
	for cmd := range readmeSkipped {
		if !usedSkip[cmd] {
			t.Errorf("readmeSkipped names %q, which no README example starts with any more", cmd)
		}
	}
	for i, n := range readmeNotRun {
		if !usedNotRun[i] {
			t.Errorf("readmeNotRun names a ```%s block starting %q, which README.md no longer has", n.info, n.prefix)
		}
	}
	for cmd := range readmeKnownDifferent {
		found := false
		for _, b := range run {
			for _, s := range b.steps {
				found = found || s.cmd == cmd
			}
		}
		if !found {
			t.Errorf("readmeKnownDifferent names %q, which no README example runs any more", cmd)
		}
	}

	for cmd := range readmeIndependent {
		found := false
		for _, b := range run {
			found = found || b.steps[0].cmd == cmd
		}
		if !found {
			t.Errorf("readmeIndependent names %q, which no README example starts with any more", cmd)
		}
	}

	srv := httptest.NewServer(readmeServer())
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, jqErr := exec.LookPath("jq")
	dnsErr := nxdomainHere()

	// The examples spend most of their time waiting (the demo site's
	// flaky page asks for a second between retries), so they are all
	// started at once here, rather than as parallel subtests, which -parallel
	// (GOMAXPROCS: 2 here) would run two at a time.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)
	var units []*readmeUnit
	for _, b := range run {
		script := strings.Join(stepCommands(b), "\n")
		var skip string
		switch {
		case jqErr != nil && regexp.MustCompile(`\bjq\b`).MatchString(script):
			skip = fmt.Sprintf("README.md:%d needs jq, which is not installed: %v", b.line, jqErr)
		case dnsErr != nil && strings.Contains(script, ".invalid"):
			skip = fmt.Sprintf("README.md:%d needs a resolver that answers NXDOMAIN for .invalid names: %v", b.line, dnsErr)
		}
		if _, ok := readmeIndependent[b.steps[0].cmd]; ok {
			for _, s := range b.steps {
				units = append(units, &readmeUnit{name: fmt.Sprintf("line%d", s.line), block: b.line, steps: []readmeStep{s}, skip: skip})
			}
			continue
		}
		units = append(units, &readmeUnit{name: fmt.Sprintf("line%d", b.line), block: b.line, steps: b.steps, skip: skip})
	}
	for _, u := range units {
		if u.skip != "" {
			continue
		}
		u.start(ctx, t, &wg, addr)
	}
	for _, u := range units {
		t.Run(u.name, func(t *testing.T) {
			if u.skip != "" {
				t.Skip(u.skip)
			}
			u.check(t, addr)
		})
	}
}

// readmeIndependent lists the blocks, by their first command, whose
// commands share nothing (no file, no $?): they are run each in a shell of
// its own, at the same time, to keep the test short.
var readmeIndependent = map[string]string{
	"trawl demo -q | jq -r 'select(.error_kind != null) | [.index, .status, .error_kind, .error] | @tsv'": "three demo runs, each read by jq",
}

// readmeSkipped lists the command-and-output blocks that are not run, by
// their first command, with the reason.
var readmeSkipped = map[string]string{}

// readmeKnownDifferent lists commands whose README output is known to
// differ from what trawl prints, with the difference; they are run and
// their difference logged, and the test fails once they agree again so
// that the entry is removed.
var readmeKnownDifferent = map[string]string{}

// readmeNotRun lists the fenced blocks that are not examples with output,
// by their info string and the start of their first line, with the reason
// they are not run.
var readmeNotRun = []struct{ info, prefix, reason string }{
	{"", "URLs ──> fetch stage", "a diagram"},
	{"sh", "go run . demo", "commands without output; `trawl demo` is run by the Quick start example"},
	{"sh", "go install github.com/trawl-dev/trawl@latest", "needs the network"},
	{"sh", "# bash (needs the bash-completion package)", "installs completion scripts into the user's shell set-up"},
	{"sh", "trawl urls.txt                          # one JSON record per URL", "commands without output, on placeholder lists (urls.txt, a.txt) and hosts"},
	{"sh", "jq -r 'select(.error_kind != null and .error_kind != \"invalid_url\")", "a command without output, on a placeholder out.jsonl"},
	{"cron", "15 3 * * *", "a crontab line: runs nightly in /srv/crawl"},
	{"", "trawl: 10000 URLs in 784ms", "output only: the summary of a --since run of 10,000 local pages"},
	{"sh", "trawl --robots obey --per-host 2 urls.txt", "commands without output, on a placeholder list and example.org"},
	{"", "trawl: 7 URLs in 42ms", "output only: a summary with robots.txt refusals"},
	{"sh", "trawl -q -x links start.txt", "a command without output, on a placeholder list"},
	{"", "Output flags:", "the All flags block, which TestReadmeFlagsAreTheHelp checks against --help"},
	{"sh", "trawl --deny-private --max-redirects 5", "a command without output, on a placeholder list"},
	{"sh", "configs/slurm/submit.sh urls.txt", "needs a Slurm cluster (.ci/slurm/run.sh runs the recipe)"},
	{"", "slurm-ci [5s]: cluster up", "output only: the Slurm CI job's log"},
	{"sh", "parallel --sshlogin 4/box1,4/box2", "needs ssh hosts"},
	{"sh", "go test -race ./...                  # everything", "the test commands themselves"},
}

// readmeBlock is one fenced block of the README.
type readmeBlock struct {
	line  int    // line of the opening fence, from 1
	info  string // the fence's info string (sh, console, ...)
	first string // the first line of its content
	steps []readmeStep
}

// readmeStep is one "$ COMMAND" of a block and the lines the README shows
// it printing.
type readmeStep struct {
	line int
	cmd  string
	want []string
}

// parseReadmeBlocks splits the README into its fenced blocks, and the
// blocks with "$ " lines into commands and their output. A command ending
// in a backslash continues on the next line.
func parseReadmeBlocks(readme string) ([]readmeBlock, error) {
	var blocks []readmeBlock
	var cur *readmeBlock
	var content []string
	lines := strings.Split(readme, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "```") {
			if cur != nil {
				content = append(content, l)
			}
			continue
		}
		if cur == nil {
			cur = &readmeBlock{line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(l, "```"))}
			content = nil
			continue
		}
		if len(content) > 0 {
			cur.first = content[0]
		}
		for j := 0; j < len(content); j++ {
			c := content[j]
			if !strings.HasPrefix(c, "$ ") {
				if len(cur.steps) == 0 {
					if j > 0 || hasCommandLine(content) {
						return nil, fmt.Errorf("README.md:%d: line before the block's first \"$ \" command: %q", cur.line+1+j, c)
					}
					break
				}
				last := &cur.steps[len(cur.steps)-1]
				last.want = append(last.want, c)
				continue
			}
			s := readmeStep{line: cur.line + 1 + j, cmd: strings.TrimPrefix(c, "$ ")}
			for strings.HasSuffix(s.cmd, `\`) && j+1 < len(content) {
				j++
				s.cmd += "\n" + content[j]
			}
			cur.steps = append(cur.steps, s)
		}
		blocks = append(blocks, *cur)
		cur = nil
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md:%d: the block is never closed", cur.line)
	}
	return blocks, nil
}

func hasCommandLine(content []string) bool {
	for _, c := range content {
		if strings.HasPrefix(c, "$ ") {
			return true
		}
	}
	return false
}

// stepCommands is the block's commands as run: `go run . ` is the trawl
// binary.
func stepCommands(b readmeBlock) []string {
	var cmds []string
	for _, s := range b.steps {
		cmds = append(cmds, runnable(s.cmd))
	}
	return cmds
}

func runnable(cmd string) string {
	if rest, ok := strings.CutPrefix(cmd, "go run . "); ok {
		return "trawl " + rest
	}
	return cmd
}

// readmeMarker separates the output of one step from the next's, on
// stdout and on stderr.
const readmeMarker = "@@trawl-readme-step-end@@"

var catFile = regexp.MustCompile(`^cat ([\w.-]+)$`)

// readmeUnit is a block's commands run in one shell, or one command of a
// block listed in readmeIndependent.
type readmeUnit struct {
	name  string
	block int // the block's line in README.md
	steps []readmeStep
	skip  string // why the unit is not run, if it is not

	done           chan struct{} // closed when the shell is done, and these are set:
	stdout, stderr string
	err            error
	elapsed        time.Duration
}

// start runs the unit's commands in one shell, in a fresh directory, in
// the background.
func (u *readmeUnit) start(ctx context.Context, t *testing.T, wg *sync.WaitGroup, addr string) {
	dir := t.TempDir()
	var script strings.Builder
	for _, s := range u.steps {
		cmd := strings.ReplaceAll(runnable(s.cmd), "127.0.0.1:8000", addr)
		if m := catFile.FindStringSubmatch(cmd); m != nil {
			content := strings.ReplaceAll(strings.Join(s.want, "\n")+"\n", "127.0.0.1:8000", addr)
			if err := os.WriteFile(filepath.Join(dir, m[1]), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The marker is printed whatever the command did, and $? is kept
		// for the next command (`echo $?`).
		fmt.Fprintf(&script, "%s\n__rc=$?; echo %s; echo %s >&2; (exit $__rc)\n", cmd, readmeMarker, readmeMarker)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	c := exec.CommandContext(ctx, "sh", "-c", script.String())
	c.Dir = dir
	c.Env = readmeEnv(dir)
	c.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	u.done = make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(u.done)
		defer cancel()
		start := time.Now()
		err := c.Run()
		u.elapsed = time.Since(start)
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			u.err = fmt.Errorf("not done within a minute (%v)", ctx.Err())
		case err != nil && !errors.As(err, &ee):
			u.err = err
		}
		u.stdout, u.stderr = stdout.String(), stderr.String()
	}()
}

// check waits for the unit's shell and compares each command's output
// with the README's.
func (u *readmeUnit) check(t *testing.T, addr string) {
	<-u.done
	if u.err != nil {
		t.Fatalf("README.md:%d: %v; stdout:\n%s\nstderr:\n%s", u.block, u.err, u.stdout, u.stderr)
	}
	t.Logf("README.md:%d: ran in %s", u.steps[0].line, u.elapsed.Round(time.Millisecond))
	outs := splitSteps(strings.ReplaceAll(u.stdout, addr, "127.0.0.1:8000"))
	errs := splitSteps(strings.ReplaceAll(u.stderr, addr, "127.0.0.1:8000"))
	if len(outs) != len(u.steps) || len(errs) != len(u.steps) {
		t.Fatalf("README.md:%d: the script stopped early (%d of %d steps); stdout:\n%s\nstderr:\n%s", u.block, min(len(outs), len(errs)), len(u.steps), u.stdout, u.stderr)
	}
	for i, s := range u.steps {
		want := normalizeLines(s.want)
		gotOut, gotErr := normalizeLines(outs[i]), normalizeLines(errs[i])
		same := interleaves(want, gotOut, gotErr)
		known, isKnown := readmeKnownDifferent[s.cmd]
		switch {
		case same && isKnown:
			t.Errorf("README.md:%d: %q now prints what the README shows; remove it from readmeKnownDifferent (%s)", s.line, s.cmd, known)
		case !same && isKnown:
			t.Logf("README.md:%d: known difference (%s) of %q:\n%s", s.line, known, s.cmd, describeDiff(s.want, outs[i], errs[i]))
		case !same:
			t.Errorf("README.md:%d: %s\n%s", s.line, s.cmd, describeDiff(s.want, outs[i], errs[i]))
		}
	}
}

// readmeEnv is the environment the examples run in: this one, without
// trawl's settings or config files, and with a home of their own.
func readmeEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TRAWL_"), name == "HOME", name == "XDG_CONFIG_HOME",
			name == "NETRC", name == "TOKEN", strings.HasSuffix(strings.ToUpper(name), "_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"), "TOKEN=readme-example-token")
}

// splitSteps cuts a stream at the markers into each step's lines. A
// marker after output that did not end in a newline ends that line.
func splitSteps(s string) [][]string {
	var steps [][]string
	var cur []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\n")
		if before, ok := strings.CutSuffix(l, readmeMarker); ok {
			if before != "" {
				cur = append(cur, before)
			}
			steps = append(steps, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return steps
}

// interleaves reports whether want is stdout's and stderr's lines merged
// in some order that keeps each stream's own order: the README shows them
// together, and where they come from different processes of a pipeline
// their relative order is not fixed.
func interleaves(want, out, errs []string) bool {
	if len(want) != len(out)+len(errs) {
		return false
	}
	// ok[j] says whether want[:i+j] is out[:i] merged with errs[:j].
	ok := make([]bool, len(errs)+1)
	for i := 0; i <= len(out); i++ {
		for j := 0; j <= len(errs); j++ {
			switch {
			case i == 0 && j == 0:
				ok[j] = true
			default:
				fromOut := i > 0 && ok[j] && out[i-1] == want[i+j-1]
				fromErr := j > 0 && ok[j-1] && errs[j-1] == want[i+j-1]
				ok[j] = fromOut || fromErr
			}
		}
	}
	return ok[len(errs)]
}

func describeDiff(want, out, errs []string) string {
	var b strings.Builder
	b.WriteString("README shows:\n")
	for _, l := range want {
		b.WriteString("\t" + l + "\n")
	}
	b.WriteString("trawl printed on stdout:\n")
	for _, l := range out {
		b.WriteString("\t" + l + "\n")
	}
	b.WriteString("and on stderr:\n")
	for _, l := range errs {
		b.WriteString("\t" + l + "\n")
	}
	return b.String()
}

// The parts of an example's output that differ from run to run, and what
// they are replaced with on both sides.
var readmeVarying = []struct {
	re   *regexp.Regexp
	with string
}{
	// The demo site and the test server listen on free ports.
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	// The summary's elapsed time and rate, and latency percentiles.
	{regexp.MustCompile(` in \S+ \(\d+(\.\d+)? URLs/s\)`), " in ELAPSED (RATE URLs/s)"},
	{regexp.MustCompile(`latency p50 \S+ p95 \S+ p99 \S+`), "latency p50 P p95 P p99 P"},
	// Records' timings and times (a URL never fetched keeps its 0 and null).
	{regexp.MustCompile(`"duration_ms":(0\.\d*[1-9]\d*|[1-9][\d.]*)`), `"duration_ms":DURATION`},
	{regexp.MustCompile(`"fetched_at":"[^"]*"`), `"fetched_at":"TIME"`},
	// WARC file names carry the time the file was started. Offsets into
	// them do not vary from run to run, but they count the bytes of the
	// URLs and responses archived, so they are those of the README's own
	// server on port 8000 there, and of another port here.
	{regexp.MustCompile(`-(\d{5})-\d{14}\.warc\.gz`), "-$1-TIME.warc.gz"},
	{regexp.MustCompile(`"warc_offset":\d+`), `"warc_offset":OFFSET`},
	// The resolver that answered, when the error names it.
	{regexp.MustCompile(`lookup (\S+?)( on \S+)?: no such host`), "lookup $1 on RESOLVER: no such host"},
}

func normalizeLines(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		for _, v := range readmeVarying {
			l = v.re.ReplaceAllString(l, v.with)
		}
		out[i] = l
	}
	return out
}

// nxdomainHere says whether this machine's resolver answers that a .invalid
// name does not exist (as the README's DNS example needs), and if not, why.
func nxdomainHere() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := net.DefaultResolver.LookupHost(ctx, "example.invalid")
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return nil
	}
	if err == nil {
		return errors.New("example.invalid resolved")
	}
	return err
}

// readmeServer is the README's "small test server on 127.0.0.1:8000 that
// titles its pages, answers 404 under /gone/ and echoes PUTs as JSON": for
// any GET /.../NAME the page <html><head><title>Paper NAME</title></head>
// <body>ok</body></html>, an empty 404 under /gone/, and for a PUT of a
// JSON object to /v1/items/SKU that object with "sku" (the path segment as
// sent) and "updated": true.
func readmeServer() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>Paper %s</title></head><body>ok</body></html>", html.EscapeString(path.Base(r.URL.Path)))
	})
	mux.HandleFunc("GET /gone/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	mux.HandleFunc("PUT /v1/items/", func(w http.ResponseWriter, r *http.Request) {
		var item map[string]any
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&item); err != nil {
			http.Error(w, "not a JSON object: "+err.Error(), http.StatusBadRequest)
			return
		}
		item["sku"] = strings.TrimPrefix(r.URL.EscapedPath(), "/v1/items/")
		item["updated"] = true
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(item)
	})
	return mux
}
