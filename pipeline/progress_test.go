package pipeline

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/stats"
)

// TestProgressCountsFetchesAheadOfWrites: in input order a slow first URL
// holds every record back, but the URLs behind it are fetched meanwhile,
// and progress must see them (with their bytes) before anything is written.
func TestProgressCountsFetchesAheadOfWrites(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "0123456789")
	}))
	defer srv.Close()
	urls := []string{srv.URL + "/slow"}
	for i := range 20 {
		urls = append(urls, fmt.Sprintf("%s/%d", srv.URL, i))
	}
	var buf lockedBuffer
	cfg := testConfig(t, urls, &buf)
	cfg.Transforms = nil
	progress := make(chan *stats.Stats, 1)
	cfg.Progress = func(p Progress) func() {
		progress <- p.Stats
		return func() {}
	}
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), cfg)
		done <- err
	}()
	var st *stats.Stats
	select {
	case st = <-progress:
	case <-time.After(10 * time.Second):
		t.Fatal("the progress display was never started")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap := st.Snapshot(time.Now())
		if snap.Records != 0 {
			t.Fatalf("%d records written while the first URL was still held", snap.Records)
		}
		if snap.Fetched == 20 && snap.FetchedBytes == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fetched %d URLs (%d bytes) behind the slow one, want 20 (200 bytes)", snap.Fetched, snap.FetchedBytes)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end")
	}
	if snap := st.Snapshot(time.Now()); snap.Fetched != 21 || snap.Records != 21 {
		t.Fatalf("fetched %d, wrote %d; want 21 each", snap.Fetched, snap.Records)
	}
}

// TestHostCapReachesTheSummary: the throttle's measure of the per-host cap
// ends up in the run's figures, with the fetch stage's workers.
func TestHostCapReachesTheSummary(t *testing.T) {
	srv := newPeakServer(20 * time.Millisecond)
	defer srv.Close()
	var urls []string
	for i := range 60 {
		urls = append(urls, fmt.Sprintf("%s/%d", srv.URL, i))
	}
	cfg := testConfig(t, urls, io.Discard)
	cfg.Transforms = nil
	cfg.FetchStage = Stage{Workers: 4}
	cfg.Throttle = throttle.Options{PerHost: 1}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 60 URLs one at a time, 20ms each, three workers idle throughout.
	h := res.Snapshot.HostCap
	if h.PerHost != 1 || h.Workers != 4 || h.Held < time.Second || h.IdleWorkers() != 3 || !h.Limited() {
		t.Fatalf("host cap = %+v (idle %.2f), want 3 of 4 workers idle for over a second", h, h.IdleWorkers())
	}
}
