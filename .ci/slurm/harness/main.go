// Command harness is the Slurm CI test's helper: the test server that
// counts the requests for every URL, the URL list it serves, the shard a
// URL belongs to, free ports for the cluster, and the checks that decide
// whether the run on the cluster did what it promises.
//
//	harness ports N                    N free TCP ports on 127.0.0.1
//	harness serve [-delay D] ADDRFILE  serve until killed; the address goes to ADDRFILE
//	harness get [-post] URL            GET (or POST) URL and print the body (for the control endpoints)
//	harness urls -port P [-n N] [-hosts H] LIST   write the list; print the gated URL
//	harness resolve -port P [-hosts H]  the --resolve entries of the hosts, as YAML
//	harness shard-of URL N             the shard of URL among N, by host
//	harness check ...                  the assertions; see checkUsage
//
// It is a program of its own rather than a script so that the checks are
// exact (JSON, maps, counts) and have tests of their own (main_test.go).
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: harness ports|serve|get|urls|resolve|shard-of|check ...")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "ports":
		return cmdPorts(rest)
	case "serve":
		return cmdServe(rest)
	case "get":
		return cmdGet(rest)
	case "urls":
		return cmdURLs(rest)
	case "resolve":
		return cmdResolve(rest)
	case "shard-of":
		return cmdShardOf(rest)
	case "check":
		return cmdCheck(rest)
	}
	return fmt.Errorf("unknown command %q", cmd)
}
