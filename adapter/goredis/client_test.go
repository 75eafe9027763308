package goredis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/shard"
)

// newClient returns NewClientFromPool for lp's pool, closed at cleanup.
func newClient(t *testing.T, lp *livePool, opts goredis.ClientOptions) *redis.Client {
	t.Helper()
	c, err := goredis.NewClientFromPool(lp.pool, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestClientAgainstNutcracker: for pools with no hash tag and with "$$",
// where a go-redis Ring misplaces keys with braces, what the client writes
// nutcracker finds and the reverse, each key on the server shard.Ring
// picks, and in the database nutcracker uses.
func TestClientAgainstNutcracker(t *testing.T) {
	const n = 600
	specs := map[string]poolSpec{
		"ketama-no-tag-auth-db": {dist: "ketama", auth: "s3cret", openServers: true, db: 2},
		"modula-dollar-tag":     {dist: "modula", hash: "murmur", tag: "$$"},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			lp := startPool(t, spec)
			ctx := context.Background()
			c := newClient(t, lp, goredis.ClientOptions{})
			ring, _ := nutRing(t, lp.pool)
			proxy := lp.proxyConn(t)

			keys := e2eKeys("c", n)
			for i := range keys {
				if i%3 == 0 {
					keys[i] = fmt.Sprintf("c:$%d$:x", i) // a "$$" tag
				}
			}
			for _, k := range keys {
				require.NoError(t, c.Set(ctx, k, "v-"+k, 0).Err(), "SET %q", k)
			}
			for _, k := range keys {
				v, err := proxy.Do("GET", k)
				require.NoError(t, err)
				require.Equal(t, "v-"+k, v, "GET %q through nutcracker", k)
			}
			for i, s := range lp.holders(t, keys, -1) {
				require.Equal(t, ring.PickString(keys[i]), s, "key %q", keys[i])
			}
			back := e2eKeys("b", n)
			for _, k := range back {
				r, err := proxy.Do("SET", k, "w-"+k)
				require.NoError(t, err)
				require.Equal(t, "+OK", r)
			}
			for _, k := range back {
				v, err := c.Get(ctx, k).Result()
				require.NoError(t, err, "GET %q", k)
				require.Equal(t, "w-"+k, v)
			}
			_, err := c.Get(ctx, "no such key").Result()
			require.ErrorIs(t, err, redis.Nil)
		})
	}
}

// TestClientMultiKey: MSET, MGET, EXISTS and DEL over keys of every
// server are split and merged, where a go-redis Ring would send them
// whole to the first key's server.
func TestClientMultiKey(t *testing.T) {
	lp := startPool(t, poolSpec{dist: "ketama"})
	ctx := context.Background()
	c := newClient(t, lp, goredis.ClientOptions{})
	ring, _ := nutRing(t, lp.pool)
	keys := make([]string, 60)
	on := map[int]int{}
	for i := range keys {
		keys[i] = fmt.Sprintf("multi:{%d}:k", i)
		on[ring.PickString(keys[i])]++
	}
	require.Len(t, on, 3, "the keys span every server")
	var pairs []any
	for _, k := range keys {
		pairs = append(pairs, k, "v"+k)
	}
	require.NoError(t, c.MSet(ctx, pairs...).Err())
	vals, err := c.MGet(ctx, append(keys, "missing")...).Result()
	require.NoError(t, err)
	require.Len(t, vals, len(keys)+1)
	for i, k := range keys {
		assert.Equal(t, "v"+k, vals[i])
	}
	assert.Nil(t, vals[len(keys)])
	require.Equal(t, int64(len(keys)), c.Exists(ctx, append(keys, "missing")...).Val())
	for i, s := range lp.holders(t, keys, -1) {
		require.Equal(t, ring.PickString(keys[i]), s, "key %q", keys[i])
	}
	require.Equal(t, int64(len(keys)), c.Del(ctx, keys...).Val())
	require.Zero(t, c.Exists(ctx, keys...).Val())
}

// TestClientPipeline sends 20,000 commands in one go-redis pipeline: go-redis
// writes them all before it reads a reply, which a synchronous in-memory
// connection (net.Pipe) would deadlock on.
func TestClientPipeline(t *testing.T) {
	lp := startPool(t, poolSpec{dist: "ketama"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newClient(t, lp, goredis.ClientOptions{})
	const n = 10000
	pipe := c.Pipeline()
	for i := range n {
		pipe.Set(ctx, fmt.Sprintf("p%d", i), i, 0)
	}
	gets := make([]*redis.StringCmd, n)
	for i := range n {
		gets[i] = pipe.Get(ctx, fmt.Sprintf("p%d", i))
	}
	cmds, err := pipe.Exec(ctx)
	require.NoError(t, err)
	require.Len(t, cmds, 2*n)
	for i, g := range gets {
		require.Equal(t, fmt.Sprint(i), g.Val(), "GET p%d", i)
	}
	for i := range lp.servers {
		r, err := lp.serverConn(t, i).Do("DBSIZE")
		require.NoError(t, err)
		assert.NotEqual(t, ":0", r, "server s%d holds no key", i)
	}
}

// TestClientLargeValue sets and gets a 64 MiB value.
func TestClientLargeValue(t *testing.T) {
	lp := startPool(t, poolSpec{dist: "ketama"})
	ctx := context.Background()
	c := newClient(t, lp, goredis.ClientOptions{Redis: &redis.Options{ReadTimeout: time.Minute, WriteTimeout: time.Minute}})
	big := strings.Repeat("walnut!\n", 8<<20)
	require.NoError(t, c.Set(ctx, "big", big, 0).Err())
	got, err := c.Get(ctx, "big").Result()
	require.NoError(t, err)
	require.True(t, got == big, "the value came back changed (%d bytes)", len(got))
	require.Equal(t, "PONG", c.Ping(ctx).Val())
}

// TestClientClose: Close closes the client's connections and so, with no
// linger, the proxy and its server connections; no goroutine is left.
func TestClientClose(t *testing.T) {
	lp := startPool(t, poolSpec{dist: "ketama"})
	ctx := context.Background()
	base := goleak.IgnoreCurrent()
	c, err := goredis.NewClient(lp.pool.Servers, lp.pool.RingOptions(), goredis.ClientOptions{Linger: -1})
	require.NoError(t, err)
	for i := range 50 {
		require.NoError(t, c.Set(ctx, fmt.Sprint("close", i), i, 0).Err())
	}
	serverClients := func() int {
		n := 0
		for i := range lp.servers {
			list, err := lp.serverConn(t, i).Do("CLIENT", "LIST")
			require.NoError(t, err)
			for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
				if !strings.Contains(line, "cmd=client|list") && !strings.Contains(line, "cmd=NULL") {
					n++
				}
			}
		}
		return n
	}
	require.Positive(t, serverClients())
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return serverClients() == 0 }, 5*time.Second, 10*time.Millisecond)
	goleak.VerifyNone(t, base)
	require.Error(t, c.Ping(ctx).Err())
}

// TestClientEjection: with auto_eject_hosts and server_failure_limit 1, a
// stopped server's keys fail once, then land where shard.Ring.WithLive
// (and nutcracker) put them.
func TestClientEjection(t *testing.T) {
	const dead = 2
	lp := startPool(t, poolSpec{dist: "ketama",
		extra: "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 2000\n"})
	ctx := context.Background()
	c := newClient(t, lp, goredis.ClientOptions{})
	full, _ := nutRing(t, lp.pool)
	ejected, err := full.WithLive([]bool{true, true, false})
	require.NoError(t, err)
	var probe string
	for i := 0; probe == ""; i++ {
		if k := fmt.Sprintf("probe%d", i); full.PickString(k) == dead {
			probe = k
		}
	}
	require.NoError(t, c.Set(ctx, probe, "x", 0).Err())
	lp.servers[dead].Stop()
	require.Error(t, c.Get(ctx, probe).Err(), "the stopped server's key fails (or, if the router saw the connection close first, misses)")
	// The router takes the server out at its first failure; a write of the
	// probe then succeeds elsewhere. (The ring is rebuilt just after the
	// failure is counted, so allow a moment.)
	require.Eventually(t, func() bool {
		err := c.Set(ctx, probe, "y", 0).Err()
		if err != nil {
			t.Logf("SET of the stopped server's key: %v", err)
		}
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	keys := e2eKeys("j", 300)
	for _, k := range keys {
		require.NoError(t, c.Set(ctx, k, "v", 0).Err(), "SET %q after the ejection", k)
	}
	for i, s := range lp.holders(t, keys, dead) {
		require.Equal(t, ejected.PickString(keys[i]), s, "key %q", keys[i])
	}
	// nutcracker, told of the failure the same way, agrees.
	proxy := lp.proxyConn(t)
	r, _ := proxy.Do("GET", probe)
	require.True(t, strings.HasPrefix(r, "-"), "%q", r)
	for _, k := range keys[:50] {
		v, err := proxy.Do("GET", k)
		require.NoError(t, err)
		require.Equal(t, "v", v, "GET %q through nutcracker", k)
	}
}

// TestNewClientErrors: NewClient refuses what a proxy.Server refuses.
func TestNewClientErrors(t *testing.T) {
	_, err := goredis.NewClient(nil, shard.RingOptions{}, goredis.ClientOptions{})
	require.Error(t, err)
	_, err = goredis.NewClientFromPool(parsePool(t, "m:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:11211:1\n"), goredis.ClientOptions{})
	require.ErrorIs(t, err, goredis.ErrNotRedis)
}
