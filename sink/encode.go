// Package sink writes records out and reads trawl's own output back.
// Exactly one goroutine (Run) owns the output: it encodes records as JSON
// Lines or CSV, buffers them, flushes on a short interval so that a
// consumer tailing the file sees progress, and flushes and fsyncs at the
// end. Bodies can be saved as files in a directory (Dir). One reader of
// trawl's JSON Lines (Records) serves --resume and merge.
package sink

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trawl-dev/trawl/record"
)

// Format is an output format.
type Format string

// The supported formats.
const (
	JSONL Format = "jsonl"
	CSV   Format = "csv"
)

// FormatNames lists the formats by name, for help and completion.
func FormatNames() []string { return []string{string(JSONL), string(CSV)} }

// ParseFormat parses "jsonl" or "csv"; "json" and "ndjson" are taken as
// JSON Lines, which is what people who write them mean of a record stream.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "jsonl", "json", "ndjson":
		return JSONL, nil
	case "csv":
		return CSV, nil
	}
	return "", fmt.Errorf("unknown format %q: want jsonl or csv", s)
}

// FormatOf returns the format a file name implies by its extension
// (.jsonl, .ndjson, .json, .csv), and false when it implies none.
func FormatOf(path string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		return JSONL, true
	case ".csv":
		return CSV, true
	}
	return "", false
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
func NewEncoder(format Format, w io.Writer, layout record.Layout) (Encoder, error) {
	switch format {
	case JSONL:
		return newJSONL(w, layout), nil
	case CSV:
		return newCSV(w, layout)
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// jsonlEncoder writes one JSON object per line. The fixed fields are
// appended straight from their typed values, which is most of the saving
// over encoding/json; transform outputs go through encoding/json.
type jsonlEncoder struct {
	w       io.Writer
	fields  []record.Field
	columns int
	keys    [][]byte // pre-encoded `"key":` for every field, then every column
	buf     []byte
	scratch bytes.Buffer
	enc     *json.Encoder
}

func newJSONL(w io.Writer, layout record.Layout) *jsonlEncoder {
	e := &jsonlEncoder{w: w, fields: layout.Fields(), columns: len(layout.Columns)}
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
	b := append(e.buf[:0], '{')
	for i, f := range e.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.keys[i]...)
		b = e.appendValue(b, f.Get(r))
	}
	for i := range e.columns {
		b = append(b, ',')
		b = append(b, e.keys[len(e.fields)+i]...)
		b = e.appendValue(b, record.Column(r, i))
	}
	b = append(b, '}', '\n')
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

func (e *jsonlEncoder) appendValue(b []byte, v record.Value) []byte {
	switch v.Kind {
	case record.String:
		return appendString(b, v.S)
	case record.Int:
		return strconv.AppendInt(b, v.I, 10)
	case record.Float:
		return appendFloat(b, v.F)
	case record.Bool:
		return strconv.AppendBool(b, v.B)
	case record.Any:
		if in, ok := v.V.(*record.Input); ok {
			return e.appendInput(b, in)
		}
		if a, ok := v.V.(record.JSONAppender); ok {
			return a.AppendJSON(b)
		}
		e.scratch.Reset()
		if err := e.enc.Encode(v.V); err != nil {
			// A transform produced something JSON cannot hold (such as
			// NaN); write null rather than a broken line.
			return append(b, "null"...)
		}
		return append(b, bytes.TrimSuffix(e.scratch.Bytes(), []byte("\n"))...)
	}
	return append(b, "null"...)
}

// appendInput writes a row's kept columns as one object, in their order:
// every structured record carries one, so it skips the general encoder.
// A JSON Lines value is written as read, compacted to one line.
func (e *jsonlEncoder) appendInput(b []byte, in *record.Input) []byte {
	b = append(b, '{')
	for i, v := range in.Values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, in.Names[i])
		b = append(b, ':')
		switch x := v.(type) {
		case string:
			b = appendString(b, x)
		case json.RawMessage:
			if !utf8.Valid(x) {
				// Only a string can hold such bytes; as in every other
				// string trawl writes, they become U+FFFD.
				x = bytes.ToValidUTF8(x, []byte("\uFFFD"))
			}
			if len(x) > 0 && x[0] != '{' && x[0] != '[' {
				// A scalar as read holds no white space to take out.
				b = append(b, x...)
				continue
			}
			e.scratch.Reset()
			if json.Compact(&e.scratch, x) != nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, e.scratch.Bytes()...)
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

func (e *jsonlEncoder) Flush() error { return nil }

// csvEncoder writes a header row with the layout's names, then one row per
// record; nulls are empty cells and structured values compact JSON.
type csvEncoder struct {
	layout  record.Layout
	w       *csv.Writer
	fields  []record.Field
	columns int
	row     []string
	scrap   bytes.Buffer
	enc     *json.Encoder
}

func newCSV(w io.Writer, layout record.Layout) (*csvEncoder, error) {
	if layout.InputVaries {
		return nil, errors.New("kept input columns that vary by row (--keep-columns all with JSON Lines input) cannot be CSV columns: name them with --keep-columns")
	}
	e := &csvEncoder{w: csv.NewWriter(w), fields: layout.Fields(), columns: len(layout.Columns), layout: layout}
	e.enc = json.NewEncoder(&e.scrap)
	e.enc.SetEscapeHTML(false)
	header := layout.CSVNames()
	e.row = make([]string, len(header))
	if err := e.w.Write(header); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *csvEncoder) Encode(r *record.Record) error {
	n := 0
	for _, f := range e.fields {
		if f.CSVColumns != nil {
			for i := range f.CSVColumns(e.layout) {
				e.row[n] = r.Kept().Cell(i)
				n++
			}
			continue
		}
		e.row[n] = e.cell(f.Get(r))
		n++
	}
	for i := range e.columns {
		e.row[n+i] = e.cell(record.Column(r, i))
	}
	return e.w.Write(e.row)
}

// cell renders one value; structured values become compact JSON.
func (e *csvEncoder) cell(v record.Value) string {
	switch v.Kind {
	case record.Null:
		return ""
	case record.String:
		return v.S
	case record.Int:
		return strconv.FormatInt(v.I, 10)
	case record.Float:
		return strconv.FormatFloat(v.F, 'f', -1, 64)
	case record.Bool:
		return strconv.FormatBool(v.B)
	}
	switch x := v.V.(type) {
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
	if err := e.enc.Encode(v.V); err != nil {
		return ""
	}
	return string(bytes.TrimSuffix(e.scrap.Bytes(), []byte("\n")))
}

func (e *csvEncoder) Flush() error {
	e.w.Flush()
	return e.w.Error()
}
