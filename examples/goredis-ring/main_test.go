package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/shard"
)

// TestRun runs the example against three real redis-servers and checks
// that each key was stored on the server nutcracker would pick, and that
// the output says so.
func TestRun(t *testing.T) {
	var entries strings.Builder
	for i, w := range []int{1, 2, 3} {
		s := testserver.StartRedis(t, testserver.RedisOptions{})
		fmt.Fprintf(&entries, "   - %s:%d redis-%d\n", s.Addr, w, i)
	}
	yml := "cache:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n  servers:\n" + entries.String() +
		"notag:\n  listen: 127.0.0.1:22122\n  redis: true\n  servers:\n" + entries.String() +
		"mc:\n  listen: 127.0.0.1:22123\n  hash_tag: \"{}\"\n  servers:\n" + entries.String()
	path := filepath.Join(t.TempDir(), "nutcracker.yml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))

	f, err := config.Load(path)
	require.NoError(t, err)
	pool, err := choose(f, "cache")
	require.NoError(t, err)
	ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
	require.NoError(t, err)

	keys := []string{"foo", "bar", "user:{42}:name", "user:{42}:email", "{}", "a{b{c}d"}
	// Enough keys that every server gets some.
	for i, reached := 0, map[int]bool{}; len(reached) < 3; i++ {
		k := fmt.Sprintf("key:%d", i)
		reached[ring.PickString(k)] = true
		keys = append(keys, k)
	}
	var out bytes.Buffer
	require.NoError(t, run(append([]string{"-c", path, "-pool", "cache"}, keys...), &out))
	var want strings.Builder
	used := map[int]bool{}
	for _, k := range keys {
		i := ring.PickString(k)
		used[i] = true
		fmt.Fprintf(&want, "%s\t%s\t%s\tvalue of %s\n", k, ring.ID(i), ring.Server(i).Addr, k)
		// The key is on that server.
		v, err := testserver.DialRedis(t, ring.Server(i).Addr).Do("GET", k)
		require.NoError(t, err)
		assert.Equal(t, "value of "+k, v, "key %q on %s", k, ring.ID(i))
	}
	assert.Equal(t, want.String(), out.String())
	assert.Len(t, used, 3)

	// With no keys, the default ones.
	out.Reset()
	require.NoError(t, run([]string{"-c", path, "-pool", "cache"}, &out))
	assert.Equal(t, len(defaultKeys), strings.Count(out.String(), "\n"))

	// A pool without hash_tag needs -allow-brace-keys.
	err = run([]string{"-c", path, "-pool", "notag", "foo"}, &out)
	require.ErrorIs(t, err, goredis.ErrHashTag)
	out.Reset()
	require.NoError(t, run([]string{"-c", path, "-pool", "notag", "-allow-brace-keys", "foo"}, &out))
	assert.True(t, strings.HasPrefix(out.String(), "foo\tredis-"), out.String())

	// A file written for clients only may leave out listen.
	clients := filepath.Join(t.TempDir(), "clients.yml")
	require.NoError(t, os.WriteFile(clients, []byte("cache:\n  redis: true\n  hash_tag: \"{}\"\n  servers:\n"+entries.String()), 0o600))
	out.Reset()
	require.NoError(t, run([]string{"-c", clients, "foo"}, &out))
	assert.Equal(t, fmt.Sprintf("foo\t%s\t%s\tvalue of foo\n", ring.ID(ring.PickString("foo")), ring.Server(ring.PickString("foo")).Addr), out.String())

	require.ErrorIs(t, run([]string{"-c", path, "-pool", "mc"}, &out), goredis.ErrNotRedis)
	assert.ErrorContains(t, run([]string{"-c", path}, &out), "several pools")
	assert.ErrorContains(t, run([]string{"-c", path, "-pool", "nope"}, &out), `no pool "nope"`)
	assert.Error(t, run([]string{"-c", filepath.Join(t.TempDir(), "missing.yml")}, &out))
	assert.Error(t, run([]string{"-bogus"}, &out))
}
