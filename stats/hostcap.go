package stats

import "time"

// HostCap is how much the per-host cap (--per-host), rather than the number
// of workers (-c), held a run back. The throttle measures it as its
// throttle.Usage, whose fields it mirrors one for one so that the pipeline
// can convert the one into the other.
type HostCap struct {
	// PerHost is the configured cap, 0 for none.
	PerHost int
	// Workers is the number of requests the run could have in flight.
	Workers int
	// Span is the time measured, from the throttle's start to the end of
	// the fetching.
	Span time.Duration
	// Held is the time during which at least one worker was free while a
	// URL waited for a host at its cap.
	Held time.Duration
	// Idle is the workers' idle time during Held (two idle workers for a
	// second count two seconds).
	Idle time.Duration
}

// hostCapMinHeld is the least time a cap must have held workers idle for
// Limited: on a short run, raising it would save next to nothing.
const hostCapMinHeld = time.Second

// IdleWorkers returns how many workers were idle on average while the cap
// held the run, or 0 when it never did.
func (h HostCap) IdleWorkers() float64 {
	if h.Held <= 0 {
		return 0
	}
	return float64(h.Idle) / float64(h.Held)
}

// HeldShare returns the part of the run (0 to 1) the cap held workers idle.
func (h HostCap) HeldShare() float64 {
	if h.Span <= 0 {
		return 0
	}
	return min(1, float64(h.Held)/float64(h.Span))
}

// Limited reports whether the per-host cap is what limited the run: for
// more than half of it and at least a second, workers sat idle while URLs
// waited for a host at its cap, on average at least one worker and a
// quarter of them. A run that -c limited never has a worker free while a
// URL waits, so it never qualifies.
func (h HostCap) Limited() bool {
	idle := h.IdleWorkers()
	return h.PerHost > 0 && h.Workers > 0 && h.Held >= hostCapMinHeld && 2*h.Held > h.Span &&
		idle >= 1 && 4*idle >= float64(h.Workers)
}
