package capture

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// TestFinishedSpoolsHoldLittleMemory: bodies spooled to files wait,
// finished, in the stages' windows behind a slow URL (thousands of
// them): each must then hold its file, not the compressor and buffer
// that filled it, which would make a window of mid-sized pages cost
// half a MiB each that Footprint does not see.
func TestFinishedSpoolsHoldLittleMemory(t *testing.T) {
	sp := &Spooler{Dir: t.TempDir(), MemLimit: 1024}
	body := bytes.Repeat([]byte("abcdefgh"), 8<<10) // 64 KiB, spooled
	const n = 100
	caps := make([]*Capture, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range caps {
		c := &Capture{}
		ex := c.Begin(sp, time.Now(), "http://a/")
		ex.SetHead([]byte("HTTP/1.1 200 OK\r\n\r\n"), false)
		ex.Payload(body)
		ex.Finish("")
		if _, _, _, ok := ex.Body.Segment(); !ok {
			t.Fatal("the body was not spooled to a file")
		}
		caps[i] = c
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if per := held / n; per > 16<<10 {
		t.Errorf("each finished spooled body holds %d KiB of heap, want under 16", per>>10)
	}
	for _, c := range caps {
		c.Release()
	}
}

// TestSpooledBodyWeighsInTheFootprint: an open spool file costs a file
// descriptor while its record waits in a window, so Footprint counts it
// (SpoolWeight): --reorder-memory then bounds how many are open behind a
// slow URL, as it bounds the memory of bodies held in memory.
func TestSpooledBodyWeighsInTheFootprint(t *testing.T) {
	sp := &Spooler{Dir: t.TempDir(), MemLimit: 16}
	c := &Capture{}
	ex := c.Begin(sp, time.Now(), "http://a/")
	ex.SetHead([]byte("HTTP/1.1 200 OK\r\n\r\n"), false)
	ex.Payload(bytes.Repeat([]byte("x"), 100))
	ex.Finish("")
	if got := c.Footprint(); got < SpoolWeight {
		t.Errorf("Footprint of a capture with a spooled body = %d, want at least SpoolWeight (%d)", got, SpoolWeight)
	}
	c.Release()
	if got := c.Footprint(); got >= SpoolWeight {
		t.Errorf("Footprint after Release = %d: the file is closed, it should weigh no more", got)
	}
}
