package proxy_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// TestClientLargeValueMemory: a 64 MiB value set and read back through the
// in-process Client (typed and raw, both protocols) costs at most 1.25
// times the value in memory allocated by walnut, beside the value the
// caller gets back: the request is encoded once and sent from where it
// lies, and the reply is read into a buffer of its size and handed over
// (raw) or copied once into the caller's value (typed).
func TestClientLargeValueMemory(t *testing.T) {
	const size = 64 << 20
	value := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	limit := int64(size) * 5 / 4
	ctx := context.Background()

	t.Run("redis", func(t *testing.T) {
		bs := startBackends(t, protocol.Redis, 2)
		c := newInProcess(t, protocol.Redis, bs, nil)
		r, err := c.Redis()
		require.NoError(t, err)
		set := allocated(func() { require.NoError(t, r.Set(ctx, "big", value, 0)) })
		var got []byte
		get := allocated(func() { got, err = r.GetBytes(ctx, "big") })
		require.NoError(t, err)
		require.True(t, bytes.Equal(value, got))
		got = nil
		var raw []byte
		rawGet := allocated(func() { raw, err = c.Do(ctx, resp.AppendCommandString(nil, "GET", "big")) })
		require.NoError(t, err)
		require.True(t, bytes.HasSuffix(raw, append(value[size-16:size:size], "\r\n"...)))
		raw = nil
		t.Logf("allocated for a %d MiB value: SET %.2fx, GetBytes %.2fx (the value returned included), raw GET %.2fx",
			size>>20, float64(set)/size, float64(get)/size, float64(rawGet)/size)
		assert.LessOrEqual(t, set, limit, "SET")
		assert.LessOrEqual(t, get, size+limit, "GetBytes, beyond the value it returns")
		// The raw reply is the buffer the value was read into: no copy.
		assert.LessOrEqual(t, rawGet, limit, "raw GET")
	})
	t.Run("memcache", func(t *testing.T) {
		m0 := testserver.StartMemcached(t, testserver.MemcachedOptions{Args: []string{"-I", "128m", "-m", "512"}})
		bs := []backend{{Server: m0, entry: shard.Server{Addr: m0.Addr, Weight: 1}}}
		c := newInProcess(t, protocol.Memcache, bs, nil)
		m := c.Memcache()
		var err error
		set := allocated(func() { err = m.Set(ctx, &proxy.MemcacheItem{Key: "big", Value: value}) })
		require.NoError(t, err)
		var it *proxy.MemcacheItem
		get := allocated(func() { it, err = m.Get(ctx, "big") })
		require.NoError(t, err)
		require.True(t, bytes.Equal(value, it.Value))
		it = nil
		t.Logf("allocated for a %d MiB value: set %.2fx, Get %.2fx (the value returned included)",
			size>>20, float64(set)/size, float64(get)/size)
		assert.LessOrEqual(t, set, limit, "set")
		assert.LessOrEqual(t, get, size+limit, "Get, beyond the value it returns")
	})
}
