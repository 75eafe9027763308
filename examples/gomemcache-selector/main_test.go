package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/shard"
)

// TestRun runs the program against three real memcacheds, for a ketama and
// a modula pool over them, and checks that each key is reported on the
// server a shard.Ring over the same servers: entries picks.
func TestRun(t *testing.T) {
	var entries []string
	for i, w := range []int{2, 1, 3} {
		m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
		entries = append(entries, fmt.Sprintf("%s:%d mc-%d", m.Addr, w, i))
	}
	var yml strings.Builder
	for i, dist := range []string{"ketama", "modula"} {
		fmt.Fprintf(&yml, "%s:\n  listen: 127.0.0.1:%d\n  distribution: %s\n  hash_tag: \"{}\"\n  timeout: 1000\n  servers:\n", dist, 22121+i, dist)
		for _, e := range entries {
			fmt.Fprintf(&yml, "   - %s\n", e)
		}
	}
	yml.WriteString("rd:\n  listen: 127.0.0.1:22129\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n")
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	require.NoError(t, os.WriteFile(conf, []byte(yml.String()), 0o644))

	var servers []shard.Server
	for _, e := range entries {
		s, err := shard.ParseServer(e)
		require.NoError(t, err)
		servers = append(servers, s)
	}
	keys := []string{"foo", "bar", "user:{1000}:name", "user:{1000}:mail", "ключ", "a{b}c", "session:42"}
	for _, dist := range []shard.Distribution{shard.Ketama, shard.Modula} {
		t.Run(dist.String(), func(t *testing.T) {
			ring, err := shard.NewRing(servers, shard.RingOptions{Distribution: dist, HashTag: "{}"})
			require.NoError(t, err)
			var want strings.Builder
			for _, k := range keys {
				s := ring.Server(ring.PickString(k))
				fmt.Fprintf(&want, "%s\t%s\t%s\n", k, s.ID(), s.Addr)
			}
			for range 2 { // a second run finds its own values, not the first run's
				var out bytes.Buffer
				require.NoError(t, run(append([]string{"-c", conf, "-pool", dist.String()}, keys...), &out))
				assert.Equal(t, want.String(), out.String())
			}
		})
	}

	t.Run("default keys", func(t *testing.T) {
		var out bytes.Buffer
		require.NoError(t, run([]string{"-c", conf, "-pool", "ketama"}, &out))
		assert.Equal(t, len(defaultKeys), strings.Count(out.String(), "\n"))
	})

	t.Run("errors", func(t *testing.T) {
		var out bytes.Buffer
		err := run([]string{"-c", conf, "-pool", "rd"}, &out)
		assert.ErrorIs(t, err, gomemcache.ErrNotMemcache)
		err = run([]string{"-c", conf, "-pool", "nope"}, &out)
		assert.ErrorIs(t, err, config.ErrNoPool)
		assert.ErrorContains(t, err, `pool "nope"`)
		err = run([]string{"-c", filepath.Join(t.TempDir(), "missing.yml")}, &out)
		assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
		err = run([]string{"-c", conf, "-pool", "ketama", "no spaces"}, &out)
		assert.ErrorContains(t, err, "malformed")
		assert.Error(t, run([]string{"-bogus"}, &out))
		assert.Empty(t, out.String())
	})
}
