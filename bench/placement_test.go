package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// A *shard.Ring can be returned from redis.RingOptions.NewConsistentHash.
var _ redis.ConsistentHash = (*shard.Ring)(nil)

// numKeys is the number of pre-generated keys per key size. Benchmarks cycle
// through them, so the input does not grow with b.N.
const numKeys = 1024

var (
	serverCounts = []int{4, 16, 64, 256}
	keySizes     = []int{8, 16, 64, 256}
)

// Package-level sinks keep the compiler from discarding lookups.
var (
	sinkInt    int
	sinkAddr   net.Addr
	sinkClient *redis.Client
)

// backend is server i of a benchmark pool: a loopback address (nothing is
// dialled) and a go-redis style shard name.
type backend struct{ name, addr string }

func backends(n int) []backend {
	out := make([]backend, n)
	for i := range out {
		out[i] = backend{name: fmt.Sprintf("shard%d", i), addr: fmt.Sprintf("127.0.0.1:%d", 7000+i)}
	}
	return out
}

func names(bs []backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.name
	}
	return out
}

// keySet holds the same keys as bytes (walnut's Pick) and as strings (go-redis,
// gomemcache and PickString all take strings).
type keySet struct {
	bytes   [][]byte
	strings []string
}

// newKeySet returns numKeys random lowercase keys of the given size. They hold
// no '{', so no implementation finds a hash tag in them.
func newKeySet(size int) keySet {
	rng := rand.New(rand.NewPCG(uint64(size), 24))
	ks := keySet{bytes: make([][]byte, numKeys), strings: make([]string, numKeys)}
	for i := range ks.bytes {
		k := make([]byte, size)
		for j := range k {
			k[j] = byte('a' + rng.IntN(26))
		}
		ks.bytes[i] = k
		ks.strings[i] = string(k)
	}
	return ks
}

// newWalnutRing builds walnut's default ring (ketama, fnv1a_64, no hash tag).
// Servers carry the go-redis shard names, so Get answers in go-redis's terms.
func newWalnutRing(tb testing.TB, bs []backend) *shard.Ring {
	tb.Helper()
	return newWalnutRingHash(tb, bs, nil)
}

// newWalnutRingHash is newWalnutRing with another key hash (nil: fnv1a_64).
func newWalnutRingHash(tb testing.TB, bs []backend, hash hashkit.Func) *shard.Ring {
	tb.Helper()
	servers := make([]shard.Server, len(bs))
	for i, b := range bs {
		servers[i] = shard.Server{Addr: b.addr, Name: b.name}
	}
	r, err := shard.NewRing(servers, shard.RingOptions{Hash: hash})
	require.NoError(tb, err)
	return r
}

// newGoredisRing builds a go-redis Ring over the backends with its defaults,
// except that the heartbeat always succeeds and in practice never runs, so no
// shard is marked down and nothing is dialled. The ring is closed at cleanup.
func newGoredisRing(tb testing.TB, bs []backend, newHash func([]string) redis.ConsistentHash) *redis.Ring {
	tb.Helper()
	addrs := make(map[string]string, len(bs))
	for _, b := range bs {
		addrs[b.name] = b.addr
	}
	r := redis.NewRing(&redis.RingOptions{
		Addrs:              addrs,
		HeartbeatFrequency: time.Hour,
		HeartbeatFn:        func(context.Context, *redis.Client) bool { return true },
		NewConsistentHash:  newHash,
	})
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// goredisDefaultHash returns the NewConsistentHash that go-redis installs when
// RingOptions leaves it nil: RingOptions.init sets newRendezvous, which
// returns hashtag.NewRendezvousHash(shards) (go-redis v9.22.0 ring.go,
// internal/hashtag/rendezvous.go). That package is internal, but
// Ring.Options returns the initialised options, so the benchmark runs
// go-redis's own code rather than a copy.
func goredisDefaultHash(tb testing.TB) func([]string) redis.ConsistentHash {
	tb.Helper()
	fn := newGoredisRing(tb, nil, nil).Options().NewConsistentHash
	require.NotNil(tb, fn)
	return fn
}

// goredisHashtagKey is a copy of go-redis v9.22.0's hashtag.Key
// (internal/hashtag/hashtag.go), which ringSharding.GetByKey applies to every
// key before ConsistentHash.Get: the text between the first '{' and the first
// '}' after it, if not empty; otherwise the whole key.
func goredisHashtagKey(key string) string {
	if s := strings.IndexByte(key, '{'); s > -1 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+e+1]
		}
	}
	return key
}

// rendezvous is a copy of go-redis v9.22.0's default ConsistentHash,
// hashtag.RendezvousHash (internal/hashtag/rendezvous.go): highest random
// weight, where each shard's score for a key is mix64 of the xor of the key's
// and the shard name's xxhash.Sum64String, and ties go to the earlier shard.
// v9.22.0 no longer uses github.com/dgryski/go-rendezvous (its go.mod does not
// require it). The benchmarks run go-redis's own code (goredisDefaultHash);
// this copy documents the algorithm, and TestGoredisRendezvous checks that it
// agrees with go-redis.
type rendezvous struct {
	nodes []rendezvousNode
}

type rendezvousNode struct {
	name string
	hash uint64
}

func newRendezvous(shards []string) *rendezvous {
	n := make([]rendezvousNode, len(shards))
	for i, s := range shards {
		n[i] = rendezvousNode{name: s, hash: xxhash.Sum64String(s)}
	}
	return &rendezvous{nodes: n}
}

func (r *rendezvous) Get(key string) string {
	if len(r.nodes) == 0 {
		return ""
	}
	kh := xxhash.Sum64String(key)
	bestIdx := 0
	bestScore := mix64(kh ^ r.nodes[0].hash)
	for i := 1; i < len(r.nodes); i++ {
		if score := mix64(kh ^ r.nodes[i].hash); score > bestScore {
			bestScore = score
			bestIdx = i
		}
	}
	return r.nodes[bestIdx].name
}

// mix64 is go-redis's xorshift-multiply mixer.
func mix64(x uint64) uint64 {
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	return x * 2685821657736338717
}

func newServerList(tb testing.TB, bs []backend) *memcache.ServerList {
	tb.Helper()
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.addr
	}
	var sl memcache.ServerList
	require.NoError(tb, sl.SetServers(addrs...))
	return &sl
}

// BenchmarkPick measures one key → server lookup per operation:
//
//   - walnut-ketama: shard.Ring.Pick on a []byte key (ketama, fnv1a_64).
//   - walnut-ketama-string: shard.Ring.PickString on the same key as a string.
//   - walnut-ketama-farm: the same ring keyed by hashkit.Farm instead, a
//     non-twemproxy hash: what placement costs when compatibility with
//     nutcracker is not needed.
//   - goredis-rendezvous: what go-redis's ringSharding.GetByKey does to place
//     a key: hashtag.Key, then Get on the default ConsistentHash through the
//     interface. Its read lock and shard-name map lookup are left out.
//   - goredis-ring: redis.Ring.GetShardClientForKey, the whole public lookup
//     (hashtag.Key, RLock, Get, name → shard map).
//   - gomemcache: memcache.ServerList.PickServer (CRC-32 of a pooled copy of
//     the key, modulo the server count, under a read lock).
//
// Implementations alternate within each servers=/key= pair so that they are
// measured side by side on a noisy machine.
func BenchmarkPick(b *testing.B) {
	goredisHash := goredisDefaultHash(b)
	keySets := make(map[int]keySet, len(keySizes))
	for _, size := range keySizes {
		keySets[size] = newKeySet(size)
	}
	for _, n := range serverCounts {
		bs := backends(n)
		ring := newWalnutRing(b, bs)
		farmRing := newWalnutRingHash(b, bs, hashkit.Farm)
		ch := goredisHash(names(bs))
		gr := newGoredisRing(b, bs, nil)
		sl := newServerList(b, bs)
		impls := []struct {
			name string
			loop func(b *testing.B, ks keySet)
		}{
			{"walnut-ketama", func(b *testing.B, ks keySet) {
				i := 0
				for b.Loop() {
					sinkInt += ring.Pick(ks.bytes[i&(numKeys-1)])
					i++
				}
			}},
			{"walnut-ketama-farm", func(b *testing.B, ks keySet) {
				i := 0
				for b.Loop() {
					sinkInt += farmRing.Pick(ks.bytes[i&(numKeys-1)])
					i++
				}
			}},
			{"walnut-ketama-string", func(b *testing.B, ks keySet) {
				i := 0
				for b.Loop() {
					sinkInt += ring.PickString(ks.strings[i&(numKeys-1)])
					i++
				}
			}},
			{"goredis-rendezvous", func(b *testing.B, ks keySet) {
				i := 0
				for b.Loop() {
					sinkInt += len(ch.Get(goredisHashtagKey(ks.strings[i&(numKeys-1)])))
					i++
				}
			}},
			{"goredis-ring", func(b *testing.B, ks keySet) {
				i := 0
				for b.Loop() {
					sinkClient, _ = gr.GetShardClientForKey(ks.strings[i&(numKeys-1)])
					i++
				}
			}},
			{"gomemcache", func(b *testing.B, ks keySet) {
				i := 0
				for b.Loop() {
					sinkAddr, _ = sl.PickServer(ks.strings[i&(numKeys-1)])
					i++
				}
			}},
		}
		for _, size := range keySizes {
			ks := keySets[size]
			for _, impl := range impls {
				b.Run(fmt.Sprintf("impl=%s/servers=%d/key=%d", impl.name, n, size), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(size))
					impl.loop(b, ks)
				})
			}
		}
	}
}

func TestPlacementAllocs(t *testing.T) {
	ring := newWalnutRing(t, backends(16))
	ks := newKeySet(16)
	tests := []struct {
		name string
		give func()
	}{
		{"Pick", func() { sinkInt += ring.Pick(ks.bytes[0]) }},
		{"PickString", func() { sinkInt += ring.PickString(ks.strings[0]) }},
		{"Get", func() { sinkInt += len(ring.Get(ks.strings[0])) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(1000, tt.give))
		})
	}
}

// TestGoredisRendezvous checks that the go-redis ConsistentHash the benchmarks
// use is go-redis's rendezvous hash, that it answers with shard names, and
// that the copy above agrees with it.
func TestGoredisRendezvous(t *testing.T) {
	goredisHash := goredisDefaultHash(t)
	ks := newKeySet(16)
	for _, n := range serverCounts {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			shards := names(backends(n))
			ch := goredisHash(shards)
			assert.Equal(t, "*hashtag.RendezvousHash", fmt.Sprintf("%T", ch))
			replica := newRendezvous(shards)
			for _, key := range ks.strings {
				got := ch.Get(key)
				require.Contains(t, shards, got, "key %q", key)
				require.Equal(t, got, replica.Get(key), "key %q", key)
			}
		})
	}
}

// TestGoredisHashtagKey checks the copy of hashtag.Key on go-redis's own
// examples (internal/hashtag/hashtag_test.go), and that go-redis's Ring routes
// each key with the part the copy extracts.
func TestGoredisHashtagKey(t *testing.T) {
	tests := []struct{ give, want string }{
		{"123456789", "123456789"},
		{"foo{bar}", "bar"},
		{"{foo}bar", "foo"},
		{"{user1000}.following", "user1000"},
		{"foo{{bar}}zap", "{bar"},
		{"foo{bar}{zap}", "bar"},
		{"{}foo", "{}foo"},
		{"foo{}", "foo{}"},
		{"foo{}{bar}", "foo{}{bar}"},
	}
	gr := newGoredisRing(t, backends(16), nil)
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			assert.Equal(t, tt.want, goredisHashtagKey(tt.give))
			got, err := gr.GetShardClientForKey(tt.give)
			require.NoError(t, err)
			want, err := gr.GetShardClientForKey(tt.want)
			require.NoError(t, err)
			assert.Same(t, want, got)
		})
	}
}

// TestRingAsGoredisConsistentHash plugs a *shard.Ring into go-redis's Ring as
// its ConsistentHash and checks that go-redis then sends each key to the
// server walnut picks.
func TestRingAsGoredisConsistentHash(t *testing.T) {
	bs := backends(16)
	addrOf := make(map[string]string, len(bs))
	for _, b := range bs {
		addrOf[b.name] = b.addr
	}
	newHash := func(shards []string) redis.ConsistentHash {
		live := make([]backend, len(shards))
		for i, name := range shards {
			live[i] = backend{name: name, addr: addrOf[name]}
		}
		return newWalnutRing(t, live)
	}
	gr := newGoredisRing(t, bs, newHash)
	ring := newWalnutRing(t, bs)
	for _, key := range newKeySet(16).strings[:64] {
		c, err := gr.GetShardClientForKey(key)
		require.NoError(t, err)
		assert.Equal(t, ring.Server(ring.PickString(key)).Addr, c.Options().Addr, "key %q", key)
	}
}
