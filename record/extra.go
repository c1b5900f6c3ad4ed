package record

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Extras are the opt-in facts per URL (--extra): each adds fields to the
// record, so that the default record stays small.
type Extras struct {
	// Timing adds timing: how long the final request spent in DNS,
	// connecting, the TLS handshake, waiting for the first byte and
	// reading the body.
	Timing bool
	// Conn adds remote_addr and reused.
	Conn bool
	// TLS adds tls_version and tls_cipher.
	TLS bool
	// Redirects adds redirects, one entry per redirect response followed.
	Redirects bool
}

// The names --extra takes, in the order they are listed.
const (
	ExtraTiming    = "timing"
	ExtraConn      = "conn"
	ExtraTLS       = "tls"
	ExtraRedirects = "redirects"
	ExtraAll       = "all"
)

// ExtraNames lists the values --extra takes, for help, checks and shell
// completion.
func ExtraNames() []string {
	return []string{ExtraTiming, ExtraConn, ExtraTLS, ExtraRedirects, ExtraAll}
}

// ParseExtras reads --extra values: each a comma-separated list of names,
// "all" meaning every one.
func ParseExtras(items []string) (Extras, error) {
	var e Extras
	for _, item := range items {
		for name := range strings.SplitSeq(item, ",") {
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "":
			case ExtraTiming:
				e.Timing = true
			case ExtraConn:
				e.Conn = true
			case ExtraTLS:
				e.TLS = true
			case ExtraRedirects:
				e.Redirects = true
			case ExtraAll:
				e = Extras{Timing: true, Conn: true, TLS: true, Redirects: true}
			default:
				return Extras{}, fmt.Errorf("unknown extra %q: want %s", strings.TrimSpace(name), strings.Join(ExtraNames(), ", "))
			}
		}
	}
	return e, nil
}

// Any reports whether any extra is asked for.
func (e Extras) Any() bool { return e.Timing || e.Conn || e.TLS || e.Redirects }

// Timing is where the final request of a URL (the last hop of its last
// attempt) spent its time. The phases do not overlap, so they add up to
// at most the URL's duration; a connection reused from the pool spent no
// time in DNS, connecting or TLS.
type Timing struct {
	DNS      time.Duration
	Connect  time.Duration
	TLS      time.Duration
	TTFB     time.Duration // from the connection being ready to the first byte of the response
	Transfer time.Duration // from the first byte to the end of the body
}

// Sum is the time of all phases together.
func (t *Timing) Sum() time.Duration { return t.DNS + t.Connect + t.TLS + t.TTFB + t.Transfer }

// millis writes a duration as milliseconds with microsecond precision, as
// duration_ms is.
func millis(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// JSONAppender is a value that writes its own JSON straight into an
// encoder's buffer, sparing encoding/json's reflection and its check of
// what MarshalJSON returned (--extra must stay cheap per record).
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// MarshalJSON writes the phases in milliseconds, in a fixed order.
func (t *Timing) MarshalJSON() ([]byte, error) { return t.AppendJSON(make([]byte, 0, 80)), nil }

// AppendJSON appends what MarshalJSON writes.
func (t *Timing) AppendJSON(b []byte) []byte {
	b = append(b, `{"dns":`...)
	b = appendMillis(b, t.DNS)
	b = append(b, `,"connect":`...)
	b = appendMillis(b, t.Connect)
	b = append(b, `,"tls":`...)
	b = appendMillis(b, t.TLS)
	b = append(b, `,"ttfb":`...)
	b = appendMillis(b, t.TTFB)
	b = append(b, `,"transfer":`...)
	b = appendMillis(b, t.Transfer)
	return append(b, '}')
}

func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, millis(d), 'f', -1, 64)
}

// Hop is one redirect response that was followed: the URL that answered
// and its status.
type Hop struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
}

// Previous is what the record of the same input line said in an earlier
// run's output (--since): the validators to send with a conditional
// request, and what a 304 answer carries over, since a 304 has no body to
// compute it from.
type Previous struct {
	ETag         string
	LastModified string
	ContentType  string
	Bytes        int64
	Truncated    bool
	File         string
	FileDigest   string
	// Values are the transform outputs, aligned with this run's columns.
	Values []any
}

// CarryOver gives r, whose conditional request was answered 304 Not
// Modified, what its previous record had: the body is the same, so
// everything computed from it is too. The validators of the 304 win over
// the old ones when it sent any (RFC 9110 15.4.5).
func (r *Record) CarryOver() {
	p := r.Prev
	if p == nil {
		return
	}
	r.NotModified = true
	r.ContentType = p.ContentType
	r.Bytes, r.WireBytes, r.Truncated = p.Bytes, 0, p.Truncated
	r.File, r.FileDigest = p.File, p.FileDigest
	r.Values = p.Values
	if r.ETag == "" {
		r.ETag = p.ETag
	}
	if r.LastModified == "" {
		r.LastModified = p.LastModified
	}
}
