// Package demosite serves the small site that `trawl demo` fetches: a few
// hundred generated pages with titles and links, some JSON, a missing page,
// an endpoint that fails twice with 503 before succeeding, and a slow page.
// It listens on 127.0.0.1 only, so the demo needs no network at all.
package demosite

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

//go:embed site/topics.txt
var topicsText string

//go:embed site/page.html.tmpl
var pageTemplate string

// Layout sizes of the demo site.
const (
	Articles = 250
	Items    = 40
)

// Options tunes the site; the zero value is what the demo uses.
type Options struct {
	// SlowDelay is how long /slow takes; 0 means 1.5s.
	SlowDelay time.Duration
	// FlakyFailures is how many times /flaky answers 503 first; 0 means 2.
	FlakyFailures int
	// RetryAfter is the Retry-After value /flaky sends, in seconds.
	RetryAfter int
}

// Site is a running demo site.
type Site struct {
	// URL is the base URL, such as http://127.0.0.1:41234.
	URL    string
	srv    *http.Server
	done   chan struct{}
	topics []string
	page   *template.Template
	opts   Options
	flaky  atomic.Int64
}

// Start listens on a free loopback port and serves until Close or ctx ends.
func Start(ctx context.Context, opts Options) (*Site, error) {
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 1500 * time.Millisecond
	}
	if opts.FlakyFailures <= 0 {
		opts.FlakyFailures = 2
	}
	page, err := template.New("page").Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("demo site template: %w", err)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot start the demo site on 127.0.0.1: %w", err)
	}
	s := &Site{
		URL:    "http://" + l.Addr().String(),
		done:   make(chan struct{}),
		topics: strings.Split(strings.TrimSpace(topicsText), "\n"),
		page:   page,
		opts:   opts,
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l)
	}()
	context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	return s, nil
}

// Close stops the site and waits for it to finish.
func (s *Site) Close() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// URLs returns the demo's URL list: every article and item, plus the
// special endpoints, in a fixed order.
func (s *Site) URLs() []string {
	var urls []string
	urls = append(urls, s.URL+"/")
	for n := 1; n <= Articles; n++ {
		urls = append(urls, fmt.Sprintf("%s/articles/%d.html", s.URL, n))
		if n%25 == 0 {
			urls = append(urls, fmt.Sprintf("%s/api/items/%d.json", s.URL, n/25))
		}
	}
	for n := Articles/25 + 1; n <= Items; n++ {
		urls = append(urls, fmt.Sprintf("%s/api/items/%d.json", s.URL, n))
	}
	urls = append(urls,
		s.URL+"/missing.html",
		s.URL+"/flaky",
		s.URL+"/slow",
	)
	return urls
}

// ExpectedFailures is the number of URLs in URLs that are meant to fail
// (the missing page), so the demo can tell planned failures from real ones.
const ExpectedFailures = 1

func (s *Site) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /articles/{n}", s.article)
	mux.HandleFunc("GET /api/items/{n}", s.item)
	mux.HandleFunc("GET /flaky", s.flakyHandler)
	mux.HandleFunc("GET /slow", s.slow)
	return mux
}

type pageData struct {
	N     int
	Title string
	Links []string
}

func (s *Site) render(w http.ResponseWriter, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = s.page.Execute(w, d)
}

func (s *Site) index(w http.ResponseWriter, _ *http.Request) {
	d := pageData{Title: "Index"}
	for n := 1; n <= 10; n++ {
		d.Links = append(d.Links, fmt.Sprintf("/articles/%d.html", n))
	}
	s.render(w, d)
}

func (s *Site) article(w http.ResponseWriter, r *http.Request) {
	var n int
	if _, err := fmt.Sscanf(r.PathValue("n"), "%d.html", &n); err != nil || n < 1 || n > Articles {
		http.NotFound(w, r)
		return
	}
	d := pageData{N: n, Title: fmt.Sprintf("%s, part %d", s.topics[(n-1)%len(s.topics)], (n-1)/len(s.topics)+1)}
	for _, k := range []int{1, 7, 31} {
		d.Links = append(d.Links, fmt.Sprintf("/articles/%d.html", (n+k-1)%Articles+1))
	}
	d.Links = append(d.Links, fmt.Sprintf("/api/items/%d.json", (n-1)%Items+1))
	s.render(w, d)
}

func (s *Site) item(w http.ResponseWriter, r *http.Request) {
	var n int
	if _, err := fmt.Sscanf(r.PathValue("n"), "%d.json", &n); err != nil || n < 1 || n > Items {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id":       n,
		"name":     s.topics[(n-1)%len(s.topics)],
		"price":    float64(n*125) / 100,
		"in_stock": n%3 != 0,
	})
}

// flakyHandler fails the first few requests, as an overloaded server would.
func (s *Site) flakyHandler(w http.ResponseWriter, _ *http.Request) {
	if s.flaky.Add(1) <= int64(s.opts.FlakyFailures) {
		w.Header().Set("Retry-After", fmt.Sprint(s.opts.RetryAfter))
		http.Error(w, "busy, try again", http.StatusServiceUnavailable)
		return
	}
	s.render(w, pageData{Title: "Flaky, but it got there"})
}

func (s *Site) slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(s.opts.SlowDelay):
	case <-r.Context().Done():
		return
	}
	s.render(w, pageData{Title: "Slow, but it got there"})
}
