package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"

	"github.com/trawl-dev/trawl/record"
)

// A body cut short (by the connection, or by the run being stopped or
// killed) whose response had a validator is kept in the partial directory
// under a name made from its record, so that a later attempt or run can
// ask for the rest with a Range request guarded by If-Range. Beside it, a
// small file names the URL and the validator; it is written before the
// first byte of the body, so a kept body without one is never continued.

// keepMinimum is the least a kept body must hold: a shorter one costs
// little to fetch again, and would only clutter the directory.
const keepMinimum = 1 << 20

// keptMeta is what the file beside a kept body says.
type keptMeta struct {
	URL       string `json:"url"`
	Validator string `json:"validator"`
}

// keepNames returns the names of r's kept body and of the file beside it:
// the record's index and a hash of its URL, which a rerun of the same list
// (--resume) gives the same record.
func keepNames(r *record.Record) (body, meta string) {
	sum := sha256.Sum256([]byte(r.URL))
	base := path.Join(partialDir, "keep-"+strconv.FormatInt(r.Index, 10)+"-"+hex.EncodeToString(sum[:8]))
	return base + ".part", base + ".json"
}

// Kept returns how much of r's body an earlier attempt or run kept, and the
// validator of the response it came from; 0 when nothing usable is kept.
func (d *Dir) Kept(r *record.Record) (int64, string) {
	bodyName, metaName := keepNames(r)
	data, err := d.root.ReadFile(metaName)
	if err != nil {
		return 0, ""
	}
	var m keptMeta
	if json.Unmarshal(data, &m) != nil || m.URL != r.Target.String() || m.Validator == "" {
		return 0, ""
	}
	fi, err := d.root.Stat(bodyName)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return 0, ""
	}
	return fi.Size(), m.Validator
}

// Drop removes what is kept of r's body.
func (d *Dir) Drop(r *record.Record) {
	bodyName, metaName := keepNames(r)
	d.root.Remove(metaName)
	d.root.Remove(bodyName)
}

// createKept starts saving a body that may be kept if cut short: from the
// start (offset 0, replacing anything kept), or continuing the kept part,
// which must hold exactly offset bytes, and whose bytes the digest reads
// first.
func (d *Dir) createKept(r *record.Record, offset int64, validator string) (*PartialFile, error) {
	bodyName, metaName := keepNames(r)
	var f *os.File
	var err error
	if offset > 0 {
		if f, err = d.root.OpenFile(bodyName, os.O_WRONLY|os.O_APPEND, 0); err != nil {
			return nil, fmt.Errorf("cannot continue the kept part of the body: %w", err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != offset {
			f.Close()
			d.Drop(r)
			return nil, fmt.Errorf("the kept part of the body changed while it was being continued")
		}
	} else {
		meta, _ := json.Marshal(keptMeta{URL: r.Target.String(), Validator: validator})
		d.root.Remove(bodyName)
		if err = d.writeMeta(metaName, meta); err != nil {
			return nil, err
		}
		if f, err = d.createPartial(bodyName); err != nil {
			d.root.Remove(metaName)
			return nil, err
		}
	}
	p := &PartialFile{dir: d, f: f, tmp: bodyName, meta: metaName, size: offset}
	if h := d.digest.newHash(); h != nil {
		p.hash = newAsyncHash(h)
		p.buf = <-p.hash.back
		if offset > 0 {
			if err := p.hashKept(bodyName, offset); err != nil {
				p.hash.stop()
				f.Close()
				return nil, err
			}
		}
	} else {
		p.buf = make([]byte, 0, hashChunk)
	}
	return p, nil
}

// writeMeta writes the file beside a kept body, creating the partial
// directory if needed.
func (d *Dir) writeMeta(name string, data []byte) error {
	err := d.root.WriteFile(name, data, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err = d.root.MkdirAll(partialDir, 0o755); err == nil {
			err = d.root.WriteFile(name, data, 0o644)
		}
	}
	return err
}

// hashKept passes the first n bytes of the kept body through the digest.
func (p *PartialFile) hashKept(name string, n int64) error {
	f, err := p.dir.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r := io.LimitReader(f, n)
	for {
		k, err := io.ReadFull(r, p.buf[:cap(p.buf)])
		if k > 0 {
			p.buf = p.hash.next(p.buf[:k])
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read the kept part of the body: %w", err)
		}
	}
}

// Keep ends a body cut short, keeping what it saved for a later attempt or
// run when it may be continued and holds enough to be worth it.
func (p *PartialFile) Keep() {
	if p.meta == "" || p.size < keepMinimum {
		p.Abort()
		return
	}
	if p.hash != nil {
		p.hash.stop()
	}
	var err error
	if len(p.buf) > 0 {
		_, err = p.f.Write(p.buf)
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// What is on disk may be shorter than what was received, and
		// would then be continued from the wrong byte.
		p.dir.root.Remove(p.meta)
		p.dir.root.Remove(p.tmp)
	}
}
