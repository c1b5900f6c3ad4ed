package sink

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/trawl-dev/trawl/record"
)

// partialDir holds bodies still being downloaded, inside the output
// directory so that the final rename never crosses file systems. It also
// holds each run's journal of claims (see journal).
const partialDir = ".trawl-partial"

// Dir saves response bodies as files under one directory. Every file
// operation goes through an os.Root, so no name, however built, and no
// symlink planted inside the directory can make trawl write outside it.
type Dir struct {
	digest Digest
	root   *os.Root
	tmpl   Template
	// reserved are the names, relative to root, of the other files this
	// run writes inside the directory; no body may take them.
	reserved []string
	journal  *journal
	onSave   func(n int)
}

// DirOptions describes the rest of the run a Dir saves bodies for.
type DirOptions struct {
	// Output is the records file (-o), "" or "-" for standard output. A
	// records file inside the directory is reserved, and it identifies the
	// run in its journal of claims, so that resuming this output, and only
	// this output, undoes what a killed run left.
	Output string
	// Atomic says that Output is replaced only when the run completes, so
	// that nothing a killed run saved is named by any record.
	Atomic bool
	// Resume, when set, is the output being resumed: the bodies a killed
	// run saved for indexes it keeps no record of are removed, so that
	// fetching them again reuses their names.
	Resume *Resume
	// Reserved are the other files the run writes (stats, metrics, log,
	// lock); those inside the directory are reserved like Output.
	Reserved []string
	// Digest is the hash saved bodies get; "" means SHA256.
	Digest Digest
	// OnSave, when set, is told of every step of bytes saved, as they
	// arrive (for progress), however they come: written, or spliced.
	OnSave func(n int)
}

// OpenDir creates dir if needed and prepares it for saving bodies named by
// tmpl. Partial files left by trawl processes that are no longer running
// are removed, and so are the bodies that a killed run of the same output
// saved without its records reaching the output (see journal).
//
// The caller must open the directory before reading any input, since
// Resume forgets its kept indexes as the input is read.
func OpenDir(dir string, tmpl Template, opts DirOptions) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create output directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open output directory: %w", err)
	}
	if opts.Digest == "" {
		opts.Digest = SHA256
	}
	d := &Dir{root: root, tmpl: tmpl, digest: opts.Digest, onSave: opts.OnSave,
		reserved: reservedNames(dir, append([]string{opts.Output}, opts.Reserved...))}
	if d.onSave == nil {
		d.onSave = func(int) {}
	}
	output := outputIdentity(opts.Output)
	if err := d.recoverJournals(output, opts); err != nil {
		root.Close()
		return nil, fmt.Errorf("cannot prepare output directory %s: %w", dir, err)
	}
	d.removeStalePartials()
	if d.journal, err = d.createJournal(output, opts.Atomic); err != nil {
		root.Close()
		return nil, fmt.Errorf("cannot prepare output directory %s: %w", dir, err)
	}
	return d, nil
}

// Close releases the directory after flushing everything written to the
// file system holding it, so that saved bodies are as durable as the
// records that name them. The caller closes the records output first and
// says whether the run completed with every record written: only then is
// the journal of claims removed, and the partial directory with it when
// nothing else is in it. An interrupted run keeps its journal for the
// resume.
func (d *Dir) Close(complete bool) error {
	syncFS(d.root)
	claims, err := d.journal.close()
	if err == nil && (complete || claims == 0) {
		if rerr := d.root.Remove(d.journal.name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("cannot remove the journal of saved files: %w", rerr)
		}
		// Fails, as it should, while a body is in flight or another run
		// has files in it.
		d.root.Remove(partialDir)
	}
	return errors.Join(err, d.root.Close())
}

// removeStalePartials deletes partial files whose writer is gone. Their
// names start with the writing process's ID. Journals are left to
// recoverJournals.
func (d *Dir) removeStalePartials() {
	for _, n := range d.partialNames() {
		var pid int
		if strings.HasSuffix(n, journalSuffix) {
			continue
		}
		if _, err := fmt.Sscanf(n, "%d-", &pid); err == nil && pid != os.Getpid() && !processAlive(pid) {
			d.root.Remove(path.Join(partialDir, n))
		}
	}
}

// partialNames lists the partial directory.
func (d *Dir) partialNames() []string {
	f, err := d.root.Open(partialDir)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

// createPartial creates a new file in the partial directory, creating the
// directory again if another run that finished has just removed it.
func (d *Dir) createPartial(name string) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := d.root.OpenFile(name, flags, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err = d.root.MkdirAll(partialDir, 0o755); err == nil {
			f, err = d.root.OpenFile(name, flags, 0o644)
		}
	}
	return f, err
}

// uniqueName returns a new name in the partial directory, starting with
// this process's ID so that other runs can tell when it is stale.
func uniqueName(suffix string) string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return path.Join(partialDir, strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:])+suffix)
}

// Create starts saving one body in a partial file. A body whose response
// has a validator may be kept if it is cut short (see Keep), and one with
// an offset continues what was kept of it (see Kept).
func (d *Dir) Create(r *record.Record, offset int64, validator string) (*PartialFile, error) {
	if validator != "" {
		return d.createKept(r, offset, validator)
	}
	d.Drop(r) // anything kept is of another version of the body
	name := uniqueName(".part")
	f, err := d.createPartial(name)
	if err != nil {
		return nil, err
	}
	p := &PartialFile{dir: d, f: f, tmp: name}
	if h := d.digest.newHash(); h != nil {
		p.hash = newAsyncHash(h)
		p.buf = <-p.hash.back
	} else {
		p.buf = make([]byte, 0, hashChunk)
	}
	return p, nil
}

// PartialFile is a body being downloaded. It appears under its final name
// only once Commit has seen it complete. It is written in chunks of
// hashChunk (saving big bodies is syscall-bound), each of which is then
// hashed by a goroutine of its own while the next one fills.
type PartialFile struct {
	dir  *Dir
	f    *os.File
	buf  []byte     // the chunk being filled
	hash *asyncHash // nil without a digest
	tmp  string
	// meta is the file beside a body that may be kept (see Keep); "" for
	// a body that is discarded when cut short.
	meta string
	size int64
}

// Write appends to the partial file.
func (p *PartialFile) Write(b []byte) (int, error) {
	n := 0
	defer func() { p.dir.onSave(n) }()
	for len(b) > 0 {
		k := min(cap(p.buf)-len(p.buf), len(b))
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		if len(p.buf) == cap(p.buf) {
			if err := p.writeChunk(); err != nil {
				p.size += int64(n)
				return n, err
			}
		}
	}
	p.size += int64(n)
	return n, nil
}

// writeChunk writes the filled chunk to the file and hands it to the hash.
func (p *PartialFile) writeChunk() error {
	if _, err := p.f.Write(p.buf); err != nil {
		return err
	}
	if p.hash != nil {
		p.buf = p.hash.next(p.buf)
	} else {
		p.buf = p.buf[:0]
	}
	return nil
}

// ReadFrom saves the rest of the body from r. Without a digest nothing
// needs to see the bytes, and the file reads them itself: from a socket,
// on Linux, by splice(2), without passing through trawl.
func (p *PartialFile) ReadFrom(r io.Reader) (int64, error) {
	if p.hash != nil {
		return io.CopyBuffer(writerOnly{p}, r, make([]byte, hashChunk))
	}
	if len(p.buf) > 0 {
		if err := p.writeChunk(); err != nil {
			return 0, err
		}
	}
	s, ok := r.(interface {
		SpliceTo(f *os.File, max int64) (int64, error)
	})
	if !ok {
		s = fileReader{r}
	}
	// In steps, so that progress moves while a large body arrives.
	var total int64
	for {
		n, err := s.SpliceTo(p.f, spliceStep)
		total += n
		p.size += n
		p.dir.onSave(int(n))
		if err != nil || n < spliceStep {
			return total, err
		}
	}
}

// spliceStep is how much one step of ReadFrom saves at most.
const spliceStep = 4 << 20

// fileReader reads into a file by the file's own ReadFrom, a step at a
// time, for a reader that cannot splice.
type fileReader struct{ r io.Reader }

func (f fileReader) SpliceTo(file *os.File, max int64) (int64, error) {
	return file.ReadFrom(&io.LimitedReader{R: f.r, N: max})
}

// writerOnly hides a writer's ReadFrom, for io.Copy inside it.
type writerOnly struct{ io.Writer }

// Abort removes the partial file.
func (p *PartialFile) Abort() {
	if p.hash != nil {
		p.hash.stop()
	}
	p.f.Close()
	p.dir.root.Remove(p.tmp)
	if p.meta != "" {
		p.dir.root.Remove(p.meta)
	}
}

// maxSuffix bounds the ~N suffixes tried for a name already taken.
const maxSuffix = 1000

// Commit gives the complete body its final name and records it in r. A
// name already taken, by an earlier URL of this run, by an older file, or
// by another file this run writes (the records file and the like), is
// never overwritten: the body gets the first free name~N instead (N from
// 1, before the extension). The same holds for each directory on the way:
// where a file (or anything but a directory) has the name, the body goes
// into dir~N/ instead. Claiming uses a hard link, which fails atomically
// when the name exists, so concurrent commits cannot race.
func (p *PartialFile) Commit(r *record.Record) error {
	defer p.dir.root.Remove(p.tmp)
	if p.meta != "" {
		defer p.dir.root.Remove(p.meta)
	}
	var err error
	if len(p.buf) > 0 {
		_, err = p.f.Write(p.buf)
	}
	sum := ""
	if p.hash != nil {
		sum = p.hash.finish(p.buf)
		p.buf = nil
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = p.f.Stat()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	id := fileID{size: p.size, sum: p.dir.digest.identity(sum, fi)}
	id.dev, id.ino, _ = inode(fi)
	in := NameInput{URL: r.Target, Index: r.Index, ContentType: r.ContentType}
	if p.dir.digest == SHA256 {
		in.SHA256 = sum
	}
	name := p.dir.tmpl.Name(in)
	final, err := p.claim(name, r.Index, id)
	if errors.Is(err, syscall.ENAMETOOLONG) {
		final, err = p.claim(HashName(in), r.Index, id)
	}
	if err != nil {
		return err
	}
	r.File, r.FileDigest = final, sum
	return nil
}

// claim links the partial file to name, or to the first free name~N,
// after noting each attempt in the journal.
func (p *PartialFile) claim(name string, index int64, id fileID) (string, error) {
	d := p.dir
	dir, file := path.Split(name)
	dir, err := d.makeDirs(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return "", err
	}
	for n := 0; n <= maxSuffix; n++ {
		candidate := file
		if n > 0 {
			candidate = withSuffix(file, n)
		}
		candidate = path.Join(dir, candidate)
		if d.isReserved(candidate) {
			continue
		}
		// Looking first keeps the journal to one line per body unless
		// another commit takes the name in the meantime.
		if _, err := d.root.Lstat(candidate); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := d.journal.link(index, id, candidate); err != nil {
			return "", err
		}
		err := d.root.Link(p.tmp, candidate)
		if err == nil {
			return candidate, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s and %d variants of it already exist", name, maxSuffix)
}

// makeDirs creates the directories of dir that are missing, one component
// at a time, and returns the path actually used: a component whose name
// is taken by a file, a symlink that leads nowhere inside the directory,
// or a reserved name becomes component~N, the first that is a directory
// or free.
func (d *Dir) makeDirs(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	used := ""
	for c := range strings.SplitSeq(dir, "/") {
		found := false
		for n := 0; n <= maxSuffix && !found; n++ {
			candidate := c
			if n > 0 {
				candidate = c + "~" + strconv.Itoa(n)
			}
			candidate = path.Join(used, candidate)
			if d.isReserved(candidate) {
				continue
			}
			ok, err := d.useDir(candidate)
			if err != nil {
				return "", err
			}
			if ok {
				used, found = candidate, true
			}
		}
		if !found {
			return "", fmt.Errorf("%s and %d variants of it are taken by files", path.Join(used, c), maxSuffix)
		}
	}
	return used, nil
}

// useDir reports whether name is, or has now been made, a directory that
// bodies can go into.
func (d *Dir) useDir(name string) (bool, error) {
	fi, err := d.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := d.journal.mkdir(name); err != nil {
			return false, err
		}
		err = d.root.Mkdir(name, 0o755)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		// Another commit made it first; see what it made.
		fi, err = d.root.Lstat(name)
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// A symlink to a directory inside the root is followed, as
		// before; one that leads outside or nowhere is in the way.
		fi, err = d.root.Stat(name)
		return err == nil && fi.IsDir(), nil
	}
	return fi.IsDir(), nil
}

// fileID tells the body a run linked from any other file, for undoing a
// killed run's claims: the device and inode number, which the partial
// file and every link to it share (0 where the system has none), and the
// size and SHA-256, since a file removed and another created can get the
// freed inode number.
type fileID struct {
	dev, ino uint64
	size     int64
	sum      string
}

// isReserved reports whether name is one of the run's other files. The
// comparison ignores case, because on a case-folding file system the
// records file would replace a body whose name differs only in case.
func (d *Dir) isReserved(name string) bool {
	for _, r := range d.reserved {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// reservedNames returns the paths among files that lie inside dir,
// relative to it and slash-separated.
func reservedNames(dir string, files []string) []string {
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if resolved, err := filepath.EvalSymlinks(base); err == nil {
		base = resolved
	}
	var names []string
	for _, f := range files {
		p := outputIdentity(f)
		if p == "" {
			continue
		}
		if rel, err := filepath.Rel(base, p); err == nil && filepath.IsLocal(rel) {
			names = append(names, filepath.ToSlash(rel))
		}
	}
	return names
}

// outputIdentity names a file the run writes by its absolute path, with
// symlinks in its directory resolved so that two spellings of one path
// agree; "" for standard output. The file itself need not exist yet.
func outputIdentity(file string) string {
	if file == "" || file == "-" {
		return ""
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return ""
	}
	dir, base := filepath.Split(abs)
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	return filepath.Join(dir, base)
}
