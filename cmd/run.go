package cmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/trawl-dev/trawl/internal/progress"
	"github.com/trawl-dev/trawl/pipeline"
	"github.com/trawl-dev/trawl/source"
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
	if !cfg.Quiet {
		pc.Say = func(msg string) { a.say("%s", msg) }
		if pc.Total == 0 && source.ReadsStdin(source.Options{Paths: pc.Inputs}) && a.streams.InIsTTY {
			// Someone typed `trawl` with no list: say why nothing happens.
			a.say("reading URLs from the terminal, one per line; end with Ctrl-D (see 'trawl --help')")
		}
	}
	if !cfg.Quiet && (cfg.Progress == "always" || cfg.Progress == "auto" && a.streams.ErrIsTTY) {
		pc.Progress = a.startProgress
	}
	res, err := pipeline.Run(ctx, pc)
	// A run that failed before writing anything has nothing to summarise.
	if !cfg.Quiet && (err == nil || res.Snapshot.Records > 0) {
		for _, line := range strings.Split(strings.TrimRight(res.Snapshot.Summary(), "\n"), "\n") {
			a.say("%s", line)
		}
	}
	return err
}

// startProgress shows the bar and returns the function that removes it.
// When the pipeline can count the input, it is counted beside the run.
func (a *app) startProgress(p pipeline.Progress) func() {
	display := progress.Start(progress.Options{Writer: a.streams.Err, Total: p.Total, Stats: p.Stats})
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

// say prints one line of status on stderr, with trawl's prefix.
func (a *app) say(format string, args ...any) {
	fmt.Fprintf(a.streams.Err, "trawl: "+format+"\n", args...)
}
