// Package progress draws a progress bar on standard error from a run's
// stats: done/total when the input size is known, a counter with a rate
// otherwise, and the number of failures so far. It only reads counters; the
// work itself never prints.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/trawl-dev/trawl/stats"
)

// Options configures a Display.
type Options struct {
	// Writer receives the bar; normally standard error.
	Writer io.Writer
	// Total is the number of records expected, or -1 when unknown.
	Total int64
	// Stats is read on every tick.
	Stats *stats.Stats
	// Interval is the redraw period; 0 means 150ms.
	Interval time.Duration
}

// Display redraws a bar until stopped.
type Display struct {
	bar   *progressbar.ProgressBar
	stats *stats.Stats
	total chan int64
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// Start draws the bar and keeps it current until Stop.
func Start(opts Options) *Display {
	interval := opts.Interval
	if interval <= 0 {
		interval = 150 * time.Millisecond
	}
	d := &Display{
		stats: opts.Stats,
		total: make(chan int64, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		bar: progressbar.NewOptions64(opts.Total,
			progressbar.OptionSetWriter(opts.Writer),
			progressbar.OptionSetDescription("0 failed"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("URLs"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
			// We redraw on our own ticker (so no throttle, which could
			// swallow the final state); the library's spinner goroutine
			// would outlive a bar whose length is unknown.
			progressbar.OptionSetSpinnerChangeInterval(0),
		),
	}
	go d.loop(interval)
	return d
}

// SetTotal supplies the expected number of records once it is known.
func (d *Display) SetTotal(n int64) {
	select {
	case d.total <- n:
	default:
	}
}

func (d *Display) loop(interval time.Duration) {
	defer close(d.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case n := <-d.total:
			d.bar.ChangeMax64(n)
		case <-t.C:
			d.draw()
		case <-d.stop:
			d.draw()
			return
		}
	}
}

func (d *Display) draw() {
	snap := d.stats.Snapshot(time.Now())
	d.bar.Describe(fmt.Sprintf("%d failed", snap.Failed))
	_ = d.bar.Set64(snap.Records)
}

// Stop draws a last time and erases the bar, leaving the line free for the
// summary. It is safe to call more than once.
func (d *Display) Stop() {
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		_ = d.bar.Clear()
		_ = d.bar.Exit()
	})
}
