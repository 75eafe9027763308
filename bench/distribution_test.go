package bench_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// distKeys is the size of every key set BenchmarkDistribution places. With
// 256 servers that is about 390 keys a server, so even a perfectly random
// placement shows stddev/mean ≈ 1/√390 ≈ 0.05 there, and max/mean above 1.1.
const distKeys = 100_000

// userFields are the fields of each user in the user:{id}:field key sets:
// every id has one key per field.
var userFields = []string{
	"name", "email", "age", "city", "country", "plan", "created", "updated", "score", "flags",
}

// distKeySet is one fixed key set of BenchmarkDistribution and the hash tag a
// walnut pool uses with it.
type distKeySet struct {
	name    string
	hashTag string
	keys    keySet
}

// newDistKeySets returns the key sets, each of n keys and deterministic:
//
//   - seq: key:0, key:1, …
//   - random: 16 uniformly random bytes (any byte value, so the signed-char
//     quirks of twemproxy's hashes are exercised).
//   - user: user:{id}:field for sequential ids and ten fields, placed by the
//     whole key.
//   - user-hashtag: the same keys in a pool with hash_tag "{}", so walnut
//     places each by its id and all ten keys of an id share a server. That is
//     the point of a hash tag, and it makes the placement ten times coarser.
func newDistKeySets(n int) []distKeySet {
	seq := make([]string, n)
	for i := range seq {
		seq[i] = "key:" + strconv.Itoa(i)
	}
	rng := rand.New(rand.NewPCG(8, 1))
	random := make([]string, n)
	for i := range random {
		k := make([]byte, 16)
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		random[i] = string(k)
	}
	user := make([]string, n)
	for i := range user {
		user[i] = fmt.Sprintf("user:{%d}:%s", i/len(userFields), userFields[i%len(userFields)])
	}
	users := distKeySetOf(user)
	return []distKeySet{
		{name: "seq", keys: distKeySetOf(seq)},
		{name: "random", keys: distKeySetOf(random)},
		{name: "user", keys: users},
		{name: "user-hashtag", hashTag: "{}", keys: users},
	}
}

func distKeySetOf(keys []string) keySet {
	ks := keySet{bytes: make([][]byte, len(keys)), strings: keys}
	for i, k := range keys {
		ks.bytes[i] = []byte(k)
	}
	return ks
}

// distServerAddr is the address of server i of a distribution pool:
// 10.0.0.i:6379 for i < 256, then 10.0.1.0:6379 and on (gomemcache resolves
// addresses, so they must be valid IPs). The rings never dial them.
func distServerAddr(i int) string { return fmt.Sprintf("10.0.%d.%d:6379", i/256, i%256) }

// A placer places key i of a key set on one of the n servers of its pool,
// returning i's server as an index into distServerAddr order, whatever order
// the implementation keeps its servers in.
type placer func(ks keySet, i int) int

// distImpl is one placement scheme: a hash and a distribution.
type distImpl struct {
	hash, dist string
	// newPlacer builds the scheme over servers 0..n-1 with the pool's hash
	// tag ("" for none).
	newPlacer func(tb testing.TB, n int, hashTag string) placer
}

// distImpls returns every twemproxy hash (and farm) under ketama and modula,
// then the two references:
//
//   - xxhash/goredis-rendezvous: go-redis's default Ring placement,
//     rendezvous hashing over xxhash. go-redis's Ring always applies its
//     hashtag.Key to the key first and cannot be told not to, so it does that
//     in every key set, whatever the pool's hash tag.
//   - crc32-ieee/gomemcache-modula: gomemcache's ServerList, CRC-32 (all 32
//     bits) modulo the server count. It has no hash tags, so it always hashes
//     the whole key.
func distImpls(tb testing.TB) []distImpl {
	tb.Helper()
	var impls []distImpl
	for _, dist := range []shard.Distribution{shard.Ketama, shard.Modula} {
		for _, name := range hashkit.Names() {
			fn, err := hashkit.ByName(name)
			require.NoError(tb, err)
			impls = append(impls, distImpl{hash: name, dist: dist.String(), newPlacer: walnutPlacer(fn, dist)})
		}
	}
	goredisHash := goredisDefaultHash(tb)
	impls = append(impls,
		distImpl{hash: "xxhash", dist: "goredis-rendezvous", newPlacer: func(tb testing.TB, n int, _ string) placer {
			shards := make([]string, n)
			index := make(map[string]int, n)
			for i := range shards {
				shards[i] = distServerAddr(i)
				index[shards[i]] = i
			}
			ch := goredisHash(shards)
			return func(ks keySet, i int) int { return index[ch.Get(goredisHashtagKey(ks.strings[i]))] }
		}},
		distImpl{hash: "crc32-ieee", dist: "gomemcache-modula", newPlacer: func(tb testing.TB, n int, _ string) placer {
			bs := make([]backend, n)
			for i := range bs {
				bs[i].addr = distServerAddr(i)
			}
			sl := newServerList(tb, bs)
			index := make(map[net.Addr]int, n)
			require.NoError(tb, sl.Each(func(a net.Addr) error {
				index[a] = len(index) // PickServer returns these very values
				return nil
			}))
			return func(ks keySet, i int) int {
				a, _ := sl.PickServer(ks.strings[i])
				return index[a]
			}
		}},
	)
	return impls
}

// walnutPlacer places keys with a shard.Ring: servers "10.0.0.i:6379",
// weight 1, with hash fn and distribution dist.
func walnutPlacer(fn hashkit.Func, dist shard.Distribution) func(testing.TB, int, string) placer {
	return func(tb testing.TB, n int, hashTag string) placer {
		servers := make([]shard.Server, n)
		index := make(map[string]int, n)
		for i := range servers {
			servers[i] = shard.Server{Addr: distServerAddr(i), Weight: 1}
			index[servers[i].ID()] = i
		}
		ring, err := shard.NewRing(servers, shard.RingOptions{Hash: fn, Distribution: dist, HashTag: hashTag})
		require.NoError(tb, err)
		// The ring orders servers by ID; translate its indexes back.
		remap := make([]int, n)
		for i := range remap {
			remap[i] = index[ring.ID(i)]
		}
		return func(ks keySet, i int) int { return remap[ring.Pick(ks.bytes[i])] }
	}
}

// assign places every key of ks and returns each key's server.
func assign(p placer, ks keySet) []int32 {
	out := make([]int32, len(ks.strings))
	for i := range out {
		out[i] = int32(p(ks, i))
	}
	return out
}

// loadSpread returns the largest server load and the population standard
// deviation of the loads, both divided by the mean load, over n servers.
func loadSpread(a []int32, n int) (maxMean, stddevMean float64) {
	counts := make([]int, n)
	for _, s := range a {
		counts[s]++
	}
	mean := float64(len(a)) / float64(n)
	var most int
	var sq float64
	for _, c := range counts {
		most = max(most, c)
		d := float64(c) - mean
		sq += d * d
	}
	return float64(most) / mean, math.Sqrt(sq/float64(n)) / mean
}

// movedFraction returns the fraction of keys placed differently in a and b.
func movedFraction(a, b []int32) float64 {
	moved := 0
	for i := range a {
		if a[i] != b[i] {
			moved++
		}
	}
	return float64(moved) / float64(len(a))
}

// distStats are the distribution metrics of one scheme, key set and server
// count n.
type distStats struct {
	maxMean, stddevMean float64
	// movedAdd is the fraction of keys that move when server n is added
	// (ideal 1/(n+1)), movedRemove when server n-1 is removed (ideal 1/n).
	movedAdd, movedRemove float64
}

func measureDist(tb testing.TB, impl distImpl, n int, ks distKeySet) (distStats, placer) {
	tb.Helper()
	p := impl.newPlacer(tb, n, ks.hashTag)
	base := assign(p, ks.keys)
	var st distStats
	st.maxMean, st.stddevMean = loadSpread(base, n)
	st.movedAdd = movedFraction(base, assign(impl.newPlacer(tb, n+1, ks.hashTag), ks.keys))
	st.movedRemove = movedFraction(base, assign(impl.newPlacer(tb, n-1, ks.hashTag), ks.keys))
	return st, p
}

// BenchmarkDistribution reports how evenly each placement scheme spreads a
// fixed key set over servers and how many keys move when the pool grows or
// shrinks by one server, for every twemproxy hash (and farm) × {ketama,
// modula}, go-redis's rendezvous and gomemcache's CRC-32 modulo (see
// distImpls) × 4..256 servers × the key sets of newDistKeySets.
//
// Metrics, computed once per sub-benchmark outside the timed loop:
//
//   - max/mean: the busiest server's keys over the mean (1 is perfect; N
//     means every key on one server).
//   - stddev/mean: the coefficient of variation of the server loads.
//   - moved-add, moved-remove: fractions of keys that change server when
//     server N is added, or server N-1 removed; moved-add/ideal and
//     moved-remove/ideal divide them by the minimum, 1/(N+1) and 1/N.
//     Consistent schemes (ketama, rendezvous) sit near 1; modula moves
//     about (N-1)/N of the keys, (N-1)× the ideal.
//
// The timed loop places the whole key set once per op; ns/key is the cost of
// one placement through the harness (BenchmarkPick measures lookups
// precisely). Run it once per case:
//
//	go test ./bench -run '^$' -bench Distribution -benchtime 1x
//
// Known twemproxy pitfalls show up as they are: crc32 keeps 15 bits, so under
// ketama nearly every key lands on the server owning the first continuum point
// (max/mean ≈ N), and since that server stays, moved-add and moved-remove
// read 0. fnv1_64, fnv1a_64 (the default), fnv1_32 and crc16 mix short keys
// poorly, so ketama spreads short numeric keys (key:N, and above all the
// hash-tagged ids of user-hashtag) two to ten times less evenly than with
// murmur, jenkins or farm. With hash_tag every key of a user shares that
// user's server, by design.
func BenchmarkDistribution(b *testing.B) {
	keySets := newDistKeySets(distKeys)
	impls := distImpls(b)
	for _, n := range serverCounts {
		for _, ks := range keySets {
			for _, impl := range impls {
				var (
					st   distStats
					p    placer
					done bool
				)
				b.Run(fmt.Sprintf("servers=%d/keys=%s/hash=%s/dist=%s", n, ks.name, impl.hash, impl.dist), func(b *testing.B) {
					if !done { // b.Run may call this more than once
						st, p = measureDist(b, impl, n, ks)
						done = true
					}
					for b.Loop() {
						for i := range distKeys {
							sinkInt += p(ks.keys, i)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/distKeys, "ns/key")
					b.ReportMetric(st.maxMean, "max/mean")
					b.ReportMetric(st.stddevMean, "stddev/mean")
					b.ReportMetric(st.movedAdd, "moved-add")
					b.ReportMetric(st.movedAdd*float64(n+1), "moved-add/ideal")
					b.ReportMetric(st.movedRemove, "moved-remove")
					b.ReportMetric(st.movedRemove*float64(n), "moved-remove/ideal")
				})
			}
		}
	}
}

// TestDistributionFacts checks the claims BenchmarkDistribution's report
// makes, on 20,000-key sets (random bytes unless named) over 16 servers.
func TestDistributionFacts(t *testing.T) {
	const n = 16
	keySets := newDistKeySets(20_000)
	random, userTagged := keySets[1], keySets[3]
	require.Equal(t, "random", random.name)
	require.Equal(t, "user-hashtag", userTagged.name)
	impls := make(map[string]distImpl)
	for _, impl := range distImpls(t) {
		impls[impl.hash+"/"+impl.dist] = impl
	}
	stats := func(t *testing.T, name string, ks distKeySet) distStats {
		t.Helper()
		impl, ok := impls[name]
		require.True(t, ok, name)
		st, _ := measureDist(t, impl, n, ks)
		t.Logf("%s: %+v", name, st)
		return st
	}

	t.Run("fnv1a_64 ketama is even and consistent", func(t *testing.T) {
		st := stats(t, "fnv1a_64/ketama", random)
		assert.Less(t, st.maxMean, 1.3)
		assert.InDelta(t, 1, st.movedRemove*n, 1, "moved-remove/ideal")
		assert.InDelta(t, 1, st.movedAdd*(n+1), 1, "moved-add/ideal")
	})
	t.Run("consistent schemes move only the changed server's keys", func(t *testing.T) {
		for _, name := range []string{"fnv1a_64/ketama", "md5/ketama", "xxhash/goredis-rendezvous"} {
			impl := impls[name]
			base := assign(impl.newPlacer(t, n, ""), random.keys)
			added := assign(impl.newPlacer(t, n+1, ""), random.keys)
			removed := assign(impl.newPlacer(t, n-1, ""), random.keys)
			for i := range base {
				if base[i] != added[i] {
					require.EqualValues(t, n, added[i], "%s: key %d moved to an old server on add", name, i)
				}
				if base[i] != removed[i] {
					require.EqualValues(t, n-1, base[i], "%s: key %d moved off a kept server on remove", name, i)
				}
			}
		}
	})
	t.Run("crc32 ketama puts nearly every key on one server", func(t *testing.T) {
		// libmemcached's crc32 keeps 15 bits, so every key hashes below
		// 32768 and ketama sends it to the owner of the first point.
		st := stats(t, "crc32/ketama", random)
		assert.Greater(t, st.maxMean, 0.9*n)
	})
	t.Run("modula moves almost every key", func(t *testing.T) {
		for _, name := range []string{"fnv1a_64/modula", "crc32-ieee/gomemcache-modula"} {
			st := stats(t, name, random)
			assert.Less(t, st.maxMean, 1.3, name)
			assert.InDelta(t, float64(n-1)/n, st.movedRemove, 0.05, "%s moved-remove", name)
			assert.InDelta(t, float64(n)/(n+1), st.movedAdd, 0.05, "%s moved-add", name)
		}
	})
	t.Run("go-redis rendezvous moves the ideal share", func(t *testing.T) {
		st := stats(t, "xxhash/goredis-rendezvous", random)
		assert.Less(t, st.maxMean, 1.3)
		assert.InDelta(t, 1, st.movedAdd*(n+1), 0.2, "moved-add/ideal")
		assert.InDelta(t, 1, st.movedRemove*n, 0.2, "moved-remove/ideal")
	})
	t.Run("fnv1a_64 ketama spreads short tagged ids unevenly", func(t *testing.T) {
		fnv := stats(t, "fnv1a_64/ketama", userTagged)
		farm := stats(t, "farm/ketama", userTagged)
		assert.Greater(t, fnv.stddevMean, 2*farm.stddevMean)
		assert.Greater(t, fnv.maxMean, 1.3)
	})
	t.Run("hash_tag keeps a user's keys together", func(t *testing.T) {
		a := assign(impls["fnv1a_64/ketama"].newPlacer(t, n, userTagged.hashTag), userTagged.keys)
		for i := range a {
			require.Equal(t, a[i-i%len(userFields)], a[i], "key %q", userTagged.keys.strings[i])
		}
		untagged := assign(impls["fnv1a_64/ketama"].newPlacer(t, n, ""), userTagged.keys)
		split := 0
		for i := 0; i < len(untagged); i += len(userFields) {
			for _, s := range untagged[i : i+len(userFields)] {
				if s != untagged[i] {
					split++
					break
				}
			}
		}
		assert.Greater(t, split, len(untagged)/len(userFields)/2, "without the tag most users' keys should spread")
	})
}
