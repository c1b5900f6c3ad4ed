package fetch

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/trawl-dev/trawl/fetch/internal/lean"
	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/record"
)

// Capturing for the WARC (Options.Capture).
//
// With the lean engine on HTTP/1.1 the archive gets the bytes that
// crossed the connection: the request as written, the response head as
// read, and the body as it came, still content-encoded and in its chunked
// framing when it had one (the WARC record holds the HTTP message as
// received; its payload digest is over the body without the framing, as
// iipc/warc-specifications#22 settled). HTTP/2 has no such bytes, and
// net/http does not show them: for those the request and the response
// head are rebuilt in HTTP/1.1 form from what was sent and parsed
// (Exchange.Reconstructed), net/http having removed any chunked framing
// and its Transfer-Encoding header already.

// startCapture readies r's capture for a new attempt, or returns nil
// when the run archives nothing.
func (c *Client) startCapture(r *record.Record) *capture.Capture {
	if c.opts.Capture == nil {
		return nil
	}
	if r.Capture == nil {
		r.Capture = &capture.Capture{}
	}
	r.Capture.Reset()
	return r.Capture
}

// archivedURI is the URL as WARC-Target-URI gives it: as requested, so
// without the fragment, which is never sent.
func archivedURI(u *url.URL) string {
	if u.Fragment == "" && u.RawFragment == "" {
		return u.String()
	}
	v := *u
	v.Fragment, v.RawFragment = "", ""
	return v.String()
}

// completeHead notes where the response came from and, when the engine
// did not tap the exchange's bytes, rebuilds its request and head.
func completeHead(ex *capture.Exchange, req *outRequest, resp *response) {
	if resp.conn.Remote != nil {
		if host, _, err := net.SplitHostPort(resp.conn.Remote.String()); err == nil {
			ex.IP = host
		}
	}
	if ex.HasHead() {
		return
	}
	ex.Reconstructed = true
	ex.Request = lean.AppendRequest(nil, &lean.Request{Method: req.method, URL: req.url, Host: req.host, Header: req.header, Body: req.body})
	ex.SetHead(reconstructHead(resp), false)
}

// reconstructHead writes a parsed response's status line and headers in
// HTTP/1.1 form, the headers sorted by name (the order was not kept).
func reconstructHead(resp *response) []byte {
	var b bytes.Buffer
	b.WriteString(resp.proto)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(resp.status))
	if text := http.StatusText(resp.status); text != "" {
		b.WriteByte(' ')
		b.WriteString(text)
	}
	b.WriteString("\r\n")
	if h := resp.full(); h != nil {
		h.Write(&b) // sorted; newlines in values are made spaces
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// captureRedirect reads a redirect's body into the archive, to its end or
// the archive's cap, and closes it.
func (c *Client) captureRedirect(resp *response, ex *capture.Exchange) {
	wire := &countingReader{r: resp.body, tap: ex}
	bufp := c.bufs.Get().(*[]byte)
	for wire.err == nil && !ex.Full() {
		wire.Read(*bufp)
	}
	c.bufs.Put(bufp)
	resp.body.Close()
	ex.Finish(truncation(wire.err))
}

// finishCapture completes the archived body once the record's own reading
// is done. When that reading stopped before the body's end (at MaxBody,
// on a decoding error, on a failed save), the rest is read into the
// archive, which wants the body whole; a broken connection meanwhile is
// the attempt's failure. The exchange is then finished, with the reason
// it is incomplete if it is.
func (c *Client) finishCapture(wire *countingReader, ex *capture.Exchange, res attemptResult) attemptResult {
	if wire.err == nil && !ex.Full() {
		bufp := c.bigBufs.Get().(*[]byte)
		for wire.err == nil && !ex.Full() {
			wire.Read(*bufp)
		}
		c.bigBufs.Put(bufp)
	}
	ex.Finish(truncation(wire.err))
	if res.err == nil && wire.err != nil && !errors.Is(wire.err, io.EOF) {
		res = c.bodyResult(wire.err)
	}
	return res
}

// truncation is the WARC-Truncated reason for a body whose reading ended
// with err: none at its end, else time or disconnect. (A body cut at the
// archive's cap is truncated by length, which Finish knows.)
func truncation(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return ""
	case isTimeout(err):
		return capture.TruncTime
	}
	return capture.TruncDisconnect
}
