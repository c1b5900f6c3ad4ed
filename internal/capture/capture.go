// Package capture holds what the fetch stage recorded of a URL's HTTP
// exchanges for the WARC (--warc): each request as sent, each response's
// head as received and its body as it came over the connection, with the
// digests a WARC record carries. The fetch workers fill a Capture while
// they read; the one writer goroutine turns it into WARC records later,
// in output order. Bodies are spooled, not held: the first bytes of each
// in memory, the rest in a temporary file, so memory stays flat whatever
// their size.
package capture

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // WARC digests are SHA-1 by custom; they identify, they do not protect
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/trawl-dev/trawl/internal/warc"
)

// Truncation reasons, as WARC-Truncated names them.
const (
	// TruncLength: the body was longer than the archive's cap.
	TruncLength = "length"
	// TruncTime: the attempt's time ran out while the body was read.
	TruncTime = "time"
	// TruncDisconnect: the connection broke while the body was read.
	TruncDisconnect = "disconnect"
	// TruncUnspecified: reading stopped for another reason.
	TruncUnspecified = "unspecified"
)

// Spooler says where captured bodies go. One Spooler serves a run; it
// holds no state of its own, so any number of workers may share it.
type Spooler struct {
	// Dir holds the temporary files of bodies longer than MemLimit. On
	// Unix each is removed as soon as it is created and lives only as long
	// as its open file, so that a killed run leaves none behind.
	Dir string
	// MemLimit is how many bytes of a body are kept in memory before the
	// rest goes to a temporary file; 0 means DefaultMemLimit.
	MemLimit int
	// MaxBody caps the body bytes archived per response; a longer body is
	// archived cut, as truncated by length. 0 means no cap.
	MaxBody int64
}

// DefaultMemLimit keeps small pages in memory: a reorder window of
// thousands of records then holds a few MiB of captures, and only larger
// bodies pay for a temporary file.
const DefaultMemLimit = 64 << 10

func (s *Spooler) memLimit() int {
	if s.MemLimit <= 0 {
		return DefaultMemLimit
	}
	return s.MemLimit
}

// Capture is one URL's exchanges on its last attempt, in the order they
// happened: the redirect hops, then the final response. Earlier attempts
// are dropped when a retry starts, so that the archive agrees with the
// record, which describes the last attempt.
type Capture struct {
	// Exchanges are the requests that got a response; a request that got
	// none is not kept.
	Exchanges []*Exchange
	// File and Offset are set by the WARC writer: the file and the offset
	// of the gzip member of the last response (or revisit) record written
	// for the URL. File is "" until then, and when nothing was written.
	File   string
	Offset int64
	// Written is set by the WARC writer once it has handled the capture,
	// so that a duplicate sharing it (--dedupe) is not archived again.
	Written bool
}

// Begin starts the exchange of a request about to be sent to uri.
func (c *Capture) Begin(s *Spooler, sent time.Time, uri string) *Exchange {
	ex := &Exchange{Date: sent, URI: uri, spooler: s}
	c.Exchanges = append(c.Exchanges, ex)
	return ex
}

// Drop forgets ex, the last exchange begun: its request got no response.
func (c *Capture) Drop(ex *Exchange) {
	if n := len(c.Exchanges); n > 0 && c.Exchanges[n-1] == ex {
		c.Exchanges[n-1] = nil
		c.Exchanges = c.Exchanges[:n-1]
	}
	ex.Release()
}

// Reset drops every exchange, for a new attempt.
func (c *Capture) Reset() {
	c.Release()
	c.Exchanges = c.Exchanges[:0]
}

// Seal finishes every exchange still open (its body was never read to an
// end, for instance because saving it failed first) as truncated.
func (c *Capture) Seal() {
	for _, ex := range c.Exchanges {
		if !ex.done {
			ex.Finish(TruncUnspecified)
		}
	}
}

// Release frees the spooled bodies; the exchanges keep their heads.
func (c *Capture) Release() {
	for _, ex := range c.Exchanges {
		ex.Release()
	}
}

// Footprint estimates the memory the capture holds, for the stages'
// windows.
func (c *Capture) Footprint() int64 {
	var n int64
	for _, ex := range c.Exchanges {
		n += 256 + int64(len(ex.Request)+len(ex.Head)+len(ex.URI)+cap(ex.Records)) + int64(cap(ex.Body.mem))
		if ex.Body.f != nil {
			n += SpoolWeight
		}
	}
	return n
}

// SpoolWeight is what Footprint counts for a body spooled to a file: the
// file's descriptor stays open until the writer has copied the body, and
// a window of records waiting behind a slow URL would otherwise hold one
// for each, as many as the window has records (thousands: past a usual
// limit of open files). At 256 KiB, --reorder-memory's default of 64 MiB
// holds at most 256 of them, plus one per worker.
const SpoolWeight = 256 << 10

// Exchange is one request and its response. The fetch worker fills it in
// this order: Sent (or Request), SetHead, then the body's bytes through
// Payload (and Framed, when the body came in chunked framing), then
// Finish. After Finish it is read only.
type Exchange struct {
	// Date is when the request was sent.
	Date time.Time
	// URI is the URL requested.
	URI string
	// IP is the address the connection went to, "" when unknown.
	IP string
	// Request is the request as sent: head and body.
	Request []byte
	// Head is the response's status line and headers, with the blank
	// line ending them.
	Head []byte
	// Reconstructed says that Request and Head were rebuilt from parsed
	// values (HTTP/2, the net/http engine) rather than kept as the bytes
	// that crossed the connection.
	Reconstructed bool
	// Body is the body as it came over the connection, after Head: still
	// content-encoded, and in its chunked framing when it had one.
	Body Spool
	// BlockDigest is the SHA-1 of Head and Body; PayloadDigest the SHA-1
	// of the payload (the body without chunked framing, still
	// content-encoded), PayloadLen its length.
	BlockDigest   [sha1.Size]byte
	PayloadDigest [sha1.Size]byte
	PayloadLen    int64
	// Truncated is the WARC-Truncated reason, "" for a whole body.
	Truncated string
	// ReqID and RespID are the IDs of the exchange's WARC records.
	ReqID, RespID string
	// Records, once Prepare has made them, are the exchange's request and
	// response records as gzip members, the request's the first ReqLen
	// bytes; the writer copies them into the WARC (or, for a revisit,
	// the request's only).
	Records []byte
	ReqLen  int

	spooler  *Spooler
	prepared bool
	framed   bool
	full     bool
	done     bool
	block    hash.Hash
	payload  hash.Hash
}

// Sent keeps the request exactly as it is about to be written to the
// connection, and takes that moment as the exchange's date. A request
// sent again (on a fresh connection, after a stale one failed) replaces
// the first.
func (ex *Exchange) Sent(req []byte) {
	ex.Request = append(ex.Request[:0], req...)
	ex.Date = time.Now()
}

// SetHead keeps the response head. framed says that the body's bytes on
// the connection carry chunked framing, which the body keeps (Framed)
// while the payload (Payload) is the bytes without it.
func (ex *Exchange) SetHead(head []byte, framed bool) {
	ex.Head = append(ex.Head[:0], head...)
	ex.framed = framed
	ex.block, ex.payload = sha1.New(), sha1.New() //nolint:gosec // see the import
	ex.block.Write(ex.Head)
}

// HasHead reports whether the response head was kept already.
func (ex *Exchange) HasHead() bool { return ex.block != nil }

// Framed takes body bytes as they came over the connection, chunked
// framing included. Only a framed exchange keeps them.
func (ex *Exchange) Framed(p []byte) {
	if ex.framed {
		ex.store(p)
	}
}

// Payload takes payload bytes: the body without chunked framing. An
// unframed exchange keeps them as its body too.
func (ex *Exchange) Payload(p []byte) {
	if ex.payload == nil || ex.done {
		return
	}
	if !ex.framed {
		p = ex.store(p)
	} else if ex.full {
		return
	}
	ex.payload.Write(p)
	ex.PayloadLen += int64(len(p))
}

// store adds p to the body, up to the cap, and returns what it took.
func (ex *Exchange) store(p []byte) []byte {
	if ex.full || ex.done {
		return p[:0]
	}
	if max := ex.spooler.MaxBody; max > 0 && ex.Body.Len()+int64(len(p)) > max {
		p = p[:max-ex.Body.Len()]
		ex.full = true
	}
	ex.Body.write(ex.spooler, p)
	ex.block.Write(p)
	return p
}

// Full reports whether the body reached the archive's cap: reading on
// would only be thrown away.
func (ex *Exchange) Full() bool { return ex.full }

// Err reports a failure to spool the body (a full disk, say): the
// archive would miss bytes that were received.
func (ex *Exchange) Err() error {
	if ex.Body.err != nil {
		return fmt.Errorf("cannot spool the body for the WARC: %w", ex.Body.err)
	}
	return nil
}

// Finish ends the body with the reason it is incomplete, "" when it is
// whole. A body cut at the cap is truncated by length whatever ended it.
func (ex *Exchange) Finish(truncated string) {
	if ex.done {
		return
	}
	if ex.block == nil {
		ex.SetHead(nil, false)
	}
	if ex.full {
		truncated = TruncLength
	}
	ex.Truncated = truncated
	ex.Body.finish()
	copy(ex.BlockDigest[:], ex.block.Sum(nil))
	copy(ex.PayloadDigest[:], ex.payload.Sum(nil))
	ex.block, ex.payload = doneHash{}, doneHash{}
	ex.done = true
}

// Done reports whether Finish was called.
func (ex *Exchange) Done() bool { return ex.done }

// Release frees the spooled body and the records.
func (ex *Exchange) Release() {
	ex.Body.release()
	putBuf(ex.Records)
	ex.Records = nil
}

// bufs recycles the buffers of small bodies and records: a run of small
// pages would otherwise allocate a few KiB per URL for the garbage
// collector to find. Only buffers a small record fits in are kept.
var bufs sync.Pool

// getBuf returns an empty buffer with room for n bytes.
func getBuf(n int) []byte {
	if b, ok := bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, max(n, 4<<10))
}

// putBuf gives b back once nothing refers to it.
func putBuf(b []byte) {
	if b != nil && cap(b) <= 2*warc.SmallRecord {
		bufs.Put(&b)
	}
}

// WARC returns what the exchange's records say, giving it record IDs if
// it has none yet.
func (ex *Exchange) WARC() warc.Exchange {
	if ex.ReqID == "" {
		ex.ReqID, ex.RespID = warc.NewID(), warc.NewID()
	}
	return warc.Exchange{
		ReqID: ex.ReqID, RespID: ex.RespID, Date: ex.Date, URI: ex.URI, IP: ex.IP, Request: ex.Request,
		RespLength: int64(len(ex.Head)) + ex.Body.Len(), BlockDigest: &ex.BlockDigest,
		PayloadDigest: &ex.PayloadDigest, Truncated: ex.Truncated,
	}
}

// Prepare makes the records of every finished exchange small enough to
// compress whole (warc.SmallRecord), and frees its spooled body: it runs
// on the fetch worker's goroutine, so that the records of a run are
// compressed on every CPU rather than by the one writer. Larger records
// are left to the writer, which streams them.
func (c *Capture) Prepare() {
	if c == nil {
		return
	}
	var enc *warc.Encoder
	var hdr []byte
	for _, ex := range c.Exchanges {
		if !ex.done || ex.Records != nil || ex.Body.err != nil || ex.Body.f != nil ||
			int64(len(ex.Head))+ex.Body.Len() > warc.SmallRecord || len(ex.Request) > warc.SmallRecord {
			continue // the writer copies a compressed body, or reports an error
		}
		if enc == nil {
			enc = warc.GetEncoder()
			defer warc.PutEncoder(enc)
		}
		x := ex.WARC()
		hdr = x.RequestHeader(hdr)
		// Room for both members: fixed codes can outgrow the input by an
		// eighth, and the headers come to about a KiB.
		recs := getBuf((len(ex.Request)+len(ex.Head)+int(ex.Body.Len()))*9/8 + 2048)
		recs = enc.AppendMember(recs, hdr, ex.Request, nil)
		ex.ReqLen = len(recs)
		hdr = x.ResponseHeader(hdr)
		ex.Records = enc.AppendMember(recs, hdr, ex.Head, ex.Body.mem)
		putBuf(ex.Body.mem)
		ex.Body.mem = nil
		ex.prepared = true
	}
}

// Prepared reports whether Records holds the exchange's records.
func (ex *Exchange) Prepared() bool { return ex.prepared }

// doneHash stands in for a finished hash, so that a late write is a
// no-op rather than a change to a digest already taken.
type doneHash struct{ hash.Hash }

func (doneHash) Write(p []byte) (int, error) { return len(p), nil }

// Spool holds a body: in memory while it is small (up to the Spooler's
// MemLimit); past that, all of it compressed in a temporary file, as the
// DEFLATE stream that ends its WARC record (the body and warc.End): the
// fetch worker compresses it as it arrives, so that the writer only
// copies it into the WARC (see Segment). The zero value is an empty spool.
type Spool struct {
	mem  []byte
	f    *os.File
	name string       // the file's name while it could not be removed early
	zw   *spoolWriter // compressing into f, while the body arrives
	raw  int64        // bytes of body that went into z
	crc  uint32       // CRC-32 of those bytes, then of warc.End after them
	seg  int64        // bytes of f once the stream is ended
	done bool         // the stream is ended
	err  error
}

// Len returns the length of the body.
func (s *Spool) Len() int64 { return int64(len(s.mem)) + s.raw }

func (s *Spool) write(sp *Spooler, p []byte) {
	if s.err != nil || len(p) == 0 {
		return
	}
	if s.f == nil {
		if len(s.mem)+len(p) <= sp.memLimit() {
			if s.mem == nil {
				s.mem = getBuf(min(sp.memLimit(), max(len(p), 512)))
			}
			s.mem = append(s.mem, p...)
			return
		}
		if s.err = s.create(sp.Dir); s.err != nil {
			return
		}
		mem := s.mem
		s.mem = nil
		s.compress(mem)
	}
	s.compress(p)
}

// compress adds p to the stream in the file.
func (s *Spool) compress(p []byte) {
	if s.err != nil || len(p) == 0 {
		return
	}
	_, s.err = s.zw.z.Write(p)
	s.crc = crc32.Update(s.crc, crc32.IEEETable, p)
	s.raw += int64(len(p))
}

// create opens the temporary file, removing its name at once where the
// system lets an open file live without one, and the compressor in front
// of it.
func (s *Spool) create(dir string) error {
	f, err := os.CreateTemp(dir, ".trawl-spool-*")
	if err != nil {
		return err
	}
	if os.Remove(f.Name()) != nil {
		s.name = f.Name() // removed on release instead
	}
	s.f = f
	s.zw = getSpoolWriter(f)
	return nil
}

// spoolWriter is the compressor and buffer that fill a spool file. They
// weigh about half a MiB, so a spool holds one only while its body
// arrives, and gives it back for the next body once the stream is ended.
type spoolWriter struct {
	z  *flate.Writer
	bw *bufio.Writer
}

var spoolWriters sync.Pool

func getSpoolWriter(f *os.File) *spoolWriter {
	if zw, ok := spoolWriters.Get().(*spoolWriter); ok {
		zw.bw.Reset(f)
		zw.z.Reset(zw.bw)
		return zw
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	z, _ := flate.NewWriter(bw, flate.BestSpeed) // fails only for a bad level
	return &spoolWriter{z: z, bw: bw}
}

// putWriter gives the spool's writer back, once nothing more goes in.
func (s *Spool) putWriter() {
	if s.zw != nil {
		s.zw.bw.Reset(nil)
		spoolWriters.Put(s.zw)
		s.zw = nil
	}
}

// finish ends the stream in the file, once the body is complete, with
// warc.End, which follows a record's block.
func (s *Spool) finish() {
	if s.f == nil || s.done {
		return
	}
	s.done = true
	defer s.putWriter()
	if s.err != nil {
		return
	}
	if _, s.err = s.zw.z.Write([]byte(warc.End)); s.err != nil {
		return
	}
	s.crc = crc32.Update(s.crc, crc32.IEEETable, []byte(warc.End))
	if s.err = s.zw.z.Close(); s.err != nil {
		return
	}
	if s.err = s.zw.bw.Flush(); s.err != nil {
		return
	}
	s.seg, s.err = s.f.Seek(0, io.SeekCurrent)
}

// Segment returns, for a body kept compressed in a file, the file, the
// length of the DEFLATE stream in it, and the CRC-32 of what it holds
// (the body and warc.End). ok is false for a body in memory.
func (s *Spool) Segment() (f *os.File, n int64, crc uint32, ok bool) {
	if s.f == nil || !s.done || s.err != nil {
		return nil, 0, 0, false
	}
	return s.f, s.seg, s.crc, true
}

// WriteTo writes the body to w, decompressing it from the file when it
// is there. The writer copies a compressed body as it is (Segment): this
// is for what needs the body itself.
func (s *Spool) WriteTo(w io.Writer) (int64, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.f == nil {
		n, err := w.Write(s.mem)
		return int64(n), err
	}
	if !s.done {
		return 0, errors.New("the spooled body is not complete")
	}
	zr := flate.NewReader(io.NewSectionReader(s.f, 0, s.seg))
	defer zr.Close()
	n, err := io.Copy(onlyWriter{w}, io.LimitReader(zr, s.raw))
	if err == nil && n != s.raw {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// AppendTo appends the body to b.
func (s *Spool) AppendTo(b []byte) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	_, err := s.WriteTo(buf)
	return buf.Bytes(), err
}

// onlyWriter hides a writer's ReadFrom, so that io.CopyBuffer uses the
// buffer it is given.
type onlyWriter struct{ io.Writer }

// errReleased marks a spool read after it was released.
var errReleased = errors.New("the spooled body was released")

func (s *Spool) release() {
	if s.f != nil {
		s.f.Close()
		if s.name != "" {
			os.Remove(s.name)
		}
		s.putWriter()
		s.f, s.name = nil, ""
	}
	putBuf(s.mem)
	s.mem, s.raw = nil, 0
	if s.err == nil {
		s.err = errReleased
	}
}
