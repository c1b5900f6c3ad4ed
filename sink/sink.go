package sink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/trawl-dev/trawl/internal/atomicfile"
	"github.com/trawl-dev/trawl/record"
)

// Output is where records go: a file or standard output, behind a buffer.
type Output struct {
	w        io.Writer
	f        *os.File // nil for standard output and atomic files
	atomic   *atomicfile.File
	regular  bool // only regular files can be fsynced
	name     string
	bw       *bufio.Writer
	accepted int64           // bytes handed to Write
	under    *countingWriter // what the buffer passed on to the file
}

// countingWriter counts the bytes its writer accepted.
type countingWriter struct {
	w io.Writer
	n int64
	// before, when set, runs before each write, and an error stops it.
	before func() error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.before != nil {
		if err := c.before(); err != nil {
			return 0, err
		}
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// newOutput puts a buffer of size bytes in front of w, counting what gets
// through it.
func newOutput(w io.Writer, name string, size int) *Output {
	cw := &countingWriter{w: w}
	return &Output{w: w, name: name, under: cw, bw: bufio.NewWriterSize(cw, size)}
}

// OutputOptions says how to open a file output.
type OutputOptions struct {
	// Append adds to an existing file instead of truncating it (--resume).
	Append bool
	// Atomic writes to a temporary file that replaces the target only when
	// the run completes (--atomic).
	Atomic bool
	// BeforeWrite, when set, runs each time buffered records are about to
	// reach the file: the WARC's Flush, so that the WARC records a line
	// points at are always in their file before the line is in its.
	BeforeWrite func() error
}

// Create opens path for writing, or wraps stdout when path is "" or "-".
// It fails before anything is fetched when the file cannot be created, so
// a typo in -o costs nothing.
func Create(path string, stdout io.Writer, opts OutputOptions) (*Output, error) {
	if path == "" || path == "-" {
		o := newOutput(stdout, "standard output", 64<<10)
		o.under.before = opts.BeforeWrite
		return o, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("cannot write output to %s: it is a directory", path)
	}
	if opts.Atomic {
		af, err := atomicfile.Create(path)
		if err != nil {
			return nil, fmt.Errorf("cannot create output file: %w", err)
		}
		// atomicfile buffers; a second buffer here would only copy twice.
		o := newOutput(af, path, 4<<10)
		o.atomic = af
		return o, nil
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if opts.Append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create output file: %w", err)
	}
	regular := false
	if st, err := f.Stat(); err == nil {
		regular = st.Mode().IsRegular()
	}
	o := newOutput(f, path, 256<<10)
	o.f, o.regular = f, regular
	o.under.before = opts.BeforeWrite
	return o, nil
}

// Write buffers p.
func (o *Output) Write(p []byte) (int, error) {
	n, err := o.bw.Write(p)
	o.accepted += int64(n)
	return n, err
}

// Accepted returns how many bytes were handed to Write, and Written how
// many of them the file took: a record is written once the bytes up to its
// end are. (For --atomic, the file is the temporary one, which becomes the
// output only when the run completes.)
func (o *Output) Accepted() int64 { return o.accepted }

// Written returns how many bytes got through the buffer to the file.
func (o *Output) Written() int64 { return o.under.n }

// Flush writes buffered data to the file.
func (o *Output) Flush() error {
	err := o.bw.Flush()
	if err == nil && o.atomic != nil {
		err = o.atomic.Flush()
	}
	if err != nil {
		return fmt.Errorf("cannot write to %s: %w", o.name, err)
	}
	return nil
}

// Close flushes, fsyncs a file so that a completed run's output survives a
// crash right after exit, and closes it. Standard output is flushed only.
// For an atomic output, complete says whether the run finished: only then
// does the file replace the target; otherwise it is discarded.
func (o *Output) Close(complete bool) error {
	err := o.Flush()
	switch {
	case o.atomic != nil:
		if err != nil || !complete {
			o.atomic.Abort()
			return err
		}
		return o.atomic.Commit()
	case o.f == nil:
		// Redirected to a file, stdout benefits from fsync too; on a pipe
		// or terminal Sync fails harmlessly, so its error is ignored.
		if s, ok := o.w.(interface{ Sync() error }); ok {
			_ = s.Sync()
		}
		return err
	}
	// Devices and pipes (-o /dev/null, a FIFO) cannot be fsynced.
	if o.regular {
		if serr := o.f.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("cannot sync %s: %w", o.name, serr)
		}
	}
	if cerr := o.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("cannot close %s: %w", o.name, cerr)
	}
	return err
}

// Flusher is the part of an Output that Run needs; tests substitute their own.
type Flusher interface {
	io.Writer
	Flush() error
}

// tracker is a Flusher that says how far its bytes got, so that a record
// counts as written only once it is in the file, not merely in a buffer
// that a failing disk will never take.
type tracker interface {
	Accepted() int64
	Written() int64
}

// Options configures Run.
type Options struct {
	// FlushEvery is the longest time a written record may sit in a buffer.
	FlushEvery time.Duration
	// Observe, when set, is called with each record after it is written.
	Observe func(*record.Record)
	// Archive, when set, archives each record's capture before the
	// record is encoded (the WARC), so that the record can say where its
	// capture went and is never in the output ahead of it.
	Archive Archiver
}

// Archiver archives records' captures; Run's goroutine is its one user.
type Archiver interface {
	Write(r *record.Record) error
}

// Run writes every record received from in with enc, flushing enc and out
// every opts.FlushEvery and once in is closed. It returns the first write
// error, or ctx's error if ctx ends first; the caller must then stop the
// stages feeding in, since nobody reads it any more. Observe sees a record
// once the output has taken its bytes, so that after a failed write the
// figures count only what was written.
func Run(ctx context.Context, in <-chan *record.Record, enc Encoder, out Flusher, opts Options) error {
	every := opts.FlushEvery
	if every <= 0 {
		every = time.Second
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	observe := opts.Observe
	if observe == nil {
		observe = func(*record.Record) {}
	}
	track, _ := out.(tracker)
	type waiting struct {
		r   *record.Record
		end int64 // the output offset just past the record
	}
	var pending []waiting
	// settle observes the records whose bytes the file has taken.
	settle := func() {
		if track == nil {
			return
		}
		written := track.Written()
		n := 0
		for n < len(pending) && pending[n].end <= written {
			observe(pending[n].r)
			n++
		}
		if n > 0 {
			rest := copy(pending, pending[n:])
			clear(pending[rest:])
			pending = pending[:rest]
		}
	}
	dirty := false
	flush := func() error {
		if !dirty {
			return nil
		}
		dirty = false
		if err := enc.Flush(); err != nil {
			return fmt.Errorf("cannot write records: %w", err)
		}
		err := out.Flush()
		settle()
		return err
	}
	for {
		select {
		case r, ok := <-in:
			if !ok {
				dirty = true
				return flush()
			}
			if opts.Archive != nil {
				if err := opts.Archive.Write(r); err != nil {
					settle()
					return err
				}
			}
			if err := enc.Encode(r); err != nil {
				settle() // what got through before the failure was written
				return fmt.Errorf("cannot write records: %w", err)
			}
			dirty = true
			if track == nil {
				observe(r)
				continue
			}
			// A CSV writer buffers rows of its own; what it holds must
			// reach out before the record's end offset means anything.
			if err := enc.Flush(); err != nil {
				settle()
				return fmt.Errorf("cannot write records: %w", err)
			}
			pending = append(pending, waiting{r: r, end: track.Accepted()})
			settle()
		case <-ticker.C:
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return errors.Join(ctx.Err(), flush())
		}
	}
}
