package lean

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestH2RandomCancels: many streams share a connection while requests
// are cancelled, time out, or close their bodies half read, at random
// moments. Those left alone are answered whole; none hangs; afterwards
// no stream counts against the connection, no goroutine is left, and the
// connection still serves.
func TestH2RandomCancels(t *testing.T) {
	before := goleak.IgnoreCurrent()
	srv, _ := h2Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			io.WriteString(w, strconv.FormatInt(n, 10))
			return
		}
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		delay, _ := strconv.Atoi(r.URL.Query().Get("delay"))
		if r.URL.Path == "/hang" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 8<<10)
		for size > 0 {
			n := min(size, len(chunk))
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			size -= n
			if delay > 0 {
				w.(http.Flusher).Flush()
				select {
				case <-time.After(time.Duration(delay) * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}
	})
	c := h2Client(t, func(o *Options) { o.H2 = H2Options{Concurrency: 64, StreamWindow: 64 << 10} })

	const workers = 32
	stop := time.Now().Add(1200 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(stop) {
				what, err := chaosRequest(t, c, srv.URL, rng)
				mu.Lock()
				counts[what]++
				mu.Unlock()
				if err != nil {
					t.Errorf("%s: %v", what, err)
					return
				}
			}
		})
	}
	within(t, 10*time.Second, "the workers", wg.Wait)
	t.Logf("requests: %v", counts)

	// Nothing counts against the connections any more.
	c.mu.Lock()
	var conns []*h2conn
	for _, h := range c.h2 {
		conns = append(conns, h.conns...)
	}
	c.mu.Unlock()
	for _, cc := range conns {
		cc.mu.Lock()
		active, open, pending := cc.active, len(cc.streams), len(cc.pending)
		cc.mu.Unlock()
		if active != 0 || open != 0 {
			t.Errorf("after the run: %d streams reserved, %d open (%d control frames pending)", active, open, pending)
		}
	}
	if _, body, err := get(t, c, srv.URL+"/x?size=5"); err != nil || len(body) != 5 {
		t.Errorf("after the run: %d bytes, %v", len(body), err)
	}
	c.CloseIdle()
	srv.Close()
	if err := goleak.Find(before); err != nil {
		t.Error(err)
	}
}

// chaosRequest makes one request of a random kind, and reports an error
// only when its outcome is not one the kind allows.
func chaosRequest(t *testing.T, c *Client, base string, rng *rand.Rand) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	size := rng.IntN(200 << 10)
	delay := 0
	if rng.IntN(4) == 0 {
		delay = 1
	}
	req := &Request{Method: http.MethodGet, URL: mustURL(t, fmt.Sprintf("%s/get?size=%d&delay=%d", base, size, delay))}
	var what string
	interrupted := true
	switch rng.IntN(6) {
	case 0:
		what, interrupted = "whole", false
	case 1:
		what = "cancelled"
		time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
	case 2:
		what = "deadline"
		req.Deadline = time.Now().Add(time.Duration(rng.IntN(3000)) * time.Microsecond)
	case 3:
		what = "hang, cancelled"
		req.URL = mustURL(t, base+"/hang")
		time.AfterFunc(time.Duration(rng.IntN(5000))*time.Microsecond, cancel)
	case 4:
		what = "closed half read"
	case 5:
		what = "post"
		req.Method, req.Body = http.MethodPost, make([]byte, size)
		if rng.IntN(2) == 0 {
			what = "post, cancelled"
			time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
		} else {
			interrupted = false
		}
	}
	resp, err := c.Do(ctx, req)
	if err == nil {
		var body []byte
		if what == "closed half read" {
			_, err = io.ReadFull(resp.Body, make([]byte, size/2))
		} else {
			body, err = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		if err == nil && !interrupted {
			want := size
			if req.Method == http.MethodPost {
				want = len(strconv.Itoa(size))
			}
			if len(body) != want {
				return what, fmt.Errorf("%d bytes, want %d", len(body), want)
			}
		}
	}
	switch {
	case err == nil:
		return what, nil
	case interrupted && (errors.Is(err, context.Canceled) || isTimeoutErr(err)):
		return what, nil
	}
	return what, err
}
