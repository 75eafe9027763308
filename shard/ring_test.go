package shard_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

func mustRing(t testing.TB, servers []shard.Server, opts shard.RingOptions) *shard.Ring {
	t.Helper()
	r, err := shard.NewRing(servers, opts)
	require.NoError(t, err)
	return r
}

func servers(entries ...string) []shard.Server {
	out := make([]shard.Server, len(entries))
	for i, e := range entries {
		s, err := shard.ParseServer(e)
		if err != nil {
			panic(err)
		}
		out[i] = s
	}
	return out
}

// TestSpecMappings checks the derived mapping examples of twemproxy's ketama and modula placement
// (themselves confirmed against nutcracker).
func TestSpecMappings(t *testing.T) {
	three := servers("127.0.0.1:6381:1", "127.0.0.1:6379:1", "127.0.0.1:6380:1") // out of order on purpose
	beta := servers("127.0.0.1:6382:1 server4", "127.0.0.1:6380:1 server2", "127.0.0.1:6379:1 server1", "127.0.0.1:6381:1 server3")
	tests := []struct {
		name    string
		servers []shard.Server
		opts    shard.RingOptions
		want    map[string]string
	}{
		{
			name: "ketama three", servers: three, opts: shard.RingOptions{HashTag: "{}"},
			want: map[string]string{"foo": "127.0.0.1:6381", "bar": "127.0.0.1:6379", "hello": "127.0.0.1:6379", "key:1": "127.0.0.1:6380", "user:{1000}:name": "127.0.0.1:6380", "": "127.0.0.1:6379"},
		},
		{
			name: "ketama beta", servers: beta, opts: shard.RingOptions{HashTag: "{}"},
			want: map[string]string{"foo": "server1", "bar": "server4", "hello": "server4", "key:1": "server3", "user:{1000}:name": "server2", "": "server3"},
		},
		{
			name: "modula three", servers: three, opts: shard.RingOptions{Distribution: shard.Modula},
			want: map[string]string{"foo": "127.0.0.1:6381", "bar": "127.0.0.1:6380", "hello": "127.0.0.1:6379", "key:1": "127.0.0.1:6381"},
		},
	}
	for _, tt := range tests {
		ring := mustRing(t, tt.servers, tt.opts)
		for key, want := range tt.want {
			t.Run(tt.name+"/"+key, func(t *testing.T) {
				assert.Equal(t, want, ring.Get(key))
				assert.Equal(t, want, ring.ID(ring.Pick([]byte(key))))
			})
		}
	}
}

func TestHashTag(t *testing.T) {
	// Which bytes of a key are hashed, as twemproxy extracts a hash tag.
	tests := []struct{ give, want string }{
		{"user:{42}:a", "42"},
		{"x}{y}", "y"},
		{"{{z}}", "{z"},
		{"a{}b", "a{}b"},
		{"{x", "{x"},
		{"k{é}", "é"},
		{"{}", "{}"},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			ring := mustRing(t, servers("a:1:1", "b:1:1"), shard.RingOptions{HashTag: "{}"})
			assert.Equal(t, hashkit.FNV64a([]byte(tt.want)), ring.Hash([]byte(tt.give)))
		})
	}
	ring := mustRing(t, servers("a:1:1", "b:1:1"), shard.RingOptions{HashTag: "$$"})
	assert.Equal(t, hashkit.FNV64a([]byte("id")), ring.Hash([]byte("a$id$b")), "same byte as both tags")
}

func TestHashSpecialCases(t *testing.T) {
	calls := 0
	counting := func(b []byte) uint32 { calls++; return 7 }
	two := mustRing(t, servers("a:1:1", "b:1:1"), shard.RingOptions{Hash: counting})
	assert.Zero(t, two.Hash(nil), "empty key hashes to 0")
	assert.Zero(t, two.Hash([]byte("{}")[:0]))
	assert.Zero(t, calls, "hash not called for an empty key")
	one := mustRing(t, servers("a:1:1"), shard.RingOptions{Hash: counting, Distribution: shard.Modula})
	assert.Zero(t, one.Hash([]byte("foo")))
	assert.Equal(t, 0, one.Pick([]byte("foo")))
	assert.Zero(t, calls, "one-server pools skip hashing")
	assert.Equal(t, uint32(7), two.Hash([]byte("foo")))
}

// identity hashes a decimal key to its value, so that tests exercise the
// distribution logic rather than hash quality.
func identity(b []byte) uint32 {
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		panic(err)
	}
	return uint32(n)
}

func TestModulaWeights(t *testing.T) {
	// Index order: a (w2), b (w1), c (w3): a owns residues 0-1, b 2, c 3-5.
	ring := mustRing(t, servers("c:1:3", "a:1:2", "b:1:1"), shard.RingOptions{Hash: identity, Distribution: shard.Modula})
	want := []string{"a", "a", "b", "c", "c", "c", "a", "a", "b", "c"}
	for h, w := range want {
		assert.Equal(t, w+":1", ring.Get(strconv.Itoa(h)), "hash %d", h)
	}
	// With b dead the modulus is 5: a owns 0-1, c 2-4.
	live, err := ring.WithLive([]bool{true, false, true})
	require.NoError(t, err)
	want = []string{"a", "a", "c", "c", "c", "a", "a", "c"}
	for h, w := range want {
		assert.Equal(t, w+":1", live.Get(strconv.Itoa(h)), "hash %d", h)
	}
}

func TestRandom(t *testing.T) {
	ring := mustRing(t, servers("a:1:1", "b:1:1", "c:1:1"), shard.RingOptions{Distribution: shard.Random})
	live, err := ring.WithLive([]bool{true, false, true})
	require.NoError(t, err)
	seen := map[int]int{}
	for range 3000 {
		seen[live.Pick([]byte("same key"))]++
	}
	assert.Zero(t, seen[1], "dead server picked")
	assert.Greater(t, seen[0], 1200)
	assert.Greater(t, seen[2], 1200)
}

// TestWithLiveMatchesSubset checks that ejecting servers gives the ring
// twemproxy rebuilds over the live servers, which is the ring of those
// servers alone (points recomputed over live weights), with indexes kept.
func TestWithLiveMatchesSubset(t *testing.T) {
	all := servers("127.0.0.1:7001:5", "127.0.0.1:7002:1 beta", "127.0.0.1:7003:3", "127.0.0.1:11211:2", "127.0.0.1:7005:1", "/tmp/m.sock:4")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dist := range []shard.Distribution{shard.Ketama, shard.Modula} {
		ring := mustRing(t, all, shard.RingOptions{Distribution: dist, HashTag: "{}"})
		for mask := 1; mask < 1<<len(all); mask++ {
			live := make([]bool, len(all))
			var subset []shard.Server
			for i := range live {
				live[i] = mask&(1<<i) != 0
				if live[i] {
					subset = append(subset, ring.Server(i))
				}
			}
			derived, err := ring.WithLive(live)
			require.NoError(t, err)
			fresh := mustRing(t, subset, shard.RingOptions{Distribution: dist, HashTag: "{}"})
			for range 200 {
				key := make([]byte, 1+rng.IntN(20))
				for i := range key {
					key[i] = byte(0x21 + rng.IntN(0xff-0x21))
				}
				require.Equal(t, fresh.ID(fresh.Pick(key)), derived.ID(derived.Pick(key)), "%v mask %b key %x", dist, mask, key)
			}
			for i := range live {
				assert.Equal(t, live[i], derived.Live(i))
			}
		}
	}
	_, err := mustRing(t, all, shard.RingOptions{}).WithLive(make([]bool, len(all)))
	assert.ErrorIs(t, err, shard.ErrNoLiveServers)
	_, err = mustRing(t, all, shard.RingOptions{}).WithLive([]bool{true})
	assert.Error(t, err)
}

// TestKetamaEjectionMovesOnlyDeadKeys checks the consistent-hashing promise
// for equal weights: only the dead server's keys move.
func TestKetamaEjectionMovesOnlyDeadKeys(t *testing.T) {
	var list []shard.Server
	for i := range 10 {
		list = append(list, shard.Server{Addr: fmt.Sprintf("127.0.0.1:%d", 7000+i)})
	}
	ring := mustRing(t, list, shard.RingOptions{})
	live := make([]bool, 10)
	for i := range live {
		live[i] = i != 3
	}
	ejected, err := ring.WithLive(live)
	require.NoError(t, err)
	moved := 0
	var key [8]byte
	for i := range 20000 {
		binary.LittleEndian.PutUint64(key[:], uint64(i))
		before, after := ring.Pick(key[:]), ejected.Pick(key[:])
		if before != 3 {
			require.Equal(t, before, after, "a live server's key moved")
		} else {
			require.NotEqual(t, 3, after)
			moved++
		}
	}
	assert.InDelta(t, 2000, moved, 600, "about 1/10 of keys were on the ejected server")
}

func TestPickAllocs(t *testing.T) {
	list := servers("127.0.0.1:7001:1", "127.0.0.1:7002:2", "127.0.0.1:7003:1", "127.0.0.1:7004:1")
	key := []byte("user:{1000}:name")
	for _, dist := range []shard.Distribution{shard.Ketama, shard.Modula, shard.Random} {
		ring := mustRing(t, list, shard.RingOptions{Distribution: dist, HashTag: "{}"})
		assert.Zero(t, testing.AllocsPerRun(200, func() { _ = ring.Pick(key) }), "%v Pick", dist)
		assert.Zero(t, testing.AllocsPerRun(200, func() { _ = ring.PickString("user:{1000}:name") }), "%v PickString", dist)
		assert.Zero(t, testing.AllocsPerRun(200, func() { _ = ring.Get("user:{1000}:name") }), "%v Get", dist)
	}
}

var sinkInt int

func benchServers(n int) []shard.Server {
	list := make([]shard.Server, n)
	for i := range list {
		list[i] = shard.Server{Addr: fmt.Sprintf("10.0.%d.%d:6379", i/250, i%250+1), Weight: 1}
	}
	return list
}

// benchKeys returns 1024 keys of the given size so that lookups do not all
// hit the same continuum bucket.
func benchKeys(size int) [][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	keys := make([][]byte, 1024)
	for i := range keys {
		k := make([]byte, size)
		for j := range k {
			k[j] = byte('a' + rng.IntN(26))
		}
		keys[i] = k
	}
	return keys
}

func BenchmarkPick(b *testing.B) {
	for _, dist := range []shard.Distribution{shard.Ketama, shard.Modula} {
		for _, n := range []int{4, 16, 64, 256} {
			ring := mustRing(b, benchServers(n), shard.RingOptions{Distribution: dist})
			for _, size := range []int{8, 16, 64, 256} {
				keys := benchKeys(size)
				b.Run(fmt.Sprintf("%v/fnv1a_64/servers=%d/key=%d", dist, n, size), func(b *testing.B) {
					b.SetBytes(int64(size))
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						sinkInt += ring.Pick(keys[i&1023])
						i++
					}
				})
			}
		}
	}
}

// BenchmarkWithLive measures rebuilding a ring after one ejection.
func BenchmarkWithLive(b *testing.B) {
	for _, n := range []int{4, 16, 64, 256} {
		ring := mustRing(b, benchServers(n), shard.RingOptions{})
		live := make([]bool, n)
		for i := range live {
			live[i] = i != 1
		}
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, _ := ring.WithLive(live)
				sinkInt += r.Len()
			}
		})
	}
}
