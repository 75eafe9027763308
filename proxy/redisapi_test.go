package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

func newTypedRedis(t *testing.T, bs []backend, mutate func(*proxy.Config)) (*proxy.Client, *proxy.Redis) {
	t.Helper()
	c := newInProcess(t, protocol.Redis, bs, mutate)
	r, err := c.Redis()
	require.NoError(t, err)
	return c, r
}

// direct returns the value of key read from the backend the Client's ring
// names, found there without walnut: "" for a missing key.
func direct(t *testing.T, c *proxy.Client, bs []backend, args ...string) string {
	t.Helper()
	addr := c.Ring().Server(c.Ring().PickString(args[1])).Addr
	for _, b := range bs {
		if b.Addr == addr {
			v, err := testserver.DialRedis(t, addr).Do(args...)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("no backend at %s", addr)
	return ""
}

// keysOnServers returns n keys of prefix that land on at least two servers
// (the last one is picked to be on another server than the first).
func keysOnServers(t *testing.T, c *proxy.Client, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", prefix, i)
	}
	for i := n; c.Ring().PickString(keys[n-1]) == c.Ring().PickString(keys[0]); i++ {
		require.Less(t, i, n+1000, "no key of %s off the first key's server", prefix)
		keys[n-1] = fmt.Sprintf("%s:%d", prefix, i)
	}
	return keys
}

func TestRedisTypedStrings(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	c, r := newTypedRedis(t, bs, nil)
	ctx := context.Background()

	_, err := r.Get(ctx, "nokey")
	require.ErrorIs(t, err, proxy.ErrNil)
	require.NoError(t, r.Set(ctx, "k", "v", 0))
	got, err := r.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", got)
	assert.Equal(t, "v", direct(t, c, bs, "GET", "k"))
	b, err := r.GetBytes(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), b)

	// Values of other types are sent as go-redis sends them.
	for _, tc := range []struct {
		v    any
		want string
	}{{[]byte("raw"), "raw"}, {42, "42"}, {int64(-7), "-7"}, {uint8(200), "200"}, {1.5, "1.5"}, {true, "1"}, {false, "0"}, {nil, ""}, {time.Unix(0, 0).UTC(), ""}} {
		if _, ok := tc.v.(time.Time); ok {
			// time.Time is an encoding.BinaryMarshaler: its binary form.
			want, _ := tc.v.(time.Time).MarshalBinary()
			tc.want = string(want)
		}
		require.NoError(t, r.Set(ctx, "typed", tc.v, 0), "%T", tc.v)
		got, err := r.Get(ctx, "typed")
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%T", tc.v)
	}
	// A type that cannot be sent is an error, and nothing is sent.
	require.NoError(t, r.Set(ctx, "typed", "before", 0))
	err = r.Set(ctx, "typed", struct{}{}, 0)
	require.ErrorContains(t, err, "cannot send an argument of type struct {}")
	assert.Equal(t, "before", direct(t, c, bs, "GET", "typed"))

	// TTLs: EX for whole seconds, PX otherwise, KEEPTTL, and TTL's cases.
	require.NoError(t, r.Set(ctx, "ttl", "v", 100*time.Second))
	ttl, err := r.TTL(ctx, "ttl")
	require.NoError(t, err)
	assert.InDelta(t, float64(100*time.Second), float64(ttl), float64(5*time.Second))
	require.NoError(t, r.Set(ctx, "ttl", "v2", proxy.KeepTTL))
	ttl, err = r.TTL(ctx, "ttl")
	require.NoError(t, err)
	assert.Greater(t, ttl, 90*time.Second, "KEEPTTL kept it")
	require.NoError(t, r.Set(ctx, "ttl", "v3", 1500*time.Millisecond))
	ttl, err = r.TTL(ctx, "ttl")
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Second)
	assert.LessOrEqual(t, ttl, 1500*time.Millisecond)
	require.NoError(t, r.Set(ctx, "ttl", "v4", 0))
	ttl, err = r.TTL(ctx, "ttl")
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "no expiry")
	_, err = r.TTL(ctx, "nokey")
	require.ErrorIs(t, err, proxy.ErrNil)
	ok, err := r.Expire(ctx, "ttl", 50*time.Second)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "50", strings.TrimPrefix(direct(t, c, bs, "TTL", "ttl"), ":"))
	ok, err = r.Expire(ctx, "ttl", 20500*time.Millisecond)
	require.NoError(t, err)
	assert.True(t, ok)
	pttl, err := strconv.Atoi(strings.TrimPrefix(direct(t, c, bs, "PTTL", "ttl"), ":"))
	require.NoError(t, err)
	assert.True(t, 19000 < pttl && pttl <= 20500, "PEXPIRE 20500 gave PTTL %d", pttl)
	ok, err = r.Expire(ctx, "nokey", time.Second)
	require.NoError(t, err)
	assert.False(t, ok)

	// NX and XX.
	ok, err = r.SetNX(ctx, "nx", "first", 0)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = r.SetNX(ctx, "nx", "second", 0)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = r.SetXX(ctx, "xx", "v", 0)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, "", direct(t, c, bs, "GET", "xx"))
	ok, err = r.SetXX(ctx, "nx", "third", time.Minute)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "third", direct(t, c, bs, "GET", "nx"))
	err = r.SetArgs(ctx, "nx", "fourth", proxy.SetArgs{Mode: proxy.SetIfAbsent, TTL: time.Minute})
	require.ErrorIs(t, err, proxy.ErrNil)
	require.NoError(t, r.SetArgs(ctx, "nx", "fifth", proxy.SetArgs{Mode: proxy.SetIfPresent, KeepTTL: true}))
	ttl, err = r.TTL(ctx, "nx")
	require.NoError(t, err)
	assert.Greater(t, ttl, 50*time.Second)
	err = r.SetArgs(ctx, "nx", "x", proxy.SetArgs{TTL: time.Second, KeepTTL: true})
	require.Error(t, err)

	// Counters.
	n, err := r.Incr(ctx, "ctr")
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = r.IncrBy(ctx, "ctr", 41)
	require.NoError(t, err)
	assert.Equal(t, int64(42), n)
	n, err = r.Decr(ctx, "ctr")
	require.NoError(t, err)
	assert.Equal(t, int64(41), n)
	n, err = r.DecrBy(ctx, "ctr", 40)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	assert.Equal(t, "1", direct(t, c, bs, "GET", "ctr"))

	// Multi-key commands over several servers.
	keys := keysOnServers(t, c, "multi", 12)
	pairs := []any{}
	for _, k := range keys {
		pairs = append(pairs, k, "v-"+k)
	}
	require.NoError(t, r.MSet(ctx, pairs...))
	for _, k := range keys {
		assert.Equal(t, "v-"+k, direct(t, c, bs, "GET", k))
	}
	require.NoError(t, r.MSet(ctx, map[string]string{keys[0]: "m0", keys[1]: "m1"}))
	require.NoError(t, r.MSet(ctx, map[string]any{keys[2]: 2}))
	require.Error(t, r.MSet(ctx, "odd"))
	vals, err := r.MGet(ctx, append([]string{"nokey"}, keys...)...)
	require.NoError(t, err)
	require.Len(t, vals, len(keys)+1)
	assert.ErrorIs(t, vals[0].Err(), proxy.ErrNil)
	assert.True(t, vals[0].IsNil())
	_, err = vals[0].Text()
	assert.ErrorIs(t, err, proxy.ErrNil)
	for i, k := range keys {
		want := "v-" + k
		switch i {
		case 0:
			want = "m0"
		case 1:
			want = "m1"
		case 2:
			want = "2"
		}
		s, err := vals[i+1].Text()
		require.NoError(t, err)
		assert.Equal(t, want, s)
	}
	n, err = r.Exists(ctx, append(keys, "nokey", keys[0])...)
	require.NoError(t, err)
	assert.Equal(t, int64(len(keys)+1), n)
	n, err = r.Del(ctx, append(keys, "nokey")...)
	require.NoError(t, err)
	assert.Equal(t, int64(len(keys)), n)
	n, err = r.Exists(ctx, keys...)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestRedisTypedHashes(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	c, r := newTypedRedis(t, bs, nil)
	ctx := context.Background()

	n, err := r.HSet(ctx, "h", "a", "1", "b", 2)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	n, err = r.HSet(ctx, "h", map[string]any{"b": "two", "c": []byte("3")})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = r.HSet(ctx, "h", map[string]string{"d": "4"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	_, err = r.HSet(ctx, "h", "lonely")
	require.Error(t, err)
	v, err := r.HGet(ctx, "h", "b")
	require.NoError(t, err)
	assert.Equal(t, "two", v)
	assert.Equal(t, "two", direct(t, c, bs, "HGET", "h", "b"))
	_, err = r.HGet(ctx, "h", "nofield")
	require.ErrorIs(t, err, proxy.ErrNil)
	_, err = r.HGet(ctx, "nokey", "a")
	require.ErrorIs(t, err, proxy.ErrNil)
	all, err := r.HGetAll(ctx, "h")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "1", "b": "two", "c": "3", "d": "4"}, all)
	all, err = r.HGetAll(ctx, "nokey")
	require.NoError(t, err)
	assert.Empty(t, all)
	n, err = r.HIncrBy(ctx, "h", "a", 9)
	require.NoError(t, err)
	assert.Equal(t, int64(10), n)
	n, err = r.HDel(ctx, "h", "a", "b", "nofield")
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	all, err = r.HGetAll(ctx, "h")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"c": "3", "d": "4"}, all)
}

// Error replies are errors of one type, with the server's text; a nil is
// ErrNil, not an error reply.
func TestRedisTypedErrorReplies(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	c, r := newTypedRedis(t, bs, nil)
	ctx := context.Background()

	_, err := r.HSet(ctx, "hash", "f", "v")
	require.NoError(t, err)
	require.NoError(t, r.Set(ctx, "str", "notanumber", 0))

	var re *proxy.RedisError
	_, err = r.Get(ctx, "hash")
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "WRONGTYPE", re.Prefix())
	assert.Contains(t, err.Error(), "WRONGTYPE Operation against a key holding the wrong kind of value")
	_, err = r.Incr(ctx, "str")
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "ERR value is not an integer or out of range", re.Message)
	_, err = r.HGet(ctx, "str", "f")
	require.ErrorAs(t, err, &re)
	_, err = r.HGetAll(ctx, "str")
	require.ErrorAs(t, err, &re)
	_, err = r.TTL(ctx, "hash")
	require.NoError(t, err)
	// An error reply walnut makes itself is a RedisError too.
	_, err = r.Do(ctx, "CONFIG", "GET", "maxmemory")
	require.ErrorAs(t, err, &re)
	// SUNION of keys on different servers is refused by walnut.
	ks := keysOnServers(t, c, "cross", 2)
	_, err = r.Do(ctx, "SUNION", ks[0], ks[1])
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "CROSSSLOT", re.Prefix())
}

func TestRedisTypedDo(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	_, r := newTypedRedis(t, bs, nil)
	ctx := context.Background()

	rep, err := r.Do(ctx, "SET", "n", 12)
	require.NoError(t, err)
	ok, err := rep.Bool()
	require.NoError(t, err)
	assert.True(t, ok)
	s, err := rep.Text()
	require.NoError(t, err)
	assert.Equal(t, "OK", s)
	rep, err = r.Do(ctx, "GET", "n")
	require.NoError(t, err)
	n, err := rep.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(12), n)
	f, err := rep.Float()
	require.NoError(t, err)
	assert.Equal(t, 12.0, f)
	_, err = rep.Slice()
	require.Error(t, err)
	rep, err = r.Do(ctx, "INCRBYFLOAT", "n", 0.5)
	require.NoError(t, err)
	f, err = rep.Float()
	require.NoError(t, err)
	assert.Equal(t, 12.5, f)
	rep, err = r.Do(ctx, "GET", "nokey")
	require.ErrorIs(t, err, proxy.ErrNil)
	assert.True(t, rep.IsNil())
	_, err = rep.Text()
	require.ErrorIs(t, err, proxy.ErrNil)

	_, err = r.Do(ctx, "RPUSH", "list", "a", "b", "c")
	require.NoError(t, err)
	rep, err = r.Do(ctx, "LRANGE", "list", 0, -1)
	require.NoError(t, err)
	ss, err := rep.Strings()
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, ss)
	elems, err := rep.Slice()
	require.NoError(t, err)
	require.Len(t, elems, 3)
	b, err := elems[1].Bytes()
	require.NoError(t, err)
	assert.Equal(t, []byte("b"), b)
	_, err = rep.Int()
	require.Error(t, err)

	_, err = r.Do(ctx, "HSET", "h", "f1", "v1", "f2", "v2")
	require.NoError(t, err)
	rep, err = r.Do(ctx, "HGETALL", "h")
	require.NoError(t, err)
	m, err := rep.StringMap()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"f1": "v1", "f2": "v2"}, m)

	rep, err = r.Do(ctx, "EXISTS", "h", "list", "nokey")
	require.NoError(t, err)
	n, err = rep.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	assert.Equal(t, byte(':'), rep.Value().Type)

	_, err = r.Do(ctx)
	require.Error(t, err)
	_, err = r.Do(ctx, "SET", "k", struct{}{})
	require.Error(t, err)
}

func TestRedisPipeline(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	c, r := newTypedRedis(t, bs, nil)
	ctx := context.Background()
	keys := keysOnServers(t, c, "pipe", 8)

	p := r.Pipeline()
	var sets []*proxy.Reply
	for _, k := range keys {
		sets = append(sets, p.Set(k, "v-"+k, time.Minute))
	}
	incr := p.Incr("pctr")
	incrBy := p.IncrBy("pctr", 10)
	get := p.Get(keys[3])
	miss := p.Get("nokey")
	mget := p.MGet(keys[0], "nokey", keys[7])
	exists := p.Exists(keys...)
	hset := p.HSet("ph", "a", 1, "b", 2)
	hget := p.HGet("ph", "b")
	hall := p.HGetAll("ph")
	hincr := p.HIncrBy("ph", "a", 5)
	do := p.Do("ECHO", "hi")
	require.Equal(t, len(keys)+11, p.Len())
	require.NoError(t, p.Exec(ctx), "a nil reply is not Exec's error")
	assert.Zero(t, p.Len())

	for _, s := range sets {
		require.NoError(t, s.Err())
	}
	for _, k := range keys {
		assert.Equal(t, "v-"+k, direct(t, c, bs, "GET", k))
	}
	n, err := incr.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = incrBy.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(11), n)
	s, err := get.Text()
	require.NoError(t, err)
	assert.Equal(t, "v-"+keys[3], s)
	assert.ErrorIs(t, miss.Err(), proxy.ErrNil)
	vals, err := mget.Slice()
	require.NoError(t, err)
	require.Len(t, vals, 3)
	s, err = vals[2].Text()
	require.NoError(t, err)
	assert.Equal(t, "v-"+keys[7], s)
	assert.True(t, vals[1].IsNil())
	n, err = exists.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(len(keys)), n)
	n, err = hset.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	s, err = hget.Text()
	require.NoError(t, err)
	assert.Equal(t, "2", s)
	m, err := hall.StringMap()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, m)
	n, err = hincr.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(6), n)
	s, err = do.Text()
	require.NoError(t, err)
	assert.Equal(t, "hi", s)

	// A failed command fails Exec (the first failure), the others run.
	require.NoError(t, r.Set(ctx, "word", "abc", 0))
	before := p.Set("p1", "x", 0)
	bad := p.Incr("word")
	after := p.Del("p1")
	expire := p.Expire(keys[0], time.Hour)
	err = p.Exec(ctx)
	var re *proxy.RedisError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, bad.Err(), err)
	require.NoError(t, before.Err())
	n, err = after.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	ok, err := expire.Bool()
	require.NoError(t, err)
	assert.True(t, ok)

	// A command that cannot be encoded sends none.
	p.Set("p2", "x", 0)
	p.Set("p3", struct{}{}, 0)
	err = p.Exec(ctx)
	require.ErrorContains(t, err, "cannot send")
	assert.Equal(t, "", direct(t, c, bs, "GET", "p2"))

	// Pipelined, and a pipeline of many commands.
	var last *proxy.Reply
	require.NoError(t, r.Pipelined(ctx, func(p *proxy.Pipeline) error {
		for i := range 5000 {
			last = p.Incr(fmt.Sprintf("many:%d", i%100))
		}
		return nil
	}))
	n, err = last.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(50), n)
	require.NoError(t, r.Pipelined(ctx, func(*proxy.Pipeline) error { return nil }))
	require.ErrorIs(t, r.Pipelined(ctx, func(*proxy.Pipeline) error { return proxy.ErrNil }), proxy.ErrNil)
}

// A server that is down fails a typed call with the pool's error, not an
// error reply.
func TestRedisTypedServerDown(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	c, r := newTypedRedis(t, bs, func(cfg *proxy.Config) { cfg.Backend.Timeout = time.Second })
	ctx := context.Background()
	keys := keysOnServers(t, c, "down", 12)
	pairs := []any{}
	for _, k := range keys {
		pairs = append(pairs, k, "v")
	}
	require.NoError(t, r.MSet(ctx, pairs...))
	dead := c.Ring().Server(c.Ring().PickString(keys[0])).Addr
	var alive string
	for _, k := range keys {
		if c.Ring().Server(c.Ring().PickString(k)).Addr != dead {
			alive = k
			break
		}
	}
	for _, b := range bs {
		if b.Addr == dead {
			b.Stop()
		}
	}

	isPoolErr := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		var re *proxy.RedisError
		assert.False(t, errors.As(err, &re), "%v is an error reply", err)
		assert.True(t, errors.Is(err, pool.ErrConnRefused) || errors.Is(err, pool.ErrEOF) || errors.Is(err, pool.ErrConnReset),
			"%v is not a pool error", err)
		assert.Contains(t, err.Error(), "proxy: server ")
	}
	_, err := r.Get(ctx, keys[0])
	isPoolErr(t, err)
	err = r.Set(ctx, keys[0], "x", 0)
	isPoolErr(t, err)
	_, err = r.Incr(ctx, keys[0])
	isPoolErr(t, err)
	_, err = r.MGet(ctx, keys...)
	isPoolErr(t, err)
	_, err = r.Del(ctx, keys...)
	isPoolErr(t, err)
	err = r.MSet(ctx, pairs...)
	isPoolErr(t, err)
	_, err = r.Do(ctx, "GET", keys[0])
	isPoolErr(t, err)
	// The other servers still answer.
	v, err := r.Get(ctx, alive)
	require.NoError(t, err)
	assert.Equal(t, "v", v)

	p := r.Pipeline()
	bad := p.Get(keys[0])
	good := p.Get(alive)
	err = p.Exec(ctx)
	isPoolErr(t, err)
	isPoolErr(t, bad.Err())
	v, err = good.Text()
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	p.Get(keys[0])
	isPoolErr(t, p.Exec(ctx))
}

func TestRedisTypedOnMemcachePool(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 1)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	r, err := c.Redis()
	require.ErrorIs(t, err, proxy.ErrNotRedis)
	assert.Nil(t, r)
	assert.Contains(t, err.Error(), `pool "inproc" speaks memcached`)
}

func TestRedisTypedContextAndClose(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	cfg := proxy.Config{Name: "closing", Protocol: protocol.Redis, Servers: entries(bs)}
	c, err := proxy.NewClient(cfg)
	require.NoError(t, err)
	r, err := c.Redis()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = r.Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, r.Pipelined(ctx, func(p *proxy.Pipeline) error { p.Get("k"); return nil }), context.Canceled)
	require.NoError(t, r.Set(context.Background(), "k", "v", 0))
	require.NoError(t, c.Close())
	_, err = r.Get(context.Background(), "k")
	require.ErrorIs(t, err, proxy.ErrClientClosed)
	p := r.Pipeline()
	get := p.Get("k")
	require.ErrorIs(t, p.Exec(context.Background()), proxy.ErrClientClosed)
	require.ErrorIs(t, get.Err(), proxy.ErrClientClosed)
}

// A typed GET allocates at most once: the string it returns. Everything
// else (the request, the session, the reply) reuses memory. AllocsPerRun
// counts the allocations of every goroutine, the pool's included.
func TestRedisTypedGetAllocs(t *testing.T) {
	if raceEnabled {
		// The race detector's sync.Pool drops a share of what is put
		// back, so sessions are made anew: allocations are not counted.
		t.Skip("allocations are not counted under -race")
	}
	bs := startBackends(t, protocol.Redis, 3)
	_, r := newTypedRedis(t, bs, nil)
	ctx := context.Background()
	require.NoError(t, r.Set(ctx, "k", "value", 0))
	get := func() {
		v, err := r.Get(ctx, "k")
		if err != nil || v != "value" {
			t.Fatalf("GET: %q, %v", v, err)
		}
	}
	miss := func() {
		if _, err := r.Get(ctx, "nokey"); err != proxy.ErrNil {
			t.Fatalf("GET of a missing key: %v", err)
		}
	}
	for range 200 {
		get()
		miss()
	}
	allocs := testing.AllocsPerRun(1000, get)
	t.Logf("typed GET: %.3f allocations", allocs)
	require.LessOrEqual(t, allocs, 1.0)
	allocs = testing.AllocsPerRun(1000, miss)
	t.Logf("typed GET of a missing key: %.3f allocations", allocs)
	require.LessOrEqual(t, allocs, 0.1)
}

// A call whose ctx ends first returns ctx's error and leaves its batch to
// finish on its own; Close still returns.
func TestRedisTypedContextDeadline(t *testing.T) {
	// A server that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, nc)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		mu.Unlock()
	}()
	c, err := proxy.NewClient(proxy.Config{Name: "stuck", Protocol: protocol.Redis, Servers: []shard.Server{{Addr: l.Addr().String()}}})
	require.NoError(t, err)
	r, err := c.Redis()
	require.NoError(t, err)
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := r.Get(ctx, "k")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		p := r.Pipeline()
		get := p.Get("k")
		p.Set("k", "v", 0)
		require.ErrorIs(t, p.Exec(ctx), context.DeadlineExceeded)
		require.ErrorIs(t, get.Err(), context.DeadlineExceeded)
		cancel()
	}
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after abandoned calls")
	}
}
