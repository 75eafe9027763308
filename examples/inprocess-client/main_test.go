package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

func TestRun(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	m1 := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	m2 := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	yml := fmt.Sprintf(`r:
  listen: 127.0.0.1:1
  redis: true
  hash_tag: "{}"
  servers:
   - %s:1 one
   - %s:1 two
m:
  listen: 127.0.0.1:2
  servers:
   - %s:1 one
   - %s:1 two
`, r1.Addr, r2.Addr, m1.Addr, m2.Addr)
	require.NoError(t, os.WriteFile(conf, []byte(yml), 0o600))

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-c", conf, "-pool", "r"}, &out))
	t.Log(out.String())
	assert.Contains(t, out.String(), `MGET user:{1000}:name  = "value of user:{1000}:name"`)
	assert.Contains(t, out.String(), `MGET greeting          = "value of greeting"`)
	// Each key is on the server the output names, found there directly.
	addr := map[string]string{"one": r1.Addr, "two": r2.Addr}
	used := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		var key, arrow, name string
		if n, _ := fmt.Sscanf(line, "SET %s %s %s", &key, &arrow, &name); n != 3 {
			continue
		}
		used[name] = true
		got, err := testserver.DialRedis(t, addr[name]).Do("GET", key)
		require.NoError(t, err)
		assert.Equal(t, "value of "+key, got, key)
	}
	assert.Len(t, used, 2, "keys on both servers")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"-c", conf, "-pool", "m"}, &out))
	t.Log(out.String())
	assert.Equal(t, 5, strings.Count(out.String(), "VALUE "), "every key comes back from the per-server gets")
	assert.Contains(t, out.String(), `VALUE greeting "value of greeting"`)
	// Each key is on the server the output names, found there directly.
	maddr := map[string]string{"one": m1.Addr, "two": m2.Addr}
	used = map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		var key, arrow, name string
		if n, _ := fmt.Sscanf(line, "set %s %s %s", &key, &arrow, &name); n != 3 {
			continue
		}
		used[name] = true
		got, err := testserver.DialMemcache(t, maddr[name]).Get([]byte(key))
		require.NoError(t, err, key)
		assert.Equal(t, "value of "+key, string(got[key]), key)
	}
	assert.Len(t, used, 2, "keys on both servers")

	assert.Error(t, run(context.Background(), []string{"-c", conf, "-pool", "nope"}, &out))
}
