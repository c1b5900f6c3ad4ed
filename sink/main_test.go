package sink

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the digest of
// a saved body runs in one of its own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
