package record

import (
	"encoding/json"
	"math"
	"slices"
)

// Layout says which fields a run's records have: the fixed ones, the
// optional ones its settings add, then one per transform output.
type Layout struct {
	// Duplicates adds duplicate_of (--dedupe).
	Duplicates bool
	// Files adds file (--output-dir), and the digest of the saved file
	// under the name of Digest.
	Files bool
	// Digest is the saved files' digest: "sha256", "blake3", or "" for
	// none.
	Digest string
	// Row adds row, the hash --resume compares structured rows by.
	Row bool
	// InputColumns adds input, the kept columns of structured input: one
	// object in JSON Lines, one column each in CSV. InputVaries says the
	// columns vary by row (every field of JSON Lines rows), which only
	// JSON Lines can write.
	InputColumns []string
	InputVaries  bool
	// Since adds not_modified (--since).
	Since bool
	// Extra adds the opt-in facts (--extra).
	Extra Extras
	// WARC adds warc_file and warc_offset (--warc).
	WARC bool
	// Columns are the transform output keys, in order.
	Columns []string
}

// ValueKind says how a field's value is written.
type ValueKind uint8

// The kinds of values a field can hold.
const (
	Null ValueKind = iota
	String
	Int
	Float
	Bool
	// Any is a transform's output: whatever JSON can hold.
	Any
)

// Value is one field's value, typed so that encoders write the fixed
// fields without boxing each into an interface.
type Value struct {
	Kind ValueKind
	S    string
	I    int64
	F    float64
	B    bool
	V    any
}

func str(s string) Value    { return Value{Kind: String, S: s} }
func integer(i int64) Value { return Value{Kind: Int, I: i} }

// strIf is s when present is true, else null: fields that only exist once
// a response arrived are null before that, not a misleading "".
func strIf(s string, present bool) Value {
	if !present {
		return Value{}
	}
	return str(s)
}

// Field is one output field: its name, which layouts have it, how to read
// it from a record, and how a duplicate (--dedupe) copies it from the
// record it duplicates (nil: the duplicate keeps its own).
type Field struct {
	Name string
	// In reports whether records of a layout have the field; nil means
	// every record has it.
	In func(Layout) bool
	// Get reads the field's value.
	Get func(*Record) Value
	// Copy gives dup the original's data behind this field.
	Copy func(dup, orig *Record)
	// CSVColumns, when set, are the columns the field is written as in
	// CSV, one per value of the input object Get returns.
	CSVColumns func(Layout) []string
}

// responded reports whether a response arrived, which the response fields
// need to be more than null.
func responded(r *Record) bool { return r.Status > 0 }

// fields is the one definition of the record's output fields, in output
// order. The encoders, the CSV header, the reserved names and the copying
// of duplicate results all come from it.
var fields = []Field{
	{Name: "index", Get: func(r *Record) Value { return integer(r.Index) }},
	{Name: "url", Get: func(r *Record) Value { return str(r.URL) }},
	{Name: "final_url", Get: func(r *Record) Value { return strIf(r.FinalURL, responded(r)) },
		Copy: func(d, o *Record) { d.FinalURL = o.FinalURL }},
	{Name: "status", Get: func(r *Record) Value {
		if !responded(r) {
			return Value{}
		}
		return integer(int64(r.Status))
	}, Copy: func(d, o *Record) { d.Status = o.Status }},
	{Name: "proto", Get: func(r *Record) Value { return strIf(r.Proto, responded(r)) },
		Copy: func(d, o *Record) { d.Proto = o.Proto }},
	{Name: "content_type", Get: func(r *Record) Value { return strIf(r.ContentType, responded(r)) },
		Copy: func(d, o *Record) { d.ContentType = o.ContentType }},
	{Name: "bytes", Get: func(r *Record) Value { return integer(r.Bytes) },
		Copy: func(d, o *Record) { d.Bytes = o.Bytes }},
	{Name: "wire_bytes", Get: func(r *Record) Value { return integer(r.WireBytes) },
		Copy: func(d, o *Record) { d.WireBytes = o.WireBytes }},
	{Name: "truncated", Get: func(r *Record) Value { return Value{Kind: Bool, B: r.Truncated} },
		Copy: func(d, o *Record) { d.Truncated = o.Truncated }},
	// A duplicate made no request of its own: attempts and duration stay zero.
	{Name: "attempts", Get: func(r *Record) Value { return integer(int64(r.Attempts)) }},
	{Name: "duration_ms", Get: func(r *Record) Value {
		return Value{Kind: Float, F: math.Round(float64(r.Duration.Microseconds())) / 1000}
	}},
	{Name: "error", Get: func(r *Record) Value { return strIf(r.ErrorText(), r.Err != nil) },
		Copy: func(d, o *Record) { d.Err = o.Err }},
	{Name: "error_kind", Get: func(r *Record) Value { return strIf(string(r.ErrKind), r.Err != nil) },
		Copy: func(d, o *Record) { d.ErrKind = o.ErrKind }},
	{Name: "etag", Get: func(r *Record) Value { return strIf(r.ETag, r.ETag != "") },
		Copy: func(d, o *Record) { d.ETag = o.ETag }},
	{Name: "last_modified", Get: func(r *Record) Value { return strIf(r.LastModified, r.LastModified != "") },
		Copy: func(d, o *Record) { d.LastModified = o.LastModified }},
	{Name: "fetched_at", Get: func(r *Record) Value {
		if r.FetchedAt.IsZero() {
			return Value{}
		}
		return str(r.FetchedAt.UTC().Format(FetchedAtLayout))
	}, Copy: func(d, o *Record) { d.FetchedAt = o.FetchedAt }},
	{Name: "not_modified", In: func(l Layout) bool { return l.Since }, Get: func(r *Record) Value { return Value{Kind: Bool, B: r.NotModified} },
		Copy: func(d, o *Record) { d.NotModified = o.NotModified }},
	{Name: "duplicate_of", In: func(l Layout) bool { return l.Duplicates }, Get: func(r *Record) Value {
		if !r.Duplicate {
			return Value{}
		}
		return integer(r.DuplicateOf)
	}},
	{Name: "file", In: func(l Layout) bool { return l.Files }, Get: func(r *Record) Value { return strIf(r.File, r.File != "") },
		Copy: func(d, o *Record) { d.File = o.File }},
	{Name: "sha256", In: func(l Layout) bool { return l.Files && l.Digest == "sha256" }, Get: fileDigest,
		Copy: func(d, o *Record) { d.FileDigest = o.FileDigest }},
	{Name: "blake3", In: func(l Layout) bool { return l.Files && l.Digest == "blake3" }, Get: fileDigest,
		Copy: func(d, o *Record) { d.FileDigest = o.FileDigest }},
	// Where the WARC holds the URL's last response (or revisit) record:
	// the file's name in the WARC directory and the offset of the
	// record's gzip member. A duplicate points at its original's.
	{Name: "warc_file", In: func(l Layout) bool { return l.WARC }, Get: func(r *Record) Value {
		if !archived(r) {
			return Value{}
		}
		return str(r.Capture.File)
	}, Copy: func(d, o *Record) { d.Capture = o.Capture }},
	{Name: "warc_offset", In: func(l Layout) bool { return l.WARC }, Get: func(r *Record) Value {
		if !archived(r) {
			return Value{}
		}
		return integer(r.Capture.Offset)
	}},
	// A row's own data: a duplicate keeps its own.
	{Name: "row", In: func(l Layout) bool { return l.Row }, Get: func(r *Record) Value { return strIf(r.RowHash(), r.RowHash() != "") }},
	{Name: "input", In: func(l Layout) bool { return l.InputColumns != nil || l.InputVaries }, CSVColumns: func(l Layout) []string { return l.InputColumns },
		Get: func(r *Record) Value {
			if r.Kept() == nil {
				return Value{}
			}
			return Value{Kind: Any, V: r.Kept()}
		}},
	// The opt-in facts (--extra). Those of the request itself (timing,
	// connection, TLS) are not copied to a duplicate, which made none; the
	// redirects that led to the final URL it copies are.
	{Name: "timing", In: func(l Layout) bool { return l.Extra.Timing }, Get: func(r *Record) Value {
		if r.Facts == nil || r.Facts.Timing == nil {
			return Value{}
		}
		return Value{Kind: Any, V: r.Facts.Timing}
	}},
	{Name: "remote_addr", In: func(l Layout) bool { return l.Extra.Conn }, Get: func(r *Record) Value {
		f := r.facts0()
		return strIf(f.RemoteAddr, f.RemoteAddr != "")
	}},
	{Name: "reused", In: func(l Layout) bool { return l.Extra.Conn }, Get: func(r *Record) Value {
		if f := r.facts0(); f.RemoteAddr != "" {
			return Value{Kind: Bool, B: f.Reused}
		}
		return Value{}
	}},
	{Name: "tls_version", In: func(l Layout) bool { return l.Extra.TLS }, Get: func(r *Record) Value {
		f := r.facts0()
		return strIf(f.TLSVersion, f.TLSVersion != "")
	}},
	{Name: "tls_cipher", In: func(l Layout) bool { return l.Extra.TLS }, Get: func(r *Record) Value {
		f := r.facts0()
		return strIf(f.TLSCipher, f.TLSCipher != "")
	}},
	{Name: "redirects", In: func(l Layout) bool { return l.Extra.Redirects }, Get: func(r *Record) Value {
		if !responded(r) {
			return Value{}
		}
		if f := r.facts0(); f.Redirects != nil {
			return Value{Kind: Any, V: f.Redirects}
		}
		return Value{Kind: Any, V: []Hop{}}
	}, Copy: func(d, o *Record) {
		if o.Facts != nil && o.Facts.Redirects != nil {
			d.facts().Redirects = o.Facts.Redirects
		}
	}},
}

// facts0 returns a copy of the record's facts, empty when it has none.
func (r *Record) facts0() Facts {
	if r.Facts == nil {
		return Facts{}
	}
	return *r.Facts
}

// FetchedAtLayout is how fetched_at is written: RFC 3339 in UTC, to the
// millisecond.
const FetchedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// archived reports whether the WARC holds a record of r's response.
func archived(r *Record) bool { return r.Capture != nil && r.Capture.File != "" }

func fileDigest(r *Record) Value { return strIf(r.FileDigest, r.File != "") }

// Cell returns kept column i as CSV writes it: a string as it is, a JSON
// string unquoted, other JSON as written, nothing for a missing value.
func (in *Input) Cell(i int) string {
	if in == nil || i >= len(in.Values) {
		return ""
	}
	switch x := in.Values[i].(type) {
	case string:
		return x
	case json.RawMessage:
		var s string
		if json.Unmarshal(x, &s) == nil {
			return s
		}
		return string(x)
	}
	return ""
}

// Fields returns the fields records of this layout have, before the
// transform outputs, in output order.
func (l Layout) Fields() []Field {
	out := make([]Field, 0, len(fields))
	for _, f := range fields {
		if f.In == nil || f.In(l) {
			out = append(out, f)
		}
	}
	return out
}

// Names returns every field name of the layout in output order, transform
// outputs last.
func (l Layout) Names() []string {
	var names []string
	for _, f := range l.Fields() {
		names = append(names, f.Name)
	}
	return append(names, l.Columns...)
}

// CSVNames returns the CSV header: Names, with each field that CSV writes
// as several columns (the kept input columns) in their place, named as in
// the input, with "input." before a name the record already has (a kept
// url column beside the record's url).
func (l Layout) CSVNames() []string {
	var names []string
	for _, f := range l.Fields() {
		if f.CSVColumns == nil {
			names = append(names, f.Name)
			continue
		}
		for _, c := range f.CSVColumns(l) {
			if l.Reserved(c) || slices.Contains(l.Columns, c) {
				c = "input." + c
			}
			names = append(names, c)
		}
	}
	return append(names, l.Columns...)
}

// Reserved reports whether a transform output may not be called name
// under this layout: the record already has a field of that name.
func (l Layout) Reserved(name string) bool {
	for _, f := range l.Fields() {
		if f.Name == name {
			return true
		}
	}
	return false
}

// Column returns the value of transform output i of r: null when the
// transform did not run or found nothing.
func Column(r *Record, i int) Value {
	if i >= len(r.Values) || r.Values[i] == nil {
		return Value{}
	}
	return Value{Kind: Any, V: r.Values[i]}
}

// CopyResult gives dup, a record whose URL duplicates orig's, everything
// orig's fetch and transforms produced, field by field as the table says.
func CopyResult(dup, orig *Record) {
	for _, f := range fields {
		if f.Copy != nil {
			f.Copy(dup, orig)
		}
	}
	dup.Values = orig.Values
	dup.CopyPending = false
}
