package cmd

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Exit codes, documented in --help and the README.
const (
	// ExitOK: every URL succeeded (or failures stayed within --max-failures).
	ExitOK = 0
	// ExitFailure: trawl itself failed, e.g. the output could not be written.
	ExitFailure = 1
	// ExitUsage: bad flags, config or input files; nothing was fetched.
	ExitUsage = 2
	// ExitSomeFailed: the run completed but more URLs failed than tolerated.
	ExitSomeFailed = 3
	// ExitLocked: another trawl holds the --lock file; nothing was done.
	ExitLocked = 4
	// ExitIncomplete: --deadline stopped the run before the end of the
	// input; --resume finishes it.
	ExitIncomplete = 5
	// ExitInterrupted and ExitTerminated: stopped by SIGINT or SIGTERM,
	// after writing and flushing every record produced.
	ExitInterrupted = 130
	ExitTerminated  = 143
)

const exitCodesHelp = `Exit status:
  0    every URL succeeded (status in --accept, no error)
  1    trawl itself failed (e.g. the output could not be written)
  2    usage or configuration error; nothing was fetched
  3    the run completed, but more URLs failed than --max-failures allows
  4    another trawl holds the --lock file; nothing was done
  5    --deadline stopped the run before the end of the input (--resume finishes it)
  130  interrupted by SIGINT (143: SIGTERM); records so far are written`

// usageError marks errors in flags, config or arguments (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitError carries a specific exit status and an optional message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// interrupted is the cancellation cause when a signal stops the run.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

func (i interrupted) code() int {
	if i.sig == syscall.SIGTERM {
		return ExitTerminated
	}
	return ExitInterrupted
}

// deadlineReached is the cancellation cause when --deadline stops the run.
type deadlineReached struct{ after time.Duration }

func (d deadlineReached) Error() string {
	return fmt.Sprintf("the --deadline of %s was reached", d.after)
}

// exitCode maps an error returned by a command to the process status.
func exitCode(err error) int {
	var ee *exitError
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return ExitUsage
	}
	return ExitFailure
}
