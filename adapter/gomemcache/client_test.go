package gomemcache_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/shard"
)

// mcPool starts three memcacheds (weights 3, 1, 2) and nutcracker over
// them with extra pool settings, and returns the pool (with nutcracker's
// listen address), as config reads it, its memcacheds by ring index, and
// its ring.
func mcPool(t *testing.T, name, extra string) (*e2ePool, config.Pool, map[int]*testserver.Server, *shard.Ring) {
	t.Helper()
	p := &e2ePool{name: name, hash: "fnv1a_64", dist: "ketama", extra: extra}
	byID := map[string]*testserver.Server{}
	for i, w := range []int{3, 1, 2} {
		m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
		id := fmt.Sprintf("mc-%d", i)
		byID[id] = m
		p.servers = append(p.servers, fmt.Sprintf("%s:%d %s", m.Addr, w, id))
	}
	pool := startNutcracker(t, p)[name]
	ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
	require.NoError(t, err)
	byIndex := map[int]*testserver.Server{}
	for i := range ring.Len() {
		byIndex[i] = byID[ring.ID(i)]
	}
	return p, pool, byIndex, ring
}

// TestClientAgainstNutcracker: what NewClientFromPool's client writes,
// nutcracker reads, and the reverse, with GetMulti over keys of every
// server; each key is on the memcached the ring picks.
func TestClientAgainstNutcracker(t *testing.T) {
	p, cfg, srvs, ring := mcPool(t, "inproc", "")
	mc, err := gomemcache.NewClientFromPool(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Close() })

	rng := rand.New(rand.NewPCG(18, 3))
	const n = 600
	keys := randomKeys(rng, 2*n)
	fromProxy, fromClient := keys[:n], keys[n:]
	viaNutcracker(t, p.listen, "n/", fromProxy)
	assert.Equal(t, n, multiHits(t, mc, fromProxy), "GetMulti of keys nutcracker wrote")
	hits, missed := clientHits(t, mc, "n/", fromProxy)
	assert.Equal(t, n, hits, "missed e.g. %v", missed)

	for i, k := range fromClient {
		require.NoError(t, mc.Set(&memcache.Item{Key: k, Value: []byte("n/" + strconv.Itoa(i))}), "set %q", k)
	}
	assert.Equal(t, n, nutcrackerHits(t, p.listen, "n/", fromClient))

	// Each key is on the server the ring picks, and only there.
	conns := map[int]*testserver.MemcacheConn{}
	for i, m := range srvs {
		conns[i] = testserver.DialMemcache(t, m.Addr)
	}
	servers := map[int]bool{}
	for _, k := range fromClient[:200] {
		want := ring.PickString(k)
		servers[want] = true
		for i, c := range conns {
			got, err := c.Get([]byte(k))
			require.NoError(t, err)
			_, ok := got[k]
			require.Equal(t, i == want, ok, "key %q on server %d (ring picks %d)", k, i, want)
		}
	}
	require.Len(t, servers, 3)

	_, err = mc.Get("missing-key")
	require.ErrorIs(t, err, memcache.ErrCacheMiss)
	require.ErrorIs(t, mc.Set(&memcache.Item{Key: "bad key", Value: []byte("x")}), memcache.ErrMalformedKey)
}

// TestClientLargeValue stores and reads a value near memcached's default
// item size limit (1 MiB), and a GetMulti of 16 of them (16 MB of replies
// merged by the router, as much as the test memcacheds hold) through one
// in-memory connection.
func TestClientLargeValue(t *testing.T) {
	_, cfg, _, _ := mcPool(t, "big", "")
	mc, err := gomemcache.NewClientFromPool(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Close() })
	mc.Timeout = time.Minute
	val := []byte(strings.Repeat("v", 1000*1000))
	var keys []string
	for i := range 16 {
		k := fmt.Sprintf("big%d", i)
		keys = append(keys, k)
		require.NoError(t, mc.Set(&memcache.Item{Key: k, Value: val}))
	}
	got, err := mc.GetMulti(keys)
	require.NoError(t, err)
	require.Len(t, got, len(keys))
	for _, k := range keys {
		require.Equal(t, len(val), len(got[k].Value))
	}
}

// TestClientClose: with no linger, Close (of the idle connections) closes
// the router and its server connections; no goroutine is left; the Client
// still works afterwards, with a new router.
func TestClientClose(t *testing.T) {
	_, cfg, _, _ := mcPool(t, "closing", "")
	base := goleak.IgnoreCurrent()
	mc, err := gomemcache.NewClient(cfg.Servers, cfg.RingOptions(), gomemcache.ClientOptions{Linger: -1})
	require.NoError(t, err)
	for i := range 30 {
		require.NoError(t, mc.Set(&memcache.Item{Key: fmt.Sprint("c", i), Value: []byte("x")}))
	}
	require.NoError(t, mc.Close())
	goleak.VerifyNone(t, base)
	it, err := mc.Get("c1")
	require.NoError(t, err)
	require.Equal(t, "x", string(it.Value))
	require.NoError(t, mc.Close())
	goleak.VerifyNone(t, base)
}

// TestClientEjection: with auto_eject_hosts and server_failure_limit 1, a
// stopped memcached's key fails once (gomemcache then drops its
// connection, which the router outlives), and later keys land where
// shard.Ring.WithLive puts them.
func TestClientEjection(t *testing.T) {
	_, cfg, srvs, ring := mcPool(t, "eject", "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 2000\n")
	mc, err := gomemcache.NewClientFromPool(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Close() })
	const dead = 0
	live := []bool{true, true, true}
	live[dead] = false
	ejected, err := ring.WithLive(live)
	require.NoError(t, err)
	var probe string
	for i := 0; probe == ""; i++ {
		if k := fmt.Sprintf("probe%d", i); ring.PickString(k) == dead {
			probe = k
		}
	}
	require.NoError(t, mc.Set(&memcache.Item{Key: probe, Value: []byte("x")}))
	srvs[dead].Stop()
	// The router ejects the server at its first failure: the get of the
	// probe that meets the dead connection (answered SERVER_ERROR, after
	// which gomemcache drops its connection) or the backend connection's
	// EOF, whichever comes first. Then the probe is a miss elsewhere.
	failed := 0
	require.Eventually(t, func() bool {
		_, err := mc.Get(probe)
		if errors.Is(err, memcache.ErrCacheMiss) {
			return true
		}
		failed++
		t.Logf("get of the stopped server's key: %v", err)
		return false
	}, 5*time.Second, time.Millisecond)
	require.LessOrEqual(t, failed, 1, "server_failure_limit 1: one failure ejects")
	var moved int
	for i := range 300 {
		k := fmt.Sprintf("e%d", i)
		require.NoError(t, mc.Set(&memcache.Item{Key: k, Value: []byte("v")}), "set %q after the ejection", k)
		if ring.PickString(k) == dead {
			moved++
		}
		c := testserver.DialMemcache(t, srvs[ejected.PickString(k)].Addr)
		got, err := c.Get([]byte(k))
		require.NoError(t, err)
		require.Contains(t, got, k, "key %q not on WithLive's server", k)
		c.Close()
	}
	require.Positive(t, moved)
}
