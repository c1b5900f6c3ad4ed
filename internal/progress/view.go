package progress

import (
	"fmt"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/stats"
)

// view is what one frame shows.
type view struct {
	total  int64 // -1 when unknown
	done   int64 // URLs fetched
	failed int64
	bytes  int64
	// rate and byteRate are per second, valid when measured.
	rate, byteRate float64
	measured       measure
}

// largeBody is the average body (bytes so far per URL done, or the bytes
// alone before any is done) above which bytes are shown: a few large
// files take long, and a count of URLs done says little about how far
// they are.
const largeBody = 256 << 10

// text renders the counts: done, done/total, bytes and rates, the time
// left and the failures, leaving out what cannot be estimated yet (a rate
// of 0/hr or a time left of 0s says nothing true).
func (v view) text() string {
	var parts []string
	if v.total > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d URLs", v.done, v.total))
	} else {
		noun := "URLs"
		if v.done == 1 {
			noun = "URL"
		}
		parts = append(parts, fmt.Sprintf("%d %s", v.done, noun))
	}
	if v.bytes/max(v.done, 1) >= largeBody {
		b := stats.FormatBytes(v.bytes)
		if v.measured.bytes {
			b += " at " + stats.FormatBytes(int64(v.byteRate)) + "/s"
		}
		parts = append(parts, b)
	}
	if v.measured.rate {
		parts = append(parts, formatRate(v.rate))
	}
	if left := v.total - v.done; v.measured.eta && v.total > 0 && left > 0 {
		parts = append(parts, "ETA "+formatETA(time.Duration(float64(left)/v.rate*float64(time.Second))))
	}
	parts = append(parts, fmt.Sprintf("%d failed", v.failed))
	return strings.Join(parts, ", ")
}

// formatRate renders URLs per second in the unit that keeps a digit or two.
func formatRate(r float64) string {
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f/s", r)
	case r >= 1:
		return fmt.Sprintf("%.1f/s", r)
	case r*60 >= 1:
		return fmt.Sprintf("%.0f/min", r*60)
	}
	return fmt.Sprintf("%.0f/h", r*3600)
}

// formatETA renders the time left to the second under an hour, to the
// minute above.
func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
