package capture

import (
	"bytes"
	"compress/flate"
	"crypto/sha1" //nolint:gosec // the digests under test are SHA-1
	"hash/crc32"
	"io"
	"os"
	"testing"
	"time"
)

// body returns what a spool holds.
func body(t *testing.T, s *Spool) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSpoolSpillsToAFileAndLeavesNoneBehind(t *testing.T) {
	dir := t.TempDir()
	sp := &Spooler{Dir: dir, MemLimit: 10}
	var c Capture
	ex := c.Begin(sp, time.Now(), "http://a/")
	ex.SetHead([]byte("HTTP/1.1 200 OK\r\n\r\n"), false)
	want := bytes.Repeat([]byte("0123456789abcdef"), 100)
	for i := 0; i < len(want); i += 7 {
		ex.Payload(want[i:min(i+7, len(want))])
	}
	ex.Finish("")
	f, n, crc, ok := ex.Body.Segment()
	if !ok || len(ex.Body.mem) != 0 || ex.Body.Len() != int64(len(want)) {
		t.Fatalf("a body past MemLimit should be all in the file: segment %v, %d in memory, length %d", ok, len(ex.Body.mem), ex.Body.Len())
	}
	// The file holds the DEFLATE stream that ends the record.
	seg, err := io.ReadAll(flate.NewReader(io.NewSectionReader(f, 0, n)))
	if err != nil || string(seg) != string(want)+"\r\n\r\n" || crc != crc32.ChecksumIEEE(seg) {
		t.Fatalf("the segment holds %d bytes (%v), CRC %08x for %08x", len(seg), err, crc, crc32.ChecksumIEEE(seg))
	}
	if got := body(t, &ex.Body); !bytes.Equal(got, want) {
		t.Fatalf("spool gave back %d bytes, want %d", len(got), len(want))
	}
	// Read twice: the writer may need to.
	if got := body(t, &ex.Body); !bytes.Equal(got, want) {
		t.Fatal("a second read differs")
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("the spool's file is still in the directory: %v", names)
	}
	c.Release()
	if _, err := ex.Body.WriteTo(&bytes.Buffer{}); err == nil {
		t.Fatal("a released spool still reads")
	}
}

func TestDigestsOfFramedAndPlainBodies(t *testing.T) {
	head := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	framed := []byte("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	var c Capture
	ex := c.Begin(&Spooler{}, time.Now(), "http://a/")
	ex.SetHead(head, true)
	// As the lean engine and fetch call them: the framing as read, the
	// payload as decoded.
	ex.Framed(framed[:3])
	ex.Payload([]byte("hello"))
	ex.Framed(framed[3:])
	ex.Payload([]byte(" world"))
	ex.Finish("")
	if got := body(t, &ex.Body); !bytes.Equal(got, framed) {
		t.Fatalf("a framed body keeps its framing: got %q", got)
	}
	if ex.PayloadDigest != sha1.Sum([]byte("hello world")) || ex.PayloadLen != 11 {
		t.Fatal("the payload digest is not over the body without its framing")
	}
	if ex.BlockDigest != sha1.Sum(append(append([]byte{}, head...), framed...)) {
		t.Fatal("the block digest is not over the head and the framed body")
	}

	plain := c.Begin(&Spooler{}, time.Now(), "http://a/")
	plain.SetHead([]byte("HTTP/1.1 200 OK\r\n\r\n"), false)
	plain.Framed([]byte("ignored"))
	plain.Payload([]byte("abc"))
	plain.Finish("")
	if got := body(t, &plain.Body); string(got) != "abc" {
		t.Fatalf("an unframed body is its payload: got %q", got)
	}
	if plain.BlockDigest != sha1.Sum([]byte("HTTP/1.1 200 OK\r\n\r\nabc")) || plain.PayloadDigest != sha1.Sum([]byte("abc")) {
		t.Fatal("wrong digests for an unframed body")
	}
}

func TestCapAndTruncation(t *testing.T) {
	var c Capture
	ex := c.Begin(&Spooler{MaxBody: 4}, time.Now(), "http://a/")
	ex.SetHead([]byte("H\r\n\r\n"), false)
	ex.Payload([]byte("abc"))
	if ex.Full() {
		t.Fatal("full before the cap")
	}
	ex.Payload([]byte("defg"))
	if !ex.Full() {
		t.Fatal("not full at the cap")
	}
	ex.Payload([]byte("more"))
	ex.Finish("") // the body was cut: truncated by length whatever ended it
	if got := body(t, &ex.Body); string(got) != "abcd" || ex.Truncated != TruncLength || ex.PayloadLen != 4 {
		t.Fatalf("got %q, truncated %q, payload %d; want abcd, length, 4", got, ex.Truncated, ex.PayloadLen)
	}

	broken := c.Begin(&Spooler{}, time.Now(), "http://a/")
	broken.SetHead([]byte("H\r\n\r\n"), false)
	broken.Payload([]byte("ab"))
	broken.Finish(TruncDisconnect)
	if broken.Truncated != TruncDisconnect {
		t.Fatalf("truncated %q, want disconnect", broken.Truncated)
	}
	open := c.Begin(&Spooler{}, time.Now(), "http://a/")
	c.Seal()
	if !open.Done() || open.Truncated != TruncUnspecified {
		t.Fatalf("Seal left an exchange open or whole: done %v, truncated %q", open.Done(), open.Truncated)
	}
}

func TestDropAndReset(t *testing.T) {
	var c Capture
	a := c.Begin(&Spooler{}, time.Now(), "http://a/")
	b := c.Begin(&Spooler{}, time.Now(), "http://b/")
	c.Drop(b)
	if len(c.Exchanges) != 1 || c.Exchanges[0] != a {
		t.Fatalf("Drop left %d exchanges", len(c.Exchanges))
	}
	c.Reset()
	if len(c.Exchanges) != 0 {
		t.Fatal("Reset kept exchanges")
	}
	ex := c.Begin(&Spooler{}, time.Time{}, "http://a/")
	ex.Sent([]byte("GET / HTTP/1.1\r\n\r\n"))
	ex.Sent([]byte("GET /again HTTP/1.1\r\n\r\n"))
	if string(ex.Request) != "GET /again HTTP/1.1\r\n\r\n" || ex.Date.IsZero() {
		t.Fatalf("a request sent again should replace the first and date the exchange: %q", ex.Request)
	}
}
