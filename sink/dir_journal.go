package sink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
)

// The journal of claims makes saving bodies safe to kill.
//
// A body gets its final name (a hard link) before its record is written,
// and records reach the output up to a --flush-interval later. A run
// killed in between leaves bodies that no record names; a resume would
// fetch their URLs again and save them as name~1, and a directory that
// kills made would differ from one that no kill touched.
//
// So each run keeps a journal in the partial directory, an undo log:
// before it creates a directory it writes "d NAME", and before each hard
// link "f INDEX DEV INODE SIZE ID NAME" (ID: the SHA-256, DIGEST:HEX for
// another digest, or mtime:NANOSECONDS without one), naming the body by the
// partial file's inode, which the link shares, and by its content. Each
// line is one write(2), so it is in the kernel before the link exists and
// survives a kill -9 (not a power cut: the journal is not fsynced, just
// as saved bodies are only synced at the end). A completed run removes
// its journal, once its records file is closed and synced.
//
// A later run in the directory finds the journals of processes that are
// gone. One written for the output being resumed is replayed backwards:
// every body whose index has no record kept in the output is removed if
// the file under its name is still the one the run linked (same device,
// inode, size and SHA-256: a name another body won in a race has another
// inode, and a file created since may get the freed inode number but not
// the same bytes, so a file that trawl did not write there is never
// touched), and every directory the run created is removed if it is
// empty, deepest first, so that no leftover directory pushes a later body
// to name~1. The resumed run then fetches those URLs again and the names
// come out as if there had been no kill. Several kills in a row leave one
// journal each, each replayed by the next run before it starts its own.
// After a killed --atomic run no record names any of its bodies (the
// output was never replaced), so all of them are removed. A journal of
// standard output cannot be resumed, and one of the same output run again
// without --resume names bodies whose records that run throws away:
// either is deleted and its bodies stay, as after a completed run. A
// journal of another output is left for a resume of that output.
//
// Costs: one journal write and one lstat per saved body (plus one line
// and an lstat per directory created); on disk, about 95 bytes per body
// plus its name, until the run completes; no memory per URL. Replaying
// reads the journal backwards in 64 KiB blocks, asks the Resume (which
// already holds two bytes per input line) whether each index is kept,
// and reads each body it removes once, to check its SHA-256.
type journal struct {
	name   string // inside the root
	mu     sync.Mutex
	f      *os.File
	claims int
	err    error // the first write error; every later claim fails with it
}

// journalSuffix ends the names of journals in the partial directory.
const journalSuffix = ".journal"

// journalMagic starts a journal's first line.
const journalMagic = "trawl-journal"

// createJournal starts this run's journal for output.
func (d *Dir) createJournal(output string, atomic bool) (*journal, error) {
	j := &journal{name: uniqueName(journalSuffix)}
	f, err := d.createPartial(j.name)
	if err != nil {
		return nil, fmt.Errorf("cannot create the journal of saved files: %w", err)
	}
	j.f = f
	flag := 0
	if atomic {
		flag = 1
	}
	if err := j.write(fmt.Sprintf("%s 1 %d %s\n", journalMagic, flag, strconv.Quote(output))); err != nil {
		f.Close()
		d.root.Remove(j.name)
		return nil, err
	}
	return j, nil
}

// write appends one line in one write.
func (j *journal) write(line string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if _, err := io.WriteString(j.f, line); err != nil {
		j.err = fmt.Errorf("cannot write the journal of saved files: %w", err)
	}
	return j.err
}

// mkdir notes that the run is about to create directory name.
func (j *journal) mkdir(name string) error {
	return j.write("d " + strconv.Quote(name) + "\n")
}

// link notes that the run is about to link the body of index, the file
// id, to name.
func (j *journal) link(index int64, id fileID, name string) error {
	err := j.write(fmt.Sprintf("f %d %d %d %d %s %s\n", index, id.dev, id.ino, id.size, id.sum, strconv.Quote(name)))
	if err == nil {
		j.mu.Lock()
		j.claims++
		j.mu.Unlock()
	}
	return err
}

// close closes the journal file and returns how many links it noted.
func (j *journal) close() (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Close(); err != nil && j.err == nil {
		j.err = fmt.Errorf("cannot write the journal of saved files: %w", err)
	}
	return j.claims, j.err
}

// recoverJournals deals with the journals of runs that are gone, as the
// journal type describes, before this run saves anything.
func (d *Dir) recoverJournals(output string, opts DirOptions) error {
	for _, n := range d.partialNames() {
		var pid int
		if !strings.HasSuffix(n, journalSuffix) {
			continue
		}
		if _, err := fmt.Sscanf(n, "%d-", &pid); err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := d.recoverJournal(path.Join(partialDir, n), output, opts); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dir) recoverJournal(name, output string, opts DirOptions) error {
	f, err := d.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // another run dealt with it
	}
	if err != nil {
		return fmt.Errorf("cannot read the journal of an interrupted run: %w", err)
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	h, ok := parseHeader(first)
	switch {
	case !ok:
		// Torn at its first line, before any claim was noted.
	case h.version > 1:
		return nil // written by a newer trawl, which knows what to do with it
	case h.output != "" && h.output != output:
		return nil // for a resume of that output
	case h.output != "" && (h.atomic || opts.Resume != nil):
		kept := func(int64) bool { return false }
		if !h.atomic {
			kept = opts.Resume.HasRecord
		}
		if err := d.undo(f, kept); err != nil {
			return fmt.Errorf("cannot remove what an interrupted run saved: %w", err)
		}
	}
	if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove the journal of an interrupted run: %w", err)
	}
	return nil
}

// undo replays a journal backwards, removing the bodies of indexes that
// kept reports no record for and the directories left empty.
func (d *Dir) undo(f *os.File, kept func(int64) bool) error {
	return eachLineBackward(f, func(line string) error {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "d":
			name, err := strconv.Unquote(rest)
			if err != nil || !isUndoable(name) {
				return nil
			}
			if fi, err := d.root.Lstat(name); err == nil && fi.IsDir() {
				d.root.Remove(name) // fails, as it should, unless empty
			}
		case "f":
			index, id, name, ok := parseLink(rest)
			if !ok || !isUndoable(name) || kept(index) {
				return nil
			}
			if !d.isFile(name, id) {
				return nil // gone, or no longer the file the run linked
			}
			if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// isFile reports whether name is still the file id describes.
func (d *Dir) isFile(name string, id fileID) bool {
	if id.ino == 0 {
		return false
	}
	fi, err := d.root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return false // a symlink is never what a run linked
	}
	f, err := d.root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || fi.Size() != id.size {
		return false
	}
	if dev, ino, ok := inode(fi); !ok || dev != id.dev || ino != id.ino {
		return false
	}
	return sameFile(id.sum, f, fi)
}

// header is what a journal's first line says.
type header struct {
	version int
	atomic  bool
	output  string
}

// parseHeader reads `trawl-journal VERSION ATOMIC "OUTPUT"`.
func parseHeader(line string) (header, bool) {
	f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 4)
	if len(f) != 4 || f[0] != journalMagic {
		return header{}, false
	}
	var h header
	var err error
	if h.version, err = strconv.Atoi(f[1]); err != nil {
		return header{}, false
	}
	h.atomic = f[2] == "1"
	if h.output, err = strconv.Unquote(f[3]); err != nil {
		return header{}, false
	}
	return h, true
}

// parseLink reads the rest of an `f INDEX DEV INODE SIZE SHA256 "NAME"`
// line.
func parseLink(rest string) (index int64, id fileID, name string, ok bool) {
	f := strings.SplitN(rest, " ", 6)
	if len(f) != 6 {
		return 0, fileID{}, "", false
	}
	var errs [5]error
	index, errs[0] = strconv.ParseInt(f[0], 10, 64)
	id.dev, errs[1] = strconv.ParseUint(f[1], 10, 64)
	id.ino, errs[2] = strconv.ParseUint(f[2], 10, 64)
	id.size, errs[3] = strconv.ParseInt(f[3], 10, 64)
	id.sum = f[4]
	name, errs[4] = strconv.Unquote(f[5])
	return index, id, name, errors.Join(errs[:]...) == nil
}

// isUndoable reports whether a name read from a journal is one a run
// could have created: inside the directory and outside the partial
// directory.
func isUndoable(name string) bool {
	return name != "" && name != "." && !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "../") &&
		name != ".." && name != partialDir && !strings.HasPrefix(name, partialDir+"/")
}

// journalBlock is how much of a journal is read at a time.
const journalBlock = 64 << 10

// eachLineBackward calls fn with every complete line of f, the last line
// first, without its newline. A last line without a newline, which a
// killed writer leaves, is skipped. Memory stays at a block and a line.
func eachLineBackward(f *os.File, fn func(line string) error) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pos := fi.Size()
	var pending []byte // bytes from pos on that are not yet passed to fn
	tail := true       // the next line found is what follows the last newline
	for {
		i := bytes.LastIndexByte(pending, '\n')
		if i < 0 {
			if pos == 0 {
				break
			}
			n := min(journalBlock, pos)
			pos -= n
			block := make([]byte, n+int64(len(pending)))
			if _, err := f.ReadAt(block[:n], pos); err != nil {
				return err
			}
			copy(block[n:], pending)
			pending = block
			continue
		}
		line := string(pending[i+1:])
		pending = pending[:i]
		if tail {
			tail = false // empty when the file ends in a newline; else torn
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if tail {
		return nil // no newline at all: the first line is torn
	}
	return fn(string(pending))
}
