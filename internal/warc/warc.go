// Package warc writes WARC/1.1 records (ISO 28500): their header blocks,
// record IDs, dates and digests, and the records of an HTTP exchange as
// gzip members. It is shared by the fetch workers, which compress the
// records of small exchanges while they have them (so that compression
// runs on every CPU), and the sink's writer, which puts records in files.
package warc

import (
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // WARC digests are SHA-1 by custom; they identify, they do not protect
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/internal/fixedflate"
)

// Version is the version line every record starts with.
const Version = "WARC/1.1"

// The content types of HTTP records.
const (
	RequestType  = "application/http;msgtype=request"
	ResponseType = "application/http;msgtype=response"
)

// The profiles of revisit records: the payload is identical to that of
// the record referred to; or the server answered a conditional request
// that the resource had not changed (304).
const (
	RevisitProfile     = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
	NotModifiedProfile = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
)

// Header builds a record's header block.
type Header struct{ b []byte }

// NewHeader starts a header block in buf (reused; may be nil) with the
// fields every record has.
func NewHeader(buf []byte, typ, id string, date time.Time) Header {
	h := Header{b: append(buf[:0], Version+"\r\n"...)}
	h.Add("WARC-Type", typ)
	h.Add("WARC-Record-ID", id)
	h.b = append(h.b, "WARC-Date: "...)
	h.b = date.UTC().AppendFormat(h.b, dateLayout)
	h.b = append(h.b, "\r\n"...)
	return h
}

// AddDigest appends a field holding a SHA-1 as Digest writes it.
func (h *Header) AddDigest(name string, sum *[sha1.Size]byte) {
	h.b = append(h.b, name...)
	h.b = append(h.b, ": sha1:"...)
	h.b = base32.StdEncoding.AppendEncode(h.b, sum[:])
	h.b = append(h.b, "\r\n"...)
}

// Add appends a field. Control characters in the value, which a hostile
// URL or setting could use to forge fields, become spaces.
func (h *Header) Add(name, value string) {
	h.b = append(h.b, name...)
	h.b = append(h.b, ": "...)
	h.b = append(h.b, OneLine(value)...)
	h.b = append(h.b, "\r\n"...)
}

// Bytes returns the block with the blank line that ends it.
func (h *Header) Bytes() []byte {
	h.b = append(h.b, "\r\n"...)
	return h.b
}

// OneLine keeps a value on its line: control characters become spaces.
func OneLine(v string) string {
	for i := range len(v) {
		if c := v[i]; c < ' ' || c == 0x7f {
			b := []byte(v)
			for j := i; j < len(b); j++ {
				if b[j] < ' ' || b[j] == 0x7f {
					b[j] = ' '
				}
			}
			return string(b)
		}
	}
	return v
}

// URI writes a URL for WARC-Target-URI, which must not contain spaces or
// control characters: those are percent-encoded.
func URI(u string) string {
	if !strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return u
	}
	var b strings.Builder
	for i := range len(u) {
		if c := u[i]; c <= ' ' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Date writes a time as WARC-Date does: UTC, to the microsecond (WARC/1.1
// allows fractions of a second).
func Date(t time.Time) string {
	return t.UTC().Format(dateLayout)
}

const dateLayout = "2006-01-02T15:04:05.000000Z"

// Digest writes a SHA-1 the way WARC records customarily carry it:
// "sha1:" and 32 characters of base32.
func Digest(sum []byte) string {
	return "sha1:" + base32.StdEncoding.EncodeToString(sum)
}

// DigestOf is the Digest of b.
func DigestOf(b []byte) string {
	sum := sha1.Sum(b) //nolint:gosec // see the import
	return Digest(sum[:])
}

// NewID returns a new record ID: a random (version 4) UUID URN.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:16])
	return "<urn:uuid:" + string(s[:]) + ">"
}

// Exchange is what the records of one HTTP exchange say.
type Exchange struct {
	// ReqID and RespID are the records' IDs, each pointing at the other.
	ReqID, RespID string
	Date          time.Time
	URI           string // as requested (see URI)
	IP            string // "" when unknown
	Request       []byte // the request record's block
	// RespLength is the response record's block length; BlockDigest and
	// PayloadDigest its SHA-1 digests, Truncated its WARC-Truncated reason
	// ("" for none).
	RespLength    int64
	BlockDigest   *[sha1.Size]byte
	PayloadDigest *[sha1.Size]byte
	Truncated     string
}

func (x *Exchange) common(h *Header, concurrent string) {
	h.Add("WARC-Target-URI", URI(x.URI))
	if x.IP != "" {
		h.Add("WARC-IP-Address", x.IP)
	}
	h.Add("WARC-Concurrent-To", concurrent)
}

// RequestHeader is the request record's header block, in buf.
func (x *Exchange) RequestHeader(buf []byte) []byte {
	h := NewHeader(buf, "request", x.ReqID, x.Date)
	x.common(&h, x.RespID)
	sum := sha1.Sum(x.Request) //nolint:gosec // see the import
	h.AddDigest("WARC-Block-Digest", &sum)
	h.Add("Content-Type", RequestType)
	h.Add("Content-Length", strconv.Itoa(len(x.Request)))
	return h.Bytes()
}

// ResponseHeader is the response record's header block, in buf.
func (x *Exchange) ResponseHeader(buf []byte) []byte {
	h := NewHeader(buf, "response", x.RespID, x.Date)
	x.common(&h, x.ReqID)
	h.AddDigest("WARC-Block-Digest", x.BlockDigest)
	h.AddDigest("WARC-Payload-Digest", x.PayloadDigest)
	if x.Truncated != "" {
		h.Add("WARC-Truncated", x.Truncated)
	}
	h.Add("Content-Type", ResponseType)
	h.Add("Content-Length", strconv.FormatInt(x.RespLength, 10))
	return h.Bytes()
}

// Original is the capture a revisit refers to; the fields not known are
// "" and left out.
type Original struct{ ID, URI, Date string }

// RevisitHeader is the header block of a revisit record with profile
// that stands for the response, in buf: its block is the response's head
// only.
func (x *Exchange) RevisitHeader(buf []byte, head []byte, profile string, orig Original) []byte {
	h := NewHeader(buf, "revisit", x.RespID, x.Date)
	x.common(&h, x.ReqID)
	h.Add("WARC-Profile", profile)
	for _, f := range [][2]string{{"WARC-Refers-To", orig.ID}, {"WARC-Refers-To-Target-URI", orig.URI}, {"WARC-Refers-To-Date", orig.Date}} {
		if f[1] != "" {
			h.Add(f[0], f[1])
		}
	}
	if profile == RevisitProfile {
		h.AddDigest("WARC-Payload-Digest", x.PayloadDigest)
	}
	sum := sha1.Sum(head) //nolint:gosec // see the import
	h.AddDigest("WARC-Block-Digest", &sum)
	h.Add("Content-Type", ResponseType)
	h.Add("Content-Length", strconv.Itoa(len(head)))
	return h.Bytes()
}

// End is what follows a record's block.
const End = "\r\n\r\n"

// SmallRecord is the size up to which a record is compressed whole with
// fixed Huffman codes (see fixedflate): most records are small, and for
// them building Huffman tables costs more than all the rest of archiving.
// Larger records are streamed through a general encoder.
const SmallRecord = 64 << 10

// Encoder compresses small records into gzip members. It is not safe for
// concurrent use; GetEncoder and PutEncoder share them among goroutines.
type Encoder struct {
	ff          fixedflate.Encoder
	store, rest []byte
}

var encoders = sync.Pool{New: func() any { return new(Encoder) }}

// GetEncoder takes an Encoder from a shared pool.
func GetEncoder() *Encoder { return encoders.Get().(*Encoder) }

// PutEncoder gives it back.
func PutEncoder(e *Encoder) { encoders.Put(e) }

// AppendMember appends to dst one gzip member holding the record made of
// header (with its blank line), head and body (the block), and End. The
// header and head are stored as they are (their IDs, digests and dates
// would hardly compress, and compressing costs more than everything else
// done for a small record); the body is compressed where it compresses.
func (e *Encoder) AppendMember(dst, header, head, body []byte) []byte {
	store := append(append(e.store[:0], header...), head...)
	rest := append(append(e.rest[:0], body...), End...)
	e.store, e.rest = store, rest
	return e.ff.AppendGzip(dst, store, rest)
}
