// Command walnut will be a drop-in replacement for nutcracker (twemproxy),
// reading the same nutcracker.yml and flags.
//
// The proxy is not built yet (issue "proxy and cmd/walnut"): today the
// command only reports its version and says so.
package main

import (
	"fmt"
	"io"
	"os"
)

const version = "0.0.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-V" || a == "--version" {
			fmt.Fprintf(stdout, "This is walnut-%s\n", version)
			return 0
		}
	}
	fmt.Fprintln(stderr, "walnut: the proxy is not implemented yet; only the placement library (package shard) is. See README.md.")
	return 1
}
