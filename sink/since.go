package sink

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/trawl-dev/trawl/record"
)

// Since reads an earlier run's JSON Lines output (--since) for a
// conditional re-fetch: as a stream ordered by index, joined to the input
// as it is read, which also goes by index. The file is read as the
// ascending runs it is made of, as Merge reads it (one run per segment in
// input order; a file in completion order is sorted in bounded chunks
// first), so memory stays bounded whatever its size. Input lines are
// matched to records the way --resume matches them, by index and
// Identity; a line whose record is for another URL or row (the list
// changed) simply has no previous record.
//
// A Since is used by one goroutine, asked about ascending indexes.
type Since struct {
	path  string
	runs  []*run
	h     runHeap
	opts  SinceOptions
	dec   bytes.Reader
	torn  int
	empty bool
	// Matched counts the input lines given a previous record.
	Matched int64
}

// SinceOptions say what a previous record must have for this run to use
// it: a 304 carries over everything the record would otherwise compute
// from the body, so a record lacking any of it cannot stand in.
type SinceOptions struct {
	// Files: the run saves bodies, so the previous record must name its
	// file, with Digest ("" for none) the name of its digest field.
	Files  bool
	Digest string
	// Columns are the run's transform outputs, each of which the previous
	// record must have (null counts).
	Columns []string
	// TmpDir holds the sorted chunks of a file in completion order.
	TmpDir string
}

// OpenSince opens the earlier output at path. A file that does not exist
// is no error: there is nothing to compare with yet (a first run), and
// every URL is fetched whole. A file that is not trawl's JSON Lines is.
func OpenSince(path string, opts SinceOptions) (*Since, error) {
	s := &Since{path: path, opts: opts}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		s.empty = true
		return s, nil
	}
	runs, torn, err := openRuns(path, opts.TmpDir)
	s.runs, s.torn = runs, torn
	if err != nil {
		s.Close()
		if errors.Is(err, ErrNotRecord) {
			return nil, fmt.Errorf("--since %w; was it written by trawl with -f jsonl?", err)
		}
		return nil, fmt.Errorf("cannot read --since %s: %w", path, err)
	}
	for _, r := range runs {
		ok, err := r.next()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot read --since %s: %w", path, err)
		}
		if ok {
			heap.Push(&s.h, r)
		}
	}
	return s, nil
}

// Missing reports that the file did not exist.
func (s *Since) Missing() bool { return s.empty }

// Torn reports that the file's last line was incomplete (a killed run)
// and was left out.
func (s *Since) Torn() bool { return s.torn > 0 }

// Close releases the file and removes any sorted chunks.
func (s *Since) Close() {
	for _, r := range s.runs {
		r.close()
	}
	s.runs, s.h = nil, nil
}

// prevHead is what a previous record is read for.
type prevHead struct {
	URL          string  `json:"url"`
	Row          *string `json:"row"`
	ErrorKind    *string `json:"error_kind"`
	ETag         *string `json:"etag"`
	LastModified *string `json:"last_modified"`
	ContentType  *string `json:"content_type"`
	Bytes        int64   `json:"bytes"`
	Truncated    bool    `json:"truncated"`
	File         *string `json:"file"`
	SHA256       *string `json:"sha256"`
	BLAKE3       *string `json:"blake3"`
}

// Lookup returns the previous record of the input line with this index
// and identity (record.Record.Identity), or nil when there is none that
// can stand in for a 304: none for the index, one for another URL, one
// that failed or has no validator, or one lacking what this run needs.
func (s *Since) Lookup(index int64, identity string) (*record.Previous, error) {
	var line []byte
	for s.h.Len() > 0 {
		r := s.h[0]
		if r.index > index {
			break
		}
		if r.index == index && line == nil {
			line = r.line // the first of several for one index wins, as in merge
		}
		ok, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("cannot read --since %s: %w", s.path, err)
		}
		if ok {
			heap.Fix(&s.h, 0)
		} else {
			heap.Pop(&s.h)
		}
	}
	if line == nil {
		return nil, nil
	}
	var h prevHead
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, nil // Reader has vetted it as a record; this cannot stand in
	}
	id := h.URL
	if h.Row != nil {
		id = *h.Row
	}
	if id != identity || h.ErrorKind != nil || h.ETag == nil && h.LastModified == nil {
		return nil, nil
	}
	p := &record.Previous{Bytes: h.Bytes, Truncated: h.Truncated}
	p.ETag, p.LastModified, p.ContentType = deref(h.ETag), deref(h.LastModified), deref(h.ContentType)
	if s.opts.Files {
		if h.File == nil {
			return nil, nil
		}
		p.File = *h.File
		switch s.opts.Digest {
		case string(SHA256):
			if h.SHA256 == nil {
				return nil, nil
			}
			p.FileDigest = *h.SHA256
		case string(BLAKE3):
			if h.BLAKE3 == nil {
				return nil, nil
			}
			p.FileDigest = *h.BLAKE3
		}
	}
	if len(s.opts.Columns) > 0 {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(line, &all); err != nil {
			return nil, nil
		}
		p.Values = make([]any, len(s.opts.Columns))
		for i, c := range s.opts.Columns {
			raw, ok := all[c]
			if !ok {
				return nil, nil // the earlier run had no such transform
			}
			s.dec.Reset(raw)
			d := json.NewDecoder(&s.dec)
			d.UseNumber() // as the json transform keeps numbers: exactly
			if err := d.Decode(&p.Values[i]); err != nil {
				return nil, nil
			}
		}
	}
	s.Matched++
	return p, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Holds reports whether name, as a record names a saved file, is a
// regular file in the directory: a 304 leaves the file an earlier run
// saved in place, so it must still be there for its record to stand.
func (d *Dir) Holds(name string) bool {
	if name == "" {
		return false
	}
	fi, err := d.root.Lstat(filepath.FromSlash(name))
	return err == nil && fi.Mode().IsRegular()
}
