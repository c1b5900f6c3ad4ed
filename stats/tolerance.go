package stats

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Tolerance is how many failed URLs a run may have and still count as a
// success: an absolute number, or a percentage of all URLs.
type Tolerance struct {
	count   int64
	percent float64
	isPct   bool
}

// ParseTolerance parses "N" or "N%".
func ParseTolerance(s string) (Tolerance, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v > 100 || math.IsNaN(v) {
			return Tolerance{}, fmt.Errorf("bad failure tolerance %q: want a count like 10 or a percentage from 0%% to 100%%", s)
		}
		return Tolerance{percent: v, isPct: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return Tolerance{}, fmt.Errorf("bad failure tolerance %q: want a count like 10 or a percentage like 5%%", s)
	}
	return Tolerance{count: n}, nil
}

// Exceeded reports whether failed out of total is more than tolerated.
func (t Tolerance) Exceeded(failed, total int64) bool {
	if t.isPct {
		return total > 0 && float64(failed)*100 > t.percent*float64(total)
	}
	return failed > t.count
}

// String returns the tolerance as it would be written on the command line.
func (t Tolerance) String() string {
	if t.isPct {
		return strconv.FormatFloat(t.percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(t.count, 10)
}
