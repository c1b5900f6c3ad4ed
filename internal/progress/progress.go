// Package progress draws a one-line progress display on standard error from
// a run's stats: URLs fetched out of the total when the input size is known
// (a spinner and a count otherwise), bytes and a byte rate once bodies are
// large, a rate and an estimate of the time left once there is enough to
// measure them, and the failures so far. It only reads counters; the work
// itself never prints.
//
// The line is trawl's own, drawn on top of progressbar's rendering of the
// bar and the spinner: progressbar writes nothing itself (its writer is
// io.Discard) because it cannot do four things the display needs. Its rate
// and estimate are fixed at creation and show "0 it/hr" and "0s" before
// there is anything to measure; it leaves the cursor at the end of the bar,
// where output from elsewhere (records on a terminal, `| head -1`) is glued
// to it; it cannot fit a line to a narrower terminal but by shrinking the
// bar; and it may redraw on its own goroutine, so the last bytes written
// would not be the erasure.
//
// Every frame is one write: a carriage return, the line, an erase to the end
// of the line, and a carriage return that parks the cursor at the start, so
// that anything else written to the terminal overwrites the bar instead of
// following it. Stop erases the line, and nothing is written after that.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"

	"github.com/trawl-dev/trawl/stats"
)

// Options configures a Display.
type Options struct {
	// Writer receives the display; normally standard error.
	Writer io.Writer
	// Total is the number of URLs expected, or -1 when unknown.
	Total int64
	// Stats is read on every tick.
	Stats *stats.Stats
	// Interval is the redraw period; 0 means 150ms.
	Interval time.Duration
	// Width returns the terminal's width in columns, read on every tick; nil
	// or a value below 1 means 80.
	Width func() int
	// Hold, when set, keeps the display blank until it is closed: while
	// URLs are typed on the terminal, a redrawn line would overwrite the
	// one being typed.
	Hold <-chan struct{}
}

// Display redraws the line until stopped.
type Display struct {
	opts  Options
	out   io.Writer
	stats *stats.Stats
	width func() int
	// bar renders the bar or the spinner; it writes nothing.
	bar   *progressbar.ProgressBar
	total int64
	meter meter
	shown string // the line on screen, "" when none

	totals chan int64
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Erase is what Stop writes to remove the line: back to its start, and
// erase to its end.
const Erase = "\r\x1b[K"

// barWidth is the bar's width in cells, when the terminal has room for it.
const barWidth = 16

// Start draws the display and keeps it current until Stop.
func Start(opts Options) *Display {
	d := newDisplay(opts)
	go d.loop()
	return d
}

func newDisplay(opts Options) *Display {
	if opts.Interval <= 0 {
		opts.Interval = 150 * time.Millisecond
	}
	if opts.Total <= 0 {
		opts.Total = -1 // the library knows no empty bar
	}
	width := opts.Width
	if width == nil {
		width = func() int { return 0 }
	}
	return &Display{
		opts:   opts,
		out:    opts.Writer,
		stats:  opts.Stats,
		width:  width,
		total:  opts.Total,
		totals: make(chan int64, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		bar: progressbar.NewOptions64(opts.Total,
			progressbar.OptionSetWriter(io.Discard),
			progressbar.OptionSetWidth(barWidth),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSpinnerType(14),
			// The spinner turns once per frame: the library's own
			// interval would start a goroutine that outlives the bar.
			progressbar.OptionSetSpinnerChangeInterval(0),
		),
	}
}

// SetTotal supplies the expected number of URLs once it is known.
func (d *Display) SetTotal(n int64) {
	select {
	case d.totals <- n:
	default:
	}
}

// Stop erases the line, leaving it free for the summary; nothing is written
// after it returns. It is safe to call more than once.
func (d *Display) Stop() {
	d.once.Do(func() {
		close(d.stop)
		<-d.done
	})
}

// loop owns the display: every write happens here, so the erasure is
// always the last.
func (d *Display) loop() {
	defer close(d.done)
	defer d.erase()
	if !d.wait() {
		return
	}
	now := time.Now()
	d.meter.reset(d.sample(d.stats.Snapshot(now), now))
	d.tick(now)
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		select {
		case n := <-d.totals:
			d.setTotal(n)
		case now := <-t.C:
			d.tick(now)
		case <-d.stop:
			return
		}
	}
}

// wait returns once Hold is released, or false if the display was stopped
// first.
func (d *Display) wait() bool {
	if d.opts.Hold == nil {
		return true
	}
	for {
		select {
		case <-d.opts.Hold:
			return true
		case n := <-d.totals:
			d.setTotal(n)
		case <-d.stop:
			return false
		}
	}
}

func (d *Display) setTotal(n int64) {
	if n <= 0 {
		return
	}
	d.total = n
	d.bar.ChangeMax64(n)
}

// tick draws the current state, unless the line would not change.
func (d *Display) tick(now time.Time) {
	snap := d.stats.Snapshot(now)
	s := d.sample(snap, now)
	d.meter.add(s)
	v := view{total: d.total, done: s.done, bytes: s.bytes, failed: max(snap.FetchFailed, snap.Failed)}
	v.rate, v.byteRate, v.measured = d.meter.rates(s)
	line := d.render(v)
	if line == d.shown {
		return
	}
	d.shown = line
	// A display must not fail the run: a write error only loses a frame.
	_, _ = io.WriteString(d.out, "\r"+line+"\x1b[K\r")
}

// sample reads the counts the display follows. Records written are never
// more than URLs fetched in a run, but a caller that only writes records
// still gets a count. Bytes are those of the URLs done or, when more,
// those of bodies being saved as they arrive: each is a lower bound.
func (d *Display) sample(snap stats.Snapshot, now time.Time) sample {
	return sample{at: now, done: max(snap.Fetched, snap.Records), bytes: max(snap.FetchedBytes, snap.Bytes, snap.Received)}
}

// render returns the line for v, fitted to the terminal.
func (d *Display) render(v view) string {
	if v.total > 0 {
		_ = d.bar.Set64(min(v.done, v.total))
	}
	_ = d.bar.RenderBlank()
	// The library pads the percentage to four columns, which keeps the
	// line from shifting as it grows; only its trailing blanks go.
	glyph := strings.TrimRight(strings.TrimPrefix(d.bar.String(), "\r"), " ")
	short := glyph // the spinner is one column already
	if v.total > 0 {
		short = fmt.Sprintf("%4d%%", min(v.done, v.total)*100/v.total)
	}
	return fit(v.text(), d.width(), glyph, short)
}

func (d *Display) erase() {
	if d.shown != "" {
		_, _ = io.WriteString(d.out, Erase)
		d.shown = ""
	}
}

// fit prefixes text with the first of the glyphs (the bar, then the
// percentage alone) that leaves the line narrower than the terminal, or
// with none, cutting the text if it must: a line that wrapped could no
// longer be redrawn in place.
func fit(text string, width int, glyphs ...string) string {
	if width <= 0 {
		width = 80
	}
	room := max(width-1, 1) // the last column would wrap on some terminals
	for _, g := range glyphs {
		if line := g + " " + text; utf8.RuneCountInString(line) <= room {
			return line
		}
	}
	if utf8.RuneCountInString(text) <= room {
		return text
	}
	return string([]rune(text)[:room])
}
