// Package record defines the one record type that flows through trawl, from
// the input line to the output writer. Each stage fills in its own part:
// the source sets Index, URL and (for bad lines) the error; fetch sets the
// response fields; transforms set Values; the sink serialises it.
package record

import (
	"math/bits"
	"net/http"
	"net/url"
	"time"
	"unsafe"

	"github.com/trawl-dev/trawl/internal/capture"
)

// RetryableStatus reports whether a response status says the server was
// only temporarily unable or unwilling to answer, so that asking again may
// succeed: 408, 425, 429, 500, 502, 503 and 504.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Permanent reports whether a failure of this kind (and status, for
// http_status) would come out the same if the URL were fetched again: a
// line that is no URL, a certificate that does not verify, a server that
// does not speak HTTP, a redirect loop, a transform that fails on the
// body, a status that is not one of RetryableStatus. Fetch does not retry
// these, and --resume does not fetch them again unless asked to
// (--resume-retry-failed). Everything else (timeouts, broken connections,
// DNS failures, 5xx answers, failed saves, cancellations) may pass.
func Permanent(kind Kind, status int) bool {
	switch kind {
	case KindInvalidURL, KindInput, KindTLS, KindProtocol, KindTooManyRedirects, KindTransform:
		return true
	case KindHTTPStatus:
		return status > 0 && !RetryableStatus(status)
	}
	// KindRobots is not permanent: robots.txt may say otherwise by the
	// next run, and asking again costs one request per host.
	return false
}

// Kind classifies why a record failed. The set is small and documented in
// the README so that scripts can branch on it.
type Kind string

// The documented error kinds. The empty Kind means the record succeeded.
const (
	KindNone             Kind = ""
	KindInvalidURL       Kind = "invalid_url"
	KindBlocked          Kind = "blocked"
	KindDNS              Kind = "dns"
	KindConnect          Kind = "connect"
	KindTLS              Kind = "tls"
	KindTimeout          Kind = "timeout"
	KindInput            Kind = "input"
	KindProtocol         Kind = "protocol"
	KindHTTPStatus       Kind = "http_status"
	KindTooManyRedirects Kind = "too_many_redirects"
	KindBody             Kind = "body"
	KindTransform        Kind = "transform"
	KindSave             Kind = "save"
	KindCanceled         Kind = "canceled"
	// KindRobots marks a URL that robots.txt does not let trawl fetch
	// (--robots obey): no request was sent. It is a refusal the user asked
	// for, not a failure: runs count it apart (Refused), it is not among
	// Kinds, and --max-failures does not count it.
	KindRobots Kind = "robots"
)

// Refused reports whether a record's kind is a refusal the user asked for
// rather than a failure: it is counted apart and never fails a run.
func Refused(kind Kind) bool { return kind == KindRobots }

// Kinds returns every failure Kind in the order summaries print them.
func Kinds() []Kind {
	return []Kind{
		KindInvalidURL, KindInput, KindBlocked, KindDNS, KindConnect, KindTLS, KindProtocol, KindTimeout, KindHTTPStatus,
		KindTooManyRedirects, KindBody, KindTransform, KindSave, KindCanceled,
	}
}

// Record is one input URL line and everything trawl learned about it.
//
// Exported fields without a json tag are working data for later stages and
// are never written out.
type Record struct {
	// Index is the 0-based position of the line among URL lines of the input.
	Index int64
	// URL is the line as read (trimmed).
	URL string
	// FinalURL is the URL of the last response, after redirects.
	FinalURL string
	// Status is the HTTP status code of the last response, 0 if none.
	Status int
	// Proto is the protocol of the last response, such as "HTTP/1.1".
	Proto string
	// ContentType is the response's Content-Type header.
	ContentType string
	// Bytes is the number of body bytes received. Reading stops at the body
	// cap unless the body is being saved to a file.
	Bytes int64
	// WireBytes is the number of body bytes as sent, before decoding a
	// Content-Encoding such as gzip.
	WireBytes int64
	// Truncated reports that the body was longer than the in-memory cap, so
	// Body (and what transforms saw) holds only its beginning.
	Truncated bool
	// File is where the body was saved, relative to the output directory.
	File string
	// FileDigest is the hex digest of the saved file, by the run's
	// --digest (the field is named after it).
	FileDigest string
	// Attempts is the number of requests sent for this URL, retries included.
	Attempts int
	// Duration is the wall time spent fetching, retries and waits included.
	Duration time.Duration
	// Duplicate reports (with --dedupe) that an earlier line had the same
	// URL; DuplicateOf is that line's index.
	Duplicate   bool
	DuplicateOf int64
	// CopyPending marks a duplicate whose result will be copied from its
	// first occurrence instead of being fetched.
	CopyPending bool

	// ETag and LastModified are the validators of the final response, as
	// sent; FetchedAt is when its fetch started (zero when no request was
	// sent).
	ETag         string
	LastModified string
	FetchedAt    time.Time
	// NotModified reports that a conditional request (--since) was
	// answered 304: the fields that describe the body are carried over
	// from Prev.
	NotModified bool
	// Prev, when set, is the earlier run's record of this input line,
	// whose validators make the request conditional.
	Prev *Previous
	// Facts are the opt-in facts (--extra) about the final request; nil
	// without --extra, so that the common record stays small.
	Facts *Facts
	// Err is the first failure that happened to this record; nil on success.
	Err error
	// ErrKind classifies Err.
	ErrKind Kind

	// Values holds the transform outputs, aligned with the transform chain's
	// column list. A nil entry means the transform did not run or found nothing.
	Values []any

	// Row is what the record's input row adds beyond a URL; nil for a
	// plain line without templates. One pointer, so that the common
	// record stays small.
	Row *Row

	// Target is the parsed URL to fetch; nil when the line is not a valid URL.
	Target *url.URL
	// Body is the response body as read, up to the cap. Dropped after transforms.
	Body []byte
	// Header is the final response's header. Dropped after transforms.
	Header http.Header

	// Capture holds the exchanges of the last attempt for the WARC (with
	// --warc); the WARC writer archives them and notes where. A duplicate
	// (--dedupe) shares its original's.
	Capture *capture.Capture
}

// Facts are the opt-in facts (--extra) about a record's final request:
// where its time went, the connection it used, its TLS parameters, and
// the redirects followed to reach it.
type Facts struct {
	Timing     *Timing
	RemoteAddr string
	Reused     bool
	TLSVersion string
	TLSCipher  string
	Redirects  []Hop
}

// facts returns the record's facts, giving it some if it has none.
func (r *Record) facts() *Facts {
	if r.Facts == nil {
		r.Facts = &Facts{}
	}
	return r.Facts
}

// Row is what a structured row, or a row's templates, give its record.
type Row struct {
	// Hash identifies a structured input row, for --resume.
	Hash string
	// Input holds the kept columns.
	Input *Input
	// Header and Body are the record's own request headers and body, made
	// from its row by templates; they add to, or replace, the run's.
	Header http.Header
	Body   []byte
}

// RowHash returns the hash of the record's structured row, or "".
func (r *Record) RowHash() string {
	if r.Row == nil {
		return ""
	}
	return r.Row.Hash
}

// Kept returns the kept columns of the record's row, or nil.
func (r *Record) Kept() *Input {
	if r.Row == nil {
		return nil
	}
	return r.Row.Input
}

// ReqHeader returns the request headers the record's row made, or nil.
func (r *Record) ReqHeader() http.Header {
	if r.Row == nil {
		return nil
	}
	return r.Row.Header
}

// ReqBody returns the request body the record's row made, or nil.
func (r *Record) ReqBody() []byte {
	if r.Row == nil {
		return nil
	}
	return r.Row.Body
}

// Input is the kept columns of an input row: their names when the row has
// its own (JSON Lines with every field kept; else the layout's), and their
// values as read (strings from CSV and TSV, JSON values as written from
// JSON Lines).
type Input struct {
	Names  []string
	Values []any
}

// Identity is what --resume compares a record by: its row's hash for a
// structured row, else the URL as read.
func (r *Record) Identity() string {
	if h := r.RowHash(); h != "" {
		return h
	}
	return r.URL
}

// Fail records err as the record's failure unless an earlier failure is
// already recorded: the first cause is the one worth reporting.
func (r *Record) Fail(kind Kind, err error) {
	if r.Err != nil {
		return
	}
	r.Err = err
	r.ErrKind = kind
}

// OK reports whether the record carries no error.
func (r *Record) OK() bool { return r.Err == nil }

// ErrorText returns the error message, or "" on success.
func (r *Record) ErrorText() string {
	if r.Err == nil {
		return ""
	}
	return r.Err.Error()
}

// Footprint estimates the memory a record holds, as the Go allocator
// hands it out: the struct, its strings, its parsed URL, its body and
// headers, its error and its transform outputs, each rounded up to its
// size class (allocSize). Windows and caches that hold records are bounded
// by it. The estimate is checked against measured heaps: within a few
// percent for records as fetch, transforms and --dedupe hold them, a
// little over rather than under. A record's strings are counted as its
// own, except the parsed URL's that point into the line.
func (r *Record) Footprint() int64 {
	n := allocSize(int64(unsafe.Sizeof(*r)))
	for _, s := range []string{r.URL, r.FinalURL, r.Proto, r.ContentType, r.File, r.FileDigest, r.ETag, r.LastModified} {
		n += allocSize(int64(len(s)))
	}
	if p := r.Prev; p != nil {
		n += allocSize(int64(unsafe.Sizeof(*p))) + allocSize(16*int64(cap(p.Values)))
		for _, s := range []string{p.ETag, p.LastModified, p.ContentType, p.File, p.FileDigest} {
			n += allocSize(int64(len(s)))
		}
		for _, v := range p.Values {
			n += ValueFootprint(v)
		}
	}
	if f := r.Facts; f != nil {
		n += allocSize(int64(unsafe.Sizeof(*f))) + allocSize(int64(len(f.RemoteAddr)))
		if f.Timing != nil {
			n += allocSize(int64(unsafe.Sizeof(*f.Timing)))
		}
		n += allocSize(int64(unsafe.Sizeof(Hop{})) * int64(cap(f.Redirects)))
		for _, h := range f.Redirects {
			n += allocSize(int64(len(h.URL)))
		}
	}
	if u := r.Target; u != nil {
		n += allocSize(int64(unsafe.Sizeof(*u)))
		for _, s := range []string{u.Scheme, u.Opaque, u.Host, u.Path, u.RawPath, u.RawQuery, u.Fragment, u.RawFragment} {
			n += stringOutside(s, r.URL)
		}
		if u.User != nil {
			n += 48 + int64(len(u.User.String()))
		}
	}
	n += allocSize(int64(cap(r.Body)))
	if row := r.Row; row != nil {
		n += allocSize(int64(unsafe.Sizeof(*row))) + allocSize(int64(len(row.Hash))) + allocSize(int64(cap(row.Body)))
		n += headerFootprint(row.Header)
		if in := row.Input; in != nil {
			n += allocSize(int64(unsafe.Sizeof(*in))) + allocSize(16*int64(cap(in.Values)))
			for _, v := range in.Values {
				n += ValueFootprint(v)
			}
		}
	}
	n += headerFootprint(r.Header)
	if r.Err != nil {
		// What an error's chain holds is unknowable from outside; most
		// are a few small structs around their message.
		n += errorOverhead + allocSize(int64(len(r.Err.Error())))
	}
	n += allocSize(16 * int64(cap(r.Values)))
	if r.Capture != nil && !r.Capture.Written {
		n += r.Capture.Footprint()
	}
	for _, v := range r.Values {
		n += ValueFootprint(v)
	}
	return n
}

// headerFootprint is what a header map holds.
func headerFootprint(h http.Header) int64 {
	if h == nil {
		return 0
	}
	// A map[string][]string: a 16-byte key and a 24-byte slice a slot.
	n := mapSize(len(h), 16+24)
	for k, vs := range h {
		n += allocSize(int64(len(k))) + allocSize(16*int64(cap(vs)))
		for _, v := range vs {
			n += allocSize(int64(len(v)))
		}
	}
	return n
}

// errorOverhead is what Footprint counts for an error beyond its message.
const errorOverhead = 64

// stringOutside is what s holds unless it points into line, whose bytes
// are counted already: a parsed URL's parts are mostly substrings of the
// line it was parsed from.
func stringOutside(s, line string) int64 {
	if s == "" {
		return 0
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	start := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	if line != "" && p >= start && p < start+uintptr(len(line)) {
		return 0
	}
	return allocSize(int64(len(s)))
}

// ValueFootprint estimates the memory a transform output holds behind its
// interface value (the interface itself lives in Record.Values, which
// Footprint counts): the boxed string or slice header, the elements, the
// map's groups and every string, each rounded up to its size class.
func ValueFootprint(v any) int64 {
	switch x := v.(type) {
	case nil, bool:
		return 0 // no allocation behind the interface
	case string:
		if x == "" {
			return 0
		}
		return 16 + allocSize(int64(len(x))) // the boxed header, the bytes
	case []string:
		n := 24 + allocSize(16*int64(cap(x)))
		for _, s := range x {
			n += allocSize(int64(len(s)))
		}
		return n
	case []any:
		n := 24 + allocSize(16*int64(cap(x)))
		for _, e := range x {
			n += ValueFootprint(e)
		}
		return n
	case map[string]any:
		// A map is a pointer: it is stored in the interface unboxed.
		n := mapSize(len(x), 16+16)
		for k, e := range x {
			n += allocSize(int64(len(k))) + ValueFootprint(e)
		}
		return n
	case map[string][]string:
		n := mapSize(len(x), 16+24)
		for k, e := range x {
			n += allocSize(int64(len(k))) + allocSize(16*int64(cap(e)))
			for _, s := range e {
				n += allocSize(int64(len(s)))
			}
		}
		return n
	case int, int64, float64:
		return 8
	}
	return 16
}

// allocSize is what the Go allocator hands out for an object of n bytes:
// n rounded up to its size class (exactly up to 1 KiB, within 7% up to
// 32 KiB) or, past 32 KiB, to whole 8 KiB pages. Strings under 16 bytes
// share blocks in the runtime's tiny allocator and cost about their
// length; they are counted as 8 or 16.
func allocSize(n int64) int64 {
	roundUp := func(n, step int64) int64 { return (n + step - 1) / step * step }
	switch {
	case n <= 0:
		return 0
	case n <= 8:
		return 8
	case n <= 16:
		return 16
	case n <= 24:
		return 24
	case n <= 32:
		return 32
	case n <= 48:
		return 48
	case n <= 256:
		return roundUp(n, 16)
	case n <= 512:
		return roundUp(n, 32)
	case n <= 768:
		return roundUp(n, 64)
	case n <= 896:
		return 896
	case n <= 1024:
		return 1024
	case n <= 32<<10:
		// Eight classes an octave from here on, near enough.
		return roundUp(n, int64(1)<<(bits.Len64(uint64(n-1))-4))
	}
	return roundUp(n, 8<<10)
}

// mapSize estimates what a Go map of n entries of slot bytes each holds
// beyond its entries' own allocations: the map header and its groups of
// eight slots plus eight control bytes, at most 7/8 full (so a map that
// grew to n entries by insertion has the capacity this assumes). Maps of
// more than 1024 slots are split into tables with a directory.
func mapSize(n int, slot int64) int64 {
	const header = 48
	if n <= 8 {
		return header + allocSize(8+8*slot)
	}
	capacity := int64(1) << bits.Len64(uint64((n*8+6)/7-1))
	groups := capacity / 8
	const maxTable = 1024
	if capacity <= maxTable {
		return header + 48 + allocSize(groups*(8+8*slot))
	}
	tables := capacity / maxTable
	return header + allocSize(8*tables) + tables*(48+allocSize(maxTable/8*(8+8*slot)))
}
