package sink

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // WARC digests are SHA-1 by custom; they identify, they do not protect
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/record"
)

// WARCOptions configures a WARC writer.
type WARCOptions struct {
	// Path is a directory (an existing one, or a path ending in a
	// separator), whose files are then named trawl-SERIAL-TIME.warc.gz,
	// or a prefix for the files' names (crawl names crawl-SERIAL-TIME.warc.gz;
	// a .warc.gz or .warc ending is dropped from it).
	Path string
	// MaxSize starts a new file once the current one has reached this
	// many bytes (a URL's records stay in one file, so a file may exceed
	// it by one URL's); 0 means one file for the run.
	MaxSize int64
	// Software names the program in each file's warcinfo record, such as
	// "trawl/1.2.0"; Info adds lines of "name: value" (the run's settings).
	Software string
	Info     []string
	// Revisits writes a response whose payload is identical to one
	// archived earlier in the run as a revisit record pointing at it
	// (--dedupe).
	Revisits bool
	// Output is the records file the run writes (-o). Each WARC file
	// names it in its warcinfo (as a hash of its path), so that resuming
	// that output, and only that output, repairs the WARC files its
	// earlier runs left.
	Output string
	// Resume, when set, is the output being resumed: the WARC data its
	// kept records do not point at (captures whose records a killed run
	// never wrote, and a torn last gzip member) is removed first, so that
	// no URL is archived twice.
	Resume *Resume
}

// WARC archives captured exchanges as WARC/1.1 records, one gzip member
// each, in files that rotate at a size. It is not safe for concurrent
// use: the sink's one goroutine owns it, which is what keeps each record
// whole and the records in the order of the output's lines.
//
// Each file starts with a warcinfo record. For every exchange of a URL it
// writes a request record, then a response record (or, with Revisits, a
// revisit record for a payload already archived), linked both ways by
// WARC-Concurrent-To. Write returns only once a URL's records are in the
// file (in the kernel's hands, which a killed process cannot undo), so
// that the output line that points at them is never ahead of them.
type WARC struct {
	opts     WARCOptions
	dir      string
	prefix   string
	outputID string
	runID    string

	f       *os.File
	name    string
	serial  int
	bw      *bufio.Writer
	cw      countingWriter // above bw: the offset in the file
	gz      *gzip.Writer
	infoID  string
	infoEnd int64 // where the warcinfo record ends

	revisits *revisitIndex
	ids      []byte // random bytes for record IDs, used up 16 at a time
	hdr      []byte
	sum      hashBuf

	// Note says what repairing the series for a resume did, "" when
	// nothing needed doing.
	Note string
}

// warcGzipLevel trades size for speed: BestSpeed compresses HTML about
// as well as the default does, at a fraction of the cost, and passes
// incompressible bodies (images, already-compressed pages) at memory speed.
const warcGzipLevel = gzip.BestSpeed

// OpenWARC prepares the series opts.Path names, repairs it when resuming,
// and starts its first file, so that a path that cannot be written costs
// no request.
func OpenWARC(opts WARCOptions) (*WARC, error) {
	w := &WARC{opts: opts, revisits: nil}
	w.dir, w.prefix = splitWARCPath(opts.Path)
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the WARC directory: %w", err)
	}
	if id := outputIdentity(opts.Output); id != "" {
		sum := sha256.Sum256([]byte(id))
		w.outputID = hex.EncodeToString(sum[:8])
	}
	files, err := w.series()
	if err != nil {
		return nil, err
	}
	if opts.Resume != nil && w.outputID != "" {
		if files, err = w.repair(files); err != nil {
			return nil, fmt.Errorf("cannot resume the WARC files %s: %w", w.pattern(), err)
		}
	}
	if w.runID == "" {
		w.runID = hex.EncodeToString(w.random(8))
	}
	for _, f := range files {
		w.serial = max(w.serial, f.serial+1)
	}
	if opts.Revisits {
		w.revisits = newRevisitIndex(revisitBudget)
	}
	gz, err := gzip.NewWriterLevel(nil, warcGzipLevel)
	if err != nil {
		return nil, err
	}
	w.gz = gz
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// Dir returns the directory the files go in.
func (w *WARC) Dir() string { return w.dir }

// pattern describes the series' names, for messages.
func (w *WARC) pattern() string {
	return filepath.Join(w.dir, w.prefix+"-*.warc.gz")
}

// splitWARCPath turns --warc PATH into a directory and a name prefix.
func splitWARCPath(p string) (dir, prefix string) {
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator)) {
		return filepath.Clean(p), "trawl"
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return p, "trawl"
	}
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	for _, ext := range []string{".warc.gz", ".warc"} {
		base = strings.TrimSuffix(base, ext)
	}
	return filepath.Clean(dir), base
}

// warcName is the name of a file of the series: the serial first, so
// that names sort in the order the files were written whatever the
// clock does, then when it was started, in UTC.
func (w *WARC) warcName(serial int, t time.Time) string {
	return fmt.Sprintf("%s-%05d-%s.warc.gz", w.prefix, serial, t.UTC().Format("20060102150405"))
}

// seriesFile is a file of the series found in the directory.
type seriesFile struct {
	name   string
	serial int
}

// series lists the directory's files of this series, in serial order.
func (w *WARC) series() ([]seriesFile, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list the WARC directory: %w", err)
	}
	var out []seriesFile
	for _, e := range entries {
		if serial, ok := w.parseName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, seriesFile{e.Name(), serial})
		}
	}
	// ReadDir sorts by name, and the fixed-width serial leads the name.
	return out, nil
}

// parseName returns the serial of a name of the series.
func (w *WARC) parseName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, w.prefix+"-")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".warc.gz")
	if !ok {
		return 0, false
	}
	num, stamp, ok := strings.Cut(rest, "-")
	if !ok || len(num) < 5 || len(stamp) != 14 || !allDigits(stamp) || !allDigits(num) {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// open starts the next file of the series with its warcinfo record,
// written in one piece so that a file is never seen without it.
func (w *WARC) open() error {
	var f *os.File
	var name string
	for {
		name = w.warcName(w.serial, time.Now())
		var err error
		f, err = os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cannot create WARC file: %w", err)
		}
		w.serial++ // another process of the series took it
	}
	w.f, w.name = f, name
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, 256<<10)
	} else {
		w.bw.Reset(f)
	}
	w.cw = countingWriter{w: w.bw}
	w.infoID = w.newID()
	if err := w.writeInfo(); err != nil {
		return err
	}
	w.infoEnd = w.cw.n
	return w.flush()
}

// writeInfo writes the file's warcinfo record: the program, the format,
// the run's settings, and the output and run it belongs to.
func (w *WARC) writeInfo() error {
	var b bytes.Buffer
	software := w.opts.Software
	if software == "" {
		software = "trawl"
	}
	fmt.Fprintf(&b, "software: %s\r\n", oneLine(software))
	b.WriteString("format: WARC File Format 1.1\r\n")
	b.WriteString("conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n")
	b.WriteString("robots: ignore\r\n")
	if w.outputID != "" {
		fmt.Fprintf(&b, "%s: %s\r\n", infoOutputField, w.outputID)
	}
	fmt.Fprintf(&b, "%s: %s\r\n", infoRunField, w.runID)
	for _, line := range w.opts.Info {
		b.WriteString(oneLine(line))
		b.WriteString("\r\n")
	}
	h := w.header("warcinfo", w.infoID, time.Now())
	h = field(h, "WARC-Filename", w.name)
	h = field(h, "Content-Type", "application/warc-fields")
	h = field(h, "WARC-Block-Digest", w.sum.of(b.Bytes()))
	h = field(h, "Content-Length", strconv.Itoa(b.Len()))
	return w.member(h, b.Bytes(), nil)
}

// The warcinfo fields that tie a file to the output and the run that
// wrote it.
const (
	infoOutputField = "trawl-output-id"
	infoRunField    = "trawl-run-id"
)

// Write archives r's capture, unless there is none or it was archived
// already (a duplicate shares its original's), and notes in it where the
// last response record went. It releases the capture's spooled bodies.
func (w *WARC) Write(r *record.Record) error {
	c := r.Capture
	if c == nil || c.Written {
		return nil
	}
	c.Written = true
	defer c.Release()
	if len(c.Exchanges) == 0 {
		return nil
	}
	// A file holds at least one URL's records, whatever the size.
	if w.opts.MaxSize > 0 && w.cw.n >= w.opts.MaxSize && w.cw.n > w.infoEnd {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	var last int64
	for _, ex := range c.Exchanges {
		off, err := w.writeExchange(ex)
		if err != nil {
			return w.failed(err)
		}
		last = off
	}
	if err := w.flush(); err != nil {
		return err
	}
	c.File, c.Offset = w.name, last
	return nil
}

// failed describes a failure to write the current file.
func (w *WARC) failed(err error) error {
	return fmt.Errorf("cannot write WARC file %s: %w", filepath.Join(w.dir, w.name), err)
}

// writeExchange writes the request and response (or revisit) records of
// one exchange and returns the offset of the second.
func (w *WARC) writeExchange(ex *capture.Exchange) (int64, error) {
	if !ex.Done() {
		ex.Finish(capture.TruncUnspecified)
	}
	reqID, respID := w.newID(), w.newID()
	h := w.header("request", reqID, ex.Date)
	h = w.exchangeFields(h, ex, respID)
	h = field(h, "WARC-Block-Digest", w.sum.of(ex.Request))
	h = field(h, "Content-Type", "application/http;msgtype=request")
	h = field(h, "Content-Length", strconv.Itoa(len(ex.Request)))
	if err := w.member(h, ex.Request, nil); err != nil {
		return 0, err
	}

	off := w.cw.n
	payload := digest(ex.PayloadDigest[:])
	dedupe := w.revisits != nil && ex.Truncated == "" && ex.PayloadLen > 0
	if dedupe {
		if orig, ok := w.revisits.get(ex.PayloadDigest); ok {
			h = w.header("revisit", respID, ex.Date)
			h = w.exchangeFields(h, ex, reqID)
			h = field(h, "WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest")
			h = field(h, "WARC-Refers-To", orig.id)
			h = field(h, "WARC-Refers-To-Target-URI", orig.uri)
			h = field(h, "WARC-Refers-To-Date", orig.date)
			h = field(h, "WARC-Payload-Digest", payload)
			h = field(h, "WARC-Block-Digest", w.sum.of(ex.Head))
			h = field(h, "Content-Type", "application/http;msgtype=response")
			h = field(h, "Content-Length", strconv.Itoa(len(ex.Head)))
			return off, w.member(h, ex.Head, nil)
		}
	}
	h = w.header("response", respID, ex.Date)
	h = w.exchangeFields(h, ex, reqID)
	h = field(h, "WARC-Block-Digest", digest(ex.BlockDigest[:]))
	h = field(h, "WARC-Payload-Digest", payload)
	if ex.Truncated != "" {
		h = field(h, "WARC-Truncated", ex.Truncated)
	}
	h = field(h, "Content-Type", "application/http;msgtype=response")
	h = field(h, "Content-Length", strconv.FormatInt(int64(len(ex.Head))+ex.Body.Len(), 10))
	if err := w.member(h, ex.Head, &ex.Body); err != nil {
		return 0, err
	}
	if dedupe {
		w.revisits.add(ex.PayloadDigest, origin{id: respID, uri: uriValue(ex.URI), date: warcDate(ex.Date)})
	}
	return off, nil
}

// header starts a record's header block.
func (w *WARC) header(typ, id string, date time.Time) []byte {
	h := append(w.hdr[:0], "WARC/1.1\r\n"...)
	h = field(h, "WARC-Type", typ)
	h = field(h, "WARC-Record-ID", id)
	h = field(h, "WARC-Date", warcDate(date))
	return h
}

// exchangeFields are the fields the records of an exchange share.
func (w *WARC) exchangeFields(h []byte, ex *capture.Exchange, concurrent string) []byte {
	h = field(h, "WARC-Target-URI", uriValue(ex.URI))
	if ex.IP != "" {
		h = field(h, "WARC-IP-Address", ex.IP)
	}
	h = field(h, "WARC-Concurrent-To", concurrent)
	h = field(h, "WARC-Warcinfo-ID", w.infoID)
	return h
}

// member writes one record as one gzip member: its header block, the
// block (head, then the spooled body when there is one), and the two
// line ends that close a record.
func (w *WARC) member(header, head []byte, body *capture.Spool) error {
	w.hdr = header[:0] // keep the grown buffer
	header = append(header, "\r\n"...)
	w.gz.Reset(&w.cw)
	if _, err := w.gz.Write(header); err != nil {
		return err
	}
	if _, err := w.gz.Write(head); err != nil {
		return err
	}
	if body != nil {
		if _, err := body.WriteTo(w.gz); err != nil {
			return err
		}
	}
	if _, err := w.gz.Write([]byte("\r\n\r\n")); err != nil {
		return err
	}
	return w.gz.Close()
}

// flush hands what is buffered to the file.
func (w *WARC) flush() error {
	if err := w.bw.Flush(); err != nil {
		return w.failed(err)
	}
	return nil
}

// rotate closes the current file and starts the next.
func (w *WARC) rotate() error {
	if err := w.closeFile(); err != nil {
		return err
	}
	w.serial++
	return w.open()
}

// closeFile flushes, syncs and closes the current file.
func (w *WARC) closeFile() error {
	if w.f == nil {
		return nil
	}
	err := w.flush()
	if serr := w.f.Sync(); serr != nil && err == nil {
		err = w.failed(serr)
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = w.failed(cerr)
	}
	w.f = nil
	return err
}

// Close flushes and syncs the current file, so that the WARC of a
// finished run survives a crash right after it, and closes it.
func (w *WARC) Close() error { return w.closeFile() }

// newID returns a new record ID: a random (version 4) UUID URN.
func (w *WARC) newID() string {
	b := w.random(16)
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

// random returns n random bytes, drawn from the system in batches: a
// record ID is needed twice per URL.
func (w *WARC) random(n int) []byte {
	if len(w.ids) < n {
		w.ids = make([]byte, 4096)
		rand.Read(w.ids) // never fails (crypto/rand)
	}
	b := w.ids[:n:n]
	w.ids = w.ids[n:]
	return b
}

// warcDate writes a time as WARC-Date does: UTC, to the microsecond
// (WARC/1.1 allows fractions of a second).
func warcDate(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// digest writes a SHA-1 the way WARC records customarily carry it:
// "sha1:" and 32 characters of base32.
func digest(sum []byte) string {
	return "sha1:" + base32.StdEncoding.EncodeToString(sum)
}

// hashBuf hashes small blocks (requests, heads, warcinfo).
type hashBuf struct{}

func (hashBuf) of(b []byte) string {
	sum := sha1.Sum(b) //nolint:gosec // see the import
	return digest(sum[:])
}

// field appends one "Name: value" line.
func field(h []byte, name, value string) []byte {
	h = append(h, name...)
	h = append(h, ": "...)
	h = append(h, oneLine(value)...)
	return append(h, "\r\n"...)
}

// oneLine keeps a value on its line: control characters, which a hostile
// URL or setting could use to forge fields, become spaces.
func oneLine(v string) string {
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

// uriValue writes a URL for WARC-Target-URI, which must not contain
// spaces or control characters: those are percent-encoded.
func uriValue(u string) string {
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

// revisitBudget bounds the memory of the payload digests remembered for
// revisit records; past it the oldest are forgotten, and a payload seen
// again after that is archived whole once more.
const revisitBudget = 64 << 20

// origin is the first capture of a payload.
type origin struct{ id, uri, date string }

// revisitIndex remembers the first capture of each payload archived.
type revisitIndex struct {
	m             map[[sha1.Size]byte]origin
	order         [][sha1.Size]byte // in insertion order, for eviction
	bytes, budget int64
}

func newRevisitIndex(budget int64) *revisitIndex {
	return &revisitIndex{m: map[[sha1.Size]byte]origin{}, budget: budget}
}

func (ri *revisitIndex) get(d [sha1.Size]byte) (origin, bool) {
	o, ok := ri.m[d]
	return o, ok
}

func (ri *revisitIndex) add(d [sha1.Size]byte, o origin) {
	if _, ok := ri.m[d]; ok {
		return
	}
	ri.m[d] = o
	ri.order = append(ri.order, d)
	ri.bytes += originSize(o)
	for ri.bytes > ri.budget && len(ri.order) > 0 {
		old := ri.order[0]
		ri.order = ri.order[1:]
		ri.bytes -= originSize(ri.m[old])
		delete(ri.m, old)
	}
}

// originSize estimates an entry's memory: the key twice (map and order),
// the strings and the map's overhead.
func originSize(o origin) int64 {
	return int64(2*sha1.Size + len(o.id) + len(o.uri) + len(o.date) + 96)
}

// errNoMember reports an offset that does not start a gzip member.
var errNoMember = errors.New("no complete WARC record there")

// memberEnd returns the offset just past the gzip member starting at off
// in f, after reading it whole: it must hold a WARC record.
func memberEnd(f *os.File, off int64) (int64, error) {
	cr := &countingByteReader{br: bufio.NewReaderSize(io.NewSectionReader(f, off, 1<<62), 64<<10)}
	zr, err := gzip.NewReader(cr)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNoMember, err)
	}
	zr.Multistream(false)
	var start [5]byte
	if _, err := io.ReadFull(zr, start[:]); err != nil || string(start[:]) != "WARC/" {
		return 0, errNoMember
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return 0, fmt.Errorf("%w: %w", errNoMember, err)
	}
	return off + cr.n, nil
}

// countingByteReader counts what a gzip reader consumes; as an
// io.ByteReader it is read directly, never through a buffer that would
// read past the member.
type countingByteReader struct {
	br *bufio.Reader
	n  int64
}

func (c *countingByteReader) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
