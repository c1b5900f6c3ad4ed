package lean

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
)

// ProtocolError reports a response that is not HTTP: a broken status
// line, malformed or oversized headers, contradictory framing. The same
// server would most likely answer the same way again.
type ProtocolError struct {
	What string
}

func (e *ProtocolError) Error() string { return "not a valid HTTP response: " + e.What }

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf(format, args...)}
}

// errNoResponse marks a connection that closed or broke before any byte
// of a response arrived: on a reused connection that is the server having
// closed it while idle, and the request can be sent again on a new one.
var errNoResponse = errors.New("server closed the connection without a response")

// header is an HTTP/1.1 response's header block, kept as received (one
// allocation per response); lookups scan it, which for the dozen lines of
// a typical response costs less than building a map nobody reads.
type header struct {
	raw []byte // "Name: value\r\n" lines, validated
}

// get returns the first value of the named field, trimmed.
func (h header) get(name string) string {
	for rest := h.raw; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if v, ok := fieldValue(line, name); ok {
			return string(v)
		}
	}
	return ""
}

// values returns every value of the named field.
func (h header) values(name string) []string {
	var out []string
	for rest := h.raw; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		if v, ok := fieldValue(line, name); ok {
			out = append(out, string(v))
		}
	}
	return out
}

// nextLine splits off the first line of b.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], b[i+1:]
	}
	return b, nil
}

// fieldValue returns the trimmed value of a header line when the line's
// name is name. Names are compared before anything is trimmed: most lines
// are not the one asked for.
func fieldValue(line []byte, name string) ([]byte, bool) {
	if len(line) <= len(name) || line[len(name)] != ':' || !asciiEqualFold(line[:len(name)], name) {
		return nil, false
	}
	v := line[len(name)+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[len(v)-1] == '\r' || v[len(v)-1] == '\n') {
		v = v[:len(v)-1]
	}
	return v, true
}

// httpHeader builds the map form, with canonical names.
func (h header) httpHeader() http.Header {
	out := make(http.Header)
	for line := range bytes.Lines(h.raw) {
		if k, v, ok := splitField(line); ok {
			name := textproto.CanonicalMIMEHeaderKey(string(k))
			out[name] = append(out[name], string(v))
		}
	}
	return out
}

// splitField splits a validated header line into its name and trimmed value.
func splitField(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, false
	}
	return line[:i], bytes.Trim(line[i+1:], " \t\r\n"), true
}

// asciiEqualFold reports whether b and s are equal ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// head is what reading a response's status line and headers learned.
type head struct {
	status        int
	proto         string
	hdr           header
	contentLength int64 // -1 when not given
	chunked       bool
	close         bool // the connection ends with this response
	// unframed: close is set only because nothing but the end of the
	// connection would end the body, which a response without a body
	// (HEAD, 204, 304) does not have.
	unframed bool
	// blank is the line that ended the headers, as received: "\r\n",
	// or what a sloppy server sent instead.
	blank []byte
}

// isToken reports whether b is a non-empty RFC 9110 token, as field names are.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// readLine appends one line (terminator included) to dst, reading at most
// limit bytes in all; a longer line is a protocol error, so a server that
// sends an endless header costs the limit and no more.
func readLine(br *bufio.Reader, dst []byte, limit int) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		if len(dst)+len(frag) > limit {
			return dst, protocolErrorf("response headers exceeded %d bytes", limit)
		}
		dst = append(dst, frag...)
		switch {
		case err == nil:
			return dst, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return dst, err
		}
	}
}

// readHead reads a status line and headers from br. scratch is a buffer
// to reuse; the header block kept in the result is a copy of exact size.
// maxBytes bounds the status line and headers together. Interim (1xx)
// responses are skipped.
func readHead(br *bufio.Reader, scratch []byte, maxBytes int, method string) (head, []byte, error) {
	for {
		h, scratch, err := readOneHead(br, scratch, maxBytes)
		if err != nil {
			return h, scratch, err
		}
		if h.status >= 100 && h.status < 200 {
			if h.status == http.StatusSwitchingProtocols {
				return h, scratch, protocolErrorf("unasked-for 101 Switching Protocols")
			}
			continue // 100 Continue, 103 Early Hints: the response follows
		}
		if method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified {
			h.contentLength, h.chunked = 0, false
			if h.unframed {
				// A 304 usually has no Content-Length; its connection is
				// as good as any other's.
				h.close = false
			}
		}
		return h, scratch, nil
	}
}

func readOneHead(br *bufio.Reader, scratch []byte, maxBytes int) (head, []byte, error) {
	h := head{contentLength: -1}
	buf, err := readLine(br, scratch[:0], maxBytes)
	if err != nil {
		if len(buf) == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
			return h, buf, errNoResponse
		}
		if errors.Is(err, io.EOF) {
			return h, buf, protocolErrorf("the connection closed in the middle of the status line %q", truncate(buf))
		}
		return h, buf, err
	}
	statusLine := bytes.TrimRight(buf, "\r\n")
	proto, rest, _ := bytes.Cut(statusLine, []byte(" "))
	code, _, _ := bytes.Cut(rest, []byte(" "))
	switch string(proto) {
	case "HTTP/1.1", "HTTP/1.0":
		h.proto = string(proto)
	default:
		return h, buf, protocolErrorf("malformed status line %q", truncate(statusLine))
	}
	if len(code) != 3 || code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return h, buf, protocolErrorf("malformed status code in %q", truncate(statusLine))
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	h.close = h.proto == "HTTP/1.0"

	start := len(buf)
	var connection, te []byte
	clSeen := false
	for {
		lineStart := len(buf)
		buf, err = readLine(br, buf, maxBytes)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return h, buf, protocolErrorf("the connection closed in the middle of the headers")
			}
			return h, buf, err
		}
		line := buf[lineStart:]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			h.blank = crlf
			if string(line) != "\r\n" {
				h.blank = bytes.Clone(line)
			}
			buf = buf[:lineStart] // the blank line ending the headers
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, buf, protocolErrorf("obsolete folded header line %q", truncate(line))
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) {
			return h, buf, protocolErrorf("malformed header line %q", truncate(bytes.TrimRight(line, "\r\n")))
		}
		value = bytes.Trim(value, " \t\r\n")
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return h, buf, protocolErrorf("control character in header %s", name)
			}
		}
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := parseContentLength(value)
			if err != nil {
				return h, buf, err
			}
			if clSeen && n != h.contentLength {
				return h, buf, protocolErrorf("conflicting Content-Length headers")
			}
			h.contentLength, clSeen = n, true
		case asciiEqualFold(name, "transfer-encoding"):
			te = value
		case asciiEqualFold(name, "connection"):
			connection = value
		}
	}
	if te != nil {
		// The last coding decides; anything but chunked runs to the close.
		codings := bytes.Split(te, []byte(","))
		last := bytes.TrimSpace(codings[len(codings)-1])
		h.chunked = asciiEqualFold(last, "chunked")
		if !h.chunked || clSeen {
			h.close = true // a framing a middlebox may read otherwise
		}
		h.contentLength = -1
	}
	if hasToken(connection, "close") {
		h.close = true
	} else if h.proto == "HTTP/1.0" && hasToken(connection, "keep-alive") {
		h.close = false
	}
	if !h.chunked && h.contentLength < 0 && !h.close {
		h.close, h.unframed = true, true // the body runs to the end of the connection
	}
	h.hdr = header{raw: bytes.Clone(buf[start:])}
	return h, buf, nil
}

// crlf is the usual blank line, shared rather than copied per response.
var crlf = []byte("\r\n")

func parseContentLength(v []byte) (int64, error) {
	// "5, 5" is the same length said twice; anything else is malformed.
	first, rest, _ := bytes.Cut(v, []byte(","))
	first = bytes.TrimSpace(first)
	n, err := strconv.ParseInt(string(first), 10, 64)
	if err != nil || n < 0 || len(first) == 0 || first[0] == '+' {
		return 0, protocolErrorf("malformed Content-Length %q", truncate(v))
	}
	for len(rest) > 0 {
		var next []byte
		next, rest, _ = bytes.Cut(rest, []byte(","))
		if string(bytes.TrimSpace(next)) != string(first) {
			return 0, protocolErrorf("conflicting Content-Length %q", truncate(v))
		}
	}
	return n, nil
}

func hasToken(list []byte, token string) bool {
	for part := range bytes.SplitSeq(list, []byte(",")) {
		part = bytes.TrimSpace(part)
		if asciiEqualFold(part, token) {
			return true
		}
	}
	return false
}

// truncate keeps messages about hostile input short.
func truncate(b []byte) string {
	const max = 100
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// fixedBody reads a body of known length.
type fixedBody struct {
	br     *bufio.Reader
	remain int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	if err == io.EOF && b.remain > 0 {
		return n, io.ErrUnexpectedEOF
	}
	if b.remain == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// closeBody reads a body that runs to the end of the connection.
type closeBody struct{ br *bufio.Reader }

func (b closeBody) Read(p []byte) (int, error) { return b.br.Read(p) }

// chunkedBody decodes the chunked transfer coding (RFC 9112 7.1),
// skipping extensions and trailers, with bounded line lengths.
type chunkedBody struct {
	br      *bufio.Reader
	tap     Tap   // when set, given the framed bytes as read
	remain  int64 // of the current chunk
	started bool
	done    bool
	err     error
}

// errBadChunked marks a body whose chunked framing is broken.
var errBadChunked = errors.New("invalid chunked encoding")

const maxChunkLine = 4096

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for b.remain == 0 {
		if b.done {
			return 0, io.EOF
		}
		if b.started {
			// The CRLF after a chunk's data.
			if err := b.expectCRLF(); err != nil {
				b.err = err
				return 0, err
			}
		}
		b.started = true
		size, err := b.readSize()
		if err != nil {
			b.err = err
			return 0, err
		}
		if size == 0 {
			if err := b.skipTrailers(); err != nil {
				b.err = err
				return 0, err
			}
			b.done = true
			return 0, io.EOF
		}
		b.remain = size
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	if b.tap != nil && n > 0 {
		b.tap.Framed(p[:n])
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *chunkedBody) line() ([]byte, error) {
	line, err := readLine(b.br, nil, maxChunkLine)
	if b.tap != nil && len(line) > 0 {
		b.tap.Framed(line)
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%w: chunk line longer than %d bytes", errBadChunked, maxChunkLine)
	}
	if errors.Is(err, io.EOF) {
		return nil, io.ErrUnexpectedEOF
	}
	return line, err
}

func (b *chunkedBody) expectCRLF() error {
	line, err := b.line()
	if err != nil {
		return err
	}
	if len(bytes.TrimRight(line, "\r\n")) != 0 {
		return fmt.Errorf("%w: no line end after a chunk", errBadChunked)
	}
	return nil
}

func (b *chunkedBody) readSize() (int64, error) {
	line, err := b.line()
	if err != nil {
		return 0, err
	}
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions carry nothing trawl uses
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 16 {
		return 0, fmt.Errorf("%w: bad chunk size %q", errBadChunked, truncate(line))
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w: bad chunk size %q", errBadChunked, truncate(line))
		}
		n = n<<4 | int64(d)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: chunk size overflows", errBadChunked)
	}
	return n, nil
}

func (b *chunkedBody) skipTrailers() error {
	for total := 0; ; {
		line, err := b.line()
		if err != nil {
			return err
		}
		total += len(line)
		if total > maxChunkLine*16 {
			return fmt.Errorf("%w: trailers too long", errBadChunked)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}
