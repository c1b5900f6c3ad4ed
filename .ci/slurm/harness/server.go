package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// server answers the test list's URLs and counts every request by URL.
// /slow/N is held at a gate while the gate is closed, which is how the
// test keeps one shard mid-run, deterministically, until it has killed
// that shard's task.
type server struct {
	delay time.Duration

	mu      sync.Mutex
	counts  map[string]int
	closed  bool
	hits    int           // requests that reached the closed gate
	waiting int           // requests held at the gate now
	changed chan struct{} // closed and replaced on every change of the above
}

func newServer(delay time.Duration) *server {
	return &server{delay: delay, counts: map[string]int{}, changed: make(chan struct{})}
}

// update changes the state under the lock and wakes everyone waiting for
// a change.
func (s *server) update(f func()) {
	s.mu.Lock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/p/{n}", s.page(http.StatusOK))
	mux.HandleFunc("/slow/{n}", s.page(http.StatusOK))
	mux.HandleFunc("/missing/{n}", s.page(http.StatusNotFound))
	mux.HandleFunc("/broken/{n}", s.page(http.StatusInternalServerError))
	mux.HandleFunc("GET /_ci/counts", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, err := json.Marshal(s.counts)
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("POST /_ci/reset", func(w http.ResponseWriter, r *http.Request) {
		s.update(func() { s.counts = map[string]int{} })
	})
	mux.HandleFunc("POST /_ci/gate/close", func(w http.ResponseWriter, r *http.Request) {
		s.update(func() { s.closed, s.hits = true, 0 })
	})
	mux.HandleFunc("POST /_ci/gate/open", func(w http.ResponseWriter, r *http.Request) {
		s.update(func() { s.closed = false })
	})
	mux.HandleFunc("GET /_ci/gate/wait", s.waitGate)
	return mux
}

// page answers with a small HTML page and the given status, after the
// server's delay (standing in for the network), counting the request
// first so that a request cut off by a kill is counted too.
func (s *server) page(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := "http://" + r.Host + r.URL.RequestURI()
		s.update(func() { s.counts[key]++ })
		if strings.HasPrefix(r.URL.Path, "/slow/") && !s.pass(r) {
			return
		}
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><p>%s</p></body></html>\n", status, r.URL.Path, r.Host)
	}
}

// pass holds a request while the gate is closed. It reports false when the
// client went away first (its process was killed).
func (s *server) pass(r *http.Request) bool {
	s.mu.Lock()
	if !s.closed {
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	s.update(func() { s.hits++; s.waiting++ })
	defer s.update(func() { s.waiting-- })
	for {
		s.mu.Lock()
		closed, changed := s.closed, s.changed
		s.mu.Unlock()
		if !closed {
			return true
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return false
		}
	}
}

// waitGate answers once at least ?hits= requests have reached the closed
// gate and exactly ?waiting= are held there (each only when given), or
// with 504 after ?timeout= (default 60s), so that the script's waits are
// bounded without polling.
func (s *server) waitGate(w http.ResponseWriter, r *http.Request) {
	hits, errH := optInt(r, "hits")
	waiting, errW := optInt(r, "waiting")
	timeout, errT := time.ParseDuration(r.URL.Query().Get("timeout"))
	if r.URL.Query().Get("timeout") == "" {
		timeout, errT = time.Minute, nil
	}
	if err := errors.Join(errH, errW, errT); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		h, wt, changed := s.hits, s.waiting, s.changed
		s.mu.Unlock()
		if (hits < 0 || h >= hits) && (waiting < 0 || wt == waiting) {
			fmt.Fprintf(w, "{\"hits\":%d,\"waiting\":%d}\n", h, wt)
			return
		}
		select {
		case <-changed:
		case <-deadline:
			http.Error(w, fmt.Sprintf("gate: %d hits and %d waiting after %s", h, wt, timeout), http.StatusGatewayTimeout)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// optInt reads a query parameter, -1 when it is absent.
func optInt(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number", name, v)
	}
	return n, nil
}

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	delay := fs.Duration("delay", 0, "answer every page after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: harness serve [-delay D] ADDRFILE")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Written under a temporary name and renamed, so that the script never
	// reads half an address.
	tmp := fs.Arg(0) + ".tmp"
	if err := os.WriteFile(tmp, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, fs.Arg(0)); err != nil {
		return err
	}
	srv := &http.Server{Handler: newServer(*delay).handler(), ErrorLog: log.New(io.Discard, "", 0)}
	return srv.Serve(l)
}

func cmdGet(args []string) error {
	if len(args) != 1 && !(len(args) == 2 && args[0] == "-post") {
		return errors.New("usage: harness get [-post] URL")
	}
	var resp *http.Response
	var err error
	if len(args) == 2 {
		resp, err = http.Post(args[1], "text/plain", nil)
	} else {
		resp, err = http.Get(args[0])
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", args[len(args)-1], resp.Status, body)
	}
	_, err = os.Stdout.Write(body)
	return err
}

func cmdPorts(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: harness ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("bad count %q", args[0])
	}
	// All held open at once, so that the N are distinct; the daemons bind
	// them a moment later, which another process could beat, but only on
	// this machine and rarely.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
