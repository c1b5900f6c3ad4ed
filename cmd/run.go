package cmd

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/trawl-dev/trawl/internal/progress"
	"github.com/trawl-dev/trawl/pipeline"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stats"
)

// fetchRun hands the configuration to the pipeline with the command
// line's presentation attached (status lines, the progress bar) and prints
// the summary. The pipeline's error carries the exit status.
func (a *app) fetchRun(ctx context.Context, cfg *Config) error {
	pc := cfg.Config
	pc.Stdout = a.streams.Out
	if pc.Stdin == nil {
		pc.Stdin = a.streams.In
	}
	typed := source.ReadsStdin(source.Options{Paths: pc.Inputs}) && a.streams.InIsTTY
	if !cfg.Quiet {
		pc.Say = func(msg string) { a.say("%s", msg) }
		if pc.Total == 0 && typed {
			// Someone typed `trawl` with no list: say why nothing happens.
			a.say("reading URLs from the terminal, one per line; end with Ctrl-D (see 'trawl --help')")
		}
	}
	if !cfg.Quiet && (cfg.Progress == "always" || cfg.Progress == "auto" && a.streams.ErrIsTTY) {
		var typing <-chan struct{}
		if typed {
			// The bar waits for the end of the input: redrawn, it would
			// overwrite the line being typed.
			in := newEOFReader(pc.Stdin)
			pc.Stdin, typing = in, in.eof
		}
		pc.Progress = func(p pipeline.Progress) func() { return a.startProgress(p, typing) }
	}
	res, err := pipeline.Run(ctx, pc)
	// A run that failed before writing anything has nothing to summarise.
	if !cfg.Quiet && (err == nil || res.Snapshot.Records > 0) {
		for _, line := range strings.Split(strings.TrimRight(res.Snapshot.Summary(), "\n"), "\n") {
			a.say("%s", line)
		}
		if note := hostCapNote(res.Snapshot.HostCap); note != "" {
			a.say("%s", note)
		}
	}
	return err
}

// hostCapNote says, when the per-host cap rather than -c limited the run,
// which flag would let the idle workers work; "" otherwise.
func hostCapNote(h stats.HostCap) string {
	if !h.Limited() {
		return ""
	}
	return fmt.Sprintf("the per-host cap (--%s %d) held %d of %d workers idle for %d%% of the run; raise it with --%s N if the servers allow",
		optPerHost, h.PerHost, int(math.Round(h.IdleWorkers())), h.Workers, int(h.HeldShare()*100), optPerHost)
}

// startProgress shows the bar and returns the function that removes it.
// When the pipeline can count the input, it is counted beside the run.
// While hold is open (URLs are being typed), nothing is drawn.
func (a *app) startProgress(p pipeline.Progress, hold <-chan struct{}) func() {
	display := progress.Start(progress.Options{
		Writer: a.streams.Err, Total: p.Total, Stats: p.Stats, Hold: hold, Width: a.errWidth,
	})
	ctx, stopCount := context.WithCancel(context.Background())
	counted := make(chan struct{})
	if p.Count != nil {
		go func() {
			defer close(counted)
			if n, err := p.Count(ctx); err == nil {
				display.SetTotal(n)
			}
		}()
	} else {
		close(counted)
	}
	return func() {
		stopCount()
		<-counted
		display.Stop()
	}
}

// errWidth returns the width of the terminal on stderr, or 0 when it is
// not one.
func (a *app) errWidth() int {
	f, ok := a.streams.Err.(*os.File)
	if !ok {
		return 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return w
}

// eofReader closes eof once its reader has returned an error (io.EOF at
// Ctrl-D), which ends the typing of URLs.
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func newEOFReader(r io.Reader) *eofReader { return &eofReader{r: r, eof: make(chan struct{})} }

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// say prints one line of status on stderr, with trawl's prefix.
func (a *app) say(format string, args ...any) {
	fmt.Fprintf(a.streams.Err, "trawl: "+format+"\n", args...)
}
