// Command server is the local HTTP server the benchmark scripts fetch from:
// small HTML pages on 127.0.0.1, so that the tools compared are measured
// against the same server in the same run, with no network in between.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
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
