// Command compare measures walnut against nutcracker (twemproxy) and against
// the backends reached directly, on one machine, and prints the result as a
// markdown table.
//
//	go run ./bench/compare [-servers 4] [-c 50] [-P 1] [-n 200000] [-r 100000] [-d 16]
//	    [-t set,get,mset,mcset,mcget,mcmget] [-redis-benchmark] [-out bench/compare/results.md]
//
// It starts its own backends (-servers redis-server and as many memcached
// on free loopback ports), builds walnut from this module and starts it,
// and starts nutcracker if it is installed (its column is left out, with a
// note, if not). walnut and nutcracker read the same generated
// nutcracker.yml, one redis pool and one memcache pool, differing only in
// the listen ports. Every row of -t is then driven by a built-in load
// generator against each target in turn: "direct" (the first redis-server
// or memcached alone), nutcracker and walnut.
//
// Rows: set, get, mset, mget (Redis; mset and mget carry 10 keys) and
// mcset, mcget, mcmget (memcached; mcmget is a 10-key get). Keys are
// "key:N" with N uniform in [0, -r), never a {tag}; values are -d bytes.
// A request is one command, so an MSET of 10 keys counts once, as in
// redis-benchmark.
//
// Latency: each connection writes -P requests at once and reads their -P
// replies; the batch's round trip divided by -P is recorded once per
// request, so with -P 1 it is the request latency and with -P > 1 the
// per-request share of the batch latency (redis-benchmark's convention).
// Percentiles come from a log-linear histogram accurate to about 1.6%.
//
// CPU is utime+stime of the target process (the proxy; for direct, the
// server itself) from /proc/PID/stat, before and after the row, per million
// requests; RSS is VmRSS from /proc/PID/status at the end of the row. Both
// need Linux.
//
// With -redis-benchmark and redis-benchmark installed, the Redis rows set,
// get and mset are also run with redis-benchmark (same -c, -n, -r, -d, -P;
// its default key pattern "key:__rand_int__", which has no {tag}), shown as
// rows "rb-set" and so on; redis-benchmark reports no p999.
//
// Every process the tool started is stopped by PID when it ends, on
// Ctrl-C too, and its temporary directory is removed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// run is the whole tool; main only adds signal handling and the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runBench(ctx, args, stdout, stderr, &bench{})
}

// runBench is run with the bench state supplied by the caller, so that a
// test can see which processes were started.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer, b *bench) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b.opts, b.stdout, b.stderr = o, stdout, stderr
	defer b.cleanup()
	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := b.measure(ctx); err != nil {
		return err
	}
	return b.report()
}
