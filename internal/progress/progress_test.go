package progress

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/stats"
)

// syncBuffer is a bytes.Buffer safe for the bar's writes and the test's reads.
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

// tail keeps failure messages short: a bar redraws many times.
func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

func TestDisplayShowsCountsAndFailures(t *testing.T) {
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
			st.Observe(r)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(buf.String(), "3 failed") && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		d.Stop()
		d.Stop()
		out := buf.String()
		if !strings.Contains(out, "3 failed") || !strings.Contains(out, "7") {
			t.Fatalf("total %d: bar output %q lacks the counts", total, tail(out))
		}
		if total > 0 && !strings.Contains(out, "7/10") {
			t.Fatalf("bar output %q lacks done/total", tail(out))
		}
	}
}

func TestSetTotal(t *testing.T) {
	defer goleak.VerifyNone(t)
	st := stats.New(time.Now())
	var buf syncBuffer
	d := Start(Options{Writer: &buf, Total: -1, Stats: st, Interval: time.Millisecond})
	d.SetTotal(50)
	st.Observe(&record.Record{})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "1/50") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	d.Stop()
	if !strings.Contains(buf.String(), "1/50") {
		t.Fatalf("bar output %q never showed the new total", tail(buf.String()))
	}
}
