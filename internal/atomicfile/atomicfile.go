// Package atomicfile writes files so that readers see either the old
// content or the complete new content, never a half-written file: data
// goes to a temporary file in the same directory, which is fsynced and
// renamed over the target, and the directory is fsynced so the rename
// itself survives a crash.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File is a pending replacement of a file. Write to it, then Commit to put
// it in place or Abort to throw it away.
type File struct {
	tmp    *os.File
	target string
	bw     *bufio.Writer
	done   bool
}

// Create starts a replacement for path. The temporary file is created next
// to it (same directory, so the rename cannot cross file systems) with a
// name starting with "." so that globbing consumers skip it.
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary file for %s: %w", path, err)
	}
	return &File{tmp: tmp, target: path, bw: bufio.NewWriterSize(tmp, 256<<10)}, nil
}

// Name returns the temporary file's path.
func (f *File) Name() string { return f.tmp.Name() }

// Write buffers p for the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.bw.Write(p) }

// Flush writes buffered data to the temporary file.
func (f *File) Flush() error { return f.bw.Flush() }

// Commit flushes, fsyncs and renames the temporary file over the target,
// then fsyncs the directory. The file gets mode 0644, like os.Create's
// result under the usual umask, instead of CreateTemp's 0600.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	f.done = true
	err := f.bw.Flush()
	if err == nil {
		err = f.tmp.Chmod(0o644)
	}
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.tmp.Name(), f.target)
	}
	if err != nil {
		os.Remove(f.tmp.Name())
		return fmt.Errorf("cannot write %s: %w", f.target, err)
	}
	return SyncDir(filepath.Dir(f.target))
}

// Abort discards the temporary file, leaving the target untouched. It is
// safe to call after Commit, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.tmp.Close()
	os.Remove(f.tmp.Name())
}

// WriteFile replaces path with data atomically.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory so that entries created or renamed in it are
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}
