//go:build unix

package sink

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/capture"
	"github.com/trawl-dev/trawl/record"
)

// breakFile makes every later write to f fail, as a full disk would: its
// descriptor is made to refer to a read-only copy of the same file.
func breakFile(t *testing.T, f *os.File) {
	t.Helper()
	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := syscall.Dup2(int(ro.Fd()), int(f.Fd())); err != nil {
		t.Fatal(err)
	}
}

// TestWARCWriteFailureLeavesNoLinePointingPastIt: when the WARC file
// stops taking bytes (a full disk), no line reaches the records output
// that points at records the file did not take, not even the lines the
// run's end flushes after the WARC is closed; and the file is left with
// whole records only, the last one the last that a line could point at.
func TestWARCWriteFailureLeavesNoLinePointingPastIt(t *testing.T) {
	testMemLimit = 1 << 16 // bodies in memory: buffered by the writer
	t.Cleanup(func() { testMemLimit = 8 })
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/"})
	outPath := filepath.Join(dir, "out.jsonl")
	out, err := Create(outPath, nil, OutputOptions{BeforeWrite: w.Flush})
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 30<<10) // incompressible: the buffer fills
	write := func(i int) error {
		rand.Read(body)
		r := captured(exchange(fmt.Sprintf("http://example.test/%d", i), "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", string(body), ""))
		if err := w.Write(r); err != nil {
			return err
		}
		fmt.Fprintf(out, "{\"index\":%d,\"warc_file\":%q,\"warc_offset\":%d}\n", i, r.Capture.File, r.Capture.Offset)
		return nil
	}
	for i := range 3 {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Flush(); err != nil { // the WARC first, then these lines
		t.Fatal(err)
	}
	name := filepath.Join(dir, w.name)
	breakFile(t, w.f)
	failed := false
	for i := 3; i < 40 && !failed; i++ {
		failed = write(i) != nil
	}
	if !failed {
		t.Fatal("the WARC writer never reported the failing file")
	}
	// As the run ends: the WARC closed first, then the output.
	if err := w.Close(); err == nil {
		t.Error("Close of a WARC whose file failed reported no error")
	}
	out.Close(false)

	at := map[int64]bool{}
	for _, rec := range readWARC(t, name) { // whole records only
		if rec.get("WARC-Type") == "response" {
			at[rec.offset] = true
		}
	}
	f, err := os.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		var l struct {
			Index  int   `json:"index"`
			Offset int64 `json:"warc_offset"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if !at[l.Offset] {
			t.Errorf("line %d points at offset %d, where the WARC file holds no response record", l.Index, l.Offset)
		}
	}
	if lines < 3 {
		t.Errorf("%d lines in the output, want the 3 flushed before the failure", lines)
	}
}

// TestWARCBodyNotSpooledWritesNothing: a URL whose body could not be
// spooled (a full disk) is reported, and none of its records, not even
// its request, is in the file.
func TestWARCBodyNotSpooledWritesNothing(t *testing.T) {
	dir := t.TempDir()
	w := openTestWARC(t, WARCOptions{Path: dir + "/"})
	name := filepath.Join(dir, w.name)
	var c capture.Capture
	ex := c.Begin(&capture.Spooler{MemLimit: 8, Dir: filepath.Join(dir, "missing")}, time.Now(), "http://example.test/big")
	ex.Request = []byte("GET /big HTTP/1.1\r\n\r\n")
	ex.SetHead([]byte("HTTP/1.1 200 OK\r\n\r\n"), false)
	ex.Payload([]byte("a body longer than the memory limit"))
	ex.Finish("")
	err := w.Write(&record.Record{Capture: &c})
	if err == nil || !strings.Contains(err.Error(), "http://example.test/big") {
		t.Fatalf("Write = %v, want an error naming the URL", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if recs := readWARC(t, name); len(recs) != 1 {
		t.Errorf("%d records in the file, want the warcinfo only", len(recs))
	}
}
