package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/atomicfile"
	"github.com/trawl-dev/trawl/dedupe"
	"github.com/trawl-dev/trawl/lockfile"
	"github.com/trawl-dev/trawl/pipeline"
	"github.com/trawl-dev/trawl/progress"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/redact"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stats"
	"github.com/trawl-dev/trawl/throttle"
)

// runInput overrides where URLs come from (the demo supplies its own).
type runInput struct {
	source source.Options
	total  int64
}

// fetchRun runs the pipeline with everything around it: the lock, resume,
// the deadline, progress, logging, the summary, the stats and metrics
// files, and the exit status.
func (a *app) fetchRun(ctx context.Context, cfg *Config, in *runInput) (err error) {
	started := time.Now()
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
	chain, err := a.registry.NewChain(cfg.Transforms, cfg.layout().Reserved, cfg.TransformOpts)
	if err != nil {
		return &usageError{err}
	}

	if cfg.LockFile != "" {
		lock, err := lockfile.Acquire(cfg.LockFile)
		if errors.Is(err, lockfile.ErrLocked) {
			return &exitError{code: ExitLocked, msg: err.Error() + "; not starting"}
		}
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	log, closeLog, err := openLog(cfg)
	if err != nil {
		return err
	}
	defer closeLog()

	var resume *sink.Resume
	if cfg.Resume {
		if resume, err = sink.LoadResume(cfg.Output, cfg.ResumeOptions); err != nil {
			return &usageError{err}
		}
		if !cfg.Quiet {
			a.say("%s", resumeNote(cfg.Output, resume))
		}
	}

	runCtx := ctx
	if cfg.Deadline > 0 {
		// Stop taking URLs early enough for in-flight ones to finish or be
		// cancelled within the deadline.
		stopAt := started.Add(cfg.Deadline - min(cfg.Grace, cfg.Deadline/2))
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadlineCause(ctx, stopAt, deadlineReached{cfg.Deadline})
		defer cancel()
	}

	st := stats.New(started)
	observe := st.Observe
	if log != nil {
		log.Info("run started", "inputs", inputNames(cfg), "output", outputName(cfg.Output), "resumed", resumedCount(resume))
		observe = func(r *record.Record) {
			st.Observe(r)
			if r.Err != nil {
				log.Warn("url failed", "index", r.Index, "url", redact.URL(r.URL), "error_kind", string(r.ErrKind), "error", r.Err.Error(), "status", r.Status, "attempts", r.Attempts)
			}
		}
	}
	stopProgress := a.startProgress(ctx, cfg, input, total, st)
	res, runErr := pipeline.Run(runCtx, pipeline.Config{
		Input:          input,
		Fetch:          cfg.Fetch,
		FetchStage:     cfg.FetchStage,
		TransformStage: cfg.TransformStage,
		Transforms:     chain,
		Format:         cfg.Format,
		Output:         cfg.Output,
		OutputOptions:  sink.OutputOptions{Atomic: cfg.Atomic},
		Stdout:         a.streams.Out,
		OutputDir:      cfg.OutputDir,
		NameTemplate:   cfg.NameTemplate,
		Resume:         resume,
		FlushEvery:     cfg.FlushEvery,
		Grace:          cfg.Grace,
		Observe:        observe,
		Throttle:       throttle.New(cfg.Throttle),
		Dedupe:         dedupeFor(cfg),
		Shard:          cfg.Shard,
	})
	stopProgress()
	if errors.Is(runErr, sink.ErrInputChanged) {
		runErr = &usageError{runErr}
	}
	outcome := a.outcome(runCtx, cfg, st, res, runErr)
	snap := st.Snapshot(time.Now())
	// A run that failed before writing anything has nothing to summarise.
	if !cfg.Quiet && (runErr == nil || snap.Records > 0) {
		for _, line := range strings.Split(strings.TrimRight(snap.Summary(), "\n"), "\n") {
			a.say("%s", line)
		}
	}
	report := stats.Report{
		Snapshot: snap, Started: started, Finished: time.Now(), ExitCode: exitCode(outcome.err),
		Outcome: outcome.word, Output: outputName(cfg.Output), Resumed: resumedCount(resume),
	}
	if log != nil {
		log.Info("run finished", "outcome", report.Outcome, "exit_code", report.ExitCode, "urls", snap.Records,
			"ok", snap.OK, "failed", snap.Failed, "duration", report.Finished.Sub(started).Round(time.Millisecond).String())
	}
	if err := writeReports(cfg, report); err != nil && outcome.err == nil {
		return err
	}
	return outcome.err
}

// runOutcome is how a run ended, as a word and as the error that carries
// the exit status.
type runOutcome struct {
	word string
	err  error
}

// outcome decides the exit status, in order of precedence: trawl's own
// failure, a stop by signal or deadline, then failed URLs.
func (a *app) outcome(ctx context.Context, cfg *Config, st *stats.Stats, res pipeline.Result, runErr error) runOutcome {
	snap := st.Snapshot(time.Now())
	if runErr != nil {
		return runOutcome{"error", runErr}
	}
	var stop interrupted
	var dl deadlineReached
	if !res.Complete {
		switch cause := context.Cause(ctx); {
		case errors.As(cause, &stop):
			return runOutcome{"interrupted", &exitError{code: stop.code(), msg: fmt.Sprintf("stopped by %s after writing %d records", stop.sig, snap.Records)}}
		case errors.As(cause, &dl):
			msg := fmt.Sprintf("%s after %d records; run again with --resume to finish", dl, snap.Records)
			if cfg.Atomic {
				msg = fmt.Sprintf("%s after %d records; with --atomic, %s was left as it was", dl, snap.Records, cfg.Output)
			}
			return runOutcome{"incomplete", &exitError{code: ExitIncomplete, msg: msg}}
		}
	}
	if cfg.MaxFailures.Exceeded(snap.Failed, snap.Records) {
		return runOutcome{"failures", &exitError{code: ExitSomeFailed, msg: fmt.Sprintf("%d of %d URLs failed (tolerated: --max-failures %s)", snap.Failed, snap.Records, cfg.MaxFailures)}}
	}
	return runOutcome{"ok", nil}
}

func dedupeFor(cfg *Config) *dedupe.Deduper {
	if !cfg.Dedupe {
		return nil
	}
	return dedupe.New(dedupe.DefaultBudget)
}

// say prints one line of status on stderr, with trawl's prefix.
func (a *app) say(format string, args ...any) {
	fmt.Fprintf(a.streams.Err, "trawl: "+format+"\n", args...)
}

func resumeNote(output string, r *sink.Resume) string {
	if r.Kept == 0 && r.Retry == 0 && !r.Torn {
		return fmt.Sprintf("resuming %s: nothing done yet, starting from the beginning", output)
	}
	note := fmt.Sprintf("resuming %s: %d records kept", output, r.Kept)
	if r.Retry > 0 {
		note += fmt.Sprintf(", %d failed URLs to fetch again", r.Retry)
	}
	if r.Duplicates > 0 {
		note += fmt.Sprintf(", %d duplicate records removed", r.Duplicates)
	}
	if r.Torn {
		note += ", an incomplete last line removed"
	}
	return note
}

func resumedCount(r *sink.Resume) int64 {
	if r == nil {
		return 0
	}
	return r.Kept
}

func outputName(o string) string {
	if o == "" {
		return "-"
	}
	return o
}

func inputNames(cfg *Config) string {
	if len(cfg.Inputs) == 0 {
		return "-"
	}
	return strings.Join(cfg.Inputs, ",")
}

// openLog opens --log-file for appending, with the chosen format.
func openLog(cfg *Config) (*slog.Logger, func(), error) {
	if cfg.LogFile == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open log file: %w", err)
	}
	var h slog.Handler = slog.NewTextHandler(f, nil)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(f, nil)
	}
	return slog.New(h), func() { f.Close() }, nil
}

// writeReports writes --stats-file and --metrics-file, each atomically so
// that a monitor never reads half a file.
func writeReports(cfg *Config, r stats.Report) error {
	if cfg.StatsFile != "" {
		b, err := r.JSON()
		if err == nil {
			err = atomicfile.WriteFile(cfg.StatsFile, b)
		}
		if err != nil {
			return fmt.Errorf("cannot write the stats file: %w", err)
		}
	}
	if cfg.MetricsFile != "" {
		if err := atomicfile.WriteFile(cfg.MetricsFile, r.Prometheus()); err != nil {
			return fmt.Errorf("cannot write the metrics file: %w", err)
		}
	}
	return nil
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
	if total < 0 && !source.ReadsStdin(input) && !cfg.Resume && cfg.Shard == nil {
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
