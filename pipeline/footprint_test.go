package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/transform"
)

// TestFootprintMatchesHeap holds records as the stages do, after each step
// (read, fetched, transformed, written), and checks that record.Footprint,
// which bounds the reorder windows and the --dedupe cache, agrees with the
// heap they hold: within 10% under and 15% over.
func TestFootprintMatchesHeap(t *testing.T) {
	for _, size := range []int{200, 1000, 20000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			page := "<html><head><title>page title here</title></head><body>" + strings.Repeat("lorem ipsum ", size/12) + "</body></html>"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				io.WriteString(w, page)
			}))
			defer srv.Close()
			client, err := fetch.New(fetch.Defaults())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			sp, _ := transform.ParseSpec("title")
			chain, err := transform.Builtin().NewChain([]transform.Spec{sp}, func(string) bool { return false }, transform.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, "%s/some/path/%d?q=%d\n", srv.URL, i, i)
			}
			list := b.String()
			// The connection and the client's buffers are there before
			// the records, and stay.
			warm := &record.Record{URL: srv.URL}
			warm.Target, _ = source.ParseURL(srv.URL)
			client.Fetch(t.Context(), warm)

			recs := make([]*record.Record, 0, n)
			base := liveHeap()
			in, _ := source.Read(t.Context(), source.Options{Stdin: strings.NewReader(list)})
			for r := range in {
				recs = append(recs, r)
			}
			check := func(step string) {
				var fp int64
				for _, r := range recs {
					fp += r.Footprint()
				}
				measured := int64(liveHeap()) - int64(base)
				t.Logf("%s: %d bytes a record measured, %d by Footprint", step, measured/n, fp/n)
				if fp < measured*9/10 || fp > measured*115/100 {
					t.Errorf("%s: Footprint counts %d bytes for %d measured", step, fp, measured)
				}
			}
			check("read")
			for _, r := range recs {
				client.Fetch(context.Background(), r)
				if r.Status != 200 {
					t.Fatalf("%s: %d %v", r.URL, r.Status, r.Err)
				}
			}
			check("fetched")
			for _, r := range recs {
				chain.Apply(context.Background(), r)
			}
			check("transformed")
			for _, r := range recs {
				r.Body, r.Header = nil, nil
			}
			check("written")
			runtime.KeepAlive(recs)
			runtime.KeepAlive(list)
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	// The least of a few readings: other goroutines (the server, the
	// client's connections) can allocate between a collection and its
	// reading, and a base read high makes every later step look small.
	var least uint64
	for i := range 3 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if i == 0 || ms.HeapAlloc < least {
			least = ms.HeapAlloc
		}
	}
	return least
}
