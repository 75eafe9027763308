package proxy_test

import (
	"context"
	"fmt"
	"testing"

	gomemcache "github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
)

func TestGoRedisEndToEnd(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	require.NoError(t, rdb.Ping(ctx).Err())
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		require.NoError(t, rdb.Set(ctx, keys[i], "v"+keys[i], 0).Err())
	}
	vals, err := rdb.MGet(ctx, append(keys, "missing")...).Result()
	require.NoError(t, err)
	for i := range keys {
		assert.Equal(t, "v"+keys[i], vals[i])
	}
	assert.Nil(t, vals[len(keys)])
	n, err := rdb.Exists(ctx, keys...).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(len(keys)), n)
	require.NoError(t, rdb.MSet(ctx, "a", "1", "b", "2", "c", "3").Err())
	n, err = rdb.Del(ctx, "a", "b", "c", "nope").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	pipe := rdb.Pipeline()
	var cmds []*redis.StringCmd
	for i := range keys {
		cmds = append(cmds, pipe.Get(ctx, keys[i]))
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	for i, c := range cmds {
		assert.Equal(t, "v"+keys[i], c.Val())
	}
	err = rdb.Do(ctx, "CONFIG", "GET", "maxmemory").Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CONFIG")
	require.NoError(t, rdb.Ping(ctx).Err(), "connection still usable")
}

func TestGomemcacheEndToEnd(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	_, addr := startProxy(t, protocol.Memcache, bs, nil)
	mc := gomemcache.New(addr)
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		require.NoError(t, mc.Set(&gomemcache.Item{Key: keys[i], Value: []byte("v" + keys[i]), Flags: uint32(i)}))
	}
	items, err := mc.GetMulti(append(keys, "missing"))
	require.NoError(t, err)
	assert.Len(t, items, len(keys))
	for i, k := range keys {
		require.Contains(t, items, k)
		assert.Equal(t, "v"+k, string(items[k].Value))
		assert.Equal(t, uint32(i), items[k].Flags)
	}
	require.NoError(t, mc.Delete(keys[0]))
	_, err = mc.Get(keys[0])
	assert.ErrorIs(t, err, gomemcache.ErrCacheMiss)
	_, err = mc.Increment("counter", 1)
	assert.ErrorIs(t, err, gomemcache.ErrCacheMiss)
	// DeleteAll (flush_all) empties every server behind the proxy.
	require.NoError(t, mc.DeleteAll())
	items, err = mc.GetMulti(keys)
	require.NoError(t, err)
	assert.Empty(t, items)
	for _, b := range bs {
		direct := gomemcache.New(b.Addr)
		for _, k := range keys {
			_, err := direct.Get(k)
			require.ErrorIs(t, err, gomemcache.ErrCacheMiss, "%s on %s", k, b.Addr)
		}
	}
}
