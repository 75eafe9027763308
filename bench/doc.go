// Package bench holds cross-implementation benchmarks that measure walnut
// against the Go clients it replaces or plugs into, in one run so the numbers
// are comparable: key → server placement by shard.Ring (ketama over
// fnv1a_64, twemproxy's default), by go-redis's Ring (rendezvous hashing over
// xxhash, its default ConsistentHash) and by gomemcache's ServerList (CRC-32
// modulo the server count); how evenly each placement spreads keys; and
// walnut's in-process client against go-redis and rueidis.
//
// The package has no non-test code. Nothing may import it: the module's
// import policy, checked by deps_test.go at its root, allows bench/ any
// import and no importer. Its three benchmarks differ in cost and in what
// they need, so run them one at a time ('^$' runs no tests), and compare
// runs of the same sub-benchmark with benchstat. A -bench pattern is split
// at each slash and each part matched against one level of the name, so
// 'Pick//servers=16$' selects every implementation at 16 servers.
//
// # Placement: BenchmarkPick
//
// BenchmarkPick measures one key → server lookup per operation, on
// in-memory rings (no servers needed). Its sub-benchmarks are named
// impl=IMPL/servers=N/key=BYTES:
//
//   - IMPL is walnut-ketama, walnut-ketama-farm, walnut-ketama-string,
//     goredis-rendezvous, goredis-ring or gomemcache (placement_test.go
//     says what each measures);
//   - N, the number of servers, is 4, 16, 64 or 256;
//   - BYTES is the length of each key in bytes: 8, 16, 64 or 256 (key=, the
//     key size; BenchmarkDistribution's keys= names a key set).
//
// Implementations alternate within each servers=/key= pair, so that they are
// measured side by side on a noisy machine:
//
//	go test ./bench -run '^$' -bench '^BenchmarkPick$' -benchtime 200ms -count 3
//	go test ./bench -run '^$' -bench 'Pick//servers=16$/key=16$' -count 5
//
// # Spread: BenchmarkDistribution
//
// BenchmarkDistribution reports how evenly each placement scheme spreads a
// fixed set of 100,000 keys and how many keys move when a server is added or
// removed (metrics max/mean, stddev/mean, moved-add, moved-remove and their
// /ideal ratios, defined in distribution_test.go). Its sub-benchmarks are named
// servers=N/keys=SET/hash=HASH/dist=DIST:
//
//   - N is 4, 16, 64 or 256;
//   - SET is the key set: seq (key:0, key:1, …), random (16 random bytes),
//     user (user:{id}:field) or user-hashtag (the same keys in a pool with
//     hash_tag "{}");
//   - HASH/DIST is every hashkit name (one_at_a_time, md5, crc16, crc32,
//     crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins,
//     farm) with dist ketama or modula, plus hash=xxhash/dist=goredis-rendezvous
//     and hash=crc32-ieee/dist=gomemcache-modula.
//
// The metrics are computed once per sub-benchmark, so one iteration is
// enough:
//
//	go test ./bench -run '^$' -bench Distribution -benchtime 1x
//	go test ./bench -run '^$' -bench 'Distribution/servers=16$/keys=random$' -benchtime 1x
//
// # In process: BenchmarkInProcess
//
// BenchmarkInProcess measures walnut's in-process client (proxy.Client)
// against go-redis (one *redis.Client to one server, and its Ring over four)
// and rueidis (one client per server, placed by shard.Ring) on four real
// redis-servers it starts on loopback ports, so it needs redis-server. Its
// sub-benchmarks are named OP/gN/IMPL: OP is GET, SET, MGET10 or
// MGET10-spread; gN is g1 (one goroutine, call after call) or g64 (64
// goroutines); IMPL is walnut, walnut-do, walnut-typed, goredis,
// goredis-ring or rueidis (walnut-typed: GET, SET and MGET10 only;
// MGET10-spread: walnut and walnut-do only; inprocess_test.go says what
// each means):
//
//	go test ./bench -run '^$' -bench InProcess -benchtime 2s -count 3
//	go test ./bench -run '^$' -bench 'InProcess/GET$/g1$' -count 3
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
//	                      processes on shared ports (reuseport, GOMAXPROCS=1), LOOPS=N passes
//	                      --loops=N (N event loops; 0: a goroutine per client), BIN=PATH a
//	                      prebuilt binary
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
// System calls per request, with walnut also run with another garbage
// collector target set through its environment:
//
//	go run ./bench/compare -c 1,10 -n 20000 -t get,mcget -strace \
//	    -walnut gogc400:GOGC=400 -out /tmp/compare.md
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
