package cmd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// TestUnwritableOutputNeverHangs: with an output that fails its first
// write (/dev/full) while workers for several hosts are busy, every run
// ends promptly with status 1 and says why. The stages then stop at
// whatever point each worker is, so the run is repeated with both orders
// and with transforms, to abort at many different moments.
func TestUnwritableOutputNeverHangs(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<title>x</title>")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	var b strings.Builder
	var resolve []string
	for h := range 8 {
		host := fmt.Sprintf("h%d.test", h)
		resolve = append(resolve, "--resolve", host+":"+port+":127.0.0.1")
		for i := range 250 {
			fmt.Fprintf(&b, "http://%s:%s/p/%d\n", host, port, i)
		}
	}
	list := filepath.Join(t.TempDir(), "multi.txt")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	variants := [][]string{
		{},
		{"--unordered"},
		{"-x", "title", "--transform-concurrency", "3"},
		{"-c", "3"},
		{"-x", "title", "--unordered", "-c", "64", "--per-host", "4"},
	}
	for round := range 4 {
		for _, v := range variants {
			args := append(append([]string{"-q", "-o", "/dev/full", "--flush-interval", "1ms"}, resolve...), v...)
			c := exec.Command("trawl", append(args, list)...)
			var stderr strings.Builder
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			st := waitExit(t, c, 30*time.Second)
			if st.ExitCode() != exitcode.Failure || !strings.Contains(stderr.String(), "no space left on device") {
				t.Fatalf("round %d %q: exit %d, stderr %q; want exit 1 saying the device is full", round, v, st.ExitCode(), stderr.String())
			}
		}
	}
}
