package progresstest

import (
	"slices"
	"testing"
)

func TestScreen(t *testing.T) {
	var s Screen
	for _, w := range []string{"hello world", "\rHE", "\x1b[K\n", "ab\rx\n", "gone\x1b[2Kz"} {
		s.Write([]byte(w))
	}
	if got, want := s.Lines(), []string{"HE", "xb", "    z"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}
