// Package exitcode is the one table of trawl's exit statuses and the error
// type that carries one from where a run's outcome is decided to main.
package exitcode

import (
	"errors"
	"os"
	"syscall"
)

// The exit statuses, documented in --help and the README.
const (
	// OK: every URL succeeded (or failures stayed within --max-failures).
	OK = 0
	// Failure: trawl itself failed, e.g. the output could not be written.
	Failure = 1
	// Usage: bad flags, config or input files; nothing was fetched.
	Usage = 2
	// SomeFailed: the run completed but more URLs failed than tolerated.
	SomeFailed = 3
	// Locked: another trawl holds the --lock file; nothing was done.
	Locked = 4
	// Incomplete: --deadline stopped the run before the end of the input;
	// --resume finishes it.
	Incomplete = 5
	// Interrupted and Terminated: stopped by SIGINT or SIGTERM, after
	// writing and flushing every record produced.
	Interrupted = 130
	Terminated  = 143
)

// Help is the exit status table as --help prints it.
const Help = `Exit status:
  0    every URL succeeded (status in --accept, no error)
  1    trawl itself failed (e.g. the output could not be written)
  2    usage or configuration error; nothing was fetched
  3    the run completed, but more URLs failed than --max-failures allows
       (304s to --since are successes; robots.txt refusals never count)
  4    another trawl holds the --lock file; nothing was done
  5    --deadline stopped the run before the end of the input (--resume finishes it)
  130  interrupted by SIGINT (143: SIGTERM); records so far are written`

// Error is an error that decides the exit status.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// New returns err with the exit status code.
func New(code int, err error) error { return &Error{Code: code, Err: err} }

// Of maps an error to the process's exit status: nil is OK, an Error its
// code, anything else Failure.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failure
}

// Signal is the cause a run is cancelled with when a signal stops it.
type Signal struct{ Sig os.Signal }

func (s Signal) Error() string { return "interrupted by " + s.Sig.String() }

// Code returns the exit status for the signal: 128 plus its number, as
// shells report it.
func (s Signal) Code() int {
	if s.Sig == syscall.SIGTERM {
		return Terminated
	}
	return Interrupted
}
