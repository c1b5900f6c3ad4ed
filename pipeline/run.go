package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/internal/atomicfile"
	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/internal/dedupe"
	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/internal/lockfile"
	"github.com/trawl-dev/trawl/internal/redact"
	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/internal/urlkey"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stage"
	"github.com/trawl-dev/trawl/stats"
	"github.com/trawl-dev/trawl/transform"
)

// Result describes how a run ended.
type Result struct {
	// Outcome says in a word how the run ended: ok, failures,
	// interrupted, incomplete or error.
	Outcome string
	// Snapshot holds this run's figures; Summary renders them.
	Snapshot stats.Snapshot
	// Resumed is the number of records an earlier run had already written
	// (with --resume).
	Resumed int64
}

// Run streams the input through fetch and transform into the output.
//
// Cancelling ctx is a graceful stop: no more input is read, in-flight
// requests get cfg.Grace to finish before being cancelled (their records
// then say "canceled"), and every record produced is written and flushed.
// The cause ctx was cancelled with (an exitcode.Signal) decides the exit
// status.
//
// The error Run returns carries the exit status (see exitcode.Of): nil
// when every URL succeeded or the failures stayed within MaxFailures.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res := Result{Outcome: "error"}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	r, err := newRun(cfg)
	if err != nil {
		return res, err
	}
	defer r.close()
	return r.run(ctx)
}

// run is one run being assembled and executed.
type run struct {
	cfg     Config
	kept    []string // the kept input columns, for the layout
	started time.Time
	chain   *transform.Chain
	input   source.Options
	lock    *lockfile.Lock
	outLock *lockfile.Lock // the output being resumed
	log     *slog.Logger
	logFile *os.File
	resume  *sink.Resume
	since   *sink.Since
	stats   *stats.Stats
}

func (r *run) say(format string, args ...any) {
	if r.cfg.Say != nil {
		r.cfg.Say(fmt.Sprintf(format, args...))
	}
}

// newRun builds what a run needs before anything is fetched: every check
// that can fail on the user's input happens here, so that a mistake costs
// no request.
func newRun(cfg Config) (*run, error) {
	r := &run{cfg: cfg, started: time.Now()}
	var err error
	if r.chain, err = cfg.chain(); err != nil {
		return nil, err
	}
	req, header, err := cfg.request()
	if err != nil {
		return nil, err
	}
	r.cfg.Fetch.Header = header
	r.input = source.Options{Paths: cfg.Inputs, Stdin: cfg.Stdin, Format: cfg.InputFormat, Columns: cfg.Columns, Request: req}
	if r.kept, err = source.KeptColumns(r.input); err != nil {
		return nil, exitcode.New(exitcode.Usage, err)
	}
	if !source.Structured(r.input) && (len(cfg.Columns.Keep) > 0 || cfg.Columns.URL != "") {
		return nil, usage("--keep-columns and --url-column need CSV, TSV or JSON Lines input (by the file's extension or --input-format)")
	}
	if err := checkOutputs(cfg); err != nil {
		return nil, err
	}
	if cfg.LockFile != "" {
		lock, err := lockfile.Acquire(cfg.LockFile)
		if errors.Is(err, lockfile.ErrLocked) {
			return nil, exitcode.New(exitcode.Locked, fmt.Errorf("%w; not starting", err))
		}
		if err != nil {
			return nil, err
		}
		r.lock = lock
	}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("cannot open log file: %w", err)
		}
		var h slog.Handler = slog.NewTextHandler(f, nil)
		if cfg.LogFormat == "json" {
			h = slog.NewJSONHandler(f, nil)
		}
		r.log, r.logFile = slog.New(h), f
	}
	if cfg.Resume {
		if err := r.loadResume(); err != nil {
			r.close()
			return nil, err
		}
		r.say("%s", resumeNote(cfg.Output, r.resume))
	}
	if err := r.openSince(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// loadResume locks the output to be resumed, repairs it and checks that
// the input still matches it, all before the first request: two runs
// appending to one file would corrupt it beyond resuming, and a changed
// list is a mistake that should cost nothing.
func (r *run) loadResume() error {
	out := r.cfg.Output
	if r.cfg.OutputDir != "" {
		// -o DIR/index.jsonl in a DIR the first run has yet to create.
		if err := os.MkdirAll(r.cfg.OutputDir, 0o755); err != nil {
			return fmt.Errorf("cannot create output directory: %w", err)
		}
	}
	// There must be a file to lock, even before the first run wrote one.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open the output to resume: %w", err)
	}
	f.Close()
	hold := func() error {
		lock, err := lockfile.Hold(out)
		if errors.Is(err, lockfile.ErrLocked) {
			return exitcode.New(exitcode.Locked, fmt.Errorf("another trawl is resuming %s; not starting", out))
		}
		r.outLock = lock
		return err
	}
	if err := hold(); err != nil {
		return err
	}
	if r.resume, err = sink.LoadResume(out, sink.ResumeOptions{RetryFailed: r.cfg.RetryFailed}); err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	if !r.outLock.Holds(out) {
		// The repair replaced the file: the lock must move to the new one.
		r.outLock.Release()
		if err := hold(); err != nil {
			return err
		}
	}
	if r.resume.Kept == 0 || source.ReadsStdin(r.input) {
		// Standard input cannot be read twice: its lines are checked as
		// they are read, during the run.
		return nil
	}
	var matched int64
	err = source.Lines(context.Background(), r.input, func(i int64, line string) error {
		ok, err := r.resume.Check(i, line)
		if ok {
			matched++
		}
		return err
	})
	if errors.Is(err, sink.ErrInputChanged) {
		return exitcode.New(exitcode.Usage, err)
	}
	if err != nil {
		return err
	}
	if matched < r.resume.Kept {
		return exitcode.New(exitcode.Usage, fmt.Errorf("%w: the output has %s for lines the input no longer has",
			sink.ErrInputChanged, plural(r.resume.Kept-matched, "record")))
	}
	return nil
}

// checkOutputs refuses, before anything is opened for writing, a file
// trawl would write that is also an input list (trawl list.txt -o
// list.txt would empty the list it reads) or that two settings name.
// Saved bodies never replace an existing file, so --output-dir needs no
// check.
func checkOutputs(cfg Config) error {
	type named struct{ what, path string }
	var outs []named
	if !cfg.toStdout() {
		outs = append(outs, named{"-o", cfg.Output})
	}
	for _, o := range []named{{"--stats-file", cfg.StatsFile}, {"--metrics-file", cfg.MetricsFile}, {"--log-file", cfg.LogFile}, {"--lock", cfg.LockFile}} {
		if o.path != "" {
			outs = append(outs, o)
		}
	}
	var inputs []os.FileInfo
	for _, p := range cfg.Inputs {
		if p == source.StdinName {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			inputs = append(inputs, st)
		}
	}
	if f, ok := cfg.Stdin.(*os.File); ok && source.ReadsStdin(source.Options{Paths: cfg.Inputs}) {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			inputs = append(inputs, st)
		}
	}
	for i, o := range outs {
		st, err := os.Stat(o.path)
		for _, in := range inputs {
			if err == nil && os.SameFile(st, in) {
				return usage("%s %s is also an input list: trawl would overwrite the URLs it is reading", o.what, o.path)
			}
		}
		for _, other := range outs[:i] {
			if samePath(o.path, other.path) {
				return usage("%s and %s both name %s: each file trawl writes needs a name of its own", other.what, o.what, o.path)
			}
		}
	}
	return nil
}

// samePath reports whether two paths name one file, existing or not.
func samePath(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

func (r *run) close() {
	if r.since != nil {
		r.since.Close()
	}
	if r.outLock != nil {
		r.outLock.Release()
	}
	if r.logFile != nil {
		r.logFile.Close()
	}
	if r.lock != nil {
		r.lock.Release()
	}
}

// structured reports whether any input is read as CSV, TSV or JSON Lines,
// whose records say which row they came from.
func (r *run) structured() bool {
	return source.Structured(r.input)
}

// hostGate lets the fetch stage ask the throttle before starting a URL.
// Records without a target (invalid lines) or that will copy an earlier
// result make no request and pass at once.
type hostGate struct{ t *throttle.Throttle }

func requests(r *record.Record) bool { return r.Target != nil && !r.CopyPending }

func (g hostGate) Key(r *record.Record) string {
	if !requests(r) {
		return ""
	}
	return hostKey(r)
}

func (g hostGate) TryStart(_ *record.Record, key string) (bool, time.Duration) {
	return g.t.TryAcquire(key)
}

func (g hostGate) Done(key string) { g.t.Release(key) }

// limiter lets the throttle pace fetch's retries and redirects, by host.
type limiter struct{ t *throttle.Throttle }

func (l limiter) Wait(ctx context.Context, u *url.URL) error { return l.t.Wait(ctx, urlkey.Host(u)) }

func (l limiter) Observe(u *url.URL, status int, h interface{ Get(string) string }) {
	l.t.Observe(urlkey.Host(u), status, h)
}

// SetCrawlDelay paces a host as its robots.txt asks (fetch.CrawlDelayer).
func (l limiter) SetCrawlDelay(u *url.URL, d time.Duration) { l.t.SetCrawlDelay(urlkey.Host(u), d) }

// storeAdapter lets a sink.Dir serve as fetch's BodyStore; the two packages
// do not know each other.
type storeAdapter struct{ dir *sink.Dir }

func (s storeAdapter) Create(r *record.Record, from fetch.BodyStart) (fetch.BodyFile, error) {
	return s.dir.Create(r, from.Offset, from.Validator)
}

func (s storeAdapter) Kept(r *record.Record) (int64, string) { return s.dir.Kept(r) }
func (s storeAdapter) Drop(r *record.Record)                 { s.dir.Drop(r) }

// autoWindow is the reorder window when none is set: 16 records per
// worker, at least 4096. The window is a count; what the held records
// weigh is bounded apart, by ReorderMemory. Behind a URL that takes 500 ms,
// 32 workers fetching 1 KiB pages finish about 2,000 others, which must
// all be held for input order to lose nothing; 1,000 workers behind 50 ms
// hosts keep about 1,000 in flight and as many waiting.
func autoWindow(workers int) int { return max(4096, 16*workers) }

// footprint is what a record held in a stage's window weighs.
func footprint(r *record.Record) int64 { return r.Footprint() }

// run executes the stages and decides the outcome.
func (r *run) run(ctx context.Context) (res Result, err error) {
	cfg := r.cfg
	res.Outcome = "error"
	if r.resume != nil {
		res.Resumed = r.resume.Kept
	}
	r.stats = stats.New(r.started)
	st := r.stats
	if r.resume != nil {
		st.AddEarlier(r.resume.Earlier())
	}
	observe := st.Observe
	if cfg.Observe != nil {
		observe = func(rec *record.Record) {
			st.Observe(rec)
			cfg.Observe(rec)
		}
	}
	if r.log != nil {
		next := observe
		r.log.Info("run started", "inputs", inputNames(cfg.Inputs), "output", outputName(cfg.Output), "resumed", res.Resumed)
		observe = func(rec *record.Record) {
			next(rec)
			if record.Refused(rec.ErrKind) {
				r.log.Info("url refused", "index", rec.Index, "url", redact.URL(rec.URL), "error_kind", string(rec.ErrKind), "error", rec.Err.Error())
			} else if rec.Err != nil {
				r.log.Warn("url failed", "index", rec.Index, "url", redact.URL(rec.URL), "error_kind", string(rec.ErrKind), "error", rec.Err.Error(), "status", rec.Status, "attempts", rec.Attempts)
			}
		}
	}
	if cfg.Progress != nil {
		stop := cfg.Progress(r.progress())
		defer stop()
	}

	runCtx := ctx
	if cfg.Deadline > 0 {
		// Stop taking URLs early enough for in-flight ones to finish or be
		// cancelled within the deadline.
		stopAt := r.started.Add(cfg.Deadline - min(cfg.Grace, cfg.Deadline/2))
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadlineCause(ctx, stopAt, deadlineReached{cfg.Deadline})
		defer cancel()
	}

	complete, runErr := r.stream(runCtx, observe)
	res.Snapshot = st.Snapshot(time.Now())
	outcome, outErr := r.outcome(runCtx, res.Snapshot, complete, runErr)
	res.Outcome = outcome
	report := stats.Report{
		Snapshot: res.Snapshot, Started: r.started, Finished: time.Now(), ExitCode: exitcode.Of(outErr),
		Outcome: outcome, Output: outputName(cfg.Output),
	}
	if r.log != nil {
		r.log.Info("run finished", "outcome", report.Outcome, "exit_code", report.ExitCode, "urls", res.Snapshot.Records,
			"ok", res.Snapshot.OK, "failed", res.Snapshot.Failed, "duration", report.Finished.Sub(r.started).Round(time.Millisecond).String())
	}
	if werr := r.writeReports(report); werr != nil && outErr == nil {
		return res, werr
	}
	return res, outErr
}

// progress describes the run for a progress display. Files can be counted
// for a total, concurrently with the run so that the first requests are
// not delayed by a second pass over a long list; standard input cannot,
// and with --resume or --shard a count of the file would be wrong.
func (r *run) progress() Progress {
	p := Progress{Stats: r.stats, Total: -1}
	if r.cfg.Total > 0 {
		p.Total = r.cfg.Total
		return p
	}
	if !source.ReadsStdin(r.input) && !r.cfg.Resume && r.cfg.Shard == nil {
		in := r.input
		p.Count = func(ctx context.Context) (int64, error) { return source.Count(ctx, in) }
	}
	return p
}

// stream wires source → fetch → transform → sink and runs them. It returns
// whether every input line was processed, and an error only when trawl
// itself failed (the output cannot be created or written, the input
// cannot be read) or the input does not match the output being resumed.
func (r *run) stream(ctx context.Context, observe func(*record.Record)) (complete bool, err error) {
	cfg := r.cfg
	chain := r.chain
	layout := cfg.Layout(chain.Columns())
	if r.structured() {
		layout.Row = true
	}
	if len(cfg.Columns.Keep) > 0 {
		layout.InputColumns, layout.InputVaries = r.kept, r.kept == nil
	}
	fo := cfg.Fetch
	fo.DiscardBody = chain.Len() == 0 // nothing will read the bodies
	var dir *sink.Dir
	if cfg.OutputDir != "" {
		tmpl := cfg.NameTemplate
		if tmpl.String() == "" {
			tmpl, _ = sink.ParseTemplate(sink.DefaultTemplate)
		}
		// Opened first, so that -o DIR/index.jsonl works in a new DIR, and
		// before the input is read, which uses up the resume state.
		dir, err = sink.OpenDir(cfg.OutputDir, tmpl, sink.DirOptions{
			Output: cfg.Output, Atomic: cfg.Atomic, Resume: r.resume, Digest: cfg.digest(),
			Reserved: []string{cfg.StatsFile, cfg.MetricsFile, cfg.LogFile, cfg.LockFile},
			// Bytes count as they arrive, so that progress moves while
			// large bodies are still downloading.
			OnSave: r.stats.Received,
		})
		if err != nil {
			return false, err
		}
		// Runs after the output's Close below: the directory forgets its
		// claims only once every record naming a file is on disk.
		defer func() {
			if cerr := dir.Close(err == nil && complete); cerr != nil && err == nil {
				err = cerr
			}
		}()
		fo.Store = storeAdapter{dir}
	}
	var warc *sink.WARC
	if cfg.WARC != "" {
		// Before the output, so that a WARC path that cannot be written
		// leaves -o FILE as it was.
		if warc, err = r.openWARC(); err != nil {
			return false, err
		}
		defer func() {
			if warc != nil { // not closed below: the output failed to open
				warc.Close()
			}
		}()
		fo.Capture = &capture.Spooler{Dir: warc.Dir(), MaxBody: cfg.WARCMaxBody}
	}
	outOpts := sink.OutputOptions{Atomic: cfg.Atomic, Append: r.resume != nil}
	if warc != nil {
		outOpts.BeforeWrite = warc.Flush
	}
	out, err := sink.Create(cfg.Output, cfg.Stdout, outOpts)
	if err != nil {
		return false, err
	}
	defer func() {
		// The WARC first: the records point into it, so it must be on
		// disk no later than they are.
		if warc != nil {
			if cerr := warc.Close(); cerr != nil && err == nil {
				err = cerr
			}
			warc = nil
		}
		if cerr := out.Close(err == nil && complete); cerr != nil && err == nil {
			err = cerr
		}
	}()
	tho := cfg.Throttle
	tho.Workers = max(1, cfg.FetchStage.Workers) // for the per-host cap's note in the summary
	th := throttle.New(tho)
	defer func() { r.stats.SetHostCap(stats.HostCap(th.Usage())) }()
	fo.Limiter = limiter{th}
	client, err := fetch.New(fo)
	if err != nil {
		return false, err
	}
	defer client.Close()
	enc, err := sink.NewEncoder(cfg.Format, out, layout)
	if err != nil {
		return false, err
	}
	var dd *dedupe.Deduper
	if cfg.Dedupe {
		dd = dedupe.New(dedupe.DefaultBudget)
		defer dd.Close() // its table lives outside the Go heap
	}
	input := r.input
	if r.resume != nil || dd != nil || cfg.Shard != nil || r.since != nil {
		input.Skip = func(rec *record.Record) (bool, error) {
			if cfg.Shard != nil && !cfg.Shard.Keeps(rec.Target, rec.URL) {
				return true, nil
			}
			if r.resume != nil {
				if done, err := r.resume.Done(rec.Index, rec.Identity()); done || err != nil {
					return done, err
				}
			}
			if r.since != nil {
				if err := r.attachPrevious(rec, dir); err != nil {
					return false, err
				}
			}
			if dd != nil {
				dd.Check(rec)
			}
			return false, nil
		}
	}

	// abortCtx tears everything down at once when trawl itself fails.
	abortCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	// sourceCtx stops reading input on a graceful stop or an abort.
	sourceCtx, stopSource := context.WithCancel(abortCtx)
	defer stopSource()
	stopOnCancel := context.AfterFunc(ctx, stopSource)
	defer stopOnCancel()
	// workCtx cancels in-flight work once the grace period after a stop ends.
	workCtx, cancelWork := context.WithCancel(abortCtx)
	defer cancelWork()
	var graceMu sync.Mutex
	var graceTimer *time.Timer
	stopGrace := context.AfterFunc(ctx, func() {
		graceMu.Lock()
		defer graceMu.Unlock()
		graceTimer = time.AfterFunc(cfg.Grace, cancelWork)
	})
	defer func() {
		stopGrace()
		graceMu.Lock()
		defer graceMu.Unlock()
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()

	records, readErr := source.Read(sourceCtx, input)
	fetchWindow := cfg.FetchStage.Window
	if fetchWindow == 0 {
		fetchWindow = autoWindow(cfg.FetchStage.Workers)
	}
	fetched := stage.Map(abortCtx, workCtx, records, stage.Options[*record.Record, *record.Record]{
		Workers:     cfg.FetchStage.Workers,
		Order:       cfg.FetchStage.Order,
		Window:      fetchWindow,
		WindowBytes: cfg.ReorderMemory,
		Size:        footprint,
		Gate:        hostGate{th},
		// Read-ahead URLs are dropped, not cancelled, on a stop.
		Stop: ctx.Done(),
	}, func(ctx context.Context, rec *record.Record) *record.Record {
		if !rec.CopyPending {
			client.Fetch(ctx, rec)
		}
		rec.Prev = nil // carried over already, if it was needed
		r.stats.Fetched(rec)
		return rec
	})
	transformed := fetched
	if chain.Len() > 0 {
		// Without transforms the stage would only pass records along.
		transformWindow := cfg.TransformStage.Window
		if transformWindow == 0 {
			transformWindow = autoWindow(cfg.TransformStage.Workers)
		}
		transformed = stage.Map(abortCtx, workCtx, fetched, stage.Options[*record.Record, *record.Record]{
			Workers:     cfg.TransformStage.Workers,
			Order:       cfg.TransformStage.Order,
			Window:      transformWindow,
			WindowBytes: cfg.ReorderMemory,
			Size:        footprint,
		}, func(ctx context.Context, rec *record.Record) *record.Record {
			if !rec.CopyPending && !rec.NotModified { // a 304 carried its outputs over
				chain.Apply(ctx, rec)
			}
			rec.Body, rec.Header = nil, nil // written records need neither
			return rec
		})
	}
	if dd != nil {
		transformed = joinDuplicates(abortCtx, transformed, dd)
	}

	sinkOpts := sink.Options{FlushEvery: cfg.FlushEvery, Observe: observe}
	if warc != nil {
		sinkOpts.Archive = warc
	}
	sinkErr := sink.Run(abortCtx, transformed, enc, out, sinkOpts)
	if sinkErr != nil {
		abort()
		// Wait for the stages to wind down so no goroutine outlives Run:
		// every stage closes its output once it sees the abort.
		for range transformed {
		}
		return false, sinkErr
	}
	select {
	case err := <-readErr:
		return false, err
	default:
	}
	if ctx.Err() != nil {
		return false, nil
	}
	if r.resume != nil && r.resume.Unmatched() > 0 {
		return false, exitcode.New(exitcode.Usage, fmt.Errorf("%w: the output has %d records for lines the input no longer has", sink.ErrInputChanged, r.resume.Unmatched()))
	}
	return true, nil
}

// openWARC opens the run's WARC series, repaired for the resume when
// there is one, with warcinfo records that name trawl, the user agent and
// the settings.
func (r *run) openWARC() (*sink.WARC, error) {
	cfg := r.cfg
	ua := cfg.Fetch.Header.Get("User-Agent")
	if ua == "" {
		ua = cfg.Fetch.UserAgent
	}
	info := []string{"http-header-user-agent: " + ua}
	w, err := sink.OpenWARC(sink.WARCOptions{
		Path: cfg.WARC, MaxSize: cfg.WARCMaxSize, Software: cfg.Software, Info: append(info, cfg.WARCInfo...),
		Revisits: cfg.Dedupe, Output: cfg.Output, Resume: r.resume,
	})
	if err != nil {
		return nil, err
	}
	if w.Note != "" {
		r.say("resuming the WARC: %s", w.Note)
	}
	return w, nil
}

// hostKey is the key per-host limits are kept under.
func hostKey(r *record.Record) string { return urlkey.Host(r.Target) }

// deadlineReached is the cancellation cause when --deadline stops the run.
type deadlineReached struct{ after time.Duration }

func (d deadlineReached) Error() string {
	return fmt.Sprintf("the --deadline of %s was reached", d.after)
}

// outcome decides the exit status, in order of precedence: trawl's own
// failure, a stop by signal or deadline, then failed URLs.
func (r *run) outcome(ctx context.Context, snap stats.Snapshot, complete bool, runErr error) (string, error) {
	cfg := r.cfg
	if runErr != nil {
		return "error", runErr
	}
	if !complete {
		var sig exitcode.Signal
		var dl deadlineReached
		switch cause := context.Cause(ctx); {
		case errors.As(cause, &sig):
			return "interrupted", exitcode.New(sig.Code(), fmt.Errorf("stopped by %s after writing %s", sig.Sig, plural(snap.Records, "record")))
		case errors.As(cause, &dl):
			msg := fmt.Sprintf("%s after %s; run again with --resume to finish", dl, plural(snap.Records, "record"))
			if cfg.Atomic {
				msg = fmt.Sprintf("%s after %s; with --atomic, %s was left as it was", dl, plural(snap.Records, "record"), cfg.Output)
			}
			return "incomplete", exitcode.New(exitcode.Incomplete, errors.New(msg))
		}
		return "interrupted", exitcode.New(exitcode.Interrupted, errors.New("stopped"))
	}
	// A resumed run answers for the whole output, not only its own part.
	whole := snap.Whole()
	if cfg.MaxFailures.Exceeded(whole.Failed, whole.Records) {
		where := ""
		if snap.Earlier.Records > 0 {
			where = " in the whole output"
		}
		return "failures", exitcode.New(exitcode.SomeFailed, fmt.Errorf("%d of %s failed%s, more than --max-failures %s allows",
			whole.Failed, plural(whole.Records, "URL"), where, cfg.MaxFailures))
	}
	return "ok", nil
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeReports writes --stats-file and --metrics-file, each atomically so
// that a monitor never reads half a file.
func (r *run) writeReports(rep stats.Report) error {
	if r.cfg.StatsFile != "" {
		b, err := rep.JSON()
		if err == nil {
			err = atomicfile.WriteFile(r.cfg.StatsFile, b)
		}
		if err != nil {
			return fmt.Errorf("cannot write the stats file: %w", err)
		}
	}
	if r.cfg.MetricsFile != "" {
		if err := atomicfile.WriteFile(r.cfg.MetricsFile, rep.Prometheus()); err != nil {
			return fmt.Errorf("cannot write the metrics file: %w", err)
		}
	}
	return nil
}

func resumeNote(output string, r *sink.Resume) string {
	if r.Kept == 0 && r.Retry == 0 && !r.Torn {
		return fmt.Sprintf("resuming %s: nothing done yet, starting from the beginning", output)
	}
	note := fmt.Sprintf("resuming %s: %s kept", output, plural(r.Kept, "record"))
	if r.Retry > 0 {
		note += fmt.Sprintf(", %s to fetch again", plural(r.Retry, "failed URL"))
	}
	if r.Duplicates > 0 {
		note += fmt.Sprintf(", %s removed", plural(r.Duplicates, "duplicate record"))
	}
	if r.Torn {
		note += ", an incomplete last line removed"
	}
	return note
}

func outputName(o string) string {
	if o == "" {
		return "-"
	}
	return o
}

func inputNames(inputs []string) string {
	if len(inputs) == 0 {
		return "-"
	}
	return strings.Join(inputs, ",")
}
