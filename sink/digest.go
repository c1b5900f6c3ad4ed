package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"lukechampine.com/blake3"
)

// Digest names the hash a saved body's record carries.
type Digest string

// The digests.
const (
	// SHA256 is the default: what archives, checksums files and people
	// compare against.
	SHA256 Digest = "sha256"
	// BLAKE3 is faster (1.7 GB/s against SHA-256's 1.1 GB/s on the
	// 2-CPU machine the benchmarks ran on, which has SHA-NI).
	BLAKE3 Digest = "blake3"
	// NoDigest saves bodies without hashing them, which lets a plain
	// HTTP body go from the socket to the file without passing through
	// trawl at all (splice(2) on Linux).
	NoDigest Digest = "none"
)

// DigestNames lists the digests by name, for help and completion.
func DigestNames() []string { return []string{string(SHA256), string(BLAKE3), string(NoDigest)} }

// ParseDigest parses a --digest value.
func ParseDigest(s string) (Digest, error) {
	switch d := Digest(s); d {
	case SHA256, BLAKE3, NoDigest:
		return d, nil
	}
	return "", fmt.Errorf("unknown digest %q: want sha256, blake3 or none", s)
}

// newHash returns a hash for the digest, or nil for none.
func (d Digest) newHash() hash.Hash {
	switch d {
	case BLAKE3:
		return blake3.New(32, nil)
	case NoDigest:
		return nil
	}
	return sha256.New()
}

// sumFile returns the digest of the file, read again from the start.
func (d Digest) sumFile(f *os.File) (string, error) {
	h := d.newHash()
	if h == nil {
		return "", nil
	}
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// asyncHash hashes chunks in a goroutine of its own, so that reading a
// body and writing it to its file never wait for the digest: on two CPUs
// the hash of one body runs beside the network and disk work of the
// same body and of the others.
type asyncHash struct {
	h    hash.Hash
	in   chan []byte // chunks to hash, in order
	back chan []byte // chunks hashed, to be filled again
	done chan struct{}
}

// hashChunk is the size of the chunks a saved body is written and hashed
// in: large enough that a write is one system call per chunk.
const hashChunk = 256 << 10

// hashChunks is how many chunks a body may have in flight: one being
// filled, the others being hashed.
const hashChunks = 3

func newAsyncHash(h hash.Hash) *asyncHash {
	a := &asyncHash{h: h, in: make(chan []byte, hashChunks), back: make(chan []byte, hashChunks), done: make(chan struct{})}
	for range hashChunks {
		a.back <- make([]byte, 0, hashChunk)
	}
	go func() {
		defer close(a.done)
		for c := range a.in {
			a.h.Write(c)
			a.back <- c[:0]
		}
	}()
	return a
}

// next hands a full chunk over and returns an empty one, waiting while
// every chunk is being hashed (which bounds the memory a slow hash can
// take to hashChunks chunks).
func (a *asyncHash) next(full []byte) []byte {
	a.in <- full
	return <-a.back
}

// finish hashes the last chunk and returns the digest in hex.
func (a *asyncHash) finish(last []byte) string {
	if len(last) > 0 {
		a.in <- last
	}
	close(a.in)
	<-a.done
	return hex.EncodeToString(a.h.Sum(nil))
}

// stop ends the goroutine, discarding what it had.
func (a *asyncHash) stop() {
	close(a.in)
	<-a.done
}

// identity is how the journal of claims recognises a saved file later:
// by its digest (a SHA-256 alone, as journals have always said it), or,
// without one, by its modification time, which a file that took over the
// name (and perhaps the inode number) would not share.
func (d Digest) identity(sum string, fi fs.FileInfo) string {
	switch d {
	case SHA256:
		return sum
	case NoDigest:
		if fi == nil {
			return "mtime:"
		}
		return "mtime:" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	}
	return string(d) + ":" + sum
}

// sameFile reports whether the file f, with info fi, is the one identity
// describes.
func sameFile(identity string, f *os.File, fi fs.FileInfo) bool {
	kind, value, ok := strings.Cut(identity, ":")
	if !ok {
		kind, value = string(SHA256), identity
	}
	if kind == "mtime" {
		return value != "" && strconv.FormatInt(fi.ModTime().UnixNano(), 10) == value
	}
	d, err := ParseDigest(kind)
	if err != nil || d == NoDigest {
		return false
	}
	sum, err := d.sumFile(f)
	return err == nil && sum == value
}
