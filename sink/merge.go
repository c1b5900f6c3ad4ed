package sink

// Merging combines the JSON Lines outputs of several trawl runs (the
// shards of one list) into one stream ordered by index, without loading
// whole files: each file is read as the ascending runs it is made of (one
// per run segment in input order), files with too many runs to keep open
// (completion order) are sorted in bounded chunks first, and a heap merges
// the runs. Lines are copied as they are.

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// maxRuns is the number of ascending runs of one file merged straight from
// the file; a file with more is sorted in chunks first.
const maxRuns = 64

// chunkRecords bounds the records held in memory while sorting a chunk.
const chunkRecords = 100_000

// MergeReport is what a merge found.
type MergeReport struct {
	// Records is the number of records written.
	Records int64
	// Duplicates lists indexes found more than once (the first occurrence
	// is kept), up to the first few, and DuplicateCount how many in all.
	Duplicates     []string
	DuplicateCount int64
	// Gaps are missing index ranges between the first and the last index
	// written (and before the first, from 0), up to the first few.
	Gaps       []string
	GapRecords int64
	// TornLines counts incomplete last lines skipped (killed writers).
	TornLines int
}

// Merge merges the named JSON Lines files into w. tmpDir holds the sorted
// chunks of unsorted files.
func Merge(w io.Writer, paths []string, tmpDir string) (*MergeReport, error) {
	rep := &MergeReport{}
	var runs []*run
	defer func() {
		for _, r := range runs {
			r.close()
		}
	}()
	for _, p := range paths {
		rs, torn, err := openRuns(p, tmpDir)
		rep.TornLines += torn
		runs = append(runs, rs...)
		if err != nil {
			return rep, err
		}
	}
	h := &runHeap{}
	for _, r := range runs {
		ok, err := r.next()
		if err != nil {
			return rep, err
		}
		if ok {
			heap.Push(h, r)
		}
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	last := int64(-1)
	var lastSrc string
	for h.Len() > 0 {
		r := (*h)[0]
		switch {
		case r.index == last:
			rep.DuplicateCount++
			if len(rep.Duplicates) < 10 {
				rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("index %d in %s and %s", last, lastSrc, r.where()))
			}
		default:
			if r.index > last+1 {
				rep.GapRecords += r.index - last - 1
				if len(rep.Gaps) < 10 {
					rep.Gaps = append(rep.Gaps, gapText(last+1, r.index-1))
				}
			}
			if _, err := bw.Write(r.line); err != nil {
				return rep, fmt.Errorf("cannot write merged records: %w", err)
			}
			rep.Records++
			last, lastSrc = r.index, r.where()
		}
		ok, err := r.next()
		if err != nil {
			return rep, err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	if err := bw.Flush(); err != nil {
		return rep, fmt.Errorf("cannot write merged records: %w", err)
	}
	return rep, nil
}

func gapText(from, to int64) string {
	if from == to {
		return fmt.Sprintf("index %d", from)
	}
	return fmt.Sprintf("indexes %d-%d", from, to)
}

// run reads one ascending stretch of records.
type run struct {
	name  string
	f     *os.File
	rd    *Reader
	temp  bool // f is a sorted chunk to delete afterwards
	owns  bool // this run closes f (runs of one file share it)
	line  []byte
	index int64
	first int // the line number in the file before the run's first line
	lines int // lines of the run read, for messages
}

func (r *run) where() string { return fmt.Sprintf("%s line %d", r.name, r.first+r.lines) }

func (r *run) next() (bool, error) {
	e, err := r.rd.Next()
	if errors.Is(err, io.EOF) {
		return false, nil // torn lines were dealt with when runs were found
	}
	if err != nil {
		return false, err
	}
	r.lines++
	r.line, r.index = e.Raw, e.Index
	return true, nil
}

func (r *run) close() {
	switch {
	case r.temp:
		r.f.Close()
		os.Remove(r.f.Name())
	case r.owns:
		r.f.Close()
	}
}

// openRuns finds the ascending runs of a file. Files with few runs are read
// in place, one section reader per run; files with many are sorted into
// temporary chunks. A torn last line is skipped and counted.
func openRuns(path, tmpDir string) ([]*run, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot merge: %w", err)
	}
	type span struct {
		start, end int64
		firstLine  int
	}
	var spans []span
	rd := NewReader(f, path)
	prev := int64(-1)
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		if len(spans) == 0 || e.Index < prev {
			spans = append(spans, span{start: e.Offset, firstLine: e.Line - 1})
		}
		spans[len(spans)-1].end = e.Offset + int64(len(e.Raw))
		prev = e.Index
	}
	torn := 0
	if rd.Torn() {
		torn = 1 // a writer killed mid-line; that record was never complete
	}
	if len(spans) <= maxRuns {
		var runs []*run
		for i, s := range spans {
			sec := io.NewSectionReader(f, s.start, s.end-s.start)
			rd := NewReader(sec, path)
			rd.vetted = true // read through once already, just above
			runs = append(runs, &run{name: path, f: f, owns: i == 0, rd: rd, first: s.firstLine})
		}
		if len(runs) == 0 {
			f.Close()
		}
		return runs, torn, nil
	}
	defer f.Close()
	runs, err := sortChunks(f, path, rd.Good(), tmpDir)
	return runs, torn, err
}

// sortChunks sorts a file's complete lines (up to size bytes) in chunks of
// chunkRecords, each written to a temporary file that becomes one run.
func sortChunks(f *os.File, path string, size int64, tmpDir string) ([]*run, error) {
	type rec struct {
		index int64
		line  []byte
	}
	rd := NewReader(io.NewSectionReader(f, 0, size), path)
	var runs []*run
	var chunk []rec
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		sort.Slice(chunk, func(i, j int) bool { return chunk[i].index < chunk[j].index })
		tmp, err := os.CreateTemp(tmpDir, "trawl-merge-*.jsonl")
		if err != nil {
			return fmt.Errorf("cannot sort %s: %w", path, err)
		}
		bw := bufio.NewWriter(tmp)
		for _, r := range chunk {
			bw.Write(r.line)
		}
		if err := bw.Flush(); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return fmt.Errorf("cannot sort %s: %w", path, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		rd := NewReader(tmp, path+" (sorted)")
		rd.vetted = true // lines of the file, read as records already
		runs = append(runs, &run{name: path + " (sorted)", f: tmp, temp: true, rd: rd})
		chunk = chunk[:0]
		return nil
	}
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return runs, err
		}
		chunk = append(chunk, rec{e.Index, e.Raw})
		if len(chunk) == chunkRecords {
			if err := flush(); err != nil {
				return runs, err
			}
		}
	}
	return runs, flush()
}

// runHeap orders runs by their current record's index.
type runHeap []*run

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*run)) }
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
