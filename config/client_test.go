package config_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

// TestClientLoader: a file read for Go clients may leave listen out, and a
// listen host name is checked for its form but never resolved; the zero
// Loader still resolves it, as nutcracker does.
func TestClientLoader(t *testing.T) {
	const srv = "  servers:\n    - 127.0.0.1:11212:1\n"
	var asked []string
	lookup := func(ctx context.Context, host string) ([]string, error) {
		asked = append(asked, host)
		return fakeLookup(ctx, host)
	}
	client := config.WithLookup(config.ClientLoader(), lookup)
	assert.Equal(t, config.Loader{ListenOptional: true, ListenUnresolved: true}, config.ClientLoader())

	tests := []struct {
		name       string
		yml        string
		wantAddr   string // ListenAddr of pool alpha
		wantErr    string // "" if accepted
		wantAsked  []string
		zeroLoader string // the zero Loader's error, "" if it accepts
	}{
		{
			name:       "no listen",
			yml:        "alpha:\n" + srv,
			zeroLoader: `key "listen": the key is missing`,
		},
		{
			name:       "listen host that does not resolve here",
			yml:        "alpha:\n  listen: proxy.nowhere.test:22121\n" + srv,
			wantAddr:   "proxy.nowhere.test:22121",
			zeroLoader: `host "proxy.nowhere.test" does not resolve`,
		},
		{
			name:     "IPv6 literal",
			yml:      "alpha:\n  listen: ::1:22121\n" + srv,
			wantAddr: "[::1]:22121",
		},
		{
			name:     "IPv4 shorthand spelled out",
			yml:      "alpha:\n  listen: 127.1:22121\n" + srv,
			wantAddr: "127.0.0.1:22121",
		},
		{
			name:       "bad port still rejected",
			yml:        "alpha:\n  listen: proxy.nowhere.test:0\n" + srv,
			wantErr:    `key "listen": "proxy.nowhere.test:0" has an invalid port "0"`,
			zeroLoader: `has an invalid port "0"`,
		},
		{
			name:       "no host still rejected",
			yml:        "alpha:\n  listen: :22121\n" + srv,
			wantErr:    `has no host before the port`,
			zeroLoader: `has no host before the port`,
		},
		{
			name:       "placement keys still checked",
			yml:        "alpha:\n  distribution: Ketama\n" + srv,
			wantErr:    `"Ketama" is not a valid distribution`,
			zeroLoader: `"Ketama" is not a valid distribution`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked = nil
			f, err := client.Parse("t.yml", []byte(tt.yml))
			assert.Empty(t, asked, "a client loader resolves nothing")
			if tt.wantErr != "" {
				require.ErrorIs(t, err, config.ErrInvalid)
				assert.Contains(t, err.Error(), tt.wantErr)
			} else {
				require.NoError(t, err)
				p, ok := f.Pool("alpha")
				require.True(t, ok)
				assert.Equal(t, tt.wantAddr, p.ListenAddr)
			}

			_, err = config.WithLookup(config.Loader{}, lookup).Parse("t.yml", []byte(tt.yml))
			if tt.zeroLoader == "" {
				assert.NoError(t, err)
			} else {
				require.ErrorIs(t, err, config.ErrInvalid)
				assert.Contains(t, err.Error(), tt.zeroLoader)
			}
		})
	}
}

func TestLoadClientPool(t *testing.T) {
	// Pools in the file's order sessions, cache: Pools[0] is cache (sorted by
	// name, shorter first), which is why pools are looked up by name.
	yml := "sessions:\n  redis: true\n  hash_tag: \"{}\"\n  servers:\n    - 127.0.0.1:6380:1\n    - 127.0.0.1:6379:1\n" +
		"cache:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:11211:1\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "clients.yml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("sessions:\n  hash: sha1\n  servers:\n    - 127.0.0.1:6379:1\n"), 0o600))

	f, err := config.ClientLoader().Load(path)
	require.NoError(t, err)
	require.Equal(t, "cache", f.Pools[0].Name, "Pools is sorted by name, not in the file's order")

	tests := []struct {
		name, path, pool string
		wantRedis        bool
		wantServers      int
		wantErr          error
		wantMsg          string
	}{
		{name: "first in the file", path: path, pool: "sessions", wantRedis: true, wantServers: 2},
		{name: "with listen", path: path, pool: "cache", wantServers: 1},
		{name: "no such pool", path: path, pool: "beta", wantErr: config.ErrNoPool, wantMsg: `config: no such pool "beta" in ` + path + ` (its pools: cache, sessions)`},
		{name: "names are exact", path: path, pool: "Sessions", wantErr: config.ErrNoPool},
		{name: "invalid file", path: bad, pool: "sessions", wantErr: config.ErrInvalid, wantMsg: `"sha1" is not a valid hash`},
		{name: "missing file", path: filepath.Join(dir, "missing.yml"), pool: "sessions", wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := config.LoadClientPool(tt.path, tt.pool)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), tt.wantMsg)
				assert.Zero(t, p.Name)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.pool, p.Name)
			assert.Equal(t, tt.wantRedis, p.Redis)
			assert.Len(t, p.Servers, tt.wantServers)
		})
	}
	_, err = config.LoadClientPool(path, "beta")
	assert.False(t, errors.Is(err, config.ErrInvalid), "a missing pool is not an invalid configuration")
}

// TestServersAsShardParses: a pool's servers are what shard.ParseServers
// returns for the same entries, in the same (ring) order, and the same
// entries are rejected for the same reason.
func TestServersAsShardParses(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		wantErr error
	}{
		{name: "one", entries: []string{"127.0.0.1:6379:1"}},
		{name: "out of order", entries: []string{"127.0.0.1:6381:1", "127.0.0.1:6379:2", "127.0.0.1:6380:1"}},
		{name: "names and sockets", entries: []string{"10.0.0.1:6379:1 cache-b", "/tmp/mc.sock:1", "10.0.0.1:11211:1", "10.0.0.3:6379:1 zz"}},
		{name: "ipv6", entries: []string{"::1:6379:1", "[::1]:6380:1 b"}},
		{name: "duplicate", entries: []string{"127.0.0.1:6379:1", "127.0.0.1:6380:1", "127.0.0.1:6379:2"}, wantErr: shard.ErrDuplicateName},
		{name: "bad weight", entries: []string{"127.0.0.1:6379:x"}, wantErr: shard.ErrInvalidServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n"
			for _, e := range tt.entries {
				yml += "    - \"" + e + "\"\n"
			}
			pools, perr := parse(yml)
			servers, serr := shard.ParseServers(tt.entries...)
			if tt.wantErr != nil {
				require.ErrorIs(t, serr, tt.wantErr)
				require.ErrorIs(t, perr, config.ErrInvalid)
				if errors.Is(tt.wantErr, shard.ErrInvalidServer) {
					assert.True(t, strings.HasSuffix(perr.Error(), strings.TrimPrefix(serr.Error(), "shard: ")), "%v vs %v", perr, serr)
				}
				return
			}
			require.NoError(t, perr)
			require.NoError(t, serr)
			assert.Equal(t, servers, pools[0].Servers)
		})
	}
}
