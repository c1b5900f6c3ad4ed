package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/pipeline"
	"github.com/trawl-dev/trawl/progress"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stats"
)

// runInput overrides where URLs come from (the demo supplies its own).
type runInput struct {
	source source.Options
	total  int64
}

// fetchRun runs the pipeline with progress and summary on stderr, and turns
// the outcome into an error carrying the exit status.
func (a *app) fetchRun(ctx context.Context, cfg *Config, in *runInput) error {
	input := source.Options{Paths: cfg.Inputs, Stdin: a.streams.In}
	total := int64(-1)
	if in != nil {
		input, total = in.source, in.total
	} else if err := source.Check(input); err != nil {
		return &usageError{err}
	} else if source.ReadsStdin(input) && a.streams.InIsTTY && !cfg.Quiet {
		// Someone typed `trawl` with no list: say why nothing happens.
		fmt.Fprintln(a.streams.Err, "trawl: reading URLs from the terminal, one per line; end with Ctrl-D (see 'trawl --help')")
	}
	chain, err := a.registry.NewChain(cfg.Transforms, sink.IsField, cfg.TransformOpts)
	if err != nil {
		return &usageError{err}
	}

	st := stats.New(time.Now())
	stopProgress := a.startProgress(ctx, cfg, input, total, st)
	runErr := pipeline.Run(ctx, pipeline.Config{
		Input:          input,
		Fetch:          cfg.Fetch,
		FetchStage:     cfg.FetchStage,
		TransformStage: cfg.TransformStage,
		Transforms:     chain,
		Format:         cfg.Format,
		Output:         cfg.Output,
		Stdout:         a.streams.Out,
		Grace:          cfg.Grace,
		Stats:          st,
	})
	stopProgress()
	return a.finish(ctx, cfg, st, runErr)
}

// startProgress shows the bar when wanted and returns the function that
// removes it. For files the total is counted concurrently with the run, so
// the first requests are not delayed by a second pass over a long list.
func (a *app) startProgress(ctx context.Context, cfg *Config, input source.Options, total int64, st *stats.Stats) func() {
	show := !cfg.Quiet && (cfg.Progress == "always" || cfg.Progress == "auto" && a.streams.ErrIsTTY)
	if !show {
		return func() {}
	}
	display := progress.Start(progress.Options{Writer: a.streams.Err, Total: total, Stats: st})
	countCtx, stopCount := context.WithCancel(ctx)
	counted := make(chan struct{})
	if total < 0 && !source.ReadsStdin(input) {
		go func() {
			defer close(counted)
			if n, err := source.Count(countCtx, input); err == nil {
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

// finish prints the summary and decides the exit status.
func (a *app) finish(ctx context.Context, cfg *Config, st *stats.Stats, runErr error) error {
	snap := st.Snapshot(time.Now())
	// A run that failed before writing anything has nothing to summarise.
	if !cfg.Quiet && (runErr == nil || snap.Records > 0) {
		for _, line := range strings.Split(strings.TrimRight(snap.Summary(), "\n"), "\n") {
			fmt.Fprintf(a.streams.Err, "trawl: %s\n", line)
		}
	}
	if runErr != nil {
		return runErr
	}
	var stop interrupted
	if errors.As(context.Cause(ctx), &stop) {
		return &exitError{code: stop.code(), msg: fmt.Sprintf("stopped by %s after writing %d records", stop.sig, snap.Records)}
	}
	if cfg.MaxFailures.Exceeded(snap.Failed, snap.Records) {
		return &exitError{code: ExitSomeFailed, msg: fmt.Sprintf("%d of %d URLs failed (tolerated: --max-failures %s)", snap.Failed, snap.Records, cfg.MaxFailures)}
	}
	return nil
}
