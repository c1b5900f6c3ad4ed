package transform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// newExec prepares exec=COMMAND: the command line is split into words with
// shell quoting (see splitCommand) but run without a shell, so nothing in a
// URL or body can be interpreted as shell syntax. Users who want a shell
// write `sh -c '...'`.
func newExec(arg string, opts Options) (Transform, error) {
	argv, err := splitCommand(arg)
	if err != nil {
		return nil, fmt.Errorf("cannot split command %q: %w", arg, err)
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("cannot run %q: %w", argv[0], err)
	}
	return &execTransform{path: path, argv: argv, opts: opts}, nil
}

type execTransform struct {
	path string
	argv []string
	opts Options
}

func (e *execTransform) Keys(key string) []string { return []string{key} }

// Apply runs the command with the body on stdin. Its stdout, without one
// trailing newline and cut at MaxOutput, is the output.
func (e *execTransform) Apply(ctx context.Context, in *Input) ([]any, error) {
	runCtx := ctx
	if e.opts.ExecTimeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, e.opts.ExecTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, e.path, e.argv[1:]...)
	cmd.Args[0] = e.argv[0]
	r := in.Record
	cmd.Env = append(os.Environ(),
		"TRAWL_URL="+r.URL,
		"TRAWL_FINAL_URL="+r.FinalURL,
		"TRAWL_STATUS="+strconv.Itoa(r.Status),
		"TRAWL_CONTENT_TYPE="+r.ContentType,
	)
	cmd.Stdin = bytes.NewReader(r.Body)
	stdout := &cappedBuffer{limit: e.opts.MaxOutput}
	stderr := &cappedBuffer{limit: 4 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	killGroupOnCancel(cmd)
	// If the command leaves a background child holding its pipes open, stop
	// waiting for them shortly after the command itself is gone.
	cmd.WaitDelay = time.Second

	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("command stopped: %w", ctx.Err())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("command ran longer than %s (--exec-timeout)%s", e.opts.ExecTimeout, firstLine(stderr.String()))
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("command %s%s", exitDescription(ee), firstLine(stderr.String()))
		}
		return nil, fmt.Errorf("cannot run command: %w", err)
	}
	return []any{strings.TrimSuffix(stdout.String(), "\n")}, nil
}

// firstLine formats the first non-empty line of a command's stderr as a
// suffix for an error message.
func firstLine(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return ": " + line
		}
	}
	return ""
}

// cappedBuffer keeps the first limit bytes written and discards the rest,
// still reporting success so that the command is never blocked or killed
// by a full pipe.
type cappedBuffer struct {
	buf   bytes.Buffer
	limit int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.limit - int64(c.buf.Len()); room > 0 {
		if int64(len(p)) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string { return c.buf.String() }
