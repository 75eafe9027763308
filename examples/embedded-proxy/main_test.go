package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gomemcache "github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

func TestRun(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	yml := fmt.Sprintf("r:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - %s:1\nm:\n  listen: 127.0.0.1:%d\n  servers:\n   - %s:1\n",
		testserver.FreePort(t, "127.0.0.1"), r.Addr, testserver.FreePort(t, "127.0.0.1"), m.Addr)
	require.NoError(t, os.WriteFile(conf, []byte(yml), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]string, 1)
	reload := make(chan os.Signal, 1)
	done := make(chan error, 1)
	var out testserver.SyncBuffer
	go func() {
		done <- run(ctx, []string{"-c", conf, "-stats", "127.0.0.1:0"}, &out, reload, ready)
	}()
	var addrs map[string]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}

	rdb := redis.NewClient(&redis.Options{Addr: addrs["r"]})
	defer rdb.Close()
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
	assert.Equal(t, "v", rdb.Get(ctx, "k").Val())
	mc := gomemcache.New(addrs["m"])
	require.NoError(t, mc.Set(&gomemcache.Item{Key: "k", Value: []byte("mv")}))
	it, err := mc.Get("k")
	require.NoError(t, err)
	assert.Equal(t, "mv", string(it.Value))

	stats, err := testserver.ReadStats(addrs["stats"], 5*time.Second)
	require.NoError(t, err)
	assert.Contains(t, stats, "r")
	assert.Contains(t, stats, "m")

	// A reload of the file without pool m: m stops, r serves on.
	require.NoError(t, os.WriteFile(conf, []byte(yml[:strings.Index(yml, "m:\n")]), 0o600))
	reload <- syscall.SIGHUP
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `msg="configuration reloaded"`) },
		10*time.Second, 10*time.Millisecond, "%s", out.String())
	assert.Contains(t, out.String(), "removed=1")
	assert.Equal(t, "v", rdb.Get(ctx, "k").Val())

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown")
	}
	assert.Contains(t, out.String(), "stopped")
}
