package progress

import "time"

// sample is the counts at one moment.
type sample struct {
	at          time.Time
	done, bytes int64
}

// measure says which estimates the samples allow.
type measure struct {
	rate  bool // there is a rate of URLs to show
	eta   bool // and it is steady enough to predict the time left
	bytes bool // there is a rate of bytes to show
}

// The meter's rules. A rate is measured over at least rateSpan and
// rateDone URLs when the recent past has them, so that it follows changes
// without jumping at every URL; over as far back as samples are kept
// otherwise. It is shown once it spans a second and a URL; the time left
// once it spans etaSpan and etaDone URLs.
const (
	rateSpan   = 10 * time.Second
	rateDone   = 10
	etaSpan    = 2 * time.Second
	etaDone    = 3
	maxSamples = 120 // at one a second, two minutes
)

// meter estimates rates from samples kept at most one a second, oldest
// first, the first of them the display's start until it ages out.
type meter struct {
	samples []sample
}

// reset starts measuring at s.
func (m *meter) reset(s sample) {
	m.samples = append(m.samples[:0], s)
}

// add keeps s if a second has passed since the last sample kept.
func (m *meter) add(s sample) {
	if n := len(m.samples); n > 0 && s.at.Sub(m.samples[n-1].at) < time.Second {
		return
	}
	if len(m.samples) == maxSamples {
		copy(m.samples, m.samples[1:])
		m.samples = m.samples[:maxSamples-1]
	}
	m.samples = append(m.samples, s)
}

// rates returns URLs and bytes per second up to now, and what they allow.
func (m *meter) rates(now sample) (urls, bytes float64, ok measure) {
	if len(m.samples) == 0 {
		return 0, 0, measure{}
	}
	base := m.samples[0]
	for i := len(m.samples) - 1; i >= 0; i-- {
		s := m.samples[i]
		if now.at.Sub(s.at) >= rateSpan && now.done-s.done >= rateDone {
			base = s
			break
		}
	}
	span, done, received := now.at.Sub(base.at), now.done-base.done, now.bytes-base.bytes
	if span < time.Second {
		return 0, 0, measure{}
	}
	ok = measure{rate: done > 0, eta: done >= etaDone && span >= etaSpan, bytes: received > 0}
	return float64(done) / span.Seconds(), float64(received) / span.Seconds(), ok
}
