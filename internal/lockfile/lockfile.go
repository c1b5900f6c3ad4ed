// Package lockfile takes an exclusive advisory lock on a file, so that two
// trawl runs started by cron for the same job never run at once. The lock
// belongs to the open file: it goes away when the process exits, however
// it exits, so a crashed run never leaves a stale lock behind.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrLocked reports that another process holds the lock.
var ErrLocked = errors.New("another process holds the lock")

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// Acquire takes the lock on path without waiting, creating the file if
// needed. It returns an error wrapping ErrLocked when the lock is held.
// The holder's process ID is written into the file for people to read.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			holder, _ := os.ReadFile(path)
			if pid, perr := strconv.Atoi(string(trimNewline(holder))); perr == nil {
				return nil, fmt.Errorf("%s: %w (process %d)", path, ErrLocked, pid)
			}
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. The file itself stays, so that a waiting
// process never locks a file that is being deleted.
func (l *Lock) Release() error {
	return l.f.Close()
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Hold takes the lock on an existing file without changing its content,
// for files that are data rather than lock files (an output being
// resumed). It returns an error wrapping ErrLocked when another process
// holds it.
func Hold(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Holds reports whether the lock is still on the file now at path: a file
// replaced by a rename is another file, with a lock of its own.
func (l *Lock) Holds(path string) bool {
	held, err1 := l.f.Stat()
	now, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(held, now)
}
