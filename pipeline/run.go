package pipeline

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/dedupe"
	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/shard"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/throttle"
	"github.com/trawl-dev/trawl/transform"
)

// Config is everything one run needs, already validated.
type Config struct {
	// Input says where URLs come from.
	Input source.Options
	// Fetch configures the HTTP client.
	Fetch fetch.Options
	// FetchStage and TransformStage set each stage's workers and order.
	FetchStage     Options
	TransformStage Options
	// Transforms is the chain applied to each response; it may be empty.
	Transforms *transform.Chain
	// Format and Output choose the encoding and the file ("" or "-" for
	// Stdout); OutputOptions asks for appending or an atomic replacement.
	Format        sink.Format
	Output        string
	OutputOptions sink.OutputOptions
	Stdout        io.Writer
	// OutputDir, when set, is where bodies are saved, named by NameTemplate.
	OutputDir    string
	NameTemplate sink.Template
	// Resume, when set, lists what an earlier run already did: those URLs
	// are skipped, and the output is appended to.
	Resume *sink.Resume
	// FlushEvery bounds how long a record may stay in the output buffer.
	FlushEvery time.Duration
	// Grace is how long in-flight requests may continue after a stop.
	Grace time.Duration
	// Observe, when set, is called with every record as it is written.
	Observe func(*record.Record)
	// Shard, when set, keeps only this process's share of the list.
	Shard *shard.Spec
	// Dedupe, when set, fetches each distinct URL once; later lines with
	// the same URL copy the first one's result.
	Dedupe *dedupe.Deduper
	// Throttle, when set, limits requests per host and per second and
	// adapts to hosts that push back; the fetch stage then schedules URLs
	// so that no worker waits for a busy host while others are free.
	Throttle *throttle.Throttle
}

// Result describes how a run ended.
type Result struct {
	// Complete is true when every input line was processed: the run was
	// not stopped early and trawl did not fail.
	Complete bool
}

// hostGate lets the fetch stage ask the throttle before starting a URL.
// Records without a target (invalid lines) pass at once.
type hostGate struct{ t *throttle.Throttle }

// Records without a target (invalid lines) or that will copy an earlier
// result make no request and pass at once.
func requests(r *record.Record) bool { return r.Target != nil && !r.CopyPending }

func (g hostGate) Key(r *record.Record) string {
	if !requests(r) {
		return ""
	}
	return throttle.Key(r.Target)
}

func (g hostGate) TryStart(r *record.Record) (bool, time.Duration) {
	return g.t.TryAcquire(throttle.Key(r.Target))
}

func (g hostGate) Done(key string) { g.t.Release(key) }

// storeAdapter lets a sink.Dir serve as fetch's BodyStore; the two packages
// do not know each other.
type storeAdapter struct{ dir *sink.Dir }

func (s storeAdapter) Create(r *record.Record) (fetch.BodyFile, error) { return s.dir.Create(r) }

// autoWindow is the input-order reorder window when none is set. Records
// that wait for a slow one ahead of them carry no body when nothing will
// transform them, and then cost a few hundred bytes each: a window of 4096
// lets fetching go on at full speed behind a URL that takes 500 ms (1% of
// such URLs cost input order 95% of its throughput with a window of 32).
// Records that carry bodies are held to 4 per worker.
func autoWindow(workers int, bodiless bool) int {
	if bodiless {
		return max(4096, workers)
	}
	return 4 * max(workers, 1)
}

// Run streams the input through fetch and transform into the output.
//
// Cancelling ctx is a graceful stop: no more input is read, in-flight
// requests get cfg.Grace to finish before being cancelled (their records
// then say "canceled"), and every record produced is written and flushed.
// Run returns no error in that case, and a Result that says the run is not
// complete.
//
// Run returns an error only when trawl itself fails (the output cannot be
// created or written, the input cannot be read) or when the input does not
// match the output being resumed.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	chain := cfg.Transforms
	if chain == nil {
		chain = &transform.Chain{}
	}
	layout := sink.Layout{Files: cfg.OutputDir != "", Duplicates: cfg.Dedupe != nil, Columns: chain.Columns()}
	outOpts := cfg.OutputOptions
	if cfg.Resume != nil {
		outOpts.Append = true
	}
	fo := cfg.Fetch
	fo.DiscardBody = chain.Len() == 0 // nothing will read the bodies
	if cfg.OutputDir != "" {
		// Opened first, so that -o DIR/index.jsonl works in a new DIR.
		dir, err := sink.OpenDir(cfg.OutputDir, cfg.NameTemplate)
		if err != nil {
			return res, err
		}
		defer dir.Close()
		fo.Store = storeAdapter{dir}
	}
	out, err := sink.Create(cfg.Output, cfg.Stdout, outOpts)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := out.Close(err == nil && res.Complete); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if th := cfg.Throttle; th != nil {
		fo.WrapTransport = th.Transport
		fo.BeforeAttempt = func(ctx context.Context, r *record.Record, attempt int) (context.Context, error) {
			key := throttle.Key(r.Target)
			// The gate paid the first attempt when it started the URL;
			// retries pay here, before their timeout starts.
			if attempt > 1 {
				if err := th.Wait(ctx, key); err != nil {
					return nil, err
				}
			}
			return throttle.WithPrepaid(ctx, key), nil
		}
	}
	client, err := fetch.New(fo)
	if err != nil {
		return res, err
	}
	defer client.Close()
	enc, err := sink.NewEncoder(cfg.Format, out, layout)
	if err != nil {
		return res, err
	}
	input := cfg.Input
	if cfg.Resume != nil || cfg.Dedupe != nil || cfg.Shard != nil {
		input.Skip = func(r *record.Record) (bool, error) {
			if cfg.Shard != nil && !cfg.Shard.Keeps(r.Target, r.URL) {
				return true, nil
			}
			if cfg.Resume != nil {
				if done, err := cfg.Resume.Done(r.Index, r.URL); done || err != nil {
					return done, err
				}
			}
			if cfg.Dedupe != nil {
				cfg.Dedupe.Check(r)
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
	fetchOne := func(ctx context.Context, r *record.Record) *record.Record {
		if !r.CopyPending {
			client.Fetch(ctx, r)
		}
		return r
	}
	fetchStage := cfg.FetchStage
	if fetchStage.Window == 0 {
		fetchStage.Window = autoWindow(fetchStage.Workers, chain.Len() == 0)
	}
	transformStage := cfg.TransformStage
	if transformStage.Window == 0 {
		transformStage.Window = autoWindow(transformStage.Workers, false)
	}
	var fetched <-chan *record.Record
	if cfg.Throttle != nil {
		opts := fetchStage
		opts.Stop = ctx.Done() // read-ahead URLs are dropped, not cancelled, on a stop
		fetched = MapGated(abortCtx, workCtx, records, opts, Gate[*record.Record](hostGate{cfg.Throttle}), fetchOne)
	} else {
		fetched = Map(abortCtx, workCtx, records, fetchStage, fetchOne)
	}
	transformed := fetched
	if chain.Len() > 0 {
		// Without transforms the stage would only pass records along.
		transformed = Map(abortCtx, workCtx, fetched, transformStage, func(ctx context.Context, r *record.Record) *record.Record {
			if !r.CopyPending {
				chain.Apply(ctx, r)
			}
			r.Body, r.Header = nil, nil // written records need neither
			return r
		})
	}
	if cfg.Dedupe != nil {
		transformed = joinDuplicates(abortCtx, transformed, cfg.Dedupe)
	}

	observe := cfg.Observe
	if observe == nil {
		observe = func(*record.Record) {}
	}
	sinkErr := sink.Run(abortCtx, transformed, enc, out, sink.Options{FlushEvery: cfg.FlushEvery, Observe: observe})
	if sinkErr != nil {
		abort()
		// Wait for the stages to wind down so no goroutine outlives Run.
		for range transformed {
		}
		return res, sinkErr
	}
	select {
	case err := <-readErr:
		return res, err
	default:
	}
	if ctx.Err() != nil {
		return res, nil
	}
	if cfg.Resume != nil && cfg.Resume.Unmatched() > 0 {
		return res, fmt.Errorf("%w: the output has %d records for lines the input no longer has", sink.ErrInputChanged, cfg.Resume.Unmatched())
	}
	res.Complete = true
	return res, nil
}
