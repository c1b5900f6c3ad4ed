package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/trawl-dev/trawl/source"
)

// listLine is line i of a list of n over the given number of hosts: mostly
// pages, with 404s, 500s (which --resume fetches again), lines that are
// not URLs, and repeats of an earlier line, so that every kind of record
// the merge must put back in place is there. The one /slow/ URL, in the
// middle, is the one the gate holds.
func listLine(i, n, hosts, port int) string {
	host := fmt.Sprintf("%s:%d", hostName(i*7919%hosts), port)
	switch {
	case i == n/2:
		return fmt.Sprintf("http://%s/slow/%d", host, i)
	case i%97 == 13:
		return fmt.Sprintf("not a url %d", i)
	case i%101 == 100:
		return listLine(i-50, n, hosts, port)
	case i%50 == 7:
		return fmt.Sprintf("http://%s/missing/%d", host, i)
	case i%71 == 5:
		return fmt.Sprintf("http://%s/broken/%d", host, i)
	}
	return fmt.Sprintf("http://%s/p/%d", host, i)
}

// hostName is the name of host h. Names that differ only in a digit or
// two (h01, h02, ...) would split between shards more evenly than real
// host names do, so these are made of hash digits instead.
func hostName(h int) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(h)))
	return fmt.Sprintf("%x.trawl.test", sum[:4])
}

type listFlags struct {
	n, hosts, port int
}

func parseListFlags(name string, args []string, nargs int) (*listFlags, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	lf := &listFlags{}
	fs.IntVar(&lf.n, "n", 4000, "lines in the list")
	fs.IntVar(&lf.hosts, "hosts", 64, "host names the lines are spread over")
	fs.IntVar(&lf.port, "port", 0, "the test server's port")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() != nargs || lf.port == 0 || lf.n < 4 || lf.hosts < 1 || lf.hosts > 100 {
		return nil, nil, fmt.Errorf("usage: harness %s -port P [-n N] [-hosts H]%s", name, map[int]string{0: "", 1: " FILE"}[nargs])
	}
	return lf, fs.Args(), nil
}

// cmdURLs writes the list and prints the gated URL.
func cmdURLs(args []string) error {
	lf, rest, err := parseListFlags("urls", args, 1)
	if err != nil {
		return err
	}
	f, err := os.Create(rest[0])
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# the Slurm CI test's list")
	for i := range lf.n {
		fmt.Fprintln(w, listLine(i, lf.n, lf.hosts, lf.port))
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return err
	}
	fmt.Println(listLine(lf.n/2, lf.n, lf.hosts, lf.port))
	return nil
}

// cmdResolve prints the --resolve entries of the list's hosts as a YAML
// list, for the trawl config file the test writes.
func cmdResolve(args []string) error {
	lf, _, err := parseListFlags("resolve", args, 0)
	if err != nil {
		return err
	}
	fmt.Println("resolve:")
	for h := range lf.hosts {
		fmt.Printf("  - %s:%d:127.0.0.1\n", hostName(h), lf.port)
	}
	return nil
}

// cmdShardOf prints the shard of a URL among N when sharding by host, to
// find the task the gate holds.
func cmdShardOf(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: harness shard-of URL N")
	}
	u, err := url.Parse(args[0])
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return fmt.Errorf("bad shard count %q", args[1])
	}
	fmt.Println(source.ShardOf(source.ShardKey(source.ShardByHost, u, args[0]), n))
	return nil
}
