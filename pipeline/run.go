package pipeline

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stats"
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
	// Format and Output choose the encoding and the file ("" or "-" for Stdout).
	Format sink.Format
	Output string
	Stdout io.Writer
	// FlushEvery bounds how long a record may stay in the output buffer.
	FlushEvery time.Duration
	// Grace is how long in-flight requests may continue after a stop.
	Grace time.Duration
	// Stats receives every record as it is written.
	Stats *stats.Stats
}

// Run streams the input through fetch and transform into the output.
//
// Cancelling ctx is a graceful stop: no more input is read, in-flight
// requests get cfg.Grace to finish before being cancelled (their records
// then say "canceled"), and every record produced is written and flushed.
// Run returns nil in that case; the caller knows why it stopped.
//
// Run returns an error only when trawl itself fails: the output cannot be
// created or written, or the input cannot be read.
func Run(ctx context.Context, cfg Config) (err error) {
	out, err := sink.Create(cfg.Output, cfg.Stdout)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	client, err := fetch.New(cfg.Fetch)
	if err != nil {
		return err
	}
	defer client.Close()
	chain := cfg.Transforms
	if chain == nil {
		chain = &transform.Chain{}
	}
	enc, err := sink.NewEncoder(cfg.Format, out, chain.Columns())
	if err != nil {
		return err
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

	records, readErr := source.Read(sourceCtx, cfg.Input)
	noTransforms := chain.Len() == 0
	fetched := Map(abortCtx, workCtx, records, cfg.FetchStage, func(ctx context.Context, r *record.Record) *record.Record {
		client.Fetch(ctx, r)
		if noTransforms {
			r.Body, r.Header = nil, nil // nothing will read them; free them early
		}
		return r
	})
	transformed := Map(abortCtx, workCtx, fetched, cfg.TransformStage, func(ctx context.Context, r *record.Record) *record.Record {
		chain.Apply(ctx, r)
		r.Body, r.Header = nil, nil
		return r
	})

	observe := func(*record.Record) {}
	if cfg.Stats != nil {
		observe = cfg.Stats.Observe
	}
	sinkErr := sink.Run(abortCtx, transformed, enc, out, sink.Options{FlushEvery: cfg.FlushEvery, Observe: observe})
	if sinkErr != nil {
		abort()
		// Wait for the stages to wind down so no goroutine outlives Run.
		for range transformed {
		}
		return sinkErr
	}
	select {
	case err := <-readErr:
		return err
	default:
		return nil
	}
}
