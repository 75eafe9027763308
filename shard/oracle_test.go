package shard_test

// Differential tests against the real nutcracker: the same pools and keys go
// through nutcracker to real backends, each key is found by asking every
// backend directly, and the backend must be the one shard.Ring picks.

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/shard"
)

// oraclePool is one nutcracker pool under test.
type oraclePool struct {
	name    string
	listen  string
	hash    string
	dist    string
	hashTag string
	servers []string // "host:port:weight [name]" in config order
	extra   string   // more YAML keys, indented
	keys    [][]byte
}

func (p *oraclePool) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  hash: %s\n  distribution: %s\n", p.name, p.listen, p.hash, p.dist)
	if p.hashTag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", p.hashTag)
	}
	b.WriteString(p.extra)
	b.WriteString("  servers:\n")
	for _, s := range p.servers {
		fmt.Fprintf(&b, "   - %s\n", s)
	}
	return b.String()
}

// ring builds the shard.Ring for the pool from the same config text.
func (p *oraclePool) ring(t *testing.T) *shard.Ring {
	t.Helper()
	var list []shard.Server
	for _, e := range p.servers {
		s, err := shard.ParseServer(e)
		require.NoError(t, err)
		list = append(list, s)
	}
	fn, err := hashkit.ByName(p.hash)
	require.NoError(t, err)
	dist, err := shard.ParseDistribution(p.dist)
	require.NoError(t, err)
	r, err := shard.NewRing(list, shard.RingOptions{Hash: fn, Distribution: dist, HashTag: p.hashTag})
	require.NoError(t, err)
	return r
}

// keyGen draws random keys that are distinct across every pool of a test,
// since pools share backends.
type keyGen struct {
	rng  *rand.Rand
	seen map[string]bool
}

func newKeyGen(seed uint64) *keyGen {
	return &keyGen{rng: rand.New(rand.NewPCG(seed, seed)), seen: map[string]bool{}}
}

// keys returns n new keys of 1..maxLen bytes drawn from 0x21..0xFF (no
// space or control bytes, so memcached accepts them), with a hash tag inside
// half of them when tag is set.
func (g *keyGen) keys(n, maxLen int, tag string) [][]byte {
	rng, seen := g.rng, g.seen
	var keys [][]byte
	for len(keys) < n {
		k := make([]byte, 1+rng.IntN(maxLen))
		for i := range k {
			k[i] = byte(0x21 + rng.IntN(0x100-0x21))
		}
		if tag != "" && rng.IntN(2) == 0 {
			// prefix{tagged}suffix, with the tagged part short so that
			// many keys share it.
			k = slices.Concat(k[:len(k)/2], []byte{tag[0]}, []byte(strconv.Itoa(rng.IntN(50))), []byte{tag[1]}, k[len(k)/2:])
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// locate writes every key of p through nutcracker, then asks each backend
// for every key, and returns the backend address holding each key.
func locate(t *testing.T, p *oraclePool, backends []string) []string {
	t.Helper()
	proxy := testserver.DialMemcache(t, p.listen)
	for i, k := range p.keys {
		require.NoError(t, proxy.Set(k, []byte(p.name+"/"+strconv.Itoa(i))), "set %x through %s", k, p.name)
	}
	holder := make([]string, len(p.keys))
	for _, addr := range backends {
		direct := testserver.DialMemcache(t, addr)
		for start := 0; start < len(p.keys); start += 100 {
			chunk := p.keys[start:min(start+100, len(p.keys))]
			got, err := direct.Get(chunk...)
			require.NoError(t, err)
			for j, k := range chunk {
				v, ok := got[string(k)]
				if !ok {
					continue
				}
				i := start + j
				require.Equal(t, p.name+"/"+strconv.Itoa(i), string(v), "key %x", k)
				require.Empty(t, holder[i], "key %x on two backends", k)
				holder[i] = addr
			}
		}
		require.NoError(t, direct.Close())
	}
	for i, h := range holder {
		require.NotEmpty(t, h, "key %x of pool %s on no backend", p.keys[i], p.name)
	}
	return holder
}

// mismatches counts keys whose backend differs from the ring's pick and
// returns up to three examples.
func mismatches(ring *shard.Ring, keys [][]byte, holder []string) (int, []string) {
	n := 0
	var examples []string
	for i, k := range keys {
		want := ring.Server(ring.Pick(k))
		_, addr := want.Network()
		if addr != holder[i] {
			n++
			if len(examples) < 3 {
				examples = append(examples, fmt.Sprintf("key %x: nutcracker %s, walnut %s (%s)", k, holder[i], addr, want.ID()))
			}
		}
	}
	return n, examples
}

// TestOracleNutcracker routes 500 random keys per pool through nutcracker for
// each of the 12 hashes × {ketama, modula}, with unequal weights listed out
// of order, named and unnamed servers (one on port 11211, whose name drops
// the port), and hash-tag pools, and requires 0 mismatches with shard.Ring.
func TestOracleNutcracker(t *testing.T) {
	testserver.RequireBinary(t, "nutcracker")
	mcs := []*testserver.Server{
		testserver.StartMemcached(t, testserver.MemcachedOptions{}),
		testserver.StartMemcached(t, testserver.MemcachedOptions{}),
		testserver.StartMemcached(t, testserver.MemcachedOptions{}),
		testserver.StartMemcachedOn11211(t),
	}
	var backends []string
	for _, m := range mcs {
		backends = append(backends, m.Addr)
	}
	a, b, c, d := mcs[0], mcs[1], mcs[2], mcs[3]
	unnamed := []string{
		fmt.Sprintf("%s:%d:3", c.Host, c.Port),
		fmt.Sprintf("%s:%d:5", a.Host, a.Port),
		fmt.Sprintf("%s:11211:2", d.Host),
		fmt.Sprintf("%s:%d:1", b.Host, b.Port),
	}
	named := []string{
		fmt.Sprintf("%s:%d:1 zeta", b.Host, b.Port),
		fmt.Sprintf("%s:%d:5 alpha-9", a.Host, a.Port),
		fmt.Sprintf("%s:11211:2 b", d.Host),
		fmt.Sprintf("%s:%d:3 gamma", c.Host, c.Port),
	}
	gen := newKeyGen(2026)
	var pools []*oraclePool
	add := func(p *oraclePool) {
		p.name = fmt.Sprintf("p%02d_%s_%s", len(pools), p.hash, p.dist)
		p.listen = fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t, "127.0.0.1"))
		p.keys = gen.keys(500, 40, p.hashTag)
		pools = append(pools, p)
	}
	for hi, h := range hashkit.Names() {
		if h == "farm" {
			continue // not a twemproxy hash
		}
		for di, dist := range []string{"ketama", "modula"} {
			list := unnamed
			if (hi+di)%2 == 1 {
				list = named
			}
			add(&oraclePool{hash: h, dist: dist, servers: list})
		}
	}
	add(&oraclePool{hash: "fnv1a_64", dist: "ketama", hashTag: "{}", servers: named})
	add(&oraclePool{hash: "murmur", dist: "modula", hashTag: "{}", servers: unnamed})
	add(&oraclePool{hash: "md5", dist: "ketama", hashTag: "$$", servers: unnamed})

	var yml strings.Builder
	var listens []string
	for _, p := range pools {
		yml.WriteString(p.yaml())
		listens = append(listens, p.listen)
	}
	testserver.StartNutcracker(t, yml.String(), testserver.NutcrackerOptions{Listen: listens})

	total := 0
	for _, p := range pools {
		t.Run(p.name, func(t *testing.T) {
			holder := locate(t, p, backends)
			n, examples := mismatches(p.ring(t), p.keys, holder)
			assert.Zero(t, n, "mismatches in %s, e.g. %v", p.name, examples)
			total += len(p.keys)
		})
	}
	t.Logf("%d pools, %d keys: placement compared with nutcracker", len(pools), total)
}

// TestOracleKetama156 checks a 25-server ketama pool, the smallest size
// where twemproxy's float arithmetic gives each server 156 points instead of
// 160, against nutcracker, and checks that the test can tell: a naive
// 160-point continuum places some of the same keys elsewhere.
func TestOracleKetama156(t *testing.T) {
	if testing.Short() {
		t.Skip("25 memcacheds behind nutcracker: slow; TestKetamaGolden checks the 156-point continuum against twemproxy's own output")
	}
	testserver.RequireBinary(t, "nutcracker")
	p := &oraclePool{name: "k25", hash: "fnv1a_64", dist: "ketama"}
	var backends []string
	for range 25 {
		m := testserver.StartMemcached(t, testserver.MemcachedOptions{Args: []string{"-m", "8"}})
		backends = append(backends, m.Addr)
		p.servers = append(p.servers, m.Addr+":1")
	}
	p.listen = fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t, "127.0.0.1"))
	p.keys = newKeyGen(25).keys(1000, 30, "")
	testserver.StartNutcracker(t, p.yaml(), testserver.NutcrackerOptions{Listen: []string{p.listen}})

	ring := p.ring(t)
	for i := range ring.Len() {
		require.Equal(t, 156, ring.Points(i), "points of %s", ring.ID(i))
	}
	holder := locate(t, p, backends)
	n, examples := mismatches(ring, p.keys, holder)
	assert.Zero(t, n, "e.g. %v", examples)

	naive := naive160(ring)
	differ := 0
	for i, k := range p.keys {
		if naive(hashkit.FNV64a(k)) != holder[i] {
			differ++
		}
	}
	assert.Positive(t, differ, "a 160-point continuum would place every key the same; the test cannot tell 156 from 160")
	t.Logf("%d of %d keys would move under a naive 160-point continuum", differ, len(p.keys))
}

// naive160 builds a textbook ketama continuum with 160 points per server,
// returning a lookup from hash to server address.
func naive160(ring *shard.Ring) func(uint32) string {
	type point struct {
		v    uint32
		addr string
	}
	var pts []point
	for i := range ring.Len() {
		_, addr := ring.Server(i).Network()
		for j := range 40 {
			sum := md5.Sum([]byte(ring.ID(i) + "-" + strconv.Itoa(j)))
			for k := 0; k < 16; k += 4 {
				pts = append(pts, point{binary.LittleEndian.Uint32(sum[k:]), addr})
			}
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return int(int64(a.v) - int64(b.v)) })
	return func(h uint32) string {
		i, _ := slices.BinarySearchFunc(pts, h, func(p point, h uint32) int { return int(int64(p.v) - int64(h)) })
		if i == len(pts) {
			i = 0
		}
		return pts[i].addr
	}
}

// TestOracleEjection stops a backend, lets nutcracker eject it
// (auto_eject_hosts, server_failure_limit 1), then routes keys through
// nutcracker and requires them to land where Ring.WithLive predicts, for
// ketama with unequal weights (every live server's point count changes) and
// modula (the modulus changes).
func TestOracleEjection(t *testing.T) {
	testserver.RequireBinary(t, "nutcracker")
	var mcs []*testserver.Server
	var backends, list []string
	for i, w := range []int{1, 4, 2, 3} {
		m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
		mcs = append(mcs, m)
		backends = append(backends, m.Addr)
		list = append(list, fmt.Sprintf("%s:%d s%d", m.Addr, w, i))
	}
	extra := "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 2000\n"
	pools := []*oraclePool{
		{name: "ej_ketama", hash: "fnv1a_64", dist: "ketama", servers: list, extra: extra},
		{name: "ej_modula", hash: "fnv1a_32", dist: "modula", servers: list, extra: extra},
	}
	gen := newKeyGen(4)
	var yml strings.Builder
	var listens []string
	for _, p := range pools {
		p.listen = fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t, "127.0.0.1"))
		p.keys = gen.keys(500, 30, "")
		yml.WriteString(p.yaml())
		listens = append(listens, p.listen)
	}
	testserver.StartNutcracker(t, yml.String(), testserver.NutcrackerOptions{Listen: listens})

	const dead = 1 // s1, weight 4: the most keys move
	mcs[dead].Stop()
	for _, p := range pools {
		t.Run(p.name, func(t *testing.T) {
			ring := p.ring(t)
			require.Equal(t, fmt.Sprintf("s%d", dead), ring.ID(dead))
			// A request for a key on the dead server fails once and ejects it.
			var probe []byte
			for _, k := range gen.keys(1000, 30, "") {
				if ring.Pick(k) == dead {
					probe = k
					break
				}
			}
			require.NotNil(t, probe)
			proxy := testserver.DialMemcache(t, p.listen)
			_, err := proxy.Get(probe)
			require.Error(t, err, "a get for a key on the stopped server must fail")

			live := []bool{true, true, true, true}
			live[dead] = false
			ejected, err := ring.WithLive(live)
			require.NoError(t, err)
			holder := locate(t, p, slices.Delete(slices.Clone(backends), dead, dead+1))
			n, examples := mismatches(ejected, p.keys, holder)
			assert.Zero(t, n, "e.g. %v", examples)
			// The test must exercise a real change of placement.
			moved := 0
			for _, k := range p.keys {
				if ring.Pick(k) != ejected.Pick(k) {
					moved++
				}
			}
			assert.Positive(t, moved)
			t.Logf("%s: %d of %d keys moved on ejection, all as nutcracker moved them", p.name, moved, len(p.keys))
		})
	}
}

// TestOracleRedis routes keys through a nutcracker redis pool (hash tag,
// named servers, modula and ketama) and finds them with EXISTS on each
// redis-server.
func TestOracleRedis(t *testing.T) {
	testserver.RequireBinary(t, "nutcracker")
	var rs []*testserver.Server
	for range 3 {
		rs = append(rs, testserver.StartRedis(t, testserver.RedisOptions{}))
	}
	list := []string{rs[2].Addr + ":2 r-c", rs[0].Addr + ":1 r-a", rs[1].Addr + ":3"}
	pools := []*oraclePool{
		{name: "redis_ketama", hash: "fnv1a_64", dist: "ketama", hashTag: "{}", servers: list, extra: "  redis: true\n"},
		{name: "redis_modula", hash: "hsieh", dist: "modula", hashTag: "{}", servers: list, extra: "  redis: true\n"},
	}
	gen := newKeyGen(6379)
	var yml strings.Builder
	var listens []string
	for _, p := range pools {
		p.listen = fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t, "127.0.0.1"))
		p.keys = gen.keys(500, 40, p.hashTag)
		yml.WriteString(p.yaml())
		listens = append(listens, p.listen)
	}
	testserver.StartNutcracker(t, yml.String(), testserver.NutcrackerOptions{Listen: listens})
	for _, p := range pools {
		t.Run(p.name, func(t *testing.T) {
			proxy := testserver.DialRedis(t, p.listen)
			for _, k := range p.keys {
				reply, err := proxy.Do("SET", string(k), p.name)
				require.NoError(t, err)
				require.Equal(t, "+OK", reply)
			}
			holder := make([]string, len(p.keys))
			for _, r := range rs {
				direct := testserver.DialRedis(t, r.Addr)
				for i, k := range p.keys {
					reply, err := direct.Do("GET", string(k))
					require.NoError(t, err)
					if reply == p.name {
						require.Empty(t, holder[i], "key %x on two servers", k)
						holder[i] = r.Addr
					}
				}
			}
			n, examples := mismatches(p.ring(t), p.keys, holder)
			assert.Zero(t, n, "e.g. %v", examples)
		})
	}
}
