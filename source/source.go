// Package source turns inputs (URL lists in files or on standard input,
// URLs given as arguments, CSV, TSV and JSON Lines rows with a URL column)
// into a stream of records, one per URL line or row, without ever holding
// the whole input in memory. It also says which records a shard keeps.
//
// A URL line is any line that is not blank and does not start with '#'.
// Every URL line or row yields exactly one record, numbered from 0 across
// all inputs in order; one that is not a fetchable URL yields a record that
// already carries its error rather than being dropped.
package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

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

// Options says where to read URLs from and how.
type Options struct {
	// Paths are the inputs, read in order: files, "-" for Stdin, or URLs
	// (an argument that starts with http:// or https:// is a URL fetched
	// in its place). Empty means Stdin.
	Paths []string
	// Stdin is read for the "-" path.
	Stdin io.Reader
	// Format is how inputs are read; FormatAuto decides by each file's
	// extension.
	Format Format
	// Columns names the URL column and the kept ones of structured input.
	Columns Columns
	// Request, when set, builds each record's request from its row.
	Request *Request
	// Skip, when set, is asked about every record; those it reports as
	// skipped are numbered but not sent (--resume uses it for URLs already
	// done). An error stops reading.
	Skip func(*record.Record) (bool, error)
}

// inputKind says what an input is.
type inputKind int

const (
	fileInput inputKind = iota
	stdinInput
	urlInput
)

// input is one of the lists trawl reads.
type input struct {
	name string
	kind inputKind
}

// IsURL reports whether a command-line argument is a URL rather than a
// file: it starts with http:// or https://.
func IsURL(arg string) bool {
	l := strings.ToLower(arg)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func (o Options) inputs() []input {
	if len(o.Paths) == 0 {
		return []input{{name: "standard input", kind: stdinInput}}
	}
	ins := make([]input, len(o.Paths))
	for i, p := range o.Paths {
		switch {
		case p == StdinName:
			ins[i] = input{name: "standard input", kind: stdinInput}
		case IsURL(p):
			ins[i] = input{name: p, kind: urlInput}
		default:
			ins[i] = input{name: p, kind: fileInput}
		}
	}
	return ins
}

// needsURL reports whether rows must have a URL column (no template makes
// the URL), and needsFields whether templates read the rows' fields.
func (o Options) needsURL() bool    { return o.Request == nil || o.Request.URL == nil }
func (o Options) needsFields() bool { return o.Request != nil && o.Request.usesFields() }

// open opens an input and returns its rows.
func (o Options) open(in input) (rowReader, io.Closer, error) {
	var r io.Reader
	var closer io.Closer
	switch in.kind {
	case urlInput:
		return &urlRows{url: in.name}, nil, nil
	case stdinInput:
		if o.Stdin == nil {
			return nil, nil, errors.New("no standard input to read URLs from")
		}
		r = o.Stdin
	default:
		f, err := os.Open(in.name)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read URL list: %w", err)
		}
		r, closer = f, f
	}
	var rows rowReader
	var err error
	switch formatOf(in, o.Format) {
	case FormatCSV:
		rows, err = newCSVRows(in.name, r, ',', o.Columns, o.needsURL(), o.needsFields())
	case FormatTSV:
		rows, err = newCSVRows(in.name, r, '\t', o.Columns, o.needsURL(), o.needsFields())
	case FormatJSONL:
		rows = newJSONRows(r, o.Columns, o.needsURL(), o.needsFields())
	default:
		rows = &lineRows{lr: newLineReader(r)}
	}
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, nil, err
	}
	return rows, closer, nil
}

// urlRows is a URL given as an argument: one row.
type urlRows struct {
	url  string
	done bool
}

func (u *urlRows) next() (row, error) {
	if u.done {
		return row{}, io.EOF
	}
	u.done = true
	return row{text: strings.TrimSpace(u.url), size: len(u.url)}, nil
}

// Check verifies, before any request is sent, that every input file can be
// opened and that structured inputs have the columns asked for, so that a
// typo costs nothing.
func Check(opts Options) error {
	_, err := KeptColumns(opts)
	return err
}

// Readable verifies that every named input file can be opened, without
// reading it: the first check of a command line, made before the run's
// settings (formats, columns, templates) are known.
func Readable(paths []string) error {
	for _, in := range (Options{Paths: paths}).inputs() {
		if in.kind != fileInput {
			continue
		}
		if err := readable(in.name); err != nil {
			return err
		}
	}
	return nil
}

// readable opens and stats one input file, wording why it cannot be read.
func readable(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("cannot read URL list: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read URL list: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("cannot read URL list %s: it is a directory", name)
	}
	return nil
}

// KeptColumns checks the inputs (see Check) and returns the names of the
// kept columns records carry, as the output's layout shows them. With
// --keep-columns all, CSV and TSV inputs keep their header's columns (all
// inputs must then have the same header); JSON Lines rows keep their own
// fields, whose names vary by row and are returned as nil.
func KeptColumns(opts Options) ([]string, error) {
	var names []string
	decided := false
	for _, in := range opts.inputs() {
		if in.kind != fileInput {
			continue
		}
		if err := readable(in.name); err != nil {
			return nil, err
		}
		format := formatOf(in, opts.Format)
		if !format.structured() || format == FormatJSONL {
			continue
		}
		f, err := os.Open(in.name)
		if err != nil {
			return nil, fmt.Errorf("cannot read URL list: %w", err)
		}
		comma := ','
		if format == FormatTSV {
			comma = '\t'
		}
		rows, err := newCSVRows(in.name, f, comma, opts.Columns, opts.needsURL(), false)
		f.Close()
		if err != nil {
			return nil, err
		}
		kept := rows.keptNames()
		if decided && !slices.Equal(kept, names) {
			return nil, fmt.Errorf("%s keeps the columns %s, the inputs before it %s: give inputs with the same header, or name the columns with --keep-columns",
				in.name, strings.Join(kept, ", "), strings.Join(names, ", "))
		}
		names, decided = kept, true
	}
	if !decided && len(opts.Columns.Keep) > 0 && !opts.Columns.all() {
		names = opts.Columns.Keep
	}
	return names, nil
}

// Structured reports whether any input is read as CSV, TSV or JSON Lines.
func Structured(opts Options) bool {
	for _, in := range opts.inputs() {
		if formatOf(in, opts.Format).structured() {
			return true
		}
	}
	return false
}

// ReadsStdin reports whether the inputs include standard input.
func ReadsStdin(opts Options) bool {
	for _, in := range opts.inputs() {
		if in.kind == stdinInput {
			return true
		}
	}
	return false
}

// Count returns the number of records the named inputs make, reading them
// once more but holding only one row at a time. It fails for standard
// input, whose length cannot be known in advance.
func Count(ctx context.Context, opts Options) (int64, error) {
	var n int64
	err := Lines(ctx, opts, func(int64, string) error { n++; return nil })
	return n, err
}

// Lines calls fn with the index and identity of every row of the named
// inputs, in order, without parsing their URLs: a cheap pass that checks
// a list before the run proper reads it. A row's identity is what
// --resume compares (Identity). It fails for standard input, which cannot
// be read twice.
func Lines(ctx context.Context, opts Options, fn func(index int64, identity string) error) error {
	var index int64
	for _, in := range opts.inputs() {
		if in.kind == stdinInput {
			return errors.New("cannot read standard input twice")
		}
		rows, closer, err := opts.open(in)
		if err != nil {
			return err
		}
		for {
			if ctx.Err() != nil {
				err = ctx.Err()
				break
			}
			var r row
			r, err = rows.next()
			if err != nil {
				break
			}
			if err = fn(index, r.identity()); err != nil {
				break
			}
			index++
		}
		if closer != nil {
			closer.Close()
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("cannot read URL list %s: %w", in.name, err)
		}
	}
	return nil
}

// identity is what --resume compares a row by: its hash for structured
// rows, its text for lines.
func (r row) identity() string {
	if r.hash != "" {
		return r.hash
	}
	return r.text
}

// Read streams one record per row on the returned channel, which is
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

// readBuffer is how many records may wait between the reader and the
// stage that takes them.
const readBuffer = 64

func readAll(ctx context.Context, opts Options, out chan<- *record.Record) error {
	var index int64
	for _, in := range opts.inputs() {
		rows, closer, err := opts.open(in)
		if err != nil {
			return err
		}
		err = readRows(ctx, rows, opts, &index, out)
		if closer != nil {
			closer.Close()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot read URL list %s: %w", in.name, err)
		}
	}
	return nil
}

func readRows(ctx context.Context, rows rowReader, opts Options, index *int64, out chan<- *record.Record) error {
	for {
		r, err := rows.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		rec := &record.Record{Index: *index}
		*index++
		fill(rec, r, opts.Request)
		if opts.Skip != nil {
			skipped, err := opts.Skip(rec)
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

// fill sets the record's URL, kept columns and identity, and either its
// parsed target (and any per-row request) or its error.
func fill(rec *record.Record, r row, req *Request) {
	rec.URL = r.text
	if r.hash != "" || r.kept != nil || r.keptNames != nil {
		rec.Row = &record.Row{Hash: r.hash}
		if r.kept != nil || r.keptNames != nil {
			rec.Row.Input = &record.Input{Names: r.keptNames, Values: r.kept}
		}
	}
	if r.err != nil {
		kind := record.KindInvalidURL
		if errors.Is(r.err, errMalformed) {
			kind = record.KindInput
		}
		rec.Fail(kind, r.err)
		return
	}
	if req != nil && req.URL != nil {
		u, err := req.url(r)
		if err != nil {
			rec.Fail(record.KindInput, err)
			return
		}
		rec.URL = u
	} else if r.size > MaxURLBytes {
		rec.Fail(record.KindInvalidURL, fmt.Errorf("line is %d bytes long; URLs longer than %d bytes are not fetched", r.size, MaxURLBytes))
		return
	}
	u, err := ParseURL(rec.URL)
	if err != nil {
		rec.Fail(record.KindInvalidURL, err)
		return
	}
	rec.Target = u
	if req != nil {
		if err := req.apply(rec, r); err != nil {
			rec.Fail(record.KindInput, err)
		}
	}
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
