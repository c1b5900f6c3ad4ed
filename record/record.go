// Package record defines the one record type that flows through trawl, from
// the input line to the output writer. Each stage fills in its own part:
// the source sets Index, URL and (for bad lines) the error; fetch sets the
// response fields; transforms set Values; the sink serialises it.
package record

import (
	"net/http"
	"net/url"
	"time"
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

	// The opt-in facts (--extra) about the final request: where its time
	// went, the connection it used, its TLS parameters, and the redirects
	// followed to reach it.
	Timing     *Timing
	RemoteAddr string
	Reused     bool
	TLSVersion string
	TLSCipher  string
	Redirects  []Hop

	// Err is the first failure that happened to this record; nil on success.
	Err error
	// ErrKind classifies Err.
	ErrKind Kind

	// Values holds the transform outputs, aligned with the transform chain's
	// column list. A nil entry means the transform did not run or found nothing.
	Values []any

	// Input holds the kept columns of a structured input row.
	Input *Input
	// RowHash identifies a structured input row, for --resume.
	RowHash string
	// ReqHeader and ReqBody are this record's own request headers and
	// body, made from its row by templates; they add to, or replace, the
	// run's.
	ReqHeader http.Header
	ReqBody   []byte

	// Target is the parsed URL to fetch; nil when the line is not a valid URL.
	Target *url.URL
	// Body is the response body as read, up to the cap. Dropped after transforms.
	Body []byte
	// Header is the final response's header. Dropped after transforms.
	Header http.Header
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
	if r.RowHash != "" {
		return r.RowHash
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

// recordOverhead approximates what a record costs beyond the bytes its
// strings and slices point at: the struct itself, its parsed URL, the
// header map's skeleton and the allocator's rounding.
const recordOverhead = 1024

// Footprint estimates the memory a record holds: its fixed overhead, its
// strings, its body and headers, and its transform outputs. Windows and
// caches that hold records are bounded by it.
func (r *Record) Footprint() int64 {
	n := int64(recordOverhead + len(r.URL) + len(r.FinalURL) + len(r.Proto) + len(r.ContentType) + len(r.File) + len(r.FileDigest) +
		len(r.ETag) + len(r.LastModified) + len(r.RemoteAddr))
	for _, h := range r.Redirects {
		n += int64(len(h.URL)) + 32
	}
	if p := r.Prev; p != nil {
		n += int64(128 + len(p.ETag) + len(p.LastModified) + len(p.ContentType) + len(p.File) + len(p.FileDigest))
		for _, v := range p.Values {
			n += ValueFootprint(v)
		}
	}
	n += int64(cap(r.Body))
	for k, vs := range r.Header {
		n += int64(len(k)) + 32
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	if r.Err != nil {
		n += 64 + int64(len(r.Err.Error()))
	}
	for _, v := range r.Values {
		n += ValueFootprint(v)
	}
	return n
}

// ValueFootprint estimates the memory a transform output holds, counting
// each string, slice element and map entry with Go's per-value overhead.
func ValueFootprint(v any) int64 {
	const iface = 16 // an interface value
	switch x := v.(type) {
	case nil:
		return iface
	case string:
		return iface + 16 + int64(len(x))
	case []string:
		n := int64(iface + 24)
		for _, s := range x {
			n += 16 + int64(len(s))
		}
		return n
	case []any:
		n := int64(iface + 24)
		for _, e := range x {
			n += ValueFootprint(e)
		}
		return n
	case map[string]any:
		n := int64(iface + 48)
		for k, e := range x {
			n += 16 + int64(len(k)) + ValueFootprint(e) + 16
		}
		return n
	case map[string][]string:
		n := int64(iface + 48)
		for k, e := range x {
			n += 16 + int64(len(k)) + ValueFootprint(e) + 16
		}
		return n
	}
	return iface + 16
}
