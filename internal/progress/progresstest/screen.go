// Package progresstest provides a terminal stand-in for tests of what a
// progress display leaves on screen.
package progresstest

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// Screen is a minimal terminal, enough to see what a display and the
// output around it leave visible: printable characters overwrite the cell
// under the cursor, carriage return goes back to the first column, newline
// starts the next line, and ESC [ K (or ESC [ 2K) erases to the end of the
// line (or all of it). Lines do not wrap. It is safe for concurrent use,
// as a terminal shared by several writers is.
type Screen struct {
	mu       sync.Mutex
	lines    [][]rune
	row, col int
	writes   int
}

// Write draws p.
func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for str := string(p); str != ""; {
		switch {
		case strings.HasPrefix(str, "\x1b[K"):
			s.line()
			s.lines[s.row] = s.lines[s.row][:min(s.col, len(s.lines[s.row]))]
			str = str[3:]
		case strings.HasPrefix(str, "\x1b[2K"):
			s.line()
			s.lines[s.row] = s.lines[s.row][:0]
			str = str[4:]
		case str[0] == '\r':
			s.col = 0
			str = str[1:]
		case str[0] == '\n':
			s.row++
			s.col = 0
			str = str[1:]
		default:
			r, n := utf8.DecodeRuneInString(str)
			s.put(r)
			str = str[n:]
		}
	}
	return len(p), nil
}

// line makes sure the cursor's line exists.
func (s *Screen) line() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

func (s *Screen) put(r rune) {
	s.line()
	l := s.lines[s.row]
	for len(l) < s.col {
		l = append(l, ' ')
	}
	if s.col < len(l) {
		l[s.col] = r
	} else {
		l = append(l, r)
	}
	s.lines[s.row] = l
	s.col++
}

// Lines returns what the screen shows, line by line, without trailing
// blanks, up to the cursor's line.
func (s *Screen) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, s.row+1)
	for i := range out {
		if i < len(s.lines) {
			out[i] = strings.TrimRight(string(s.lines[i]), " ")
		}
	}
	return out
}

// Writes returns the number of writes so far.
func (s *Screen) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}
