package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/trawl-dev/trawl/atomicfile"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/redact"
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
	// Torn reports that an incomplete last line was dropped.
	Torn    bool
	pending int64 // kept records whose input line has not been seen yet
}

// ResumeOptions chooses which earlier records count as done.
type ResumeOptions struct {
	// RetryFailed fetches every failed URL again, not only those that
	// failed for reasons that may pass (timeouts, 5xx, connection errors).
	RetryFailed bool
}

// resumeLine is the part of a record that resuming needs.
type resumeLine struct {
	Index     *int64  `json:"index"`
	URL       *string `json:"url"`
	Status    *int    `json:"status"`
	ErrorKind *string `json:"error_kind"`
}

// LoadResume reads the JSON Lines output of an earlier run at path and
// repairs it for appending: a torn last line (no newline, or not a whole
// JSON record, as a killed process leaves) is cut off, and records to be
// fetched again are removed, so that after the resumed run every URL has
// exactly one record. A missing file means nothing is done yet.
func LoadResume(path string, opts ResumeOptions) (*Resume, error) {
	res := &Resume{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot resume: %w", err)
	}
	defer f.Close()

	var keep [][2]int64 // byte ranges of lines to keep
	var offset, goodEnd int64
	dropped := false
	br := bufio.NewReaderSize(f, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		start := offset
		offset += int64(len(line))
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				res.Torn = true // the writer died in the middle of this line
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot resume from %s: %w", path, err)
		}
		var rec resumeLine
		if jerr := json.Unmarshal(bytes.TrimSpace(line), &rec); jerr != nil || rec.Index == nil || rec.URL == nil {
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				res.Torn = true // a last line that is not a record: treat as torn
				break
			}
			return nil, fmt.Errorf("cannot resume from %s: line %d is not a trawl record; was the file written by trawl with -f jsonl?", path, lineNo)
		}
		goodEnd = offset
		i := *rec.Index
		if i < 0 || i >= maxResumeIndex {
			return nil, fmt.Errorf("cannot resume from %s: line %d has index %d, which no input list has", path, lineNo, i)
		}
		switch {
		case i < int64(len(res.hashes)) && res.hashes[i] != 0:
			res.Duplicates++
			dropped = true
		case !done(rec, opts):
			res.Retry++
			dropped = true
		default:
			res.mark(i, *rec.URL)
			keep = append(keep, [2]int64{start, offset})
		}
	}
	if dropped {
		if err := rewrite(f, path, keep); err != nil {
			return nil, err
		}
	} else if res.Torn {
		if err := cut(path, goodEnd); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// done reports whether an earlier record needs no new attempt: successes,
// and failures that would fail the same way again.
func done(rec resumeLine, opts ResumeOptions) bool {
	if rec.ErrorKind == nil {
		return true
	}
	if opts.RetryFailed {
		return false
	}
	switch record.Kind(*rec.ErrorKind) {
	case record.KindInvalidURL, record.KindTLS, record.KindTooManyRedirects, record.KindTransform:
		return true
	case record.KindHTTPStatus:
		if rec.Status == nil {
			return false
		}
		s := *rec.Status
		return s >= 400 && s < 500 && s != 408 && s != 425 && s != 429
	}
	return false // timeouts, connection and DNS errors, 5xx, saves, cancellations
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
	if res.hashes[index] != urlHash(u) {
		return false, fmt.Errorf("%w: line %d is now %q, not the URL recorded for it", ErrInputChanged, index, redact.URL(u))
	}
	res.hashes[index] = 0
	res.pending--
	return true, nil
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
