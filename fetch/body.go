package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/internal/units"
	"github.com/trawl-dev/trawl/record"
)

// BodyStore saves response bodies as they arrive.
type BodyStore interface {
	// Create starts saving the body of r's current response, which
	// begins as from says.
	Create(r *record.Record, from BodyStart) (BodyFile, error)
}

// BodyStart says how a body about to be saved begins.
type BodyStart struct {
	// Offset, when above 0, says the response continues the part of the
	// body the store keeps (Resumable.Kept) from that byte: a 206 answer
	// to a Range request.
	Offset int64
	// Validator, when set, is the response's ETag or Last-Modified: a
	// body cut short may then be kept (BodyFile.Keep) and continued later
	// with a Range request guarded by If-Range.
	Validator string
}

// BodyFile receives one body. Exactly one of Commit, Abort and Keep is
// called.
type BodyFile interface {
	io.Writer
	// Commit puts the complete body in place and notes where in r.
	Commit(r *record.Record) error
	// Abort discards a body that failed or was cut short.
	Abort()
	// Keep ends a body cut short by the connection or the run, keeping
	// what was saved to be continued by a later attempt or run, when its
	// start had a Validator and enough was saved to be worth it; it is
	// Abort otherwise.
	Keep()
}

// Resumable is a BodyStore that keeps what an attempt or a run saved of a
// body it did not finish (BodyFile.Keep), so that the next attempt asks
// only for the rest.
type Resumable interface {
	// Kept returns how many bytes of r's body are kept, and the validator
	// of the response they came from; 0 when none are.
	Kept(r *record.Record) (int64, string)
	// Drop forgets what is kept of r's body.
	Drop(r *record.Record)
}

// errTooLarge marks a body that outgrew MaxFileSize.
var errTooLarge = errors.New("body larger than the file size cap")

// errUnknownEncoding marks a Content-Encoding trawl cannot decode; the body
// is then kept as sent.
var errUnknownEncoding = errors.New("unknown content encoding")

// readBody reads the response body into r (up to MaxBody, unless the body
// is discarded) and into file when there is one. Without a file, reading
// stops after MaxBody bytes, so an endless body costs at most the cap;
// with a file it goes on to the end, or to MaxFileSize.
//
// A body cut at MaxBody is reported as truncated and its connection is
// closed rather than drained, since draining an arbitrarily long body would
// defeat the cap.
//
// With ex (--warc), every byte of the body on the connection also goes to
// the archive, so reading goes on past MaxBody, to the end of the body or
// the archive's cap: see finishCapture.
func (c *Client) readBody(resp *response, method string, file BodyFile, saved int64, r *record.Record, ex *capture.Exchange) (res attemptResult) {
	if method == http.MethodHead {
		if ex != nil {
			ex.Finish("")
		}
		return attemptResult{}
	}
	wire := &countingReader{r: resp.body}
	if ex != nil {
		wire.tap = ex
		defer func() { r.WireBytes = wire.n }() // after finishCapture's reading, which runs deferred too
		defer func() { res = c.finishCapture(wire, ex, res) }()
	}
	var body io.Reader = wire
	if ce := resp.header.Get("Content-Encoding"); ce != "" && !c.opts.RawEncoding {
		dec, closeDec, err := decoder(wire, ce)
		switch {
		case err == nil:
			defer closeDec()
			body = dec
		case errors.Is(err, errUnknownEncoding):
			// Kept as sent; the record's Content-Type and headers say what it is.
		default:
			return attemptResult{err: &BodyError{Err: err}, retryable: true}
		}
	}
	defer func() { r.WireBytes = wire.n }()
	if file != nil && body == wire && c.opts.DiscardBody && ex == nil {
		if rf, ok := file.(io.ReaderFrom); ok {
			return c.saveWhole(resp, wire, rf, saved, r)
		}
	}
	memLimit := c.opts.MaxBody
	var mem bytes.Buffer
	if !c.opts.DiscardBody {
		if n := resp.contentLength; n > 0 {
			mem.Grow(int(min(n, memLimit) + 1))
		}
	}
	pool := &c.bufs
	if file != nil || ex != nil {
		pool = &c.bigBufs // a saved or archived body may be large: fewer, larger reads
	}
	bufp := pool.Get().(*[]byte)
	defer pool.Put(bufp)
	buf := *bufp
	// A body continued from a kept part counts from where it continues,
	// for --max-file-size and the record (saved is 0 otherwise).
	total := saved
	var err error
	for {
		var n int
		n, err = body.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			// Keep one byte past the cap, to tell "exactly the cap" from "more".
			if !c.opts.DiscardBody {
				if room := memLimit + 1 - int64(mem.Len()); room > 0 {
					mem.Write(chunk[:min(int64(n), room)])
				}
			}
			total += int64(n)
			if file != nil {
				if c.opts.MaxFileSize > 0 && total > c.opts.MaxFileSize {
					err = errTooLarge
					break
				}
				if _, werr := file.Write(chunk); werr != nil {
					r.Bytes = total
					return attemptResult{err: &SaveError{Err: werr}}
				}
			} else if total > memLimit {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// Truncated means something was cut: the reading (no file) or the copy
	// kept for transforms. A body saved whole and kept nowhere else is not.
	truncated := total > memLimit && !(c.opts.DiscardBody && file != nil)
	if file == nil && truncated {
		total = memLimit // the byte read past the cap was only a probe
	}
	r.Bytes, r.Truncated = total, truncated
	if !c.opts.DiscardBody {
		b := mem.Bytes()
		if int64(len(b)) > memLimit {
			b = b[:memLimit]
		}
		r.Body = b
	}
	return c.bodyResult(err)
}

// bodyResult describes how reading a body ended.
func (c *Client) bodyResult(err error) attemptResult {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return attemptResult{}
	case errors.Is(err, errTooLarge):
		return attemptResult{err: &SaveError{Err: fmt.Errorf("body is larger than %s (--max-file-size), so it was not saved", units.FormatSize(c.opts.MaxFileSize))}}
	case isTimeout(err):
		// (When the whole run is being stopped, classify reports "canceled".)
		return attemptResult{err: &timeoutError{what: fmt.Sprintf("reading body: no complete response within %s (--timeout)", c.opts.Timeout), err: err}, retryable: true}
	}
	var saveErr *SaveError
	if errors.As(err, &saveErr) {
		return attemptResult{err: saveErr}
	}
	return attemptResult{err: &BodyError{Err: err}, retryable: true}
}

// saveWhole saves a body nothing else reads, undecoded, by letting the
// file read it (on Linux, from a plain HTTP connection, by splice(2): the
// bytes never pass through trawl). Up to MaxFileSize.
func (c *Client) saveWhole(resp *response, wire *countingReader, file io.ReaderFrom, saved int64, r *record.Record) attemptResult {
	limit := c.opts.MaxFileSize
	if limit > 0 {
		limit = max(1, limit-saved)
	}
	if limit > 0 && resp.contentLength > limit {
		return c.bodyResult(errTooLarge)
	}
	var src io.Reader = wire
	if limit > 0 {
		src = &io.LimitedReader{R: wire, N: limit + 1}
	}
	n, err := file.ReadFrom(src)
	r.Bytes = saved + n
	if err == nil && limit > 0 && n > limit {
		err = errTooLarge
	}
	if err == nil && resp.contentLength >= 0 && n < resp.contentLength {
		err = io.ErrUnexpectedEOF
	}
	return c.bodyResult(err)
}
