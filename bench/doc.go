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
// Nothing may import it (style.md §3.3).
package bench
