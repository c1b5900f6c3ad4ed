package sink

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/trawl-dev/trawl/internal/atomicfile"
	"github.com/trawl-dev/trawl/internal/redact"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/stats"
)

// ErrInputChanged reports that the input list no longer matches the
// records of the output being resumed.
var ErrInputChanged = errors.New("the input list has changed since the output was written")

// maxResumeIndex bounds the indexes accepted from an output being resumed;
// larger ones mean a corrupt file rather than a real list.
const maxResumeIndex = 1 << 30

// Resume is what an earlier, interrupted run left done. It holds two bytes
// per input line up to the highest index done (20 MB for ten million
// lines): a short hash of the URL of every record kept, so that a changed
// input list is noticed.
type Resume struct {
	hashes []uint16 // by index: 0 = not done, else the URL's hash (never 0)
	// Kept is the number of records kept as done.
	Kept int64
	// Retry is the number of failed records dropped to be fetched again.
	Retry int64
	// Duplicates is the number of records dropped because an earlier
	// record of the file already covered their index.
	Duplicates int64
	// KeptKinds counts the kept records that failed (permanently), by
	// kind, and KeptClasses all kept records by HTTP status class.
	KeptKinds   map[record.Kind]int64
	KeptClasses map[string]int64
	// KeptNotModified counts the kept records that were 304s to --since.
	KeptNotModified int64
	// Torn reports that an incomplete last line was dropped.
	Torn bool
	// WARCFile and WARCOffset are the furthest WARC record a kept record
	// points at (--warc): what a resumed run's WARC keeps ends there.
	WARCFile   string
	WARCOffset int64
	pending    int64 // kept records whose input line has not been seen yet
}

// ResumeOptions chooses which earlier records count as done.
type ResumeOptions struct {
	// RetryFailed fetches every failed URL again, not only those that
	// failed for reasons that may pass (timeouts, 5xx, connection errors).
	RetryFailed bool
}

// LoadResume reads the JSON Lines output of an earlier run at path and
// repairs it for appending: a torn last line (as a killed process leaves)
// is cut off, and records to be fetched again are removed, so that after
// the resumed run every URL has exactly one record. A missing file means
// nothing is done yet.
func LoadResume(path string, opts ResumeOptions) (*Resume, error) {
	res := &Resume{KeptKinds: map[record.Kind]int64{}, KeptClasses: map[string]int64{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot resume: %w", err)
	}
	defer f.Close()

	var keep [][2]int64 // byte ranges of lines to keep
	dropped := false
	rd := NewReader(f, path)
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrNotRecord) {
			return nil, fmt.Errorf("cannot resume from %w; was the file written by trawl with -f jsonl?", err)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot resume: %w", err)
		}
		i := e.Index
		if i < 0 || i >= maxResumeIndex {
			return nil, fmt.Errorf("cannot resume from %s: line %d has index %d, which no input list has", path, e.Line, i)
		}
		switch {
		case i < int64(len(res.hashes)) && res.hashes[i] != 0:
			res.Duplicates++
			dropped = true
		case e.Kind != record.KindNone && (opts.RetryFailed || !record.Permanent(e.Kind, e.Status)):
			res.Retry++
			dropped = true
		default:
			res.mark(i, e.Identity())
			if e.Kind != record.KindNone {
				res.KeptKinds[e.Kind]++
			}
			res.KeptClasses[stats.StatusClass(e.Status)]++
			if e.NotModified {
				res.KeptNotModified++
			}
			keep = append(keep, [2]int64{e.Offset, e.Offset + int64(len(e.Raw))})
			// Names sort in the order the files were written.
			if e.WARCFile != "" && (e.WARCFile > res.WARCFile || e.WARCFile == res.WARCFile && e.WARCOffset > res.WARCOffset) {
				res.WARCFile, res.WARCOffset = e.WARCFile, e.WARCOffset
			}
		}
	}
	res.Torn = rd.Torn()
	if dropped {
		if err := rewrite(f, path, keep); err != nil {
			return nil, err
		}
	} else if res.Torn {
		if err := cut(path, rd.Good()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// isRowHash reports whether an identity is a structured row's hash (16 hex
// digits, which no URL is) rather than a URL.
func isRowHash(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func urlHash(u string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(u))
	return uint16(h.Sum32()) | 1
}

func (res *Resume) mark(i int64, u string) {
	if i >= int64(len(res.hashes)) {
		grown := make([]uint16, max(i+1, 2*int64(len(res.hashes))))
		copy(grown, res.hashes)
		res.hashes = grown
	}
	res.hashes[i] = urlHash(u)
	res.Kept++
	res.pending++
}

// Done reports whether the input line with this index and URL already has
// its record. It returns ErrInputChanged when the record there is for
// another URL. Each index must be asked about once, in any order.
func (res *Resume) Done(index int64, u string) (bool, error) {
	if index < 0 || index >= int64(len(res.hashes)) || res.hashes[index] == 0 {
		return false, nil
	}
	if _, err := res.Check(index, u); err != nil {
		return false, err
	}
	res.hashes[index] = 0
	res.pending--
	return true, nil
}

// Check reports, without marking anything, whether the input line with
// this index and URL agrees with the record kept for it: ErrInputChanged
// when the record there is for another URL. It returns whether a record
// is kept for the index.
func (res *Resume) Check(index int64, u string) (bool, error) {
	if index < 0 || index >= int64(len(res.hashes)) || res.hashes[index] == 0 {
		return false, nil
	}
	if res.hashes[index] != urlHash(u) {
		if isRowHash(u) {
			return false, fmt.Errorf("%w: the row at index %d is not the one recorded for it", ErrInputChanged, index)
		}
		return false, fmt.Errorf("%w: line %d is now %q, not the URL recorded for it", ErrInputChanged, index, redact.URL(u))
	}
	return true, nil
}

// Earlier returns the kept records' figures, for the whole output's stats.
func (res *Resume) Earlier() stats.Earlier {
	var failed int64
	for _, n := range res.KeptKinds {
		failed += n
	}
	return stats.Earlier{Records: res.Kept, Failed: failed, NotModified: res.KeptNotModified, ByKind: res.KeptKinds, ByClass: res.KeptClasses}
}

// HasRecord reports whether the output keeps a record for this index. It
// must be asked before Done is asked about the index, since Done forgets
// it.
func (res *Resume) HasRecord(index int64) bool {
	return index >= 0 && index < int64(len(res.hashes)) && res.hashes[index] != 0
}

// Unmatched returns how many kept records no input line has asked about;
// once the whole input was read, a non-zero count means the list shrank.
func (res *Resume) Unmatched() int64 { return res.pending }

// rewrite replaces path with only the kept byte ranges of f.
func rewrite(f *os.File, path string, keep [][2]int64) error {
	out, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("cannot resume: %w", err)
	}
	defer out.Abort()
	for _, r := range keep {
		if _, err := io.Copy(out, io.NewSectionReader(f, r[0], r[1]-r[0])); err != nil {
			return fmt.Errorf("cannot resume: rewriting %s: %w", path, err)
		}
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("cannot resume: %w", err)
	}
	return nil
}

// cut truncates path to size and makes that durable.
func cut(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot resume: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("cannot resume: dropping the torn last line of %s: %w", path, err)
	}
	return f.Sync()
}
