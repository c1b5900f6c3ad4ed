package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// etagServer serves /doc/N with an ETag and a Last-Modified date, answers
// 304 when the request's validator matches, and counts both kinds of
// answer; /dated/N has only a date. It notes the conditional headers of
// the last request.
type etagServer struct {
	full, notModified atomic.Int64
	mu                sync.Mutex
	lastINM, lastIMS  string
}

const lastModified = "Tue, 01 Dec 2026 03:15:00 GMT"

func (s *etagServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.lastINM, s.lastIMS = r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since")
	s.mu.Unlock()
	etag := `"v1-` + strings.TrimPrefix(r.URL.Path, "/doc/") + `"`
	w.Header().Set("Last-Modified", lastModified)
	switch {
	case strings.HasPrefix(r.URL.Path, "/dated/"):
		if r.Header.Get("If-Modified-Since") == lastModified {
			s.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	case r.Header.Get("If-None-Match") == etag:
		w.Header().Set("ETag", etag)
		s.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	default:
		w.Header().Set("ETag", etag)
	}
	s.full.Add(1)
	w.Header().Set("Content-Type", "text/html")
	fmt.Fprintf(w, "<title>%s</title>%s", r.URL.Path, strings.Repeat("x", 1000))
}

func (s *etagServer) conditional() (inm, ims string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastINM, s.lastIMS
}

// countingStore is a BodyStore that counts the bodies it was given.
type countingStore struct{ created atomic.Int64 }

func (s *countingStore) Create(*record.Record, BodyStart) (BodyFile, error) {
	s.created.Add(1)
	return &nullFile{}, nil
}

type nullFile struct{}

func (*nullFile) Write(p []byte) (int, error) { return len(p), nil }
func (*nullFile) Commit(r *record.Record) error {
	r.File, r.FileDigest = "new-file", "new-digest"
	return nil
}
func (*nullFile) Abort() {}
func (*nullFile) Keep()  {}

// TestConditionalRefetch: with a previous record, the request carries its
// validators; a 304 is a success that keeps status 304, says not_modified,
// carries over what the body gave last time and saves no file, whatever
// --accept says; a stale validator gets the full body; without a previous
// record, or for a method that does not fetch, nothing is conditional.
func TestConditionalRefetch(t *testing.T) {
	srv := &etagServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	store := &countingStore{}
	o := testOptions()
	o.Store = store
	o.Accept, _ = ParseStatusSet("200") // 304 is not in it: --since still takes it
	c := newClient(t, o)

	prev := &record.Previous{ETag: `"v1-1"`, LastModified: lastModified, ContentType: "text/html; old", Bytes: 1234,
		Truncated: true, File: "old/file.html", FileDigest: "olddigest", Values: []any{"old title"}}
	r := recordFor(t, ts.URL+"/doc/1")
	r.Prev = prev
	c.Fetch(t.Context(), r)
	if inm, ims := srv.conditional(); inm != `"v1-1"` || ims != lastModified {
		t.Fatalf("sent If-None-Match %q, If-Modified-Since %q", inm, ims)
	}
	if !r.OK() || r.Status != http.StatusNotModified || !r.NotModified {
		t.Fatalf("304: ok %v status %d not_modified %v err %v", r.OK(), r.Status, r.NotModified, r.Err)
	}
	if r.Bytes != 1234 || r.WireBytes != 0 || !r.Truncated || r.ContentType != "text/html; old" || r.File != "old/file.html" ||
		r.FileDigest != "olddigest" || len(r.Values) != 1 || r.Values[0] != "old title" || r.ETag != `"v1-1"` {
		t.Fatalf("carried over: %+v", r)
	}
	if srv.full.Load() != 0 || store.created.Load() != 0 {
		t.Fatalf("%d full answers, %d files saved for a 304", srv.full.Load(), store.created.Load())
	}

	// Only a date: If-Modified-Since alone, and the old ETag stays.
	r = recordFor(t, ts.URL+"/dated/1")
	r.Prev = &record.Previous{LastModified: lastModified, ETag: ""}
	c.Fetch(t.Context(), r)
	if inm, _ := srv.conditional(); inm != "" || !r.NotModified || r.LastModified != lastModified {
		t.Fatalf("date only: If-None-Match %q, not_modified %v, last_modified %q", inm, r.NotModified, r.LastModified)
	}

	// A stale ETag: the full body, saved, and its new validators.
	r = recordFor(t, ts.URL+"/doc/2")
	r.Prev = &record.Previous{ETag: `"v0-2"`, Bytes: 1}
	c.Fetch(t.Context(), r)
	if !r.OK() || r.Status != 200 || r.NotModified || r.Bytes < 1000 || r.ETag != `"v1-2"` || r.File != "new-file" {
		t.Fatalf("changed: %+v", r)
	}
	if srv.full.Load() != 1 || store.created.Load() != 1 {
		t.Fatalf("changed: %d full answers, %d files", srv.full.Load(), store.created.Load())
	}

	// No previous record: nothing conditional.
	r = fetchOne(t, c, ts.URL+"/doc/1")
	if inm, ims := srv.conditional(); inm != "" || ims != "" || r.NotModified || r.Status != 200 {
		t.Fatalf("unconditional: sent %q %q, got %d", inm, ims, r.Status)
	}
	// POST fetches no representation: not conditional either.
	po := testOptions()
	po.Method = http.MethodPost
	r = recordFor(t, ts.URL+"/doc/1")
	r.Prev = prev
	newClient(t, po).Fetch(t.Context(), r)
	if inm, _ := srv.conditional(); inm != "" || r.NotModified {
		t.Fatalf("POST sent If-None-Match %q", inm)
	}
}

// robotsServer serves a robots.txt per port-less path prefix: /ok/ has
// rules, /err/ answers 500 for robots.txt, /none/ 404. Hosts are told apart
// by the test's own servers; it counts robots.txt requests and others.
type robotsServer struct {
	body          string
	status        int
	robots, pages atomic.Int64
	mu            sync.Mutex
	times         []time.Time
}

func (s *robotsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/robots.txt" {
		s.robots.Add(1)
		if s.status != 0 {
			w.WriteHeader(s.status)
		}
		fmt.Fprint(w, s.body)
		return
	}
	s.pages.Add(1)
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	fmt.Fprint(w, "page")
}

const robotsRules = `# trawl's tests
User-agent: *
Disallow: /

User-agent: trawl
Disallow: /private/
Allow: /private/open
Disallow: /*.pdf$
Disallow: /tmp*
Crawl-delay: 1s
Crawl-delay: 0.2
`

// TestRobots: robots.txt is fetched once per origin however many URLs ask
// at once; the group for trawl's product token decides with Disallow,
// Allow, wildcards and $; a bad line is skipped, not the whole file; its
// Crawl-delay reaches the limiter; a 404 allows everything; a 500 refuses
// everything, for a bounded time; refused URLs send no request.
func TestRobots(t *testing.T) {
	rules := &robotsServer{body: robotsRules}
	ts := httptest.NewServer(rules)
	defer ts.Close()
	lim := &delayRecorder{}
	o := testOptions()
	o.Robots = true
	o.UserAgent = "Trawl/1.0 (+https://example.test/bot)"
	o.Limiter = lim
	c := newClient(t, o)

	want := map[string]bool{
		"/": true, "/page": true, "/private/": false, "/private/x": false, "/private/open": true, "/private/open/more": true,
		"/doc.pdf": false, "/doc.pdf?x=1": true, "/a/b.pdf": false, "/tmp": false, "/tmpfile": false, "/tm": true,
	}
	var wg sync.WaitGroup
	got := make(map[string]*record.Record)
	var mu sync.Mutex
	for p := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := fetchOne(t, c, ts.URL+p)
			mu.Lock()
			got[p] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	allowed := int64(0)
	for p, ok := range want {
		r := got[p]
		switch {
		case ok && !r.OK():
			t.Errorf("%s refused: %v (%s)", p, r.Err, r.ErrKind)
		case !ok && (r.ErrKind != record.KindRobots || r.Attempts != 0 || !r.FetchedAt.IsZero()):
			t.Errorf("%s: kind %q, attempts %d, fetched_at %v; want a robots refusal without a request", p, r.ErrKind, r.Attempts, r.FetchedAt)
		}
		if ok {
			allowed++
		}
	}
	if n := rules.robots.Load(); n != 1 {
		t.Errorf("robots.txt fetched %d times, want once", n)
	}
	if n := rules.pages.Load(); n != allowed {
		t.Errorf("%d page requests, want %d (only the allowed ones)", n, allowed)
	}
	if d := lim.delay(); d != 200*time.Millisecond {
		t.Errorf("Crawl-delay given to the limiter: %v, want 200ms", d)
	}
	if r := got["/private/x"]; !strings.Contains(r.ErrorText(), "robots.txt disallows /private/x for trawl") {
		t.Errorf("refusal says %q", r.ErrorText())
	}

	// A redirect into a disallowed path is refused before it is followed.
	mux := http.NewServeMux()
	mux.Handle("/robots.txt", rules)
	mux.HandleFunc("/go", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/private/x", http.StatusFound) })
	redir := httptest.NewServer(mux)
	defer redir.Close()
	before := rules.pages.Load()
	if r := fetchOne(t, c, redir.URL+"/go"); r.ErrKind != record.KindRobots || rules.pages.Load() != before {
		t.Errorf("redirect to a disallowed path: kind %q, %d requests of it", r.ErrKind, rules.pages.Load()-before)
	}

	// 404: no robots.txt, everything allowed.
	missing := &robotsServer{status: http.StatusNotFound}
	ts404 := httptest.NewServer(missing)
	defer ts404.Close()
	if r := fetchOne(t, c, ts404.URL+"/private/x"); !r.OK() {
		t.Errorf("with robots.txt missing: %v", r.Err)
	}

	// 500: everything refused, robots.txt asked again only after RobotsRetry.
	broken := &robotsServer{status: http.StatusInternalServerError, body: "oops"}
	ts500 := httptest.NewServer(broken)
	defer ts500.Close()
	o5 := o
	o5.RobotsRetry = 300 * time.Millisecond
	c5 := newClient(t, o5)
	for range 3 {
		r := fetchOne(t, c5, ts500.URL+"/page")
		if r.ErrKind != record.KindRobots || !strings.Contains(r.ErrorText(), "answered HTTP 500") {
			t.Fatalf("robots.txt failing with 500: kind %q, %q", r.ErrKind, r.ErrorText())
		}
	}
	if n := broken.robots.Load(); n != 1 || broken.pages.Load() != 0 {
		t.Fatalf("robots.txt asked %d times, pages %d, within the retry time", n, broken.pages.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for broken.robots.Load() < 2 && time.Now().Before(deadline) {
		fetchOne(t, c5, ts500.URL+"/page")
		time.Sleep(50 * time.Millisecond)
	}
	if broken.robots.Load() < 2 {
		t.Fatal("a robots.txt that failed was never asked for again")
	}

	// No answer at all: the URL fails with what robots.txt met.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if r := fetchOne(t, c5, deadURL+"/page"); r.ErrKind != record.KindConnect || !strings.Contains(r.ErrorText(), "/robots.txt: ") {
		t.Errorf("unreachable host: kind %q, %q", r.ErrKind, r.ErrorText())
	}
}

// delayRecorder is a Limiter that notes the Crawl-delay it is given.
type delayRecorder struct {
	mu sync.Mutex
	d  time.Duration
}

func (l *delayRecorder) Wait(context.Context, *url.URL) error                   { return nil }
func (l *delayRecorder) Observe(*url.URL, int, interface{ Get(string) string }) {}
func (l *delayRecorder) SetCrawlDelay(_ *url.URL, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = d
}
func (l *delayRecorder) delay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.d
}

// TestRedirectChainFacts: --extra redirects lists each redirect response
// followed, in order, with its status; the final response is the record.
func TestRedirectChainFacts(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusMovedPermanently) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/c", http.StatusFound) })
	mux.HandleFunc("/c", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/end", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "end") })
	ts := httptest.NewServer(mux)
	defer ts.Close()
	o := testOptions()
	o.Extra = record.Extras{Redirects: true, Conn: true}
	r := fetchOne(t, newClient(t, o), ts.URL+"/a")
	want := []record.Hop{{URL: ts.URL + "/a", Status: 301}, {URL: ts.URL + "/b", Status: 302}, {URL: ts.URL + "/c", Status: 307}}
	if fmt.Sprint(r.Facts.Redirects) != fmt.Sprint(want) || r.FinalURL != ts.URL+"/end" || r.Status != 200 {
		t.Fatalf("redirects %v to %s (%d), want %v", r.Facts.Redirects, r.FinalURL, r.Status, want)
	}
	if r.Facts.RemoteAddr != strings.TrimPrefix(ts.URL, "http://") {
		t.Fatalf("remote_addr %q, want the server's %s", r.Facts.RemoteAddr, ts.URL)
	}
	// Without the extra nothing is collected.
	if r := fetchOne(t, newClient(t, testOptions()), ts.URL+"/a"); r.Facts != nil {
		t.Fatalf("facts without --extra: %+v", *r.Facts)
	}
}

// TestTimingFacts: over TLS, a new connection spends time in connecting,
// the handshake, waiting and reading, the phases adding up to no more than
// the URL's duration; the next URL on the same connection spends none in
// connecting or the handshake, and says it reused it; DNS is timed for a
// name.
func TestTimingFacts(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) { testTimingFacts(t, h2) })
	}
}

func testTimingFacts(t *testing.T, h2 bool) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // something to wait for
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	}))
	ts.EnableHTTP2 = h2
	ts.StartTLS()
	defer ts.Close()
	o := testOptions()
	o.Insecure = true // the test certificate does not name localhost
	o.Extra = record.Extras{Timing: true, Conn: true, TLS: true}
	c := newClient(t, o)
	u := strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)
	for i := range 2 {
		r := fetchOne(t, c, u+"/")
		if !r.OK() || r.Facts.Timing == nil {
			t.Fatalf("fetch %d: %v, timing %v", i, r.Err, r.Facts.Timing)
		}
		tm := r.Facts.Timing
		t.Logf("fetch %d: %+v of %v, reused %v, %s %s %s", i, *tm, r.Duration, r.Facts.Reused, r.Proto, r.Facts.TLSVersion, r.Facts.TLSCipher)
		if h2 != (r.Proto == "HTTP/2.0") {
			t.Fatalf("fetch %d: %s, want HTTP/2 %v", i, r.Proto, h2)
		}
		if tm.Sum() > r.Duration {
			t.Errorf("fetch %d: phases add up to %v, more than the duration %v", i, tm.Sum(), r.Duration)
		}
		if tm.TTFB < 20*time.Millisecond {
			t.Errorf("fetch %d: ttfb %v, but the server waits 20ms before answering", i, tm.TTFB)
		}
		if r.Facts.TLSVersion == "" || r.Facts.TLSCipher == "" {
			t.Errorf("fetch %d: tls_version %q tls_cipher %q", i, r.Facts.TLSVersion, r.Facts.TLSCipher)
		}
		switch i {
		case 0:
			if r.Facts.Reused || tm.Connect <= 0 || tm.TLS <= 0 || tm.DNS <= 0 {
				t.Errorf("new connection: reused %v, %+v; want time in DNS, connecting and TLS", r.Facts.Reused, *tm)
			}
		case 1:
			if !r.Facts.Reused || tm.DNS != 0 || tm.Connect != 0 || tm.TLS != 0 {
				t.Errorf("pooled connection: reused %v, %+v; want nothing spent dialing", r.Facts.Reused, *tm)
			}
		}
	}
}
