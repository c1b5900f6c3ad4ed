package progress

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trawl-dev/trawl/internal/progress/progresstest"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/stats"
)

// syncBuffer is a bytes.Buffer safe for the display's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail keeps failure messages short: a display redraws many times.
func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// step is a change of the counters followed by a frame at a moment.
type step struct {
	at      time.Duration // since t0
	fetched int           // URLs the fetch stage finishes, each of bytes
	bytes   int64
	failed  int // of them, failed
	written int // records written (failed ones among the fetched)
	saved   int // bytes of bodies being saved, arrived
}

// frames drives a display by hand, one tick per step, and returns each
// step's frame ("" when nothing was written).
func frames(t *testing.T, total int64, width int, steps ...step) []string {
	t.Helper()
	st := stats.New(t0)
	var buf bytes.Buffer
	d := newDisplay(Options{Writer: &buf, Total: total, Stats: st, Width: func() int { return width }})
	d.meter.reset(d.sample(st.Snapshot(t0), t0))
	var out []string
	var fetched []*record.Record
	for _, s := range steps {
		for i := range s.fetched {
			r := &record.Record{Bytes: s.bytes, Attempts: 1}
			if i < s.failed {
				r.Fail(record.KindTimeout, errors.New("slow"))
			}
			st.Fetched(r)
			fetched = append(fetched, r)
		}
		st.Received(s.saved)
		for range s.written {
			st.Observe(fetched[0])
			fetched = fetched[1:]
		}
		buf.Reset()
		d.tick(t0.Add(s.at))
		out = append(out, buf.String())
	}
	return out
}

// frame is what the display writes for a line: the line, erased to its end,
// the cursor back at its start.
func frame(line string) string { return "\r" + line + "\x1b[K\r" }

func TestFrames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total int64
		width int
		steps []step
		want  []string
	}{{
		name: "no rate and no estimate before there is one", total: 100,
		steps: []step{{}, {at: 500 * time.Millisecond, fetched: 3}},
		want:  []string{frame("   0% |                | 0/100 URLs, 0 failed"), frame("   3% |                | 3/100 URLs, 0 failed")},
	}, {
		name: "a rate after a second, the time left once steady", total: 100,
		steps: []step{{at: 1500 * time.Millisecond, fetched: 3}, {at: 2 * time.Second, fetched: 17}},
		want: []string{
			frame("   3% |                | 3/100 URLs, 2.0/s, 0 failed"),
			frame("  20% |███             | 20/100 URLs, 10/s, ETA 8s, 0 failed"),
		},
	}, {
		name: "fetched, not written, is what counts", total: 4,
		steps: []step{{at: 3 * time.Second, fetched: 3, bytes: 1000}},
		want:  []string{frame("  75% |████████████    | 3/4 URLs, 1.0/s, ETA 1s, 0 failed")},
	}, {
		name: "large bodies show bytes and their rate", total: 4,
		steps: []step{{at: 4 * time.Second, fetched: 1, bytes: 10 << 20}, {at: 8 * time.Second, fetched: 2, bytes: 10 << 20}},
		want: []string{
			frame("  25% |████            | 1/4 URLs, 10.0 MiB at 2.5 MiB/s, 15/min, 0 failed"),
			// Too long for the bar on 80 columns: the percentage stays.
			frame("  75% 3/4 URLs, 30.0 MiB at 3.8 MiB/s, 22/min, ETA 3s, 0 failed"),
		},
	}, {
		name: "bytes being saved show before any URL is done", total: 4,
		steps: []step{{at: 500 * time.Millisecond, saved: 1 << 20}, {at: 2 * time.Second, saved: 5 << 20}},
		want: []string{
			frame("   0% |                | 0/4 URLs, 1.0 MiB, 0 failed"),
			frame("   0% |                | 0/4 URLs, 6.0 MiB at 3.0 MiB/s, 0 failed"),
		},
	}, {
		name: "small bodies show no bytes", total: -1,
		steps: []step{{at: 2 * time.Second, fetched: 10, bytes: 200 << 10, saved: 100 << 10}},
		want:  []string{frame("⠋ 10 URLs, 5.0/s, 0 failed")},
	}, {
		name: "one URL", total: -1,
		steps: []step{{fetched: 1}},
		want:  []string{frame("⠋ 1 URL, 0 failed")},
	}, {
		name: "a slow run is counted per minute", total: -1,
		steps: []step{{at: 30 * time.Second, fetched: 2}},
		want:  []string{frame("⠋ 2 URLs, 4/min, 0 failed")},
	}, {
		name: "unknown total: a spinner, a count, a rate, no estimate", total: -1,
		steps: []step{{}, {at: 4 * time.Second, fetched: 120}, {at: 5 * time.Second, fetched: 30}},
		want:  []string{frame("⠋ 0 URLs, 0 failed"), frame("⠙ 120 URLs, 30/s, 0 failed"), frame("⠹ 150 URLs, 30/s, 0 failed")},
	}, {
		name: "failures as fetched, or as written when more", total: 10,
		steps: []step{{at: time.Second, fetched: 4, failed: 2}, {at: 2 * time.Second, written: 4}},
		want: []string{
			frame("  40% |██████          | 4/10 URLs, 4.0/s, 2 failed"),
			frame("  40% |██████          | 4/10 URLs, 2.0/s, ETA 3s, 2 failed"),
		},
	}, {
		name: "the rate follows the last ten seconds", total: -1,
		steps: []step{{at: 10 * time.Second, fetched: 1000}, {at: 20 * time.Second, fetched: 100}},
		want:  []string{frame("⠋ 1000 URLs, 100/s, 0 failed"), frame("⠙ 1100 URLs, 10/s, 0 failed")},
	}, {
		name: "a stall hides the rate rather than show 0/s", total: -1,
		steps: func() []step {
			s := []step{{at: time.Second, fetched: 50}}
			for i := 2; i <= maxSamples+10; i++ {
				s = append(s, step{at: time.Duration(i) * time.Second})
			}
			return s
		}(),
		want: nil, // checked below
	}, {
		name: "a narrow terminal keeps the percentage", total: 1000, width: 50,
		steps: []step{{at: 2 * time.Second, fetched: 123}},
		want:  []string{frame("  12% 123/1000 URLs, 62/s, ETA 14s, 0 failed")},
	}, {
		name: "a very narrow one the text, cut", total: 1000, width: 20,
		steps: []step{{at: 2 * time.Second, fetched: 123}},
		want:  []string{frame("123/1000 URLs, 62/s")},
	}} {
		got := frames(t, tc.total, tc.width, tc.steps...)
		if tc.want == nil {
			if first, last := got[0], got[len(got)-1]; !strings.Contains(first, "50/s") || !strings.HasSuffix(last, " 50 URLs, 0 failed\x1b[K\r") {
				t.Errorf("%s: first frame %q, last %q", tc.name, first, last)
			}
			continue
		}
		for i := range tc.want {
			if got[i] != tc.want[i] {
				t.Errorf("%s: frame %d\n got %q\nwant %q", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

// An unchanged line is not written again (a log file behind --progress
// always would fill with copies).
func TestUnchangedLineNotRedrawn(t *testing.T) {
	got := frames(t, 10, 0, step{}, step{at: 100 * time.Millisecond})
	if got[0] == "" || got[1] != "" {
		t.Fatalf("frames %q", got)
	}
}

func TestFormatETA(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1400 * time.Millisecond: "1s", 59 * time.Second: "59s", 61 * time.Second: "1m01s",
		3599 * time.Second: "59m59s", 3*time.Hour + 5*time.Minute: "3h05m",
	} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", d, got, want)
		}
	}
}

// waitFor polls the buffer until it contains want, for at most ten seconds.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q never showed %q", tail(buf.String()), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStopErasesTheLineLast(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, total := range []int64{-1, 10} {
		st := stats.New(time.Now())
		var buf syncBuffer
		d := Start(Options{Writer: &buf, Total: total, Stats: st, Interval: time.Millisecond})
		for i := range 7 {
			r := &record.Record{Attempts: 1}
			if i%3 == 0 {
				r.Fail(record.KindTimeout, errors.New("slow"))
			}
			st.Fetched(r)
		}
		waitFor(t, &buf, "7")
		waitFor(t, &buf, "3 failed")
		d.Stop()
		d.Stop()
		out := buf.String()
		if !strings.HasSuffix(out, Erase) {
			t.Fatalf("total %d: the output does not end by erasing the line: %q", total, tail(out))
		}
		if total > 0 && !strings.Contains(out, "7/10") {
			t.Fatalf("output %q lacks done/total", tail(out))
		}
	}
}

// Every frame leaves the cursor at the start of the line, where other
// output (records on the terminal, `| head -1`) overwrites the bar instead
// of being glued after it.
func TestFramesParkTheCursor(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := stats.New(time.Now())
	var buf syncBuffer
	d := Start(Options{Writer: &buf, Total: 5, Stats: st, Interval: time.Millisecond})
	st.Fetched(&record.Record{})
	waitFor(t, &buf, "1/5")
	d.Stop()
	out := strings.TrimSuffix(buf.String(), Erase)
	if !strings.HasSuffix(out, "\r") {
		t.Fatalf("the last frame leaves the cursor at the end of the bar: %q", tail(out))
	}
	for _, f := range strings.SplitAfter(out, "\x1b[K\r") {
		if f != "" && (!strings.HasPrefix(f, "\r") || !strings.HasSuffix(f, "\x1b[K\r")) {
			t.Fatalf("frame %q is not a whole redrawn line", f)
		}
	}
}

func TestSetTotal(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := stats.New(time.Now())
	var buf syncBuffer
	d := Start(Options{Writer: &buf, Total: -1, Stats: st, Interval: time.Millisecond})
	d.SetTotal(50)
	st.Fetched(&record.Record{})
	waitFor(t, &buf, "1/50")
	d.Stop()
}

// While Hold is open, the display draws nothing at all: stopped then, it
// leaves the terminal as it found it.
func TestHoldDrawsNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := stats.New(time.Now())
	st.Fetched(&record.Record{})
	var buf syncBuffer
	hold := make(chan struct{})
	d := Start(Options{Writer: &buf, Total: 3, Stats: st, Interval: time.Millisecond, Hold: hold})
	d.SetTotal(4)
	d.Stop()
	if out := buf.String(); out != "" {
		t.Fatalf("drew %q while held", tail(out))
	}

	// Released, it draws (with the total it was given meanwhile), and
	// erases at the end.
	var buf2 syncBuffer
	hold2 := make(chan struct{})
	d = Start(Options{Writer: &buf2, Total: 3, Stats: st, Interval: time.Millisecond, Hold: hold2})
	d.SetTotal(4)
	close(hold2)
	waitFor(t, &buf2, "1/4 URLs")
	d.Stop()
	if !strings.HasSuffix(buf2.String(), Erase) {
		t.Fatalf("not erased: %q", tail(buf2.String()))
	}
}

// TestOtherOutputOverwritesTheBar shares a terminal between the display and
// another writer, as `trawl list.txt | head -1` or records on the terminal
// do: what the other writes must start its own line, not follow the bar,
// and once the display stops only that output is left.
func TestOtherOutputOverwritesTheBar(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := stats.New(time.Now())
	var screen progresstest.Screen
	d := Start(Options{Writer: &screen, Total: 5, Stats: st, Interval: time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for screen.Writes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing was drawn")
		}
		time.Sleep(time.Millisecond)
	}
	const rec = `{"index":0,"url":"https://example.com/a/page/that/is/long/enough","status":200,"bytes":1234,"error":null}`
	screen.Write([]byte(rec + "\n"))
	drawn := screen.Writes()
	st.Fetched(&record.Record{})
	for screen.Writes() == drawn {
		if time.Now().After(deadline) {
			t.Fatal("nothing was drawn after the record")
		}
		time.Sleep(time.Millisecond)
	}
	d.Stop()
	if got := screen.Lines(); len(got) != 2 || got[0] != rec || got[1] != "" {
		t.Fatalf("screen shows %q, want the record alone", got)
	}
}
