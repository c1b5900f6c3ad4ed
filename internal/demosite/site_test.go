package demosite

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSiteServesEveryURL(t *testing.T) {
	s, err := Start(t.Context(), Options{SlowDelay: time.Millisecond, RetryAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("site listens on %s, want loopback", s.URL)
	}
	urls := s.URLs()
	if len(urls) < 250 {
		t.Fatalf("only %d URLs", len(urls))
	}
	statuses := map[int]int{}
	for _, u := range urls {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		switch {
		case strings.HasSuffix(u, ".html") && resp.StatusCode == 200:
			if !strings.Contains(string(body), "<title>") {
				t.Errorf("%s has no title", u)
			}
		case strings.HasSuffix(u, "/flaky"):
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
				t.Errorf("first /flaky answer %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
	}
	if statuses[404] != ExpectedFailures || statuses[503] != 1 || statuses[200] != len(urls)-2 {
		t.Fatalf("statuses %v", statuses)
	}
	// The flaky endpoint fails once more, then recovers for good.
	for i, want := range []int{503, 200, 200} {
		resp, err := http.Get(s.URL + "/flaky")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("flaky request %d answered %d, want %d", i+2, resp.StatusCode, want)
		}
	}
}
