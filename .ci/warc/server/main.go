// Command server is the WARC check's local test site (.ci/warc/check.sh):
// pages whose bodies are the same on every request, so that a checker can
// fetch them again and compare digests with the archive.
//
//	server -addr-file FILE [-delay D] [-urls FILE]
//
// It listens on 127.0.0.1 (a free port), writes the address to FILE and,
// with -urls, the list of 1,000 URLs the check fetches. Paths:
//
//	/page/N.html   HTML with a Content-Length
//	/data/N.json   JSON
//	/chunked/N     HTML sent in chunked transfer encoding
//	/same/N        one payload for every N (revisits, with --dedupe)
//	/gzip          HTML sent with Content-Encoding: gzip
//	/big           20 MiB of pseudo-random bytes
//	/missing       404 with a body
//	/hop/1         302 to /hop/2, 301 to /hop/3, 307 to /final
//
// -delay answers every request after that long, so that a run lasts long
// enough to be killed in the middle.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	addrFile := flag.String("addr-file", "", "write the listening address to this file")
	urlsFile := flag.String("urls", "", "write the URL list to this file")
	delay := flag.Duration("delay", 0, "answer every request after this long")
	flag.Parse()
	if *addrFile == "" {
		log.Fatal("-addr-file is required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if *urlsFile != "" {
		if err := os.WriteFile(*urlsFile, []byte(strings.Join(urlList(base), "\n")+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	// The address last: the script waits for this file.
	if err := os.WriteFile(*addrFile+".tmp", []byte(ln.Addr().String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(*addrFile+".tmp", *addrFile); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: handler(*delay), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// urlList is the check's list: 1,000 URLs of every kind.
func urlList(base string) []string {
	special := []string{"/missing", "/hop/1", "/gzip", "/big"}
	var out []string
	for _, p := range special {
		out = append(out, base+p)
	}
	for i := 0; i < 10; i++ {
		out = append(out, fmt.Sprintf("%s/same/%d", base, i))
	}
	for i := 0; len(out) < 1000; i++ {
		switch i % 3 {
		case 0:
			out = append(out, fmt.Sprintf("%s/page/%d.html", base, i))
		case 1:
			out = append(out, fmt.Sprintf("%s/data/%d.json", base, i))
		default:
			out = append(out, fmt.Sprintf("%s/chunked/%d", base, i))
		}
	}
	return out
}

func handler(delay time.Duration) http.Handler {
	big := make([]byte, 20<<20)
	rng := rand.NewChaCha8([32]byte{'t', 'r', 'a', 'w', 'l'})
	rng.Read(big)
	gz := gzipped(page("gzip", 40))
	mux := http.NewServeMux()
	mux.HandleFunc("/page/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page(r.PathValue("n"), 20))
	})
	mux.HandleFunc("/data/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"item":%q,"price":%d,"tags":["a","b"]}`, r.PathValue("n"), len(r.PathValue("n"))*7)
	})
	mux.HandleFunc("/chunked/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		body := page("chunked "+r.PathValue("n"), 30)
		// Flushing in the middle makes net/http send chunks.
		half := len(body) / 2
		w.Write(body[:half])
		w.(http.Flusher).Flush()
		w.Write(body[half:])
	})
	mux.HandleFunc("/same/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("the same payload for every /same/ URL\n"))
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(len(gz)))
		w.Write(gz)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write(page("not found", 2))
	})
	hops := map[string]struct {
		to   string
		code int
	}{"1": {"/hop/2", http.StatusFound}, "2": {"/hop/3", http.StatusMovedPermanently}, "3": {"/final", http.StatusTemporaryRedirect}}
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hops[r.PathValue("n")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Location", h.to)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(h.code)
		w.Write([]byte("moved to " + h.to + "\n"))
	})
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(page("final", 3))
	})
	if delay <= 0 {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		mux.ServeHTTP(w, r)
	})
}

// page is an HTML page about name with n paragraphs.
func page(name string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!doctype html><html><head><title>%s</title></head><body>\n", name)
	for i := range n {
		fmt.Fprintf(&b, "<p>Paragraph %d of %s: the quick brown fox jumps over the lazy dog.</p>\n", i, name)
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}
