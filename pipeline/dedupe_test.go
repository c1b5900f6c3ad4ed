package pipeline

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/stage"
)

func TestDedupeFetchesOnceAndCopies(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		var n int
		fmt.Sscanf(r.URL.Path, "/p/%d", &n)
		time.Sleep(time.Duration(n%4) * time.Millisecond)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>page %d</title>", n)
	}))
	defer srv.Close()
	upper := strings.Replace(srv.URL, "http://", "HTTP://", 1)
	var urls []string
	for i := range 300 {
		n := i % 40 // 40 distinct pages, each about 7 times
		switch i % 3 {
		case 0:
			urls = append(urls, fmt.Sprintf("%s/p/%d", srv.URL, n))
		case 1:
			urls = append(urls, fmt.Sprintf("%s/p/%d#section", upper, n))
		default:
			urls = append(urls, fmt.Sprintf("%s/p/%d", srv.URL, n))
		}
	}
	for _, order := range []stage.Order{stage.InputOrder, stage.CompletionOrder} {
		t.Run(order.String(), func(t *testing.T) {
			mu.Lock()
			clear(hits)
			mu.Unlock()
			var buf lockedBuffer
			cfg := testConfig(t, urls, &buf)
			cfg.FetchStage = Stage{Workers: 8, Order: order}
			cfg.TransformStage.Order = order
			cfg.Throttle = throttle.Options{PerHost: 8}
			cfg.Dedupe = true
			if _, err := Run(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
			for p, n := range hits {
				if n != 1 {
					t.Errorf("%s fetched %d times", p, n)
				}
			}
			if len(hits) != 40 {
				t.Errorf("%d distinct pages fetched, want 40", len(hits))
			}
			seen := map[int]bool{}
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var rec struct {
					Index       int    `json:"index"`
					Status      int    `json:"status"`
					Attempts    int    `json:"attempts"`
					DuplicateOf *int   `json:"duplicate_of"`
					Title       string `json:"title"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatal(err)
				}
				seen[rec.Index] = true
				n := rec.Index % 40
				if rec.Title != fmt.Sprintf("page %d", n) || rec.Status != 200 {
					t.Fatalf("record %d: %s", rec.Index, line)
				}
				switch {
				case rec.Index < 40 && (rec.DuplicateOf != nil || rec.Attempts != 1):
					t.Fatalf("first occurrence %d: %s", rec.Index, line)
				case rec.Index >= 40 && (rec.DuplicateOf == nil || *rec.DuplicateOf != n || rec.Attempts != 0):
					t.Fatalf("duplicate %d: %s", rec.Index, line)
				}
			}
			if len(seen) != 300 {
				t.Fatalf("%d records for 300 lines", len(seen))
			}
		})
	}
}
