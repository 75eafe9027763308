package config_test

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

// FuzzParse checks that Parse never panics, that it either accepts or
// returns an *Error, and that what it accepts is usable. Names resolve
// through fakeLookup, so the fuzzer never leaves the machine.
func FuzzParse(f *testing.F) {
	for _, c := range corpus(f) {
		f.Add(c.data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("a:\n  listen: /s 0644\n  servers:\n    - /m.sock:1 x\n    - ::1:1:2\n"))
	f.Add([]byte(minimal + "  redis: true\n  redis_refuse_commands:\n    - FLUSHALL\n    - script  flush\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pools, err := config.ParseWithLookup("fuzz.yml", data, fakeLookup)
		if err != nil {
			require.Nil(t, pools)
			var e *config.Error
			require.True(t, errors.As(err, &e), "not an *Error: %v", err)
			require.ErrorIs(t, err, config.ErrInvalid)
			require.NotEmpty(t, e.Msg)
			require.GreaterOrEqual(t, e.Line, 0)
			return
		}
		checkPools(t, pools)
		again, err := config.ParseWithLookup("fuzz.yml", data, fakeLookup)
		require.NoError(t, err, "Parse is not deterministic")
		require.Equal(t, len(pools), len(again))
	})
}

// checkPools asserts what every accepted configuration guarantees.
func checkPools(t testing.TB, pools []config.Pool) {
	t.Helper()
	require.NotEmpty(t, pools)
	listens := make(map[string]bool)
	for i, p := range pools {
		require.NotEmpty(t, p.Name)
		require.Positive(t, p.Line)
		if i > 0 {
			prev := pools[i-1].Name
			require.True(t, len(prev) < len(p.Name) || (len(prev) == len(p.Name) && prev < p.Name),
				"pools out of order: %q before %q", prev, p.Name)
		}
		require.False(t, listens[p.Listen], "listen %q twice", p.Listen)
		listens[p.Listen] = true

		switch p.ListenNetwork {
		case "tcp":
			host, port, err := net.SplitHostPort(p.ListenAddr)
			require.NoError(t, err, "ListenAddr %q", p.ListenAddr)
			require.NotEmpty(t, host)
			n, err := strconv.Atoi(port)
			require.NoError(t, err)
			require.True(t, n >= 1 && n <= 65535, "port %d", n)
			require.Zero(t, p.ListenPerm)
		case "unix":
			require.True(t, strings.HasPrefix(p.ListenAddr, "/"))
			require.LessOrEqual(t, len(p.ListenAddr), 107)
			require.True(t, strings.HasPrefix(p.Listen, p.ListenAddr))
			require.LessOrEqual(t, p.ListenPerm, fsPermMax)
		default:
			t.Fatalf("pool %q: ListenNetwork %q", p.Name, p.ListenNetwork)
		}

		require.NotNil(t, p.HashFunc)
		require.NotEmpty(t, p.Hash)
		require.True(t, p.HashTag == "" || len(p.HashTag) == 2, "hash tag %q", p.HashTag)
		d, err := shard.ParseDistribution(p.DistributionName)
		require.NoError(t, err)
		require.Equal(t, d, p.Distribution)
		require.GreaterOrEqual(t, p.Timeout, time.Duration(0))
		require.GreaterOrEqual(t, p.ServerRetryTimeout, time.Duration(0))
		require.GreaterOrEqual(t, p.Backlog, 0)
		require.GreaterOrEqual(t, p.ClientConnections, 0)
		require.GreaterOrEqual(t, p.RedisDB, 0)
		require.GreaterOrEqual(t, p.ServerFailureLimit, 0)
		require.GreaterOrEqual(t, p.ServerConnections, 1)
		require.True(t, p.RedisAuth == "" || p.Redis, "redis_auth in a memcached pool")
		require.True(t, p.RedisRefuseCommands == nil || p.Redis, "redis_refuse_commands in a memcached pool")
		for _, c := range p.RedisRefuseCommands {
			words := strings.Split(c, "|")
			require.True(t, len(words) <= 2, "refused command %q", c)
			for _, w := range words {
				require.NotEmpty(t, w, "refused command %q", c)
				require.Equal(t, strings.ToLower(w), w, "refused command %q", c)
				require.False(t, strings.ContainsAny(w, " \t\r\n"), "refused command %q", c)
			}
		}

		require.NotEmpty(t, p.Servers)
		require.Len(t, p.ServerLines, len(p.Servers))
		ids := make([]string, len(p.Servers))
		for j, s := range p.Servers {
			ids[j] = s.ID()
			require.Positive(t, s.Weight)
			require.Greater(t, p.ServerLines[j], p.Line)
			if j > 0 {
				a, b := ids[j-1], ids[j]
				require.True(t, len(a) < len(b) || (len(a) == len(b) && a < b), "servers out of order: %q before %q", a, b)
			}
		}

		ring, err := shard.NewRing(p.Servers, p.RingOptions())
		require.NoError(t, err)
		require.Equal(t, len(p.Servers), ring.Len())
		assert.Equal(t, ids[0], ring.ID(0))
	}
}

// fsPermMax is the largest socket permission.
const fsPermMax os.FileMode = 0o777
