package stage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// randomGate caps each of a few keys at a random number of items and now
// and then refuses for a short while, so that cancellations also land
// while keys are blocked and timers are pending.
type randomGate struct {
	mu      sync.Mutex
	caps    []int
	running map[string]int
	rnd     *rand.Rand
}

func (g *randomGate) Key(i int) string {
	if i%5 == 0 {
		return "" // some items are under no limit at all
	}
	return fmt.Sprint(i % len(g.caps))
}

func (g *randomGate) TryStart(i int, _ string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.Key(i)
	if g.rnd.IntN(10) == 0 {
		return false, time.Duration(g.rnd.IntN(200)) * time.Microsecond
	}
	if g.running[k] >= g.caps[i%len(g.caps)] {
		return false, 0
	}
	g.running[k]++
	return true, 0
}

func (g *randomGate) Done(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running[key]--
}

// TestRandomCancellation cancels stages at thousands of random moments, in
// both orders, with 1..8 workers, with and without a gate, windows and a
// stop: every time the output must close promptly (which the engine does
// only once its workers have exited), and goleak in TestMain checks that
// no goroutine is left at the end.
func TestRandomCancellation(t *testing.T) {
	trials := 10000
	if testing.Short() {
		trials = 1000
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const parallel = 4
	var failed atomic.Bool
	var wg sync.WaitGroup
	for p := range parallel {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(seed, uint64(p)))
			for trial := p; trial < trials && !failed.Load(); trial += parallel {
				if err := cancelOnce(rnd); err != nil {
					failed.Store(true)
					t.Errorf("trial %d (seed %d): %v", trial, seed, err)
				}
			}
		})
	}
	wg.Wait()
}

func cancelOnce(rnd *rand.Rand) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := Options[int, int]{
		Workers: 1 + rnd.IntN(8),
		Order:   Order(rnd.IntN(2)),
		Window:  rnd.IntN(20),
	}
	if rnd.IntN(2) == 0 {
		opts.Gate = &randomGate{caps: []int{1 + rnd.IntN(3), 1 + rnd.IntN(3), 1}, running: map[string]int{}, rnd: rand.New(rand.NewPCG(rnd.Uint64(), 1))}
		opts.Lookahead = 1 + rnd.IntN(64)
	}
	if rnd.IntN(3) == 0 {
		opts.WindowBytes = int64(1 + rnd.IntN(10))
		opts.Size = func(v int) int64 { return int64(v % 4) }
	}
	var stop chan struct{}
	if rnd.IntN(4) == 0 {
		stop = make(chan struct{})
		opts.Stop = stop
	}
	n := rnd.IntN(200)
	endless := rnd.IntN(3) == 0
	in := make(chan int)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer close(in)
		for i := 0; endless || i < n; i++ {
			select {
			case in <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	sleepy := rnd.IntN(2) == 0
	out := Map(ctx, ctx, in, opts, func(ctx context.Context, i int) int {
		if sleepy && i%3 == 0 {
			select {
			case <-time.After(time.Duration(i%7) * 20 * time.Microsecond):
			case <-ctx.Done():
			}
		}
		return i
	})
	// Read some results, then cancel: at once, from a timer, or while
	// not reading at all (as a sink that failed does).
	for range rnd.IntN(30) {
		if _, ok := <-out; !ok {
			break
		}
	}
	if stop != nil && rnd.IntN(2) == 0 {
		close(stop)
	}
	switch rnd.IntN(3) {
	case 0:
		cancel()
	case 1:
		time.AfterFunc(time.Duration(rnd.IntN(300))*time.Microsecond, cancel)
	default:
		d := time.Duration(rnd.IntN(100)) * time.Microsecond
		go func() {
			time.Sleep(d)
			cancel()
		}()
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-out:
			if ok {
				continue
			}
			<-fed
			return nil
		case <-timeout:
			return fmt.Errorf("output not closed 10s after cancelling (%+v)", opts)
		}
	}
}
