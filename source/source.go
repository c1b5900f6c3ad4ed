// Package source turns URL lists (files or standard input) into a stream of
// records, one per URL line, without ever holding the whole list in memory.
//
// A URL line is any line that is not blank and does not start with '#'.
// Every URL line yields exactly one record, numbered from 0 across all inputs
// in order; a line that is not a fetchable URL yields a record that already
// carries an invalid_url error rather than being dropped.
package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/trawl-dev/trawl/record"
)

// StdinName is the path that means standard input.
const StdinName = "-"

// MaxURLBytes is the longest line accepted as a URL. Servers commonly refuse
// request lines past 8 KiB; we allow twice that and report longer lines as
// invalid rather than reading unbounded amounts into memory.
const MaxURLBytes = 16 << 10

// keptBytes is how much of an over-long line is kept in its record so that a
// reader can recognise it.
const keptBytes = 256

// Options says where to read URLs from.
type Options struct {
	// Paths are the files to read in order; "-" means Stdin. Empty means Stdin.
	Paths []string
	// Stdin is read for the "-" path.
	Stdin io.Reader
	// Skip, when set, is asked about every record; those it reports as
	// skipped are numbered but not sent (--resume uses it for URLs already
	// done). An error stops reading.
	Skip func(*record.Record) (bool, error)
}

func (o Options) paths() []string {
	if len(o.Paths) == 0 {
		return []string{StdinName}
	}
	return o.Paths
}

// Check verifies that every named input file can be opened, so that a typo is
// reported before any request is sent.
func Check(opts Options) error {
	for _, p := range opts.paths() {
		if p == StdinName {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("cannot read URL list: %w", err)
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return fmt.Errorf("cannot read URL list: %w", err)
		}
		if st.IsDir() {
			return fmt.Errorf("cannot read URL list %s: it is a directory", p)
		}
	}
	return nil
}

// ReadsStdin reports whether the inputs include standard input.
func ReadsStdin(opts Options) bool {
	for _, p := range opts.paths() {
		if p == StdinName {
			return true
		}
	}
	return false
}

// Count returns the number of URL lines in the named files, reading them
// once more but holding only one buffer. It fails for standard input, whose
// length cannot be known in advance.
func Count(ctx context.Context, opts Options) (int64, error) {
	var n int64
	err := Lines(ctx, opts, func(int64, string) error { n++; return nil })
	return n, err
}

// Lines calls fn with the index and text of every URL line of the named
// files, in order, without parsing them: a cheap pass that checks a list
// before the run proper reads it. It fails for standard input, which
// cannot be read twice.
func Lines(ctx context.Context, opts Options, fn func(index int64, line string) error) error {
	var index int64
	for _, p := range opts.paths() {
		if p == StdinName {
			return errors.New("cannot read standard input twice")
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("cannot read URL list: %w", err)
		}
		lr := newLineReader(f)
		for {
			if ctx.Err() != nil {
				f.Close()
				return ctx.Err()
			}
			line, size, err := lr.next()
			if err != nil {
				f.Close()
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("cannot read URL list %s: %w", p, err)
			}
			if !isURLLine(line) {
				continue
			}
			if err := fn(index, lineText(line, size)); err != nil {
				f.Close()
				return err
			}
			index++
		}
	}
	return nil
}

// readBuffer is how many records may wait between the reader and the
// stage that takes them.
const readBuffer = 64

// Read streams one record per URL line on the returned channel, which is
// closed at the end of the input or when ctx is done. A read failure is sent
// on the error channel (capacity 1) before the records channel is closed.
//
// Reading from a terminal or pipe can block indefinitely, so the blocking
// reads happen in a goroutine of their own: cancelling ctx closes the record
// channel promptly even while that goroutine is still waiting for input.
func Read(ctx context.Context, opts Options) (<-chan *record.Record, <-chan error) {
	// Buffered, so that lines move in batches rather than one wake-up of
	// the next goroutine each.
	out := make(chan *record.Record, readBuffer)
	errc := make(chan error, 1)
	raw := make(chan *record.Record, readBuffer)
	readErr := make(chan error, 1)

	go func() {
		defer close(raw)
		if err := readAll(ctx, opts, raw); err != nil {
			readErr <- err
		}
	}()

	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case r, ok := <-raw:
				if !ok {
					select {
					case err := <-readErr:
						errc <- err
					default:
					}
					return
				}
				select {
				case out <- r:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errc
}

func readAll(ctx context.Context, opts Options, out chan<- *record.Record) error {
	var index int64
	for _, p := range opts.paths() {
		var r io.Reader
		var closer io.Closer
		if p == StdinName {
			if opts.Stdin == nil {
				return errors.New("no standard input to read URLs from")
			}
			r = opts.Stdin
		} else {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("cannot read URL list: %w", err)
			}
			r, closer = f, f
		}
		err := readOne(ctx, r, &index, opts.Skip, out)
		if closer != nil {
			closer.Close()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			name := p
			if p == StdinName {
				name = "standard input"
			}
			return fmt.Errorf("cannot read URL list %s: %w", name, err)
		}
	}
	return nil
}

func readOne(ctx context.Context, r io.Reader, index *int64, skip func(*record.Record) (bool, error), out chan<- *record.Record) error {
	lr := newLineReader(r)
	for {
		line, size, err := lr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !isURLLine(line) {
			continue
		}
		rec := &record.Record{Index: *index}
		*index++
		fill(rec, line, size)
		if skip != nil {
			skipped, err := skip(rec)
			if err != nil {
				return err
			}
			if skipped {
				continue
			}
		}
		select {
		case out <- rec:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fill sets the record's URL and either its parsed target or its error.
// size is the full length of the line, which may exceed len(line) when the
// line was cut short while reading.
func fill(rec *record.Record, line []byte, size int) {
	rec.URL = lineText(line, size)
	if size > MaxURLBytes {
		rec.Fail(record.KindInvalidURL, fmt.Errorf("line is %d bytes long; URLs longer than %d bytes are not fetched", size, MaxURLBytes))
		return
	}
	u, err := ParseURL(rec.URL)
	if err != nil {
		rec.Fail(record.KindInvalidURL, err)
		return
	}
	rec.Target = u
}

// lineText is what a record's URL says for a line: the line itself, or for
// an over-long line its beginning and an ellipsis.
func lineText(line []byte, size int) string {
	if size <= MaxURLBytes {
		return string(line)
	}
	kept := line
	if len(kept) > keptBytes {
		kept = kept[:keptBytes]
	}
	return string(bytes.ToValidUTF8(kept, []byte("\uFFFD"))) + "…"
}

// isURLLine reports whether a trimmed line counts as a URL line.
func isURLLine(line []byte) bool {
	return len(line) > 0 && line[0] != '#'
}

// lineReader yields trimmed lines, cutting any line longer than MaxURLBytes
// (but still reporting its full size) so that a multi-gigabyte line without a
// newline costs a bounded amount of memory.
type lineReader struct {
	br    *bufio.Reader
	buf   []byte
	first bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), first: true}
}

// utf8BOM starts files saved by some Windows editors.
const utf8BOM = "\uFEFF"

// next returns the next line without its terminator and surrounding
// whitespace, plus the untrimmed length of the whole line.
func (lr *lineReader) next() ([]byte, int, error) {
	lr.buf = lr.buf[:0]
	size := 0
	for {
		chunk, err := lr.br.ReadSlice('\n')
		size += len(chunk)
		if room := MaxURLBytes + 1 - len(lr.buf); room > 0 {
			if len(chunk) > room {
				lr.buf = append(lr.buf, chunk[:room]...)
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !(errors.Is(err, io.EOF) && size > 0) {
			return nil, 0, err
		}
		if err == nil {
			size-- // the newline is not part of the line
		}
		break
	}
	line := lr.buf
	if lr.first {
		lr.first = false
		line = bytes.TrimPrefix(line, []byte(utf8BOM))
	}
	trimmed := bytes.TrimSpace(line)
	if size > MaxURLBytes {
		return trimmed, size, nil
	}
	return trimmed, len(trimmed), nil
}
