package cmd

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// hangServer answers /fast at once and lets /hang requests hang until the
// client gives up; started receives one value per hanging request.
func hangServer(t *testing.T) (*httptest.Server, chan struct{}) {
	started := make(chan struct{}, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fast") {
			io.WriteString(w, "ok")
			return
		}
		started <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, started
}

func writeList(t *testing.T, base string, fast, hang int) string {
	t.Helper()
	var b strings.Builder
	for i := range fast {
		fmt.Fprintf(&b, "%s/fast/%d\n", base, i)
	}
	for i := range hang {
		fmt.Fprintf(&b, "%s/hang/%d\n", base, i)
	}
	p := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitN waits for n signals on ch, failing the test after a generous bound.
func waitN(t *testing.T, ch <-chan struct{}, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case <-ch:
		case <-timeout:
			t.Fatal("requests did not start")
		}
	}
}

func waitExit(t *testing.T, c *exec.Cmd, within time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return c.ProcessState
	case <-time.After(within):
		c.Process.Kill()
		<-done
		t.Fatalf("trawl did not exit within %s", within)
	}
	return nil
}

// TestSignalStopsGracefully sends one signal while requests hang: trawl
// must stop reading, cancel the hanging requests after the grace period,
// write a record for every URL it had taken in, and exit 130 or 143.
func TestSignalStopsGracefully(t *testing.T) {
	for _, tc := range []struct {
		sig  os.Signal
		code int
		name string
	}{
		{os.Interrupt, exitcode.Interrupted, "interrupt"},
		{syscall.SIGTERM, exitcode.Terminated, "terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, started := hangServer(t)
			list := writeList(t, srv.URL, 5, 200)
			out := filepath.Join(t.TempDir(), "out.jsonl")
			statsFile := filepath.Join(t.TempDir(), "stats.json")
			c := exec.Command("trawl", "-c", "4", "--shutdown-grace", "100ms", "--progress", "never", list, "-o", out, "--stats-file", statsFile)
			var stderr strings.Builder
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitN(t, started, 4)
			c.Process.Signal(tc.sig)
			st := waitExit(t, c, 20*time.Second)
			if st.ExitCode() != tc.code {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", st.ExitCode(), tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "finishing in-flight requests") ||
				!strings.Contains(stderr.String(), "trawl: stopped by "+tc.name+" after writing") {
				t.Errorf("stderr does not explain the stop:\n%s", stderr.String())
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if len(lines) < 9 || len(lines) >= 205 {
				t.Fatalf("%d records; want the 5 fast ones, the 4 in flight, and not the whole list", len(lines))
			}
			for i, l := range lines {
				var rec struct {
					Index     int     `json:"index"`
					ErrorKind *string `json:"error_kind"`
				}
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("line %d is not valid JSON: %q", i, l)
				}
				if rec.Index != i {
					t.Fatalf("line %d has index %d: a record was lost", i, rec.Index)
				}
				switch {
				case i < 5 && rec.ErrorKind != nil:
					t.Errorf("fast URL %d failed: %s", i, *rec.ErrorKind)
				case i >= 5 && (rec.ErrorKind == nil || *rec.ErrorKind != "canceled"):
					t.Errorf("hanging URL %d: error_kind %v, want canceled", i, rec.ErrorKind)
				}
			}
			if !strings.Contains(stderr.String(), fmt.Sprintf("trawl: %d URLs in", len(lines))) {
				t.Errorf("summary missing or wrong:\n%s", stderr.String())
			}
			var report struct {
				Outcome  string `json:"outcome"`
				ExitCode int    `json:"exit_code"`
				URLs     int    `json:"urls"`
			}
			data, err = os.ReadFile(statsFile)
			if err != nil || json.Unmarshal(data, &report) != nil {
				t.Fatalf("stats file after the interrupt: %v\n%s", err, data)
			}
			if report.Outcome != "interrupted" || report.ExitCode != tc.code || report.URLs != len(lines) {
				t.Errorf("stats file says %+v", report)
			}
		})
	}
}

// TestSecondSignalQuitsAtOnce: with a long grace period, a second signal
// must end trawl at once with the signal's status. That includes a trawl
// started with SIGINT ignored, as a background job of a script is
// (`trawl list & kill -INT $!`): there the default action of SIGINT is
// "ignore", so only trawl's own handling can end it.
func TestSecondSignalQuitsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sig     os.Signal
		ignored bool // start trawl with the signal ignored
		code    int
	}{
		{"interrupt", os.Interrupt, false, exitcode.Interrupted},
		{"terminated", syscall.SIGTERM, false, exitcode.Terminated},
		{"interrupt ignored at start", os.Interrupt, true, exitcode.Interrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, started := hangServer(t)
			list := writeList(t, srv.URL, 0, 50)
			args := []string{"-c", "4", "--shutdown-grace", "10m", "--progress", "never", list, "-o", filepath.Join(t.TempDir(), "out.jsonl")}
			c := exec.Command("trawl", args...)
			if tc.ignored {
				// The shell ignores the signal and exec keeps it ignored
				// in trawl, which is how a non-interactive shell starts a
				// background job.
				c = exec.Command("sh", append([]string{"-c", `trap '' INT; exec trawl "$@"`, "sh"}, args...)...)
			}
			stderr, err := c.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitN(t, started, 4)
			var sawNotice atomic.Bool
			notice := make(chan struct{})
			var rest strings.Builder
			readDone := make(chan struct{})
			go func() {
				defer close(readDone)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "send it again to quit at once") && !sawNotice.Swap(true) {
						close(notice)
					} else if sawNotice.Load() {
						rest.WriteString(sc.Text() + "\n")
					}
				}
			}()
			c.Process.Signal(tc.sig)
			select {
			case <-notice:
			case <-time.After(20 * time.Second):
				c.Process.Kill()
				t.Fatal("no notice after the first signal")
			}
			c.Process.Signal(tc.sig)
			// Read stderr to its end before Wait, which closes the pipe
			// and can lose the last line still in it.
			select {
			case <-readDone:
			case <-time.After(10 * time.Second):
				c.Process.Kill()
				<-readDone
				t.Fatal("trawl did not exit within 10s of the second signal")
			}
			st := waitExit(t, c, 10*time.Second)
			if st.ExitCode() != tc.code {
				t.Fatalf("after a second signal: %v, want exit status %d", st, tc.code)
			}
			if !strings.Contains(rest.String(), "quitting at once") {
				t.Errorf("stderr after the notice does not say why trawl quit:\n%s", rest.String())
			}
		})
	}
}

// TestClosedStdoutIsAWriteFailure is `trawl list | head -1`: once the
// reader has gone, trawl cannot write its output, which is a failure of
// trawl itself (status 1, said on stderr), not a death by SIGPIPE (141).
func TestClosedStdoutIsAWriteFailure(t *testing.T) {
	srv, _ := hangServer(t)
	// Long URLs make long records: the output is far more than a pipe
	// holds, so trawl is still writing when the reader closes its end.
	var b strings.Builder
	for i := range 400 {
		fmt.Fprintf(&b, "%s/fast/%d/%s\n", srv.URL, i, strings.Repeat("a", 2000))
	}
	list := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command("trawl", "--progress", "never", list)
	c.Stdout = w
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.Contains(line, `"index":0`) {
		t.Fatalf("first line %q, %v", line, err)
	}
	r.Close()
	st := waitExit(t, c, 20*time.Second)
	if st.ExitCode() != exitcode.Failure {
		t.Fatalf("with its output closed: %v, want exit status %d; stderr:\n%s", st, exitcode.Failure, stderr.String())
	}
	if !regexp.MustCompile(`(?m)^trawl: cannot write .*: broken pipe$`).MatchString(stderr.String()) {
		t.Errorf("stderr does not say the output could not be written:\n%s", stderr.String())
	}
}

// TestLockKeepsSecondRunOut starts two runs on one --lock file: the second
// exits 4 at once without fetching, and the lock is free again after the
// first one ends.
func TestLockKeepsSecondRunOut(t *testing.T) {
	srv, started := hangServer(t)
	dir := t.TempDir()
	lock := filepath.Join(dir, "job.lock")
	first := exec.Command("trawl", "-q", "--lock", lock, "--shutdown-grace", "10ms", "-c", "1", writeList(t, srv.URL, 0, 5), "-o", filepath.Join(dir, "a.jsonl"))
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitN(t, started, 1) // the lock is taken before anything is fetched

	second := exec.Command("trawl", "-q", "--lock", lock, writeList(t, srv.URL, 3, 0), "-o", filepath.Join(dir, "b.jsonl"))
	var stderr strings.Builder
	second.Stderr = &stderr
	second.Start()
	st := waitExit(t, second, 20*time.Second)
	if st.ExitCode() != exitcode.Locked {
		t.Fatalf("second run exited %d, want %d; stderr:\n%s", st.ExitCode(), exitcode.Locked, stderr.String())
	}
	if want := fmt.Sprintf("another process holds the lock (process %d); not starting", first.Process.Pid); !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.jsonl")); !os.IsNotExist(err) {
		t.Error("the locked-out run created its output")
	}

	first.Process.Signal(os.Interrupt)
	waitExit(t, first, 20*time.Second)
	third := exec.Command("trawl", "-q", "--lock", lock, writeList(t, srv.URL, 3, 0), "-o", filepath.Join(dir, "c.jsonl"))
	if out, err := third.CombinedOutput(); err != nil {
		t.Fatalf("run after the lock was released: %v\n%s", err, out)
	}
}
