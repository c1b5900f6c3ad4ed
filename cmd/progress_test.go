package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/internal/progress"
	"github.com/trawl-dev/trawl/internal/progress/progresstest"
)

// lockedBuffer collects a stream the test reads while trawl writes it,
// and draws it on a screen when it has one.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	screen *progresstest.Screen
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.screen != nil {
		l.screen.Write(p)
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// brokenPipe is a standard output whose reader has gone.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// headOne is `| head -1` on the terminal trawl's stderr is: the first line
// written lands on the screen, and the write after that fails.
type headOne struct {
	mu     sync.Mutex
	screen *progresstest.Screen
	done   bool
}

func (h *headOne) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return 0, syscall.EPIPE
	}
	h.done = true
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		h.screen.Write(p[:i+1])
	}
	return len(p), nil
}

// frameEnd ends every frame of the bar; progress.Erase removes it.
const frameEnd = "\x1b[K\r"

// waitStderr waits, within a generous bound, until stderr shows want.
func waitStderr(t *testing.T, buf *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr never showed %q: %q", want, buf.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// checkErased checks that the bar was drawn, and that it was erased after
// its last frame with nothing drawn after that, only lines of text; and that
// the screen shows trawl's lines and the output's, nothing of the bar.
func checkErased(t *testing.T, stderr string, screen *progresstest.Screen) {
	t.Helper()
	for i, l := range screen.Lines() {
		if l != "" && !strings.HasPrefix(l, "trawl: ") && !strings.HasPrefix(l, `{"index":`) {
			t.Errorf("screen line %d is not a message or a record: %q", i, l)
		}
	}
	last := strings.LastIndex(stderr, frameEnd)
	if last < 0 {
		t.Fatalf("the bar was never drawn, so the test proves nothing: %q", stderr)
	}
	erased := strings.LastIndex(stderr, progress.Erase)
	if erased < last {
		t.Fatalf("the last frame was not erased: %q", stderr[max(0, last-200):])
	}
	if rest := stderr[erased+len(progress.Erase):]; strings.ContainsAny(rest, "\r\x1b") {
		t.Fatalf("drawn after the erase: %q", rest)
	}
}

// TestBarErasedOnEveryWayOut runs trawl with the bar on and ends the run
// each way a test can drive: the bar must be gone before the summary or
// the error message, whatever happened.
func TestBarErasedOnEveryWayOut(t *testing.T) {
	srv, started := hangServer(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		stdout io.Writer
		code   int
		// stop, when set, ends the run once the bar is up and requests hang.
		stop bool
	}{
		{name: "normal end", args: []string{writeList(t, srv.URL, 20, 0)}},
		{name: "too many failures", args: []string{writeListOf(t, srv.URL+"/fast/0", "not a url"), "--max-failures", "0"}, code: 3},
		{name: "closed stdout", args: []string{writeList(t, srv.URL, 20, 0)}, stdout: brokenPipe{}, code: 1},
		{name: "| head -1", args: []string{writeList(t, srv.URL, 1, 1), "--flush-interval", "10ms", "--timeout", "300ms", "--retries", "0"}, stdout: &headOne{}, code: 1},
		{name: "error before anything is written", args: []string{writeList(t, srv.URL, 20, 0), "-o", dir}, code: 1},
		{name: "deadline", args: []string{writeList(t, srv.URL, 2, 5), "--deadline", "400ms", "--shutdown-grace", "50ms"}, code: 5},
		{name: "signal", args: []string{writeList(t, srv.URL, 2, 5), "--shutdown-grace", "50ms"}, code: 130, stop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			screen := &progresstest.Screen{}
			stderr := lockedBuffer{screen: screen}
			stdout := tc.stdout
			switch o := stdout.(type) {
			case nil:
				stdout = io.Discard
			case *headOne:
				o.screen = screen
			}
			s := streams{In: strings.NewReader(""), Out: stdout, Err: &stderr}
			codes := make(chan int, 1)
			go func() { codes <- run(ctx, s, append([]string{"--progress", "always"}, tc.args...)) }()
			if tc.stop {
				waitN(t, started, 1)
				waitStderr(t, &stderr, frameEnd)
				cancel(exitcode.Signal{Sig: os.Interrupt})
			}
			var code int
			select {
			case code = <-codes:
			case <-time.After(30 * time.Second):
				t.Fatal("the run did not end")
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			checkErased(t, stderr.String(), screen)
			if _, ok := stdout.(*headOne); ok && !strings.HasPrefix(screen.Lines()[0], `{"index":0,`) {
				t.Errorf("the record head printed is not at the start of its line: %q", screen.Lines()[0])
			}
		})
	}
}

// writeListOf writes the lines given into a list file.
func writeListOf(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBarWaitsForTypedInput: URLs typed on the terminal get no bar until
// the input ends (Ctrl-D), since a redrawn line would overwrite the one
// being typed; then the bar shows for the rest of the run, and goes.
func TestBarWaitsForTypedInput(t *testing.T) {
	srv, started := hangServer(t)
	in, typing := io.Pipe()
	defer typing.Close()
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	screen := &progresstest.Screen{}
	var stdout lockedBuffer
	stderr := lockedBuffer{screen: screen}
	s := streams{In: in, Out: &stdout, Err: &stderr, InIsTTY: true, ErrIsTTY: true}
	codes := make(chan int, 1)
	go func() { codes <- run(ctx, s, []string{"--shutdown-grace", "50ms"}) }()
	fmt.Fprintf(typing, "%s/fast/0\n%s/hang/0\n", srv.URL, srv.URL)
	waitN(t, started, 1)
	// Records are flushed within a second: by the time the first is out,
	// a bar drawn on a ticker would have been drawn several times.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), "/fast/0") {
		if time.Now().After(deadline) {
			t.Fatal("the typed URL was never written")
		}
		time.Sleep(time.Millisecond)
	}
	const hint = "trawl: reading URLs from the terminal, one per line; end with Ctrl-D (see 'trawl --help')\n"
	if got := stderr.String(); got != hint {
		t.Fatalf("drawn while URLs were being typed: %q", got)
	}
	typing.Close() // Ctrl-D
	waitStderr(t, &stderr, "1 URL")
	cancel(exitcode.Signal{Sig: os.Interrupt})
	select {
	case code := <-codes:
		if code != 130 {
			t.Fatalf("exit %d, want 130; stderr %q", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end")
	}
	checkErased(t, stderr.String(), screen)
}
