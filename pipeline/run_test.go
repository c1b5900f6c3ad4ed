package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/stage"
	"github.com/trawl-dev/trawl/stats"
	"github.com/trawl-dev/trawl/transform"
)

// lockedBuffer lets the test read what the sink wrote without racing it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tolerateAll lets a test run end as "ok" whatever failed, so that its
// error is trawl's own failure only.
var tolerateAll, _ = stats.ParseTolerance("100%")

func testConfig(t *testing.T, urls []string, out io.Writer) Config {
	t.Helper()
	fo := fetch.Defaults()
	fo.RetryDelay = time.Millisecond
	fo.Timeout = 10 * time.Second
	sp, _ := transform.ParseSpec("title")
	return Config{
		Stdin:            strings.NewReader(strings.Join(urls, "\n")),
		Fetch:            fo,
		FetchStage:       Stage{Workers: 8},
		TransformStage:   Stage{Workers: 2},
		Transforms:       []transform.Spec{sp},
		TransformOptions: transform.DefaultOptions(),
		Format:           sink.JSONL,
		Stdout:           out,
		Grace:            time.Second,
		FlushEvery:       time.Second,
		MaxFailures:      tolerateAll,
		Throttle:         throttle.Options{Adaptive: true},
	}
}

type line struct {
	Index     int64   `json:"index"`
	URL       string  `json:"url"`
	Status    *int    `json:"status"`
	ErrorKind *string `json:"error_kind"`
	Title     *string `json:"title"`
}

func parseLines(t *testing.T, s string) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("invalid JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func pageServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Path, "/p/%d", &n)
		// Uneven delays make completion order differ from input order.
		time.Sleep(time.Duration(n%5) * time.Millisecond)
		if n%10 == 9 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>page %d</title>", n)
	}))
}

func TestRunEveryLineOneRecord(t *testing.T) {
	srv := pageServer()
	defer srv.Close()
	var urls []string
	for i := range 200 {
		if i%50 == 7 {
			urls = append(urls, "not a url")
			continue
		}
		urls = append(urls, fmt.Sprintf("%s/p/%d", srv.URL, i))
	}
	// Production always schedules fetches through the per-host gate; it
	// runs here both limiting (a cap below the workers) and not.
	for _, perHost := range []int{0, 3} {
		for _, order := range []stage.Order{stage.InputOrder, stage.CompletionOrder} {
			t.Run(fmt.Sprintf("%s/per-host=%d", order, perHost), func(t *testing.T) {
				everyLineOneRecord(t, urls, order, perHost)
			})
		}
	}
}

func everyLineOneRecord(t *testing.T, urls []string, order stage.Order, perHost int) {
	var buf lockedBuffer
	cfg := testConfig(t, urls, &buf)
	cfg.Throttle.PerHost = perHost
	cfg.FetchStage.Order, cfg.TransformStage.Order = order, order
	res, err := Run(t.Context(), cfg)
	if err != nil || res.Outcome != "ok" {
		t.Fatal(res, err)
	}
	lines := parseLines(t, buf.String())
	if len(lines) != len(urls) {
		t.Fatalf("%d records for %d lines", len(lines), len(urls))
	}
	seen := map[int64]bool{}
	inOrder := true
	for i, l := range lines {
		seen[l.Index] = true
		if l.Index != int64(i) {
			inOrder = false
		}
		if l.URL != urls[l.Index] {
			t.Fatalf("record %d has url %q, want %q", l.Index, l.URL, urls[l.Index])
		}
		switch {
		case urls[l.Index] == "not a url":
			if l.ErrorKind == nil || *l.ErrorKind != "invalid_url" {
				t.Errorf("record %d: want invalid_url", l.Index)
			}
		case l.Index%10 == 9:
			if l.Status == nil || *l.Status != 404 || *l.ErrorKind != "http_status" {
				t.Errorf("record %d: want 404 http_status", l.Index)
			}
		default:
			if l.Title == nil || *l.Title != fmt.Sprintf("page %d", l.Index) || l.ErrorKind != nil {
				t.Errorf("record %d: title %v kind %v", l.Index, l.Title, l.ErrorKind)
			}
		}
	}
	if len(seen) != len(urls) {
		t.Fatalf("%d distinct indexes for %d lines", len(seen), len(urls))
	}
	if order == stage.InputOrder && !inOrder {
		t.Fatal("input order mode wrote records out of order")
	}
	snap := res.Snapshot
	if snap.Records != int64(len(urls)) || snap.Failed != 4+20 {
		t.Fatalf("stats: %d records, %d failed", snap.Records, snap.Failed)
	}
}

// TestRunGracefulStop stops a run whose requests never finish: it must end
// soon after the grace period with a record for every URL it had started.
func TestRunGracefulStop(t *testing.T) {
	var started atomic.Int64
	allStarted := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if started.Add(1) == 4 {
			close(allStarted)
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	urls := make([]string, 100)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/hang/%d", srv.URL, i)
	}
	var buf lockedBuffer
	cfg := testConfig(t, urls, &buf)
	cfg.FetchStage.Workers = 4
	cfg.Grace = 20 * time.Millisecond
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		res, err := Run(ctx, cfg)
		if res.Outcome != "interrupted" || exitcode.Of(err) != exitcode.Interrupted {
			err = fmt.Errorf("a stopped run ended %q with %v", res.Outcome, err)
		} else {
			err = nil
		}
		done <- err
	}()
	<-allStarted
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	lines := parseLines(t, buf.String())
	if len(lines) < 4 {
		t.Fatalf("only %d records after stopping with 4 in flight", len(lines))
	}
	for i, l := range lines {
		if l.Index != int64(i) {
			t.Fatalf("gap: record %d has index %d", i, l.Index)
		}
		if l.ErrorKind == nil || *l.ErrorKind != "canceled" {
			t.Fatalf("record %d: kind %v, want canceled", i, l.ErrorKind)
		}
	}
}

// failingWriter fails every write, like a full disk.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestRunOutputFailureStopsTheRun(t *testing.T) {
	srv := pageServer()
	defer srv.Close()
	urls := make([]string, 100000)
	for i := range urls {
		urls[i] = srv.URL + "/p/1"
	}
	cfg := testConfig(t, urls, failingWriter{})
	cfg.FlushEvery = time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), cfg)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run kept going with a broken output")
	}
}

func TestRunReportsUnwritableOutputBeforeFetching(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	cfg := testConfig(t, []string{srv.URL}, io.Discard)
	cfg.Output = t.TempDir() + "/no/such/dir/out.jsonl"
	_, err := Run(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("err = %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("requests were sent although the output could not be created")
	}
}
