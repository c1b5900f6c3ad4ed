package sink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// repair readies the series for a resumed run of the same output. The
// files that output's latest run wrote (known by their warcinfo) hold,
// up to the last record a kept output line points at, what the resumed
// run keeps; everything after it is captures whose lines the killed run
// never wrote (their URLs are fetched again), or a torn last gzip
// member. That tail is cut off, files after it are removed, and the
// resumed run carries on the same run's series. It returns the files
// left.
func (w *WARC) repair(files []seriesFile) ([]seriesFile, error) {
	res := w.opts.Resume
	var lineage []seriesFile
	var removed []string
	var kept []seriesFile
	for _, f := range files {
		path := filepath.Join(w.dir, f.name)
		info, err := readInfo(path)
		switch {
		case errors.Is(err, errEmptyFile):
			// A file created by a run killed before its first write:
			// nothing in it to keep.
			if err := os.Remove(path); err != nil {
				return nil, err
			}
			removed = append(removed, f.name)
			continue
		case err != nil:
			kept = append(kept, f) // not one of ours, or not readable: left alone
			continue
		}
		if info[infoOutputField] != w.outputID {
			kept = append(kept, f)
			continue
		}
		if run := info[infoRunField]; run != w.runID {
			// A later run of this output: the lineage starts again.
			kept = append(kept, lineage...)
			lineage = lineage[:0]
			w.runID = run
		}
		lineage = append(lineage, f)
	}
	// Within the lineage, the file the last kept line points at stays
	// (cut after that record); the files after it go.
	cutAt := -1
	if res.WARCFile != "" {
		for i, f := range lineage {
			if f.name == res.WARCFile {
				cutAt = i
			}
		}
		if cutAt < 0 {
			return nil, fmt.Errorf("the records to keep point at %s, which is not one of the WARC files %s written for %s by its last run",
				res.WARCFile, w.pattern(), w.opts.Output)
		}
	}
	for i, f := range lineage {
		path := filepath.Join(w.dir, f.name)
		switch {
		case i < cutAt:
			kept = append(kept, f)
		case i == cutAt:
			cut, err := cutAfter(path, res.WARCOffset)
			if err != nil {
				return nil, fmt.Errorf("%s at offset %d, where the last record kept points: %w", f.name, res.WARCOffset, err)
			}
			if cut > 0 {
				w.Note = fmt.Sprintf("%s of captures no kept record points at removed from %s", plural(cut, "byte"), f.name)
			}
			kept = append(kept, f)
		default:
			if err := os.Remove(path); err != nil {
				return nil, err
			}
			removed = append(removed, f.name)
		}
	}
	if len(removed) > 0 {
		note := fmt.Sprintf("%s no kept record points at removed (%s)", plural(int64(len(removed)), "WARC file"), strings.Join(removed, ", "))
		if w.Note != "" {
			note = w.Note + "; " + note
		}
		w.Note = note
	}
	if len(removed) > 0 {
		syncDir(w.dir)
	}
	return kept, nil
}

// cutAfter truncates the file at path just after the gzip member that
// starts at off, and returns how many bytes it removed.
func cutAfter(path string, off int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	end, err := memberEnd(f, off)
	if err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() == end {
		return 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, err
	}
	return st.Size() - end, f.Sync()
}

// errEmptyFile marks a WARC file with nothing in it.
var errEmptyFile = errors.New("empty file")

// readInfo reads the fields of a file's first record when it is a
// warcinfo record.
func readInfo(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		return nil, errEmptyFile
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	// A warcinfo record is small; a file starting otherwise is not ours.
	b, err := io.ReadAll(io.LimitReader(zr, 64<<10))
	if err != nil {
		return nil, err
	}
	head, block, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(head, []byte("WARC/")) || !bytes.Contains(head, []byte("\r\nWARC-Type: warcinfo\r\n")) {
		return nil, errors.New("not a file starting with a warcinfo record")
	}
	fields := map[string]string{}
	for line := range bytes.SplitSeq(block, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok {
			fields[string(k)] = string(bytes.TrimSpace(v))
		}
	}
	return fields, nil
}

// syncDir makes removals in dir durable where the file system can sync
// a directory; where it cannot, the removals stand all the same.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
