// Command fasthttp is bench/run.sh's plain fasthttp reference: the same
// loop as ../nethttp with github.com/valyala/fasthttp's Client, which reuses
// its request and response objects and reads each body into memory. It
// reads URLs from FILE, one a line, fetches them with -c workers sharing
// one Client (at most -c connections per host), discards the bodies,
// prints only the count of responses with status 200, and exits 1 if any
// URL failed.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	workers := flag.Int("c", 32, "requests in flight (workers)")
	insecure := flag.Bool("insecure", false, "do not verify TLS certificates")
	flag.Parse()
	list, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	client := &fasthttp.Client{
		MaxConnsPerHost: *workers,
		// Wait for a connection rather than fail at once if every one is
		// busy for a moment (one being closed still counts).
		MaxConnWaitTimeout: 10 * time.Second,
		ReadTimeout:        30 * time.Second,
	}
	if *insecure {
		client.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}

	urls := make(chan string, *workers)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for url := range urls {
				req.SetRequestURI(url)
				err := client.Do(req, resp)
				if err == nil && resp.StatusCode() != fasthttp.StatusOK {
					err = fmt.Errorf("%s: status %d", url, resp.StatusCode())
				}
				if err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, err)
					}
					continue
				}
				_ = resp.Body() // read in full by Do; dropped here
				ok.Add(1)
			}
		})
	}
	sc := bufio.NewScanner(list)
	for sc.Scan() {
		urls <- sc.Text()
	}
	close(urls)
	wg.Wait()
	fmt.Println(ok.Load())
	if failed.Load() > 0 || sc.Err() != nil {
		os.Exit(1)
	}
}
