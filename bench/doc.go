// Package bench holds cross-implementation benchmarks that measure walnut
// against the Go clients it replaces or plugs into, in one run so the numbers
// are comparable: key → server placement by shard.Ring (ketama over
// fnv1a_64, twemproxy's default), by go-redis's Ring (rendezvous hashing over
// xxhash, its default ConsistentHash) and by gomemcache's ServerList (CRC-32
// modulo the server count).
//
// The package has no non-test code. Run it with
//
//	go test ./bench -run '^$' -bench . -benchtime=200ms -count=3
//
// and compare sub-benchmarks of the same servers= and key= with benchstat.
// Nothing may import it: the module's import policy, checked by
// deps_test.go at its root, allows bench/ any import and no importer.
//
// # In process: BenchmarkInProcess
//
// BenchmarkInProcess measures walnut's in-process client (proxy.Client)
// against go-redis (one *redis.Client to one server, and its Ring over four)
// and rueidis (one client per server, placed by shard.Ring) on four real
// redis-servers. Its sub-benchmarks are named OP/gN/IMPL: OP is GET, SET,
// MGET10 or MGET10-spread; gN is g1 (one goroutine, call after call) or g64
// (64 goroutines); IMPL is walnut, walnut-do, goredis, goredis-ring or
// rueidis (its doc comment says what each means). It needs redis-server:
//
//	go test ./bench -run '^$' -bench InProcess -benchtime 2s -count 3
//
// rueidis is a benchmark baseline only: no package outside bench/ may
// import it, not even from its tests (the import-policy test at the root
// checks this).
//
// # Proxy against proxy: bench/compare
//
// The command bench/compare measures the walnut binary against nutcracker
// and against the backends reached directly, on real redis-server and
// memcached processes it starts on loopback ports, and writes a markdown
// report: throughput, p50/p99/p999 latency, the latency a proxy adds over
// direct, CPU µs and context switches per request, RSS, ratios to
// nutcracker and, optionally, system calls per request from strace. Its
// flags:
//
//	-servers N            redis-servers and memcacheds to start (4)
//	-c 1,10,50            client connections; every row at each count (50)
//	-P 1,16               pipeline depths; every row at each depth (1)
//	-n N                  requests per cell and target (200000)
//	-r N, -d N            key space (100000) and value size (16)
//	-t set,get,...        rows: set get mset mget mcset mcget mcmget
//	-repeat K             run the matrix K times, targets interleaved; report median [min–max]
//	-strace               extra pass per cell and target under strace -c -f: system calls per request
//	-strace-n N           requests of that pass (-n/10)
//	-walnut NAME:K=V,...  a walnut target with K=V in its environment; WORKERS=N runs N
//	                      processes on shared ports (reuseport, GOMAXPROCS=1), BIN=PATH a prebuilt binary
//	-walnut-bin NAME=PATH a walnut target running a prebuilt binary
//	-redis-benchmark      also run redis-benchmark for set, get, mset
//	-no-nutcracker        leave nutcracker out
//	-out FILE             write the report there too, and a chart next to it
//
// For example, walnut against nutcracker at 1, 10 and 50 clients, without
// and with pipelining, and walnut on one P:
//
//	go run ./bench/compare -c 1,10,50 -P 1,16 -n 20000 -t get,set,mcget -repeat 3 \
//	    -walnut gmp1:GOMAXPROCS=1 -out /tmp/compare.md
//
// System calls per request, and two request paths selected by environment:
//
//	go run ./bench/compare -c 1,10 -n 20000 -t get,mcget -strace \
//	    -walnut v1:WALNUT_IOPATH=v1 -walnut v2:WALNUT_IOPATH=v2 -out /tmp/compare.md
//
// An older build and a two-process prefork approximation:
//
//	git worktree add /tmp/walnut-old OLDCOMMIT
//	(cd /tmp/walnut-old && go build -o /tmp/walnut-old.bin ./cmd/walnut)
//	go run ./bench/compare -c 1,50 -walnut-bin old=/tmp/walnut-old.bin \
//	    -walnut pf2:WORKERS=2 -repeat 3 -out /tmp/compare.md
//
// go doc ./bench/compare describes each figure and how it is measured.
package bench
