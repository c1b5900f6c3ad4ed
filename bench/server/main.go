// Command server is the local HTTP server the benchmark scripts fetch from:
// small HTML pages on 127.0.0.1, so that the tools compared are measured
// against the same server in the same run, with no network in between.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	addrFile := flag.String("addr-file", "", "write the listening address to this file")
	size := flag.Int("size", 1024, "approximate page size in bytes")
	page := flag.String("page", "", "serve this HTML file for every /page/N instead of a generated page")
	flag.Parse()

	filler := strings.Repeat("lorem ipsum ", max(0, *size-80)/12)
	var fixed []byte
	if *page != "" {
		var err error
		if fixed, err = os.ReadFile(*page); err != nil {
			log.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/page/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if fixed != nil {
			w.Write(fixed)
			return
		}
		fmt.Fprintf(w, "<html><head><title>page %s</title></head><body>%s</body></html>", r.PathValue("n"), filler)
	})
	// /tiny/N is a few bytes, for memory against list length.
	mux.HandleFunc("/tiny/{n}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	// /tail/N answers after 500ms when N is a multiple of 100, else after
	// 1ms: 1% slow URLs, for the head-of-line blocking scenario.
	mux.HandleFunc("/tail/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		d := time.Millisecond
		if n%100 == 0 {
			d = 500 * time.Millisecond
		}
		time.Sleep(d)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>tail %d</title></head><body>%s</body></html>", n, filler)
	})
	// /big/N streams N bytes, for measuring memory while saving huge bodies.
	mux.HandleFunc("/big/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		chunk := make([]byte, 64<<10)
		for n > 0 {
			k := min(n, int64(len(chunk)))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(l.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	log.Fatal(http.Serve(l, mux))
}
