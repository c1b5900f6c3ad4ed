// Command server is the local HTTP server the benchmark scripts fetch from:
// small HTML pages on 127.0.0.1, so that the tools compared are measured
// against the same server in the same run, with no network in between.
//
// With -hosts N it listens on N loopback addresses at once (127.0.1.1,
// 127.0.1.2, ... on Linux every 127.0.0.0/8 address is the loopback, with
// no setup), all on one port, so that a client sees N distinct hosts; with
// -delay every /page/N answers after that long, like a distant server.
// /conns counts the connections accepted so far.
// With -free-ports N it only prints N free TCP ports on 127.0.0.1 and exits,
// for servers such as nginx that cannot report the port they were given.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addrFile := flag.String("addr-file", "", "write the listening address (one host:port a line with -hosts) to this file")
	size := flag.Int("size", 1024, "generated page size in bytes (at least the markup around the title)")
	pageFile := flag.String("page", "", "serve this HTML file for every /page/N instead of a generated page")
	hosts := flag.Int("hosts", 0, "listen on this many consecutive loopback addresses from -host-base, one port for all (0: 127.0.0.1 only)")
	hostBase := flag.String("host-base", "127.0.1.1", "first address for -hosts")
	delay := flag.Duration("delay", 0, "answer every /page/N after this long")
	freePorts := flag.Int("free-ports", 0, "print this many free TCP ports on 127.0.0.1, one a line, and exit")
	flag.Parse()

	if *freePorts > 0 {
		printFreePorts(*freePorts)
		return
	}
	filler := strings.Repeat("lorem ipsum ", *size/12+1)
	// page is a generated HTML page of exactly -size bytes (or just the
	// markup, if that is longer) with this title.
	page := func(w io.Writer, title string) {
		const head, tail = "<html><head><title>", "</title></head><body></body></html>"
		pad := max(0, *size-len(head)-len(title)-len(tail))
		io.WriteString(w, head+title+"</title></head><body>"+filler[:pad]+"</body></html>")
	}
	var fixed []byte
	if *pageFile != "" {
		var err error
		if fixed, err = os.ReadFile(*pageFile); err != nil {
			log.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/page/{n}", func(w http.ResponseWriter, r *http.Request) {
		if *delay > 0 {
			time.Sleep(*delay)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if fixed != nil {
			w.Write(fixed)
			return
		}
		page(w, "page "+r.PathValue("n"))
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
		page(w, "tail "+strconv.Itoa(n))
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

	// /conns is the number of connections accepted so far (this request's
	// included), for the scripts to count those a client opened.
	var accepted atomic.Int64
	mux.HandleFunc("/conns", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, accepted.Load())
	})

	var ls []net.Listener
	if *hosts > 0 {
		base, err := netip.ParseAddr(*hostBase)
		if err != nil || !base.Is4() || !base.IsLoopback() {
			log.Fatalf("-host-base %q: want an IPv4 loopback address", *hostBase)
		}
		ls = listenHosts(base, *hosts)
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		ls = []net.Listener{l}
	}
	if *addrFile != "" {
		var b strings.Builder
		for i, l := range ls {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(l.Addr().String())
		}
		if len(ls) > 1 {
			b.WriteByte('\n')
		}
		// Written under another name and renamed, so that a script polling
		// for the file never reads half of it.
		if err := os.WriteFile(*addrFile+".tmp", []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(*addrFile+".tmp", *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: mux, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- srv.Serve(l) }()
	}
	log.Fatal(<-errc)
}

// listenHosts listens on n consecutive addresses from base, all on the
// port the first one was given. Another program may already hold that port
// on one of the other addresses; then it starts again on a new port.
func listenHosts(base netip.Addr, n int) []net.Listener {
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", netip.AddrPortFrom(base, 0).String())
		if err != nil {
			log.Fatal(err)
		}
		port := uint16(first.Addr().(*net.TCPAddr).Port)
		ls := []net.Listener{first}
		a := base
		for len(ls) < n {
			a = a.Next()
			if !a.IsLoopback() {
				log.Fatalf("-hosts %d from %s leaves the loopback range", n, base)
			}
			var l net.Listener
			if l, err = net.Listen("tcp", netip.AddrPortFrom(a, port).String()); err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == n {
			return ls
		}
		for _, l := range ls {
			l.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			log.Fatal(err)
		}
	}
	log.Fatalf("no port free on all %d addresses from %s", n, base)
	return nil
}

// printFreePorts prints n distinct ports that were free on 127.0.0.1 a
// moment ago: each is bound with port 0, read back, and released. The
// caller starts its server on them at once and retries if one was taken.
func printFreePorts(n int) {
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
}
