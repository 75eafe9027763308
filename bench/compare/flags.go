package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

type options struct {
	servers        int
	conns          int
	pipeline       int
	requests       int
	keyspace       int
	valSize        int
	rows           []string
	redisBenchmark bool
	noNutcracker   bool
	out            string
	args           []string // the command line, for the report
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{args: args}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.servers, "servers", 4, "number of redis-server and of memcached `backends`")
	fs.IntVar(&o.conns, "c", 50, "client `connections`")
	fs.IntVar(&o.pipeline, "P", 1, "pipeline `depth` (requests in flight per connection)")
	fs.IntVar(&o.requests, "n", 200000, "`requests` per row and target")
	fs.IntVar(&o.keyspace, "r", 100000, "key space: keys are key:N, N uniform in [0, `r`)")
	fs.IntVar(&o.valSize, "d", 16, "value size in `bytes`")
	rows := fs.String("t", "set,get,mset,mcset,mcget,mcmget", "comma-separated `rows`: "+strings.Join(rowNames(), ", "))
	fs.BoolVar(&o.redisBenchmark, "redis-benchmark", false, "also run redis-benchmark for the Redis rows set, get, mset (if installed)")
	fs.BoolVar(&o.noNutcracker, "no-nutcracker", false, "leave nutcracker out even if installed")
	fs.StringVar(&o.out, "out", "bench/compare/results.md", "write the markdown report to `file` (relative to the module root; empty: none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"servers", o.servers}, {"c", o.conns}, {"P", o.pipeline}, {"n", o.requests}, {"r", o.keyspace}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("-%s must be at least 1", f.name))
		}
	}
	if o.valSize < 0 {
		errs = append(errs, errors.New("-d must not be negative"))
	}
	for _, r := range strings.Split(*rows, ",") {
		r = strings.TrimSpace(strings.ToLower(r))
		if r == "" {
			continue
		}
		if _, ok := rowKinds[r]; !ok {
			errs = append(errs, fmt.Errorf("-t: unknown row %q (known: %s)", r, strings.Join(rowNames(), ", ")))
			continue
		}
		if !slices.Contains(o.rows, r) {
			o.rows = append(o.rows, r)
		}
	}
	if len(o.rows) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("-t: no rows"))
	}
	return o, errors.Join(errs...)
}

func rowNames() []string {
	var names []string
	for n := range rowKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
