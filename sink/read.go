package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/trawl-dev/trawl/record"
)

// ErrNotRecord marks a line of a JSON Lines file that is not a trawl record.
var ErrNotRecord = errors.New("not a trawl record")

// Entry is one record read back from trawl's JSON Lines output: the line
// as it is in the file, where it is, and the fields resuming and merging
// decide by.
type Entry struct {
	// Raw is the whole line, newline included.
	Raw []byte
	// Offset is where the line starts in the file; Line its 1-based number.
	Offset int64
	Line   int
	// Index and URL identify the input line the record is for; Row is the
	// hash of a structured input row, when it is one.
	Index int64
	URL   string
	Row   string
	// Status is the HTTP status, 0 when the record has none.
	Status int
	// Kind is the error kind, "" when the record succeeded.
	Kind record.Kind
	// NotModified: the record was a 304 to --since.
	NotModified bool
	// WARCFile and WARCOffset say where the WARC holds the record's last
	// response (--warc); WARCFile is "" when it holds none.
	WARCFile   string
	WARCOffset int64
}

// Identity is what --resume compares the record by: the input row's hash
// when it has one, else the URL as read (record.Record.Identity).
func (e Entry) Identity() string {
	if e.Row != "" {
		return e.Row
	}
	return e.URL
}

// readHead reads the part of a record Entry needs from a line: a valid
// JSON object whose top-level fields have the types trawl writes. It
// picks the fields out by hand after json.Valid rather than with
// encoding/json's reflection, which cost 6.6 µs a line against 2 µs: every
// line of an output being resumed, merged or used by --since passes here.
// Keys are matched exactly, as trawl writes them.
func readHead(raw []byte, validate bool) (head, bool) {
	var h head
	if validate && !json.Valid(raw) {
		return h, false
	}
	b := bytes.TrimSpace(raw)
	ok := true
	scanObject(b, func(key, v []byte) {
		null := string(v) == "null"
		switch string(key) {
		case "index":
			if null {
				h.Index = nil
				return
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				ok = false
			}
			h.Index = &n
		case "url":
			var isStr bool
			h.URL, isStr = optString(v)
			ok = ok && isStr
		case "row":
			var isStr bool
			h.Row, isStr = optString(v)
			ok = ok && isStr
		case "status":
			h.Status = nil
			if !null {
				n, err := strconv.Atoi(string(v))
				ok = ok && err == nil
				h.Status = &n
			}
		case "error_kind":
			var isStr bool
			h.ErrorKind, isStr = optString(v)
			ok = ok && isStr
		case "not_modified":
			h.NotMod = string(v) == "true"
			ok = ok && (null || h.NotMod || string(v) == "false")
		case "warc_file":
			var isStr bool
			h.WARCFile, isStr = optString(v)
			ok = ok && isStr
		case "warc_offset":
			var isInt bool
			h.WARCOff, isInt = optInt64(v)
			ok = ok && isInt
		}
	})
	return h, ok && len(b) > 0 && b[0] == '{'
}

// optString reads a JSON string or null (nil); ok is false for anything
// else.
func optString(v []byte) (_ *string, ok bool) {
	if isNull(v) {
		return nil, true
	}
	s, ok := jsonString(v)
	return &s, ok
}

// optInt64 reads a JSON integer or null (nil); ok is false for anything
// else.
func optInt64(v []byte) (_ *int64, ok bool) {
	if isNull(v) {
		return nil, true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return &n, err == nil
}

// head is the part of a record Entry needs.
type head struct {
	Index     *int64  `json:"index"`
	URL       *string `json:"url"`
	Row       *string `json:"row"`
	Status    *int    `json:"status"`
	ErrorKind *string `json:"error_kind"`
	NotMod    bool    `json:"not_modified"`
	WARCFile  *string `json:"warc_file"`
	WARCOff   *int64  `json:"warc_offset"`
}

// Reader reads trawl's JSON Lines output record by record, holding one
// line at a time. It has the one rule for a torn last line, which every
// reader of trawl's output (resume, merge) follows: a last line without a
// newline, or one that is not a whole record, is what a killed writer
// leaves; it is skipped and reported by Torn. Any other line that is not a
// record is an error.
type Reader struct {
	name   string
	br     *bufio.Reader
	offset int64 // where the next line starts
	good   int64 // where the last complete record ends
	line   int
	torn   bool
	// vetted: the lines were read as records before (the second pass
	// over a file's runs), so they need not be checked to be JSON again.
	vetted bool
}

// NewReader reads records from r; name is used in messages.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next record, or io.EOF after the last one.
func (r *Reader) Next() (Entry, error) {
	raw, err := r.br.ReadBytes('\n')
	start := r.offset
	r.offset += int64(len(raw))
	if errors.Is(err, io.EOF) {
		if len(bytes.TrimSpace(raw)) > 0 {
			r.torn = true // the writer died in the middle of this line
		}
		return Entry{}, io.EOF
	}
	if err != nil {
		return Entry{}, fmt.Errorf("cannot read %s: %w", r.name, err)
	}
	r.line++
	h, ok := readHead(raw, !r.vetted)
	if !ok || h.Index == nil || h.URL == nil {
		if _, perr := r.br.Peek(1); errors.Is(perr, io.EOF) {
			r.torn = true // a last line that is not a record: torn all the same
			return Entry{}, io.EOF
		}
		return Entry{}, fmt.Errorf("%s line %d: %w", r.name, r.line, ErrNotRecord)
	}
	r.good = r.offset
	e := Entry{Raw: raw, Offset: start, Line: r.line, Index: *h.Index, URL: *h.URL}
	if h.Row != nil {
		e.Row = *h.Row
	}
	if h.Status != nil {
		e.Status = *h.Status
	}
	if h.ErrorKind != nil {
		e.Kind = record.Kind(*h.ErrorKind)
	}
	e.NotModified = h.NotMod
	if h.WARCFile != nil && h.WARCOff != nil {
		e.WARCFile, e.WARCOffset = *h.WARCFile, *h.WARCOff
	}
	return e, nil
}

// Torn reports, once Next has returned io.EOF, whether a torn last line
// was skipped.
func (r *Reader) Torn() bool { return r.torn }

// Good returns the offset just past the last complete record read: the
// length to cut a file to so that it holds only whole records.
func (r *Reader) Good() int64 { return r.good }
