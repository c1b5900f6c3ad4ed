package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// countingLimiter records what fetch asks of a Limiter.
type countingLimiter struct {
	mu       sync.Mutex
	waits    []string
	observed []int
}

func (l *countingLimiter) Wait(_ context.Context, u *url.URL) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits = append(l.waits, u.Path)
	return nil
}

func (l *countingLimiter) Observe(_ *url.URL, status int, _ interface{ Get(string) string }) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed = append(l.observed, status)
}

// TestLimiterPaysForEveryRequestButTheFirst: the scheduler pays a URL's
// first request; every redirect hop and every retry waits for the
// limiter, and every response is observed.
func TestLimiterPaysForEveryRequestButTheFirst(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start":
			http.Redirect(w, r, "/flaky", http.StatusFound)
		case "/flaky":
			if calls.Add(1) == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	lim := &countingLimiter{}
	o := testOptions()
	o.Limiter = lim
	r := fetchOne(t, newClient(t, o), srv.URL+"/start")
	if r.Err != nil || r.Attempts != 2 {
		t.Fatalf("attempts %d err %v", r.Attempts, r.Err)
	}
	// Attempt 1: /start (prepaid), the hop to /flaky (503). Attempt 2:
	// /start again (a retry pays), the hop to /flaky (200).
	want := []string{"/flaky", "/start", "/flaky"}
	if len(lim.waits) != len(want) {
		t.Fatalf("waits %v, want %v", lim.waits, want)
	}
	for i := range want {
		if lim.waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", lim.waits, want)
		}
	}
	if len(lim.observed) != 4 || lim.observed[1] != 503 || lim.observed[3] != 200 {
		t.Fatalf("observed %v", lim.observed)
	}
}
