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
	"truncated", "attempts", "duration_ms", "error", "error_kind",
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

// Encoder turns records into bytes on an underlying writer.
type Encoder interface {
	// Encode writes one record.
	Encode(r *record.Record) error
	// Flush pushes anything the encoder buffers to its writer.
	Flush() error
}

// NewEncoder returns an encoder for format writing to w; columns are the
// transform output keys, appended after the fixed fields.
func NewEncoder(format Format, w io.Writer, columns []string) (Encoder, error) {
	switch format {
	case JSONL:
		return newJSONL(w, columns), nil
	case CSV:
		return newCSV(w, columns)
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
	v[7] = r.Truncated
	v[8] = r.Attempts
	v[9] = math.Round(float64(r.Duration.Microseconds())) / 1000
	if r.Err != nil {
		v[10], v[11] = r.Err.Error(), string(r.ErrKind)
	}
	return v
}

type jsonlEncoder struct {
	w       io.Writer
	keys    [][]byte // pre-encoded `"key":` for fixed fields then columns
	buf     bytes.Buffer
	scratch bytes.Buffer
	enc     *json.Encoder
}

func newJSONL(w io.Writer, columns []string) *jsonlEncoder {
	e := &jsonlEncoder{w: w}
	e.enc = json.NewEncoder(&e.scratch)
	// Titles and bodies are full of <, > and &; escaping them buys nothing
	// in a data file and makes it harder to read.
	e.enc.SetEscapeHTML(false)
	for _, k := range append(Fields(), columns...) {
		b, _ := json.Marshal(k)
		e.keys = append(e.keys, append(b, ':'))
	}
	return e
}

func (e *jsonlEncoder) Encode(r *record.Record) error {
	e.buf.Reset()
	e.buf.WriteByte('{')
	fixed := fixedValues(r)
	for i, v := range fixed {
		if err := e.field(i, v); err != nil {
			return err
		}
	}
	for i := range len(e.keys) - len(fixed) {
		var v any
		if i < len(r.Values) {
			v = r.Values[i]
		}
		if err := e.field(len(fixed)+i, v); err != nil {
			return err
		}
	}
	e.buf.WriteString("}\n")
	_, err := e.w.Write(e.buf.Bytes())
	return err
}

func (e *jsonlEncoder) field(i int, v any) error {
	if i > 0 {
		e.buf.WriteByte(',')
	}
	e.buf.Write(e.keys[i])
	e.scratch.Reset()
	if err := e.enc.Encode(v); err != nil {
		// A transform produced something JSON cannot hold (such as NaN);
		// write null rather than a broken line.
		e.buf.WriteString("null")
		return nil
	}
	e.buf.Write(bytes.TrimSuffix(e.scratch.Bytes(), []byte("\n")))
	return nil
}

func (e *jsonlEncoder) Flush() error { return nil }

type csvEncoder struct {
	w      *csv.Writer
	fields int
	row    []string
	scrap  bytes.Buffer
	enc    *json.Encoder
}

func newCSV(w io.Writer, columns []string) (*csvEncoder, error) {
	e := &csvEncoder{w: csv.NewWriter(w)}
	e.enc = json.NewEncoder(&e.scrap)
	e.enc.SetEscapeHTML(false)
	header := append(Fields(), columns...)
	e.fields = len(header)
	e.row = make([]string, len(header))
	if err := e.w.Write(header); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *csvEncoder) Encode(r *record.Record) error {
	fixed := fixedValues(r)
	for i, v := range fixed {
		e.row[i] = e.cell(v)
	}
	for i := len(fixed); i < e.fields; i++ {
		var v any
		if j := i - len(fixed); j < len(r.Values) {
			v = r.Values[j]
		}
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
