package throttle

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/trawl-dev/trawl/internal/urlkey"
)

// prepaid marks a request context whose first request to its host already
// paid its tokens (in TryAcquire or Wait), so the transport does not charge
// it twice. Redirects to the same host pay again.
type prepaid struct {
	key  string
	used atomic.Bool
}

type prepaidKey struct{}

// WithPrepaid returns a context whose first request to key is not charged
// again by the transport.
func WithPrepaid(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, prepaidKey{}, &prepaid{key: key})
}

func takePrepaid(ctx context.Context, key string) bool {
	p, ok := ctx.Value(prepaidKey{}).(*prepaid)
	return ok && p.key == key && p.used.CompareAndSwap(false, true)
}

// Transport wraps next so that every request (retries and redirects
// included) waits for its host's pause and rate tokens, and every response
// is fed back for adaptive backoff.
func (t *Throttle) Transport(next http.RoundTripper) http.RoundTripper {
	return &transport{t: t, next: next}
}

type transport struct {
	t    *Throttle
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := urlkey.Host(req.URL)
	if !takePrepaid(req.Context(), key) {
		if err := tr.t.Wait(req.Context(), key); err != nil {
			return nil, err
		}
	}
	resp, err := tr.next.RoundTrip(req)
	if err == nil {
		tr.t.Observe(key, resp.StatusCode, resp.Header)
	}
	return resp, err
}
