package pipeline

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/stage"
)

// BenchmarkRun pushes b.N URLs through the whole pipeline (reading, fetch
// from an in-process server, JSON Lines writing) and reports the cost and
// allocations per record.
func BenchmarkRun(b *testing.B) {
	page := "<html><head><title>page</title></head><body>" + strings.Repeat("lorem ipsum ", 80) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page)
	}))
	defer srv.Close()
	for _, order := range []stage.Order{stage.InputOrder, stage.CompletionOrder} {
		b.Run(order.String(), func(b *testing.B) {
			var list strings.Builder
			for i := range b.N {
				fmt.Fprintf(&list, "%s/p/%d\n", srv.URL, i)
			}
			fo := fetch.Defaults()
			fo.Concurrency = 32
			cfg := Config{
				Stdin:          strings.NewReader(list.String()),
				Fetch:          fo,
				FetchStage:     Stage{Workers: 32, Order: order},
				TransformStage: Stage{Workers: 2, Order: order},
				Format:         sink.JSONL,
				Stdout:         io.Discard,
				Grace:          time.Second,
				FlushEvery:     time.Second,
				Throttle:       throttle.Options{PerHost: 32, Adaptive: true},
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := Run(b.Context(), cfg); err != nil {
				b.Fatal(err)
			}
		})
	}
}
