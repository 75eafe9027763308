package proxy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
)

// TestClientFromClientPool: the documented client path end to end. A pool
// whose listen host name resolves nowhere (.invalid never does) is read
// with config.LoadClientPool, backs a proxy.Client, and every key the
// Client writes is on the server Ring.LookupString names, read back on that
// server directly. The servers are listed in the file out of ring order, so
// indexing the file's list with Pick would name the wrong server.
func TestClientFromClientPool(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	yml := fmt.Sprintf("other:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:1\n"+
		"sessions:\n  listen: walnut-proxy.invalid:22121\n  redis: true\n  servers:\n   - %s:1 redis-1\n   - %s:1 redis-0\n", r1.Addr, r2.Addr)
	path := filepath.Join(t.TempDir(), "nutcracker.yml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))

	pool, err := config.LoadClientPool(path, "sessions")
	require.NoError(t, err)
	assert.Equal(t, "walnut-proxy.invalid:22121", pool.ListenAddr, "the listen host is not resolved")
	require.Equal(t, []string{"redis-0", "redis-1"}, []string{pool.Servers[0].ID(), pool.Servers[1].ID()}, "ring order, not the file's")

	c, err := proxy.NewClient(proxy.FromPool(pool, nil))
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	direct := map[string]*testserver.RedisConn{r1.Addr: testserver.DialRedis(t, r1.Addr), r2.Addr: testserver.DialRedis(t, r2.Addr)}
	onto := map[string]int{}
	for i := range 40 {
		key := fmt.Sprintf("key:%d", i)
		v, err := c.Command(ctx, "SET", key, "v"+key)
		require.NoError(t, err)
		require.NotEqual(t, resp.TypeError, v.Type, "SET %s: %s", key, v.Str)
		s := c.Ring().LookupString(key)
		onto[s.ID()]++
		for addr, conn := range direct {
			got, err := conn.Do("GET", key)
			require.NoError(t, err)
			if addr == s.Addr {
				assert.Equal(t, "v"+key, got, "%s on %s (%s)", key, s.ID(), addr)
			} else {
				assert.Empty(t, got, "%s must not be on %s", key, addr)
			}
		}
	}
	assert.Len(t, onto, 2, "keys on both servers: %v", onto)
}
