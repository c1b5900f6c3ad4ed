package fetch

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusSet is a set of HTTP status codes written as ranges, such as
// "200-299,304". The zero value contains no codes.
type StatusSet struct {
	ranges [][2]int
	text   string
}

// ParseStatusSet parses a comma-separated list of codes and inclusive
// ranges of codes between 100 and 599.
func ParseStatusSet(s string) (StatusSet, error) {
	set := StatusSet{text: s}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return StatusSet{}, fmt.Errorf("bad status range %q: want a code or a range of codes between 100 and 599, like 200-399", part)
		}
		set.ranges = append(set.ranges, [2]int{a, b})
	}
	if len(set.ranges) == 0 {
		return StatusSet{}, fmt.Errorf("empty status list %q", s)
	}
	return set, nil
}

// Contains reports whether code is in the set.
func (s StatusSet) Contains(code int) bool {
	for _, r := range s.ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

// String returns the set as it was written.
func (s StatusSet) String() string { return s.text }
