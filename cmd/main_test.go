package cmd

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the trawl command for the scripts
// and for the signal tests, which run it as a real child process.
func TestMain(m *testing.M) {
	// A binary built with -race sleeps a second at exit by default, to let
	// other goroutines report races; the tests start trawl hundreds of
	// times, so that second is most of their time. Children inherit this.
	os.Setenv("GORACE", raceOptions())
	testscript.Main(m, map[string]func(){
		"trawl": func() { os.Exit(Main()) },
	})
}

// raceOptions is GORACE with the race detector's exit sleep turned off,
// and whatever else the caller asked for kept.
func raceOptions() string {
	opts := os.Getenv("GORACE")
	if strings.Contains(opts, "atexit_sleep_ms") {
		return opts
	}
	return strings.TrimSpace(opts + " atexit_sleep_ms=0")
}

// TestScripts runs the end-to-end CLI scripts in testdata/script against a
// local server whose address is in $SRV.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("..", "testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			srv := httptest.NewServer(newTestHandler())
			env.Defer(srv.Close)
			env.Setenv("SRV", srv.URL)
			env.Setenv("GORACE", raceOptions())
			env.Setenv("SRVPORT", srv.URL[strings.LastIndexByte(srv.URL, ':')+1:])
			pages, err := filepath.Abs(filepath.Join("..", "testdata", "pages"))
			if err != nil {
				return err
			}
			env.Setenv("PAGES", pages)
			// Keep any config of the machine running the tests out of the way.
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"genurls":  cmdGenURLs,
			"longline": cmdLongLine,
			"jsonl":    cmdJSONL,
			"fields":   cmdFields,
			"expand":   cmdExpand,
			"tlspki":   cmdTLSPKI,
			"authsrv":  cmdAuthSrv,
		},
	})
}

// cmdGenURLs writes N lines from a template in which {i} stands for the
// line number from 0: genurls N TEMPLATE FILE.
func cmdGenURLs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: genurls N TEMPLATE FILE")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.ReplaceAll(args[1], "{i}", strconv.Itoa(i)) + "\n")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(b.String()), 0o644))
}

// cmdLongLine writes a 1 MiB line followed by a valid URL: longline URL FILE.
func cmdLongLine(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: longline URL FILE")
	}
	content := "http://x.test/" + strings.Repeat("a", 1<<20) + "\n" + args[0] + "\n"
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(content), 0o644))
}

// cmdJSONL checks a JSON Lines file: every line is a JSON object, the
// indexes are exactly 0..N-1 each once, and with "ordered" they ascend;
// with "shuffled" they must not (completion order was really used).
//
//	jsonl FILE N [ordered|shuffled]
func cmdJSONL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: jsonl FILE N [ordered|shuffled]")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	seen := make(map[int]bool)
	ascending := true
	prev := -1
	for sc.Scan() {
		var rec struct {
			Index *int `json:"index"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Index == nil {
			ts.Fatalf("line %d is not a record: %.200q (%v)", len(seen)+1, sc.Text(), err)
		}
		i := *rec.Index
		if seen[i] {
			ts.Fatalf("index %d appears twice", i)
		}
		seen[i] = true
		if i < prev {
			ascending = false
		}
		prev = i
	}
	ts.Check(sc.Err())
	if len(seen) != want {
		ts.Fatalf("%d records, want %d", len(seen), want)
	}
	for i := range want {
		if !seen[i] {
			ts.Fatalf("index %d missing", i)
		}
	}
	if len(args) == 3 {
		switch args[2] {
		case "ordered":
			if !ascending {
				ts.Fatalf("records are not in input order")
			}
		case "shuffled":
			if ascending {
				ts.Fatalf("records are in input order although completion order was asked for")
			}
		default:
			ts.Fatalf("unknown check %q", args[2])
		}
	}
}

// cmdExpand replaces $VAR references in files with the script's
// environment, so URL lists in the script archive can name $SRV.
//
//	expand FILE...
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, name := range args {
		data, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(name), []byte(os.Expand(string(data), ts.Getenv)), 0o644))
	}
}

// cmdFields prints chosen fields of each record of a JSON Lines file, one
// record per line separated by spaces, so scripts can cmp stable parts of
// the output (durations vary, so whole lines cannot be compared).
//
//	fields FILE KEY...
func cmdFields(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: fields FILE KEY...")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber() // print numbers exactly as trawl wrote them
		if err := dec.Decode(&rec); err != nil {
			ts.Fatalf("not a JSON record: %.200q", line)
		}
		var out []string
		for _, k := range args[1:] {
			v, ok := rec[k]
			if !ok {
				ts.Fatalf("record has no field %q: %.200q", k, line)
			}
			switch x := v.(type) {
			case nil:
				out = append(out, "null")
			case string:
				out = append(out, x)
			default:
				var b strings.Builder
				enc := json.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				enc.Encode(x)
				out = append(out, strings.TrimSuffix(b.String(), "\n"))
			}
		}
		fmt.Fprintln(ts.Stdout(), strings.Join(out, " "))
	}
}

// testHandler is the misbehaving-on-demand server the scripts talk to.
type testHandler struct {
	mu     sync.Mutex
	counts map[string]int
	mux    *http.ServeMux
}

func newTestHandler() *testHandler {
	h := &testHandler{counts: make(map[string]int)}
	mux := http.NewServeMux()
	// /page/N[?delay=ms]: an HTML page titled "page N".
	mux.HandleFunc("/page/{n}", func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("delay")); err == nil {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>page %s</title></head><body>hi</body></html>", r.PathValue("n"))
	})
	// /status/CODE: an empty response with that status.
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	// /flaky/ID?fail=N[&after=S]: 503 (with Retry-After S) N times per ID, then 200.
	mux.HandleFunc("/flaky/{id}", func(w http.ResponseWriter, r *http.Request) {
		fail, _ := strconv.Atoi(r.URL.Query().Get("fail"))
		h.mu.Lock()
		h.counts[r.PathValue("id")]++
		n := h.counts[r.PathValue("id")]
		h.mu.Unlock()
		if n <= fail {
			if after := r.URL.Query().Get("after"); after != "" {
				w.Header().Set("Retry-After", after)
			}
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "<title>recovered after %d</title>", n-1)
	})
	// /reflect[?fail=N&id=ID]: a JSON description of the request (method,
	// body, Content-Type, Accept, the request count for ID), after
	// answering 503 N times per ID.
	mux.HandleFunc("/reflect", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.URL.Query().Get("id")
		h.mu.Lock()
		h.counts["reflect "+id]++
		n := h.counts["reflect "+id]
		h.mu.Unlock()
		if fail, _ := strconv.Atoi(r.URL.Query().Get("fail")); n <= fail {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "body": string(body), "type": r.Header.Get("Content-Type"),
			"accept": r.Header.Get("Accept"), "auth": r.Header.Get("Authorization"), "n": n, "query": r.URL.RawQuery})
	})
	// /see-other: 303 to /reflect, as an API does after a POST.
	mux.HandleFunc("/see-other", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, "/reflect?id=after-303", http.StatusSeeOther)
	})
	// /hang: never answers; only the client giving up ends it.
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	// /reset: the connection is reset before any response.
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	})
	// /csv: a title and body full of CSV metacharacters.
	mux.HandleFunc("/csv", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>Hello, \"quoted\" world</title>\nline one,\n\"two\"")
	})
	// /echo: a title made of the request's User-Agent and X-Test header.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>ua=%s x=%s</title>", r.UserAgent(), r.Header.Get("X-Test"))
	})
	// /host: a title naming the Host the request was for, which shows how
	// a name was encoded when the server is used as a proxy.
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>host=%s</title>", r.Host)
	})
	// /fixture/NAME: a file of testdata/pages, typed by its extension only
	// (no charset), so that charset sniffing is exercised.
	mux.HandleFunc("/fixture/{name}", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "pages", filepath.Base(r.PathValue("name"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := "application/octet-stream"
		switch filepath.Ext(r.PathValue("name")) {
		case ".html":
			ct = "text/html"
		case ".json":
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Write(data)
	})
	// /redirect/N: N redirects, then a page.
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			http.Redirect(w, r, "/page/end", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://files.example.test/x", http.StatusFound)
	})
	// /ansi: a title full of terminal control sequences.
	mux.HandleFunc("/ansi", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>\x1b[31mred\x1b[0m alert\x07</title>")
	})
	// /gzip: a gzip-encoded page.
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "<title>"+strings.Repeat("compressed ", 100)+"</title>")
		zw.Close()
	})
	// /cookie/set and /cookie/get: a cookie round trip.
	mux.HandleFunc("/cookie/set", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cret", Path: "/"})
	})
	mux.HandleFunc("/cookie/get", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		c, err := r.Cookie("session")
		if err != nil {
			io.WriteString(w, "<title>no cookie</title>")
			return
		}
		fmt.Fprintf(w, "<title>cookie %s</title>", c.Value)
	})
	// /big?kib=N: N KiB of text.
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("kib"))
		io.WriteString(w, strings.Repeat(strings.Repeat("x", 1023)+"\n", n))
	})
	// /etag/N[?v=V]: a page with the ETag "N-V" (V: 1 unless given) and
	// a fixed Last-Modified, answering 304 to an If-None-Match that
	// matches; /etag-count tells how many full answers and 304s it gave.
	mux.HandleFunc("/etag/{n}", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("v")
		if v == "" {
			v = "1"
		}
		etag := `"` + r.PathValue("n") + "-" + v + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Tue, 01 Dec 2026 03:15:00 GMT")
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("If-None-Match") == etag {
			h.counts["etag 304"]++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.counts["etag full"]++
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>etag %s</title></head><body>%s</body></html>", etag, strings.Repeat("x", 1000))
	})
	mux.HandleFunc("/etag-count", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"full":%d,"not_modified":%d}`, h.counts["etag full"], h.counts["etag 304"])
	})
	// /robots.txt depends on the host asked for (scripts name hosts with
	// --resolve): r500.test fails, r404.test has none, any other has
	// rules for trawl with Disallow, Allow, wildcards and a Crawl-delay.
	// /robots-count tells how often each host's was asked for.
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		h.mu.Lock()
		h.counts["robots "+host]++
		h.mu.Unlock()
		switch host {
		case "r500.test":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "r404.test":
			http.NotFound(w, r)
		default:
			io.WriteString(w, "User-agent: *\nDisallow: /\n\nUser-agent: trawl\nDisallow: /page/\nAllow: /page/1\nDisallow: /*.pdf$\nCrawl-delay: 0.01\n")
		}
	})
	mux.HandleFunc("/robots-count", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>%d %d %d</title>", h.counts["robots 127.0.0.1"], h.counts["robots r500.test"], h.counts["robots r404.test"])
	})
	h.mux = mux
	return h
}

func (h *testHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}
