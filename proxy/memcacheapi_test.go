package proxy_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/proxy"
)

// serverOf returns the backend the Client's ring routes key to.
func serverOf(t *testing.T, c *proxy.Client, bs []backend, key string) backend {
	t.Helper()
	addr := c.Ring().Server(c.Ring().PickString(key)).Addr
	for _, b := range bs {
		if b.Addr == addr {
			return b
		}
	}
	t.Fatalf("no backend at %s", addr)
	return backend{}
}

func TestMemcacheTypedRoundTrip(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()

	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("%d:item", i)
		require.NoError(t, mc.Set(ctx, &proxy.MemcacheItem{Key: keys[i], Value: []byte("v" + keys[i]), Flags: uint32(i)}))
	}
	used := map[string]bool{}
	for i, k := range keys {
		it, err := mc.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, k, it.Key)
		assert.Equal(t, "v"+k, string(it.Value))
		assert.Equal(t, uint32(i), it.Flags)
		assert.NotZero(t, it.CasID)
		// The item is on the server the ring names, read there directly.
		b := serverOf(t, c, bs, k)
		used[b.Addr] = true
		got, err := testserver.DialMemcache(t, b.Addr).Get([]byte(k))
		require.NoError(t, err)
		assert.Equal(t, "v"+k, string(got[k]), "key %s on %s", k, b.Addr)
	}
	assert.Len(t, used, 3, "100 keys over 3 servers use all of them")

	// The returned value is the caller's: changing it changes nothing else.
	it, err := mc.Get(ctx, keys[0])
	require.NoError(t, err)
	it.Value[0] = 'X'
	it.Value = append(it.Value, "more"...)
	again, err := mc.Get(ctx, keys[0])
	require.NoError(t, err)
	assert.Equal(t, "v"+keys[0], string(again.Value))

	// GetMulti across servers, with a duplicate and a missing key.
	ask := append(slices.Clone(keys), keys[3], "item:none")
	items, err := mc.GetMulti(ctx, ask)
	require.NoError(t, err)
	require.Len(t, items, len(keys))
	for i, k := range keys {
		require.Contains(t, items, k)
		assert.Equal(t, k, items[k].Key)
		assert.Equal(t, "v"+k, string(items[k].Value))
		assert.Equal(t, uint32(i), items[k].Flags)
		assert.NotZero(t, items[k].CasID)
	}
	// Values of one reply buffer do not overwrite each other when grown.
	a, b := items[keys[0]], items[keys[1]]
	a.Value = append(a.Value, strings.Repeat("x", 64)...)
	assert.Equal(t, "v"+keys[1], string(b.Value))

	// No keys: an empty map.
	items, err = mc.GetMulti(ctx, nil)
	require.NoError(t, err)
	assert.NotNil(t, items)
	assert.Empty(t, items)

	// A binary value with CRLF and NUL inside, and an empty one.
	bin := []byte("a\r\nEND\r\n\x00b")
	require.NoError(t, mc.Set(ctx, &proxy.MemcacheItem{Key: "bin", Value: bin}))
	it, err = mc.Get(ctx, "bin")
	require.NoError(t, err)
	assert.Equal(t, bin, it.Value)
	require.NoError(t, mc.Set(ctx, &proxy.MemcacheItem{Key: "empty"}))
	it, err = mc.Get(ctx, "empty")
	require.NoError(t, err)
	assert.Empty(t, it.Value)
}

// TestMemcacheTypedGetMultiBatches checks GetMulti with more keys per
// server than one request carries.
func TestMemcacheTypedGetMultiBatches(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 2)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()
	keys := make([]string, 5000)
	var sets [][]byte
	for i := range keys {
		keys[i] = fmt.Sprintf("%d:many", i)
		if i%2 == 0 { // every other key is a miss
			sets = append(sets, memcache.AppendStorage(nil, memcache.Set, []byte(keys[i]), 0, 0, 0, []byte(keys[i]), false))
		}
	}
	replies, err := c.DoMulti(ctx, sets...)
	require.NoError(t, err)
	for _, r := range replies {
		require.Equal(t, "STORED\r\n", string(r))
	}
	perServer := map[int]int{}
	for _, k := range keys {
		perServer[c.Ring().PickString(k)]++
	}
	require.Greater(t, max(perServer[0], perServer[1]), 2048, "a server gets three requests")
	items, err := mc.GetMulti(ctx, keys)
	require.NoError(t, err)
	require.Len(t, items, len(keys)/2)
	var requests int64
	for _, s := range c.Stats().Servers {
		requests += s.Requests
	}
	assert.Equal(t, int64(len(sets)+(perServer[0]+1023)/1024+(perServer[1]+1023)/1024), requests)
	for i, k := range keys {
		it, ok := items[k]
		require.Equal(t, i%2 == 0, ok, "key %s", k)
		if ok {
			require.Equal(t, k, string(it.Value))
		}
	}
}

func TestMemcacheTypedSentinels(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 2)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()
	item := func(k, v string) *proxy.MemcacheItem { return &proxy.MemcacheItem{Key: k, Value: []byte(v)} }
	value := func(k string) string {
		t.Helper()
		it, err := mc.Get(ctx, k)
		require.NoError(t, err)
		return string(it.Value)
	}

	// Cache misses.
	_, err := mc.Get(ctx, "absent")
	assert.ErrorIs(t, err, proxy.ErrCacheMiss)
	_, err = mc.GetAndTouch(ctx, "absent", 100)
	assert.ErrorIs(t, err, proxy.ErrCacheMiss)
	assert.ErrorIs(t, mc.Delete(ctx, "absent"), proxy.ErrCacheMiss)
	assert.ErrorIs(t, mc.Touch(ctx, "absent", 100), proxy.ErrCacheMiss)
	_, err = mc.Increment(ctx, "absent", 1)
	assert.ErrorIs(t, err, proxy.ErrCacheMiss)
	_, err = mc.Decrement(ctx, "absent", 1)
	assert.ErrorIs(t, err, proxy.ErrCacheMiss)
	assert.ErrorIs(t, mc.CompareAndSwap(ctx, &proxy.MemcacheItem{Key: "absent", Value: []byte("x"), CasID: 1}), proxy.ErrCacheMiss)

	// Conditional stores.
	assert.ErrorIs(t, mc.Replace(ctx, item("k", "r")), proxy.ErrNotStored)
	assert.ErrorIs(t, mc.Append(ctx, item("k", "a")), proxy.ErrNotStored)
	assert.ErrorIs(t, mc.Prepend(ctx, item("k", "p")), proxy.ErrNotStored)
	_, err = mc.Get(ctx, "k")
	assert.ErrorIs(t, err, proxy.ErrCacheMiss, "the failed stores stored nothing")
	require.NoError(t, mc.Add(ctx, &proxy.MemcacheItem{Key: "k", Value: []byte("1"), Flags: 7}))
	assert.ErrorIs(t, mc.Add(ctx, item("k", "2")), proxy.ErrNotStored)
	assert.Equal(t, "1", value("k"))
	require.NoError(t, mc.Replace(ctx, &proxy.MemcacheItem{Key: "k", Value: []byte("b"), Flags: 9}))
	require.NoError(t, mc.Append(ctx, item("k", "c")))
	require.NoError(t, mc.Prepend(ctx, item("k", "a")))
	it, err := mc.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "abc", string(it.Value))
	assert.Equal(t, uint32(9), it.Flags, "append and prepend keep the flags")

	// Compare-and-swap.
	it.Value = []byte("swapped")
	stale := *it
	require.NoError(t, mc.CompareAndSwap(ctx, it))
	assert.Equal(t, "swapped", value("k"))
	stale.Value = []byte("lost")
	assert.ErrorIs(t, mc.CompareAndSwap(ctx, &stale), proxy.ErrCASConflict)
	assert.Equal(t, "swapped", value("k"))
	require.NoError(t, mc.Set(ctx, item("k", "plain")), "Set ignores CasID")
	fresh, err := mc.Get(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, mc.Delete(ctx, "k"))
	assert.ErrorIs(t, mc.CompareAndSwap(ctx, fresh), proxy.ErrCacheMiss, "deleted since the Get")

	// Counters.
	require.NoError(t, mc.Set(ctx, item("n", "10")))
	n, err := mc.Increment(ctx, "n", 5)
	require.NoError(t, err)
	assert.Equal(t, uint64(15), n)
	n, err = mc.Decrement(ctx, "n", 100)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), n, "decrement stops at 0")
	require.NoError(t, mc.Set(ctx, item("n", "18446744073709551615")))
	n, err = mc.Increment(ctx, "n", 2)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), n, "increment wraps at 2^64")
	require.NoError(t, mc.Set(ctx, item("text", "abc")))
	_, err = mc.Increment(ctx, "text", 1)
	var me *proxy.MemcacheError
	require.ErrorAs(t, err, &me)
	assert.True(t, strings.HasPrefix(me.Reply, "CLIENT_ERROR "), me.Reply)
	assert.NotErrorIs(t, err, proxy.ErrServerError)

	// Expiration: negative expires at once; Touch and GetAndTouch set it.
	require.NoError(t, mc.Set(ctx, &proxy.MemcacheItem{Key: "gone", Value: []byte("x"), Expiration: -1}))
	_, err = mc.Get(ctx, "gone")
	assert.ErrorIs(t, err, proxy.ErrCacheMiss)
	require.NoError(t, mc.Set(ctx, item("t", "x")))
	require.NoError(t, mc.Touch(ctx, "t", -1))
	_, err = mc.Get(ctx, "t")
	assert.ErrorIs(t, err, proxy.ErrCacheMiss, "touched to expire")
	require.NoError(t, mc.Set(ctx, item("g", "y")))
	it, err = mc.GetAndTouch(ctx, "g", -1)
	require.NoError(t, err)
	assert.Equal(t, "y", string(it.Value))
	assert.NotZero(t, it.CasID)
	_, err = mc.Get(ctx, "g")
	assert.ErrorIs(t, err, proxy.ErrCacheMiss, "got and touched to expire")

	// Delete.
	require.NoError(t, mc.Set(ctx, item("d", "x")))
	require.NoError(t, mc.Delete(ctx, "d"))
	_, err = mc.Get(ctx, "d")
	assert.ErrorIs(t, err, proxy.ErrCacheMiss)

	// A value above memcached's item size (1 MiB by default): memcached's
	// SERVER_ERROR, matching ErrServerError.
	err = mc.Set(ctx, &proxy.MemcacheItem{Key: "big", Value: bytes.Repeat([]byte("b"), 2<<20)})
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "SERVER_ERROR object too large for cache", me.Reply)
	assert.ErrorIs(t, err, proxy.ErrServerError)
	// The Client goes on.
	require.NoError(t, mc.Set(ctx, item("after", "ok")))
	assert.Equal(t, "ok", value("after"))
}

func TestMemcacheTypedMalformedKeys(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 1)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()
	bad := []string{"", "a b", "a\r\nflush_all", "tab\tkey", "nul\x00", "del\x7f", strings.Repeat("k", 251)}
	for _, k := range bad {
		_, err := mc.Get(ctx, k)
		assert.ErrorIs(t, err, proxy.ErrMalformedKey, "%q", k)
		assert.ErrorIs(t, mc.Set(ctx, &proxy.MemcacheItem{Key: k, Value: []byte("x")}), proxy.ErrMalformedKey, "%q", k)
		assert.ErrorIs(t, mc.Delete(ctx, k), proxy.ErrMalformedKey, "%q", k)
		_, err = mc.Increment(ctx, k, 1)
		assert.ErrorIs(t, err, proxy.ErrMalformedKey, "%q", k)
		items, err := mc.GetMulti(ctx, []string{"fine", k})
		assert.ErrorIs(t, err, proxy.ErrMalformedKey, "%q", k)
		assert.Nil(t, items)
	}
	// 250 bytes and bytes above 0x7F are keys.
	for _, k := range []string{strings.Repeat("k", 250), "caf\xc3\xa9"} {
		require.NoError(t, mc.Set(ctx, &proxy.MemcacheItem{Key: k, Value: []byte("x")}))
		_, err := mc.Get(ctx, k)
		require.NoError(t, err)
	}
	// Nothing was sent for the bad keys: the server holds only those two.
	st := c.Stats()
	var reqs int64
	for _, s := range st.Servers {
		reqs += s.Requests
	}
	assert.Equal(t, int64(4), reqs)
}

// TestMemcacheTypedGetMultiServerDown stops one of three servers and
// checks that GetMulti returns the other servers' items and names the
// stopped server and exactly the keys stored there.
func TestMemcacheTypedGetMultiServerDown(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("%d:part", i)
		require.NoError(t, mc.Set(ctx, &proxy.MemcacheItem{Key: keys[i], Value: []byte("v" + keys[i])}))
	}
	// Where each key is, asked of each memcached directly.
	down := bs[1]
	var onDown, elsewhere []string
	for _, b := range bs {
		bk := make([][]byte, len(keys))
		for i, k := range keys {
			bk[i] = []byte(k)
		}
		got, err := testserver.DialMemcache(t, b.Addr).Get(bk...)
		require.NoError(t, err)
		for k := range got {
			if b.Addr == down.Addr {
				onDown = append(onDown, k)
			} else {
				elsewhere = append(elsewhere, k)
			}
		}
	}
	require.NotEmpty(t, onDown)
	require.Len(t, append(onDown, elsewhere...), len(keys), "each key on one server")

	// Two keys that are stored nowhere: one routed to the server to stop
	// (the error names it, as its server did not answer), one to a live
	// server (a miss: neither in the map nor in the error).
	var missDown, missLive string
	for i := 0; missDown == "" || missLive == ""; i++ {
		k := fmt.Sprintf("%d:none", i)
		if serverOf(t, c, bs, k).Addr == down.Addr {
			missDown = cmp.Or(missDown, k)
		} else {
			missLive = cmp.Or(missLive, k)
		}
	}
	onDown = append(onDown, missDown)

	down.Stop()
	ask := append(slices.Clone(keys), missLive, missDown)
	for round := 0; round < 2; round++ { // the first finds the connection closed, the second refused
		items, err := mc.GetMulti(ctx, ask)
		require.Error(t, err)
		require.NotNil(t, items)
		var gme *proxy.GetMultiError
		require.ErrorAs(t, err, &gme)
		require.Len(t, gme.Failures, 1, "%v", err)
		f := gme.Failures[0]
		assert.Equal(t, down.Addr, f.Server.Addr)
		assert.ElementsMatch(t, onDown, f.Keys)
		assert.ElementsMatch(t, onDown, gme.Keys())
		var me *proxy.MemcacheError
		require.ErrorAs(t, f.Err, &me)
		assert.True(t, strings.HasPrefix(me.Reply, "SERVER_ERROR "), me.Reply)
		assert.ErrorIs(t, err, proxy.ErrServerError)
		assert.Contains(t, err.Error(), down.Addr)
		// Every key of the live servers is returned, nothing else.
		require.Len(t, items, len(elsewhere))
		for _, k := range elsewhere {
			require.Contains(t, items, k)
			assert.Equal(t, "v"+k, string(items[k].Value))
		}
		t.Logf("round %d: %v", round, err)
	}
	// More keys on the stopped server than one request holds: still one
	// failure for the server, with all its keys.
	many := make([]string, 4000)
	var manyDown []string
	for i := range many {
		many[i] = fmt.Sprintf("%d:many", i)
		if serverOf(t, c, bs, many[i]).Addr == down.Addr {
			manyDown = append(manyDown, many[i])
		}
	}
	require.Greater(t, len(manyDown), 1024)
	items, err := mc.GetMulti(ctx, many)
	require.NotNil(t, items)
	var gme *proxy.GetMultiError
	require.ErrorAs(t, err, &gme)
	require.Len(t, gme.Failures, 1)
	assert.Equal(t, down.Addr, gme.Failures[0].Server.Addr)
	assert.ElementsMatch(t, manyDown, gme.Failures[0].Keys)

	// A single Get of a key on the stopped server is a server error, not
	// a miss; one on a live server works.
	_, err = mc.Get(ctx, onDown[0])
	assert.ErrorIs(t, err, proxy.ErrServerError)
	assert.NotErrorIs(t, err, proxy.ErrCacheMiss)
	_, err = mc.Get(ctx, elsewhere[0])
	assert.NoError(t, err)
	assert.ErrorIs(t, mc.Set(ctx, &proxy.MemcacheItem{Key: onDown[0], Value: []byte("x")}), proxy.ErrServerError)
}

func TestMemcacheTypedOnRedisPool(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	c := newInProcess(t, protocol.Redis, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()
	_, err := mc.Get(ctx, "k")
	assert.ErrorIs(t, err, proxy.ErrNotMemcache)
	assert.Contains(t, err.Error(), `"inproc"`)
	items, err := mc.GetMulti(ctx, []string{"k"})
	assert.ErrorIs(t, err, proxy.ErrNotMemcache)
	assert.Nil(t, items)
	assert.ErrorIs(t, mc.Set(ctx, &proxy.MemcacheItem{Key: "k"}), proxy.ErrNotMemcache)
	assert.ErrorIs(t, mc.Delete(ctx, "k"), proxy.ErrNotMemcache)
	assert.ErrorIs(t, mc.Touch(ctx, "k", 1), proxy.ErrNotMemcache)
	_, err = mc.Increment(ctx, "k", 1)
	assert.ErrorIs(t, err, proxy.ErrNotMemcache)
	// Nothing reached redis.
	got, err := testserver.DialRedis(t, bs[0].Addr).Do("DBSIZE")
	require.NoError(t, err)
	assert.Equal(t, ":0", got)
}

func TestMemcacheTypedClosedAndCanceled(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 1)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mc.Get(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	_, err = mc.GetMulti(ctx, []string{"a", "b"})
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, c.Close())
	err = mc.Set(context.Background(), &proxy.MemcacheItem{Key: "k"})
	assert.True(t, errors.Is(err, proxy.ErrClientClosed), "%v", err)
}

// TestMemcacheTypedAllocs holds the typed calls to what they must
// allocate: a Get, the reply's bytes, the Client's slice of replies and
// the item; a Set or a miss, the reply and the slice.
func TestMemcacheTypedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations differ under -race")
	}
	bs := startBackends(t, protocol.Memcache, 2)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	mc := c.Memcache()
	ctx := context.Background()
	item := &proxy.MemcacheItem{Key: "k", Value: []byte("value"), Flags: 3}
	require.NoError(t, mc.Set(ctx, item))
	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Get", 3, func() { _, err := mc.Get(ctx, "k"); require.NoError(t, err) }},
		{"Get miss", 2, func() { _, err := mc.Get(ctx, "absent"); require.ErrorIs(t, err, proxy.ErrCacheMiss) }},
		{"Set", 2, func() { require.NoError(t, mc.Set(ctx, item)) }},
		{"Increment miss", 2, func() { _, err := mc.Increment(ctx, "absent", 1); require.ErrorIs(t, err, proxy.ErrCacheMiss) }},
	} {
		for range 50 {
			tc.f() // warm up
		}
		allocs := testing.AllocsPerRun(300, tc.f)
		t.Logf("%s: %.2f allocations", tc.name, allocs)
		assert.LessOrEqual(t, allocs, tc.max, tc.name)
	}
}
