package cmd

import (
	"errors"
	"fmt"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// usageError marks mistakes on the command line itself (a bad flag, a bad
// value, a wrong argument): exit status 2, and a hint to read --help. A
// configuration that only fails as a whole (a changed list to resume)
// is an exitcode.Error with the same status, without the hint.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error returned by a command to the process status.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return exitcode.Usage
	}
	return exitcode.Of(err)
}
