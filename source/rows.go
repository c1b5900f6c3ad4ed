package source

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format says how an input is read.
type Format string

// The input formats.
const (
	// FormatAuto reads a file by its extension (.csv, .tsv, .jsonl,
	// .ndjson), else as lines; standard input is lines unless told.
	FormatAuto  Format = ""
	FormatLines Format = "lines"
	FormatCSV   Format = "csv"
	FormatTSV   Format = "tsv"
	FormatJSONL Format = "jsonl"
)

// FormatNames lists the formats by name, for help and completion.
func FormatNames() []string {
	return []string{string(FormatLines), string(FormatCSV), string(FormatTSV), string(FormatJSONL)}
}

// ParseFormat parses an --input-format value ("" and "auto" mean auto).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatAuto, "auto":
		return FormatAuto, nil
	case FormatLines, FormatCSV, FormatTSV, FormatJSONL:
		return f, nil
	case "ndjson":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("unknown input format %q: want lines, csv, tsv or jsonl", s)
}

// formatOf returns the format an input is read in.
func formatOf(in input, asked Format) Format {
	if asked != FormatAuto {
		return asked
	}
	if in.kind != fileInput {
		return FormatLines
	}
	switch strings.ToLower(filepath.Ext(in.name)) {
	case ".csv":
		return FormatCSV
	case ".tsv", ".tab":
		return FormatTSV
	case ".jsonl", ".ndjson":
		return FormatJSONL
	}
	return FormatLines
}

// structured reports whether a format has columns.
func (f Format) structured() bool { return f == FormatCSV || f == FormatTSV || f == FormatJSONL }

// row is one input row on its way to becoming a record.
type row struct {
	// text is what the record's URL says: the URL as read (the line, or
	// the URL column's value).
	text string
	size int // the line's length, for over-long lines
	// fields are the row's values by column, for templates; nil for lines.
	fields map[string]any
	// kept are the kept columns' values (strings for CSV and TSV, JSON
	// values as written for JSON Lines), and keptNames their names when
	// they vary by row (--keep-columns all with JSON Lines).
	kept      []any
	keptNames []string
	// hash identifies the row for --resume; "" for lines, whose text is
	// their identity.
	hash string
	// err, when set, is why the row cannot become a request.
	err error
}

// rowReader yields the rows of one input.
type rowReader interface {
	// next returns the next row, or io.EOF.
	next() (row, error)
}

// errMalformed marks a row that is not one of its format (an input
// error); a well-formed row without a usable URL is an invalid URL.
var errMalformed = errors.New("malformed input row")

// Columns says which columns of structured input the records keep.
type Columns struct {
	// URL names the column (or JSON Lines field, dotted for nested ones)
	// that holds the URL; "" means "url". For CSV and TSV it may be a
	// 1-based column number.
	URL string
	// Keep are the columns kept in each record; "all" alone keeps every
	// column.
	Keep []string
}

func (c Columns) urlColumn() string {
	if c.URL == "" {
		return "url"
	}
	return c.URL
}

func (c Columns) all() bool { return len(c.Keep) == 1 && c.Keep[0] == "all" }

// lineRows reads an input of one URL per line.
type lineRows struct{ lr *lineReader }

func (l *lineRows) next() (row, error) {
	for {
		line, size, err := l.lr.next()
		if err != nil {
			return row{}, err
		}
		if isURLLine(line) {
			return row{text: lineText(line, size), size: size}, nil
		}
	}
}

// csvRows reads CSV or TSV with a header row, streaming: a row at a time.
type csvRows struct {
	names    []string // of the kept columns, shared by every row
	name     string
	cr       *csv.Reader
	header   []string
	urlIndex int   // -1 when a template makes the URL
	keep     []int // indexes of kept columns
	fields   bool  // templates need every field by name
}

// newCSVRows reads the header of a CSV or TSV input and finds its URL and
// kept columns; a column that is missing is an error naming the header.
func newCSVRows(name string, r io.Reader, comma rune, cols Columns, needURL, needFields bool) (*csvRows, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.Comma = comma
	cr.FieldsPerRecord = -1 // checked per row, so a short row is one record, not the end
	cr.ReuseRecord = false
	if comma == '\t' {
		cr.LazyQuotes = true // TSV does not quote; a quote is a character
	}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s is empty: a header row naming the columns is needed", name)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the header row of %s: %w", name, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], utf8BOM)
	}
	c := &csvRows{name: name, cr: cr, header: header, urlIndex: -1, fields: needFields}
	if needURL {
		if c.urlIndex, err = columnIndex(header, cols.urlColumn(), name); err != nil {
			return nil, err
		}
	}
	if cols.all() {
		for i := range header {
			c.keep = append(c.keep, i)
		}
	} else {
		for _, k := range cols.Keep {
			i, err := columnIndex(header, k, name)
			if err != nil {
				return nil, err
			}
			c.keep = append(c.keep, i)
		}
	}
	c.names = c.keptNames()
	return c, nil
}

// columnIndex finds a column by exact name, or by 1-based number.
func columnIndex(header []string, col, name string) (int, error) {
	for i, h := range header {
		if h == col {
			return i, nil
		}
	}
	if n, err := strconv.Atoi(col); err == nil && n >= 1 && n <= len(header) {
		return n - 1, nil
	}
	return 0, fmt.Errorf("%s has no column %q; its header is: %s (choose one with --url-column)", name, col, strings.Join(header, ", "))
}

func (c *csvRows) next() (row, error) {
	fields, err := c.cr.Read()
	if errors.Is(err, io.EOF) {
		return row{}, io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		// The reader has no fields to place after a parse error, and
		// goes on with the next row.
		return row{text: strings.Join(fields, string(c.cr.Comma)), err: fmt.Errorf("%w: %v", errMalformed, pe)}, nil
	}
	if err != nil {
		return row{}, err
	}
	r := row{hash: rowHash(fields)}
	if len(fields) != len(c.header) {
		line, _ := c.cr.FieldPos(0)
		r.text = strings.Join(fields, string(c.cr.Comma))
		r.err = fmt.Errorf("%w: line %d of %s has %d fields, the header %d", errMalformed, line, c.name, len(fields), len(c.header))
		return r, nil
	}
	if c.urlIndex >= 0 {
		r.text = strings.TrimSpace(fields[c.urlIndex])
	}
	if len(c.keep) > 0 {
		r.kept = make([]any, 0, len(c.keep))
	}
	for _, i := range c.keep {
		r.kept = append(r.kept, fields[i])
	}
	if len(c.keep) > 0 {
		r.keptNames = c.names
	}
	if c.fields {
		r.fields = make(map[string]any, len(fields))
		for i, f := range fields {
			r.fields[c.header[i]] = f
		}
	}
	return r, nil
}

// keptNames returns the names of the kept columns.
func (c *csvRows) keptNames() []string {
	names := make([]string, len(c.keep))
	for i, k := range c.keep {
		names[i] = c.header[k]
	}
	return names
}

// rowHash identifies a row by its fields.
func rowHash(fields []string) string {
	h := fnv.New64a()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// jsonRows reads JSON Lines: one object per line.
type jsonRows struct {
	lr      *lineReader
	urlPath []string // nil when a template makes the URL
	cols    Columns
	keep    [][]string // the kept fields' paths, unless all are kept
	fields  bool
}

func newJSONRows(r io.Reader, cols Columns, needURL, needFields bool) *jsonRows {
	j := &jsonRows{lr: newLineReader(r), cols: cols, fields: needFields}
	if needURL {
		j.urlPath = strings.Split(cols.urlColumn(), ".")
	}
	if !cols.all() {
		for _, k := range cols.Keep {
			j.keep = append(j.keep, strings.Split(k, "."))
		}
	}
	return j
}

func (j *jsonRows) next() (row, error) {
	var line []byte
	var size int
	for {
		var err error
		line, size, err = j.lr.next()
		if err != nil {
			return row{}, err
		}
		if len(line) > 0 {
			break
		}
	}
	text := lineText(line, size)
	if size > MaxURLBytes {
		return row{text: text, size: size, err: fmt.Errorf("%w: a line of %d bytes; lines longer than %d bytes are not read", errMalformed, size, MaxURLBytes)}, nil
	}
	h := fnv.New64a()
	h.Write(line)
	r := row{text: text, hash: hex.EncodeToString(h.Sum(nil))}
	if len(j.cols.Keep) > 0 {
		// Kept values point into the line, which the reader reuses.
		line = bytes.Clone(line)
	}
	names, raws, err := topLevel(line)
	if err != nil {
		r.err = fmt.Errorf("%w: %v", errMalformed, err)
		return r, nil
	}
	if j.urlPath != nil {
		v, ok := lookup(names, raws, j.urlPath)
		var s string
		var err error = errMalformed
		if ok && len(v) > 0 && v[0] == '"' {
			s, err = unquote(v)
		}
		if err != nil {
			col := strconv.Quote(j.cols.urlColumn())
			if ok {
				r.err = fmt.Errorf("field %s is %.40s, not a URL string", col, v)
			} else {
				r.err = fmt.Errorf("the row has no field %s to fetch", col)
			}
		} else {
			r.text = strings.TrimSpace(s)
		}
	}
	if j.cols.all() {
		r.keptNames = names
		r.kept = make([]any, 0, len(raws))
		for _, v := range raws {
			r.kept = append(r.kept, v)
		}
	} else if len(j.cols.Keep) > 0 {
		r.keptNames = j.cols.Keep
		r.kept = make([]any, 0, len(j.keep))
		for _, path := range j.keep {
			v, ok := lookup(names, raws, path)
			if !ok {
				r.kept = append(r.kept, nil)
				continue
			}
			r.kept = append(r.kept, v)
		}
	}
	if j.fields {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if dec.Decode(&m) == nil {
			r.fields = m
		}
	}
	return r, nil
}

// topLevel splits a JSON object into its fields, in the order written,
// with each value as written. It validates the line once and then only
// finds where each value ends, a few times faster than decoding tokens.
func topLevel(line []byte) ([]string, []json.RawMessage, error) {
	if !json.Valid(line) {
		_, _, err := whyNotObject(line)
		if err == nil {
			err = errors.New("not JSON")
		}
		return nil, nil, err
	}
	i := skipSpace(line, 0)
	if line[i] != '{' {
		return nil, nil, errors.New("not a JSON object")
	}
	// Room for a typical row's fields at once, rather than growing.
	names := make([]string, 0, 8)
	raws := make([]json.RawMessage, 0, 8)
	for i++; ; {
		i = skipSpace(line, i)
		switch line[i] {
		case '}':
			return names, raws, nil
		case ',':
			i = skipSpace(line, i+1)
		}
		end := stringEnd(line, i)
		name, err := unquote(line[i:end])
		if err != nil {
			return nil, nil, fmt.Errorf("not JSON: %w", err)
		}
		i = skipSpace(line, skipSpace(line, end)+1) // past the colon
		vend := valueEnd(line, i)
		names, raws = append(names, name), append(raws, json.RawMessage(line[i:vend]))
		i = vend
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at i, in
// valid JSON.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the value that starts at i, in
// valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return len(b)
}

// unquote reads a JSON string, without the decoder when it has no escapes.
func unquote(q []byte) (string, error) {
	if bytes.IndexByte(q, '\\') < 0 && utf8.Valid(q) {
		return string(q[1 : len(q)-1]), nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// whyNotObject says what is wrong with a line that is not one JSON
// object, in encoding/json's words.
func whyNotObject(line []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("not a JSON object")
	}
	var names []string
	var raws []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("not JSON: %w", err)
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("not JSON: %w", err)
		}
		names, raws = append(names, name), append(raws, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("more than one JSON value on the line")
	}
	return names, raws, nil
}

// lookup follows a dotted path into a JSON object's fields.
func lookup(names []string, raws []json.RawMessage, path []string) (json.RawMessage, bool) {
	for i, n := range names {
		if n != path[0] {
			continue
		}
		if len(path) == 1 {
			return raws[i], true
		}
		sub, subRaws, err := topLevel(raws[i])
		if err != nil {
			return nil, false
		}
		return lookup(sub, subRaws, path[1:])
	}
	return nil, false
}
