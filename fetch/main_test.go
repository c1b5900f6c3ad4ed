package fetch

import (
	"fmt"
	"os"
	"testing"
)

// testEngine is the engine the current pass over the package's tests uses:
// TestMain runs every test once per engine, so that each promise the
// client makes is checked on both.
var testEngine = EngineLean

func TestMain(m *testing.M) {
	code := 0
	for _, e := range EngineNames() {
		testEngine = e
		fmt.Fprintf(os.Stderr, "=== the %s engine\n", e)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	os.Exit(code)
}
