// Command compare measures walnut against nutcracker (twemproxy) and against
// the backends reached directly, on one machine, and prints the result as
// markdown tables.
//
//	go run ./bench/compare [-servers 4] [-c 50] [-P 1] [-n 200000] [-r 100000] [-d 16]
//	    [-t set,get,mset,mcset,mcget,mcmget] [-repeat 1] [-strace [-strace-n N]]
//	    [-walnut NAME[:KEY=VAL,...]]... [-walnut-bin NAME=PATH]...
//	    [-redis-benchmark] [-no-nutcracker] [-out bench/compare/results.md]
//
// It starts its own backends (-servers redis-server and as many memcached
// on free loopback ports), builds walnut from this module and starts it,
// and starts nutcracker if it is installed (its column and the ratios to
// it are left out, with a note, if not). The proxies read the same
// generated nutcracker.yml, one redis pool and one memcache pool, differing
// only in the listen ports. Every cell is then driven by a built-in load
// generator against each target in turn: "direct" (the first
// redis-server or memcached alone), nutcracker and the walnut targets.
//
// # The matrix
//
// -c and -P take comma-separated lists (-c 1,10,50 -P 1,16); a cell is one
// row of -t at one client count and one pipeline depth, labelled "get c=10"
// (with " P=16" when -P lists several depths), and every cell is measured
// against every target. -repeat K runs the whole matrix K times; within a
// repetition the targets of a cell run one after another, their order
// rotated by one each repetition, so that noise drifting over the run
// hits them alike. Every figure is then reported as median [min–max] over
// the repetitions.
//
// Rows: set, get, mset, mget (Redis; mset and mget carry 10 keys) and
// mcset, mcget, mcmget (memcached; mcmget is a 10-key get). Keys are
// "key:N" with N uniform in [0, -r), never a {tag}; values are -d bytes.
// A request is one command, so an MSET of 10 keys counts once, as in
// redis-benchmark.
//
// # Walnut variants
//
// Without -walnut, the one walnut target is "walnut", built from this
// module. Each -walnut NAME:KEY=VAL,KEY=VAL adds a target NAME running
// walnut with KEY=VAL added to its environment, on its own listen ports
// with the same configuration:
//
//	-walnut gmp1:GOMAXPROCS=1          # walnut on one P
//	-walnut gogc400:GOGC=400           # walnut with another GC target
//	-walnut pf2:WORKERS=2              # two single-P processes sharing the ports
//	-walnut-bin old=/tmp/walnut-old    # a prebuilt binary, e.g. an older commit
//
// Two keys belong to the tool and are not passed on: BIN=PATH runs a
// prebuilt walnut binary instead of the module's build (-walnut-bin
// NAME=PATH is the same as -walnut NAME:BIN=PATH), and WORKERS=N starts N
// walnut processes on the same listen ports, with reuseport: true in their
// configuration (SO_REUSEPORT: the kernel spreads incoming connections
// over them) and GOMAXPROCS=1 unless the variant sets GOMAXPROCS, an
// approximation of a prefork design; CPU, context switches and RSS are
// summed over the N processes. Flags naming the same variant combine
// (-walnut-bin old=PATH -walnut old:GOMAXPROCS=1); a value cannot contain
// a comma. A variant named walnut replaces the default one.
//
// # Figures
//
// Latency: each connection writes -P requests at once and reads their -P
// replies; the batch's round trip divided by -P is recorded once per
// request, so with -P 1 it is the request latency and with -P > 1 the
// per-request share of the batch latency (redis-benchmark's convention).
// Percentiles come from a log-linear histogram accurate to about 1.6%.
// The latency a target adds is its p50 (p99) minus direct's p50 (p99) in
// the same cell and repetition.
//
// CPU per request is utime+stime of the target's processes (the proxy;
// for direct, the server itself) from /proc/PID/stat, which covers every
// thread including exited ones, before and after the timed pass, in µs per
// request. It is counted in clock ticks of 10 ms, so -n must make a cell
// take well over that. RSS is VmRSS from /proc/PID/status at the end of
// the pass.
//
// Context switches per request are voluntary plus nonvoluntary switches,
// summed over every thread: /proc/PID/status counts only the main thread
// (memcached's workers, the Go runtime's threads would be missed), and no
// /proc file has a whole-process total, so the tool reads
// /proc/PID/task/TID/status for each thread before and after the pass and
// matches threads by TID. A thread started during the pass counts in full;
// one that exits during the pass loses its switches, and the report says
// how many did.
//
// Ratios to nutcracker (throughput, CPU per request, added p50 and p99)
// divide the target's figure by nutcracker's in the same cell and
// repetition; their median is reported, which need not equal the ratio of
// the medians.
//
// # System calls
//
// With -strace, after the timed passes of a cell, each target is driven
// again with -strace-n requests (default -n/10) while strace -c -f -p PID
// (one -p per process of the target) is attached; the tool starts strace,
// waits until every thread of the target has it as its tracer, runs the
// load, stops strace with SIGINT and parses the summary it writes. The
// report gives system calls per request, in total and for the most
// frequent ones (read, write, epoll_pwait, futex, nanosleep, ...). strace
// never runs during a timed pass. The tool fails at once if strace is not
// installed; attaching needs ptrace permission (root, or
// kernel.yama.ptrace_scope 0).
//
// With -redis-benchmark and redis-benchmark installed, the Redis rows set,
// get and mset are also run with redis-benchmark at every client count and
// pipeline depth (same -n, -r, -d; its default key pattern
// "key:__rand_int__", which has no {tag}), shown as rows "rb-set" and so
// on; redis-benchmark reports no p999, and they have no strace pass.
//
// # Report
//
// The markdown report (on stdout and in -out, with an SVG chart of
// throughput next to it) starts with one small table per figure (CPU µs
// per request, added p50 and p99, throughput, context switches per
// request) with a row per cell and a column per target, each walnut
// figure followed by its ratio to nutcracker, e.g. "18.0 (1.27×)"; then one
// detailed table per pipeline depth with every figure as median
// [min–max]; then the strace table and any failures.
//
// Examples:
//
//	go run ./bench/compare -c 1,10,50 -P 1,16 -n 20000 -t get,set,mcget -repeat 3 -out /tmp/compare.md
//	go run ./bench/compare -c 1,10 -n 20000 -t get,mcget -strace -walnut gmp1:GOMAXPROCS=1 -out /tmp/compare.md
//	git worktree add /tmp/walnut-old OLDCOMMIT && (cd /tmp/walnut-old && go build -o /tmp/walnut-old.bin ./cmd/walnut)
//	go run ./bench/compare -c 1,50 -walnut-bin old=/tmp/walnut-old.bin -walnut pf2:WORKERS=2 -repeat 3 -out /tmp/compare.md
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
