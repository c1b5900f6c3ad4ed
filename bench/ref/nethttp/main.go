// Command nethttp is bench/run.sh's plain net/http reference: what Go's
// standard client does with no pipeline around it. It reads URLs from FILE,
// one a line, and fetches them with -c workers sharing one http.Client,
// reading each body and discarding it (or, with -dir, writing body i to
// DIR/i through a 256 KiB buffer). It prints only the count of responses
// with status 200, and exits 1 if any URL failed.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
)

func main() {
	workers := flag.Int("c", 32, "requests in flight (workers)")
	dir := flag.String("dir", "", "save body i as DIR/i instead of discarding it")
	insecure := flag.Bool("insecure", false, "do not verify TLS certificates")
	flag.Parse()
	list, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The default transport keeps only 2 idle connections per host and 100
	// in all, which would close and reopen connections all the time with
	// more workers than that: keep one per worker.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 0, *workers
	if *insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	client := &http.Client{Transport: t}

	type job struct {
		i   int
		url string
	}
	jobs := make(chan job, *workers)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for j := range jobs {
				if err := fetch(client, j.url, *dir, j.i, buf); err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, err)
					}
					continue
				}
				ok.Add(1)
			}
		})
	}
	sc := bufio.NewScanner(list)
	for i := 0; sc.Scan(); i++ {
		jobs <- job{i, sc.Text()}
	}
	close(jobs)
	wg.Wait()
	fmt.Println(ok.Load())
	if failed.Load() > 0 || sc.Err() != nil {
		os.Exit(1)
	}
}

func fetch(client *http.Client, url, dir string, i int, buf []byte) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	if dir == "" {
		_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
		return err
	}
	f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
	if err != nil {
		return err
	}
	// Fill the whole buffer before each write (bufio.Writer would hand the
	// body to the file's ReadFrom and write in 32 KiB pieces).
	for err == nil {
		var n int
		n, err = io.ReadFull(resp.Body, buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
