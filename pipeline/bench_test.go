package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/record"
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

// rawServer answers every request on a keep-alive connection with one
// fixed response, allocating nothing per request, so that what a
// benchmark counts is trawl's own cost.
func rawServer(b *testing.B, body string) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	var wg sync.WaitGroup
	b.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// A request ends with an empty line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			})
		}
	})
	return "http://" + l.Addr().String()
}

// BenchmarkRunRaw is BenchmarkRun against a server that costs nothing per
// request: its allocations per record are the pipeline's alone.
func BenchmarkRunRaw(b *testing.B) {
	benchRaw(b, record.Extras{})
}

// BenchmarkRunRawExtra is BenchmarkRunRaw with every --extra fact: what
// they cost per record.
func BenchmarkRunRawExtra(b *testing.B) {
	benchRaw(b, record.Extras{Timing: true, Conn: true, TLS: true, Redirects: true})
}

func benchRaw(b *testing.B, extra record.Extras) {
	base := rawServer(b, "<html><head><title>page</title></head><body>"+strings.Repeat("lorem ipsum ", 80)+"</body></html>")
	for _, order := range []stage.Order{stage.InputOrder, stage.CompletionOrder} {
		b.Run(order.String(), func(b *testing.B) {
			var list strings.Builder
			for i := range b.N {
				fmt.Fprintf(&list, "%s/p/%d\n", base, i)
			}
			fo := fetch.Defaults()
			fo.Concurrency = 32
			fo.Extra = extra
			fo.Extra = extra
			cfg := Config{
				Stdin:          strings.NewReader(list.String()),
				Fetch:          fo,
				FetchStage:     Stage{Workers: 32, Order: order},
				TransformStage: Stage{Workers: 2, Order: order},
				Format:         sink.JSONL,
				Stdout:         io.Discard,
				Grace:          time.Second,
				FlushEvery:     time.Second,
				Throttle:       throttle.Options{Adaptive: true},
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := Run(b.Context(), cfg); err != nil {
				b.Fatal(err)
			}
		})
	}
}
