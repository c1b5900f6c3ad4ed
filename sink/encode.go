// Package sink writes records out. Exactly one goroutine (Run) owns the
// output: it encodes records as JSON Lines or CSV, buffers them, flushes on
// a short interval so that a consumer tailing the file sees progress, and
// flushes and fsyncs at the end.
package sink

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/trawl-dev/trawl/record"
)

// Format is an output format.
type Format string

// The supported formats.
const (
	JSONL Format = "jsonl"
	CSV   Format = "csv"
)

// ParseFormat parses "jsonl" or "csv".
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case JSONL, CSV:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown format %q: want jsonl or csv", s)
}

// fields are the fixed record fields, in output order.
var fields = [...]string{
	"index", "url", "final_url", "status", "proto", "content_type", "bytes",
	"wire_bytes", "truncated", "attempts", "duration_ms", "error", "error_kind",
}

// Fields returns the names of the fixed fields every record has, in order.
func Fields() []string { return append([]string(nil), fields[:]...) }

// IsField reports whether name is one of the fixed fields, which transform
// outputs may not reuse.
func IsField(name string) bool {
	for _, f := range fields {
		if f == name {
			return true
		}
	}
	return false
}

// fileFields are added after the fixed fields when bodies are saved.
func fileFields() []string { return []string{"file", "sha256"} }

// Layout says which fields records have: the fixed ones, the file fields
// when bodies are saved to a directory, then the transform outputs.
type Layout struct {
	// Duplicates adds "duplicate_of" (--dedupe): the index of the first
	// line with the same URL, or null.
	Duplicates bool
	// Files adds "file" (the saved body's path in the output directory)
	// and "sha256" (its hash).
	Files bool
	// Columns are the transform output keys.
	Columns []string
}

// Names returns every field name in output order.
func (l Layout) Names() []string {
	names := Fields()
	if l.Duplicates {
		names = append(names, "duplicate_of")
	}
	if l.Files {
		names = append(names, fileFields()...)
	}
	return append(names, l.Columns...)
}

// Reserved reports the names transforms may not use under this layout.
func (l Layout) Reserved(name string) bool {
	if IsField(name) || l.Duplicates && name == "duplicate_of" {
		return true
	}
	if l.Files {
		for _, f := range fileFields() {
			if f == name {
				return true
			}
		}
	}
	return false
}

// values appends r's values in the order of Names to dst.
func (l Layout) values(dst []any, r *record.Record) []any {
	fixed := fixedValues(r)
	dst = append(dst, fixed[:]...)
	if l.Duplicates {
		if r.Duplicate {
			dst = append(dst, r.DuplicateOf)
		} else {
			dst = append(dst, nil)
		}
	}
	if l.Files {
		if r.File != "" {
			dst = append(dst, r.File, r.FileSHA256)
		} else {
			dst = append(dst, nil, nil)
		}
	}
	for i := range l.Columns {
		var v any
		if i < len(r.Values) {
			v = r.Values[i]
		}
		dst = append(dst, v)
	}
	return dst
}

// Encoder turns records into bytes on an underlying writer.
type Encoder interface {
	// Encode writes one record.
	Encode(r *record.Record) error
	// Flush pushes anything the encoder buffers to its writer.
	Flush() error
}

// NewEncoder returns an encoder for format writing to w, with the fields of
// layout.
func NewEncoder(format Format, w io.Writer, layout Layout) (Encoder, error) {
	switch format {
	case JSONL:
		return newJSONL(w, layout), nil
	case CSV:
		return newCSV(w, layout)
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// fixedValues returns the fixed fields of r in the order of fields. Fields
// that only exist once a response arrived are nil before that, so they come
// out as null (JSON) or empty (CSV) rather than as a misleading zero.
func fixedValues(r *record.Record) [len(fields)]any {
	var v [len(fields)]any
	v[0] = r.Index
	v[1] = r.URL
	if r.Status > 0 {
		v[2], v[3], v[4], v[5] = r.FinalURL, r.Status, r.Proto, r.ContentType
	}
	v[6] = r.Bytes
	v[7] = r.WireBytes
	v[8] = r.Truncated
	v[9] = r.Attempts
	v[10] = math.Round(float64(r.Duration.Microseconds())) / 1000
	if r.Err != nil {
		v[11], v[12] = r.Err.Error(), string(r.ErrKind)
	}
	return v
}

type jsonlEncoder struct {
	w       io.Writer
	layout  Layout
	keys    [][]byte // pre-encoded `"key":` for every field
	buf     bytes.Buffer
	scratch bytes.Buffer
	enc     *json.Encoder
}

func newJSONL(w io.Writer, layout Layout) *jsonlEncoder {
	e := &jsonlEncoder{w: w, layout: layout}
	e.enc = json.NewEncoder(&e.scratch)
	// Titles and bodies are full of <, > and &; escaping them buys nothing
	// in a data file and makes it harder to read.
	e.enc.SetEscapeHTML(false)
	for _, k := range layout.Names() {
		b, _ := json.Marshal(k)
		e.keys = append(e.keys, append(b, ':'))
	}
	return e
}

func (e *jsonlEncoder) Encode(r *record.Record) error {
	e.buf.Reset()
	b := e.appendFixed(e.buf.AvailableBuffer(), r)
	e.buf.Write(b)
	next := len(fields)
	if e.layout.Duplicates {
		if r.Duplicate {
			e.field(next, r.DuplicateOf)
		} else {
			e.field(next, nil)
		}
		next++
	}
	if e.layout.Files {
		present := r.File != ""
		e.buf.WriteByte(',')
		e.buf.Write(e.keys[next])
		e.buf.Write(appendNullableString(e.buf.AvailableBuffer(), r.File, present))
		e.buf.WriteByte(',')
		e.buf.Write(e.keys[next+1])
		e.buf.Write(appendNullableString(e.buf.AvailableBuffer(), r.FileSHA256, present))
		next += 2
	}
	for i := range e.layout.Columns {
		var v any
		if i < len(r.Values) {
			v = r.Values[i]
		}
		e.field(next+i, v)
	}
	e.buf.WriteString("}\n")
	_, err := e.w.Write(e.buf.Bytes())
	return err
}

// appendFixed writes "{" and the fixed fields without boxing each value
// into an interface, which is most of the encoder's cost per record.
// Fields that only exist once a response arrived are null before that.
func (e *jsonlEncoder) appendFixed(b []byte, r *record.Record) []byte {
	responded := r.Status > 0
	b = append(b, '{')
	b = append(b, e.keys[0]...)
	b = strconv.AppendInt(b, r.Index, 10)
	b = append(b, ',')
	b = append(b, e.keys[1]...)
	b = appendString(b, r.URL)
	b = append(b, ',')
	b = append(b, e.keys[2]...)
	b = appendNullableString(b, r.FinalURL, responded)
	b = append(b, ',')
	b = append(b, e.keys[3]...)
	if responded {
		b = strconv.AppendInt(b, int64(r.Status), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ',')
	b = append(b, e.keys[4]...)
	b = appendNullableString(b, r.Proto, responded)
	b = append(b, ',')
	b = append(b, e.keys[5]...)
	b = appendNullableString(b, r.ContentType, responded)
	b = append(b, ',')
	b = append(b, e.keys[6]...)
	b = strconv.AppendInt(b, r.Bytes, 10)
	b = append(b, ',')
	b = append(b, e.keys[7]...)
	b = strconv.AppendInt(b, r.WireBytes, 10)
	b = append(b, ',')
	b = append(b, e.keys[8]...)
	b = strconv.AppendBool(b, r.Truncated)
	b = append(b, ',')
	b = append(b, e.keys[9]...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, ',')
	b = append(b, e.keys[10]...)
	b = appendMillis(b, r.Duration.Microseconds())
	b = append(b, ',')
	b = append(b, e.keys[11]...)
	if r.Err != nil {
		b = appendString(b, r.Err.Error())
		b = append(b, ',')
		b = append(b, e.keys[12]...)
		b = appendString(b, string(r.ErrKind))
	} else {
		b = append(b, "null,"...)
		b = append(b, e.keys[12]...)
		b = append(b, "null"...)
	}
	return b
}

func (e *jsonlEncoder) field(i int, v any) {
	e.buf.WriteByte(',')
	e.buf.Write(e.keys[i])
	e.scratch.Reset()
	if err := e.enc.Encode(v); err != nil {
		// A transform produced something JSON cannot hold (such as NaN);
		// write null rather than a broken line.
		e.buf.WriteString("null")
		return
	}
	e.buf.Write(bytes.TrimSuffix(e.scratch.Bytes(), []byte("\n")))
}

func (e *jsonlEncoder) Flush() error { return nil }

type csvEncoder struct {
	w      *csv.Writer
	layout Layout
	vals   []any
	row    []string
	scrap  bytes.Buffer
	enc    *json.Encoder
}

func newCSV(w io.Writer, layout Layout) (*csvEncoder, error) {
	e := &csvEncoder{w: csv.NewWriter(w), layout: layout}
	e.enc = json.NewEncoder(&e.scrap)
	e.enc.SetEscapeHTML(false)
	header := layout.Names()
	e.row = make([]string, len(header))
	if err := e.w.Write(header); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *csvEncoder) Encode(r *record.Record) error {
	e.vals = e.layout.values(e.vals[:0], r)
	for i, v := range e.vals {
		e.row[i] = e.cell(v)
	}
	return e.w.Write(e.row)
}

// cell renders one value; structured values become compact JSON.
func (e *csvEncoder) cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	e.scrap.Reset()
	if err := e.enc.Encode(v); err != nil {
		return ""
	}
	return string(bytes.TrimSuffix(e.scrap.Bytes(), []byte("\n")))
}

func (e *csvEncoder) Flush() error {
	e.w.Flush()
	return e.w.Error()
}
