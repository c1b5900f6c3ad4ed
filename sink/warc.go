package sink

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // WARC digests are SHA-1 by custom; they identify, they do not protect
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/internal/warc"
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
// WARC-Concurrent-To. Records are buffered; Flush, which the records
// output runs before each of its own writes (OutputOptions.BeforeWrite),
// hands them to the file (to the kernel, which a killed process cannot
// undo), so that a line that points at them never reaches its file ahead
// of them.
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
	fw      *flate.Writer
	infoID  string
	infoEnd int64 // where the warcinfo record ends
	// synced is where the file's records end as the last Flush left
	// them: whole URLs' records, handed to the kernel, and everything a
	// line of the output can point at.
	synced int64
	// err is the first failure to write the series. The writer takes
	// nothing after it, and Flush reports it even after Close, so that
	// no line that points at records the file did not take reaches the
	// output.
	err error

	enc      warc.Encoder
	small    []byte // a small record's block
	zbuf     []byte // and its gzip member
	revisits *revisitIndex
	hdr      []byte

	// Note says what repairing the series for a resume did, "" when
	// nothing needed doing.
	Note string
}

// warcGzipLevel is the level of the general encoder, for the parts of
// large records the writer compresses itself (the fetch workers compress
// large bodies at the same level, capture.Spool): the fastest, which
// keeps up with the network and passes incompressible bodies (images,
// already-compressed pages) at close to the speed of a copy.
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
		var id [8]byte
		rand.Read(id[:]) // never fails (crypto/rand)
		w.runID = hex.EncodeToString(id[:])
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
	if w.fw, err = flate.NewWriter(nil, warcGzipLevel); err != nil {
		return nil, err
	}
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
	w.synced = 0
	w.infoID = warc.NewID()
	err := w.writeInfo()
	if err == nil {
		w.infoEnd = w.cw.n
		err = w.flush()
	}
	if err != nil {
		// A file without its warcinfo is no file of the series.
		err = w.fail(w.failed(err))
		f.Close()
		os.Remove(filepath.Join(w.dir, name))
		w.f = nil
	}
	return err
}

// writeInfo writes the file's warcinfo record: the program, the format,
// the run's settings, and the output and run it belongs to.
func (w *WARC) writeInfo() error {
	var b bytes.Buffer
	software := w.opts.Software
	if software == "" {
		software = "trawl"
	}
	fmt.Fprintf(&b, "software: %s\r\n", warc.OneLine(software))
	b.WriteString("format: WARC File Format 1.1\r\n")
	b.WriteString("conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n")
	b.WriteString("robots: ignore\r\n")
	if w.outputID != "" {
		fmt.Fprintf(&b, "%s: %s\r\n", infoOutputField, w.outputID)
	}
	fmt.Fprintf(&b, "%s: %s\r\n", infoRunField, w.runID)
	for _, line := range w.opts.Info {
		b.WriteString(warc.OneLine(line))
		b.WriteString("\r\n")
	}
	h := warc.NewHeader(w.hdr, "warcinfo", w.infoID, time.Now())
	h.Add("WARC-Filename", w.name)
	h.Add("Content-Type", "application/warc-fields")
	h.Add("WARC-Block-Digest", warc.DigestOf(b.Bytes()))
	h.Add("Content-Length", strconv.Itoa(b.Len()))
	return w.member(h.Bytes(), b.Bytes(), nil)
}

// The warcinfo fields that tie a file to the output and the run that
// wrote it.
const (
	infoOutputField = "trawl-output-id"
	infoRunField    = "trawl-run-id"
)

// Write archives r's capture, unless there is none, it was archived
// already (a duplicate shares its original's) or r was cancelled, and
// notes in it where the last response record went. It releases the
// capture's spooled bodies.
func (w *WARC) Write(r *record.Record) error {
	c := r.Capture
	if c == nil || c.Written {
		return nil
	}
	if w.err != nil {
		return w.err
	}
	c.Written = true
	defer c.Release()
	// A URL cut short by trawl's own stop (SIGINT, --deadline) is fetched
	// again by --resume: its half capture would only archive it twice.
	if len(c.Exchanges) == 0 || r.ErrKind == record.KindCanceled {
		return nil
	}
	// A body that could not be spooled (the disk is full) would make a
	// record with bytes missing: none of the URL's records is written.
	for _, ex := range c.Exchanges {
		if err := ex.Err(); err != nil {
			return fmt.Errorf("cannot archive %s: %w", ex.URI, err)
		}
	}
	// A file holds at least one URL's records, whatever the size.
	if w.opts.MaxSize > 0 && w.cw.n >= w.opts.MaxSize && w.cw.n > w.infoEnd {
		if err := w.rotate(); err != nil {
			return w.fail(err)
		}
	}
	var last int64
	for i, ex := range c.Exchanges {
		// A 304 to --since's conditional request says the capture of an
		// earlier run still stands.
		notModified := r.NotModified && i == len(c.Exchanges)-1
		off, err := w.writeExchange(ex, notModified)
		if err != nil {
			return w.fail(w.failed(err))
		}
		last = off
	}
	c.File, c.Offset = w.name, last
	return nil
}

// Flush hands the buffered records to the file; after Close it does
// nothing, unless writing failed: then it reports that failure, before
// Close and after it.
func (w *WARC) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return nil
	}
	return w.flush()
}

// fail makes err the writer's failure, once and for all: what is still
// buffered is dropped, and the file is cut back to where the last Flush
// left it, so that it holds whole records only, as many as the lines
// written can point at. It returns the failure.
func (w *WARC) fail(err error) error {
	if w.err != nil {
		return w.err
	}
	w.err = err
	if w.f != nil {
		w.bw.Reset(io.Discard)
		// By name: a descriptor that writes fail on may refuse it too.
		os.Truncate(filepath.Join(w.dir, w.name), w.synced)
	}
	return err
}

// failed describes a failure to write the current file.
func (w *WARC) failed(err error) error {
	return fmt.Errorf("cannot write WARC file %s: %w", filepath.Join(w.dir, w.name), err)
}

// writeExchange writes the request and response (or revisit) records of
// one exchange and returns the offset of the second. A small exchange's
// records were compressed by the fetch worker already (Prepare): they are
// copied. A large one's are compressed here, its body streamed from its
// spool.
//
// notModified makes the response a revisit record of the
// server-not-modified profile, referring to the same URL (the earlier
// capture's date and file are the earlier run's).
func (w *WARC) writeExchange(ex *capture.Exchange, notModified bool) (int64, error) {
	if !ex.Done() {
		ex.Finish(capture.TruncUnspecified)
	}
	x := ex.WARC()
	var orig warc.Original
	dedupe := w.revisits != nil && ex.Truncated == "" && ex.PayloadLen > 0 && !notModified
	revisit := false
	profile := warc.RevisitProfile
	if dedupe {
		orig, revisit = w.revisits.get(ex.PayloadDigest)
	}
	if notModified {
		revisit, profile, orig = true, warc.NotModifiedProfile, warc.Original{URI: warc.URI(x.URI)}
	}
	if ex.Prepared() {
		if revisit {
			if _, err := w.cw.Write(ex.Records[:ex.ReqLen]); err != nil {
				return 0, err
			}
		} else {
			off := w.cw.n + int64(ex.ReqLen)
			if _, err := w.cw.Write(ex.Records); err != nil {
				return 0, err
			}
			w.remember(dedupe, ex, x)
			return off, nil
		}
	} else if err := w.member(x.RequestHeader(w.hdr), ex.Request, nil); err != nil {
		return 0, err
	}
	off := w.cw.n
	if revisit {
		return off, w.member(x.RevisitHeader(w.hdr, ex.Head, profile, orig), ex.Head, nil)
	}
	if err := w.member(x.ResponseHeader(w.hdr), ex.Head, &ex.Body); err != nil {
		return 0, err
	}
	w.remember(dedupe, ex, x)
	return off, nil
}

// remember notes a response's payload as archived, for revisits.
func (w *WARC) remember(dedupe bool, ex *capture.Exchange, x warc.Exchange) {
	if dedupe {
		w.revisits.add(ex.PayloadDigest, warc.Original{ID: x.RespID, URI: warc.URI(x.URI), Date: warc.Date(x.Date)})
	}
}

// member writes one record as one gzip member: its header block (with
// the blank line after it), the block (head, then the spooled body when
// there is one), and the two line ends that close a record.
func (w *WARC) member(header, head []byte, body *capture.Spool) error {
	w.hdr = header[:0] // keep the grown buffer
	if body != nil {
		if f, n, crc, ok := body.Segment(); ok {
			return w.segmentMember(header, head, f, n, crc, body.Len())
		}
	}
	if n := int64(len(header)+len(head)) + int64(len(warc.End)); body == nil || n+body.Len() <= warc.SmallRecord {
		var err error
		block := w.small[:0]
		if body != nil {
			if block, err = body.AppendTo(block); err != nil {
				return err
			}
		}
		w.small = block
		w.zbuf = w.enc.AppendMember(w.zbuf[:0], header, head, block)
		_, err = w.cw.Write(w.zbuf)
		return err
	}
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
	if _, err := w.gz.Write([]byte(warc.End)); err != nil {
		return err
	}
	return w.gz.Close()
}

// segmentMember writes a record whose body the fetch worker compressed
// already, into a DEFLATE stream of n bytes in f ending the record (the
// body and warc.End; crc is their CRC-32). The member's stream is this
// one's compressed header block and head, ended on a byte by a sync flush
// (so that the worker's stream can follow, its matches never reaching
// back into them), then the worker's, copied by the kernel; the trailer's
// CRC is combined from the parts'.
func (w *WARC) segmentMember(header, head []byte, f *os.File, n int64, crc uint32, bodyLen int64) error {
	if _, err := w.cw.Write(gzipHeader[:]); err != nil {
		return err
	}
	w.fw.Reset(&w.cw)
	if _, err := w.fw.Write(header); err != nil {
		return err
	}
	if _, err := w.fw.Write(head); err != nil {
		return err
	}
	if err := w.fw.Flush(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// On Linux, copy_file_range: the bytes do not pass through trawl.
	m, err := w.f.ReadFrom(&io.LimitedReader{R: f, N: n})
	w.cw.n += m
	if err == nil && m != n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("copying a spooled body: %w", err)
	}
	sum := crc32.Update(crc32.ChecksumIEEE(header), crc32.IEEETable, head)
	sum = warc.CombineCRC(sum, crc, bodyLen+int64(len(warc.End)))
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], sum)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(int64(len(header)+len(head))+bodyLen+int64(len(warc.End))))
	_, err = w.cw.Write(trailer[:])
	return err
}

// gzipHeader starts a gzip member: deflate, no flags, no time, OS unknown.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// flush hands what is buffered to the file.
func (w *WARC) flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(w.failed(err))
	}
	w.synced = w.cw.n
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
		return w.err
	}
	err := w.flush()
	if err == nil {
		if serr := w.f.Sync(); serr != nil {
			err = w.fail(w.failed(serr))
		}
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = w.fail(w.failed(cerr))
	}
	w.f = nil
	return err
}

// Close flushes and syncs the current file, so that the WARC of a
// finished run survives a crash right after it, and closes it.
func (w *WARC) Close() error { return w.closeFile() }

// revisitBudget bounds the memory of the payload digests remembered for
// revisit records; past it the oldest are forgotten, and a payload seen
// again after that is archived whole once more.
const revisitBudget = 64 << 20

// revisitIndex remembers the first capture of each payload archived.
type revisitIndex struct {
	m             map[[sha1.Size]byte]warc.Original
	order         [][sha1.Size]byte // in insertion order, for eviction
	bytes, budget int64
}

func newRevisitIndex(budget int64) *revisitIndex {
	return &revisitIndex{m: map[[sha1.Size]byte]warc.Original{}, budget: budget}
}

func (ri *revisitIndex) get(d [sha1.Size]byte) (warc.Original, bool) {
	o, ok := ri.m[d]
	return o, ok
}

func (ri *revisitIndex) add(d [sha1.Size]byte, o warc.Original) {
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
func originSize(o warc.Original) int64 {
	return int64(2*sha1.Size + len(o.ID) + len(o.URI) + len(o.Date) + 96)
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
