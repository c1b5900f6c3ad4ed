package stats

import (
	"testing"
	"time"
)

func TestHostCapLimited(t *testing.T) {
	held := func(span, held time.Duration, idle float64) HostCap {
		return HostCap{PerHost: 8, Workers: 64, Span: span, Held: held, Idle: time.Duration(idle * float64(held))}
	}
	for _, tc := range []struct {
		name string
		h    HostCap
		want bool
	}{
		{"56 of 64 idle for 90% of the run", held(10*time.Second, 9*time.Second, 56), true},
		{"a quarter of the workers idle", held(10*time.Second, 9*time.Second, 16), true},
		{"fewer than a quarter", held(10*time.Second, 9*time.Second, 15), false},
		{"half the run, not more", held(10*time.Second, 5*time.Second, 56), false},
		{"under a second", held(1500*time.Millisecond, 900*time.Millisecond, 56), false},
		{"never held", held(10*time.Second, 0, 0), false},
		{"no cap", HostCap{Workers: 64, Span: 10 * time.Second, Held: 9 * time.Second, Idle: 9 * 56 * time.Second}, false},
		{"not measured", HostCap{PerHost: 8}, false},
		{"one worker idle of two", HostCap{PerHost: 1, Workers: 2, Span: 3 * time.Second, Held: 3 * time.Second, Idle: 3 * time.Second}, true},
	} {
		if got := tc.h.Limited(); got != tc.want {
			t.Errorf("%s: Limited() = %v, want %v (%+v)", tc.name, got, tc.want, tc.h)
		}
	}
	if h := held(10*time.Second, 9*time.Second, 56); h.IdleWorkers() != 56 || h.HeldShare() != 0.9 {
		t.Errorf("idle %v, share %v", h.IdleWorkers(), h.HeldShare())
	}
}
