package config_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// fakeHosts is the only name table the unit tests resolve with, so that they
// never leave the machine.
var fakeHosts = map[string][]string{
	"localhost":  {"127.0.0.1"},
	"cache.test": {"127.0.0.9"},
	"empty.test": {},
}

func fakeLookup(_ context.Context, host string) ([]string, error) {
	if addrs, ok := fakeHosts[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func parse(yml string) ([]config.Pool, error) {
	return config.ParseWithLookup("test.yml", []byte(yml), fakeLookup)
}

// strip clears the hash function, which require.Equal cannot compare,
// after checking that it is the one the pool's hash names.
func strip(t *testing.T, pools []config.Pool) []config.Pool {
	t.Helper()
	out := make([]config.Pool, len(pools))
	for i, p := range pools {
		f, err := hashkit.ByName(p.Hash)
		require.NoError(t, err)
		require.NotNil(t, p.HashFunc)
		key := []byte("walnut")
		assert.Equal(t, f(key), p.HashFunc(key), "pool %s: HashFunc is not %s", p.Name, p.Hash)
		p.HashFunc = nil
		out[i] = p
	}
	return out
}

// minimal is the smallest valid pool; tests append keys to it.
const minimal = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:11212:1\n"

func TestParseDefaults(t *testing.T) {
	pools, err := parse(minimal)
	require.NoError(t, err)
	require.Equal(t, []config.Pool{{
		Name:               "alpha",
		Line:               1,
		Listen:             "127.0.0.1:22121",
		ListenNetwork:      "tcp",
		ListenAddr:         "127.0.0.1:22121",
		Hash:               "fnv1a_64",
		Distribution:       shard.Ketama,
		DistributionName:   "ketama",
		Backlog:            512,
		ServerConnections:  1,
		ServerRetryTimeout: 30 * time.Second,
		ServerFailureLimit: 2,
		Servers:            []shard.Server{{Addr: "127.0.0.1:11212", Weight: 1}},
		ServerLines:        []int{4},
	}}, strip(t, pools))
}

func TestParseEveryKey(t *testing.T) {
	yml := `# every key
cache:
  listen: /tmp/walnut.sock 0660
  hash: murmur
  hash_tag: "{}"
  distribution: modula
  timeout: 400
  backlog: 1024
  client_connections: 100
  redis: true
  redis_auth: hunter2
  redis_db: 3
  preconnect: true
  auto_eject_hosts: true
  server_connections: 4
  server_retry_timeout: 2000
  server_failure_limit: 5
  tcpkeepalive: true
  reuseport: true
  client_timeout: 30000
  client_output_limit: 1048576
  redis_refuse_commands:
    - flushall
  servers:
    - 127.0.0.1:6380:2 b
    - 127.0.0.1:6379:1 a
`
	pools, err := parse(yml)
	require.NoError(t, err)
	require.Equal(t, []config.Pool{{
		Name:                "cache",
		Line:                2,
		Listen:              "/tmp/walnut.sock 0660",
		ListenNetwork:       "unix",
		ListenAddr:          "/tmp/walnut.sock",
		ListenPerm:          0o660,
		Hash:                "murmur",
		HashTag:             "{}",
		Distribution:        shard.Modula,
		DistributionName:    "modula",
		Timeout:             400 * time.Millisecond,
		Backlog:             1024,
		ClientConnections:   100,
		Redis:               true,
		RedisAuth:           "hunter2",
		RedisDB:             3,
		Preconnect:          true,
		AutoEjectHosts:      true,
		ServerConnections:   4,
		ServerRetryTimeout:  2 * time.Second,
		ServerFailureLimit:  5,
		TCPKeepalive:        true,
		Reuseport:           true,
		ClientTimeout:       30 * time.Second,
		ClientOutputLimit:   1 << 20,
		RedisRefuseCommands: []string{"flushall"},
		Servers: []shard.Server{
			{Addr: "127.0.0.1:6379", Weight: 1, Name: "a"},
			{Addr: "127.0.0.1:6380", Weight: 2, Name: "b"},
		},
		ServerLines: []int{26, 25},
	}}, strip(t, pools))
}

func TestParseValues(t *testing.T) {
	// Each case is minimal plus one line; check looks at the one pool.
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, p config.Pool)
	}{
		{"timeout 0 is no timeout", "timeout: 0", func(t *testing.T, p config.Pool) { assert.Zero(t, p.Timeout) }},
		{"timeout leading zeros", "timeout: 0400", func(t *testing.T, p config.Pool) { assert.Equal(t, 400*time.Millisecond, p.Timeout) }},
		{"timeout max int32", "timeout: 2147483647", func(t *testing.T, p config.Pool) {
			assert.Equal(t, 2147483647*time.Millisecond, p.Timeout)
		}},
		{"quoted number", `timeout: "250"`, func(t *testing.T, p config.Pool) { assert.Equal(t, 250*time.Millisecond, p.Timeout) }},
		{"quoted bool", `preconnect: 'true'`, func(t *testing.T, p config.Pool) { assert.True(t, p.Preconnect) }},
		{"false", `auto_eject_hosts: false`, func(t *testing.T, p config.Pool) { assert.False(t, p.AutoEjectHosts) }},
		{"backlog 0", "backlog: 0", func(t *testing.T, p config.Pool) { assert.Zero(t, p.Backlog) }},
		{"failure limit 0", "server_failure_limit: 0", func(t *testing.T, p config.Pool) { assert.Zero(t, p.ServerFailureLimit) }},
		{"retry 0", "server_retry_timeout: 0", func(t *testing.T, p config.Pool) { assert.Zero(t, p.ServerRetryTimeout) }},
		{"redis_db in a memcached pool", "redis_db: 2", func(t *testing.T, p config.Pool) { assert.Equal(t, 2, p.RedisDB) }},
		{"hash farm", "hash: farm", func(t *testing.T, p config.Pool) { assert.Equal(t, "farm", p.Hash) }},
		{"hash crc32a", "hash: crc32a", func(t *testing.T, p config.Pool) { assert.Equal(t, "crc32a", p.Hash) }},
		{"random", "distribution: random", func(t *testing.T, p config.Pool) {
			assert.Equal(t, shard.Random, p.Distribution)
			assert.Equal(t, "random", p.DistributionName)
		}},
		{"hash tag two bytes of one rune", "hash_tag: é", func(t *testing.T, p config.Pool) { assert.Equal(t, "é", p.HashTag) }},
		{"reuseport", "reuseport: true", func(t *testing.T, p config.Pool) { assert.True(t, p.Reuseport) }},
		{"tcpkeepalive", "tcpkeepalive: true", func(t *testing.T, p config.Pool) { assert.True(t, p.TCPKeepalive) }},
		{"client_connections kept", "client_connections: 7", func(t *testing.T, p config.Pool) { assert.Equal(t, 7, p.ClientConnections) }},
		{"trailing comment", "hash: md5   # the comment", func(t *testing.T, p config.Pool) { assert.Equal(t, "md5", p.Hash) }},
		{"client_request_limit", "client_request_limit: 134217728", func(t *testing.T, p config.Pool) { assert.Equal(t, 128<<20, p.ClientRequestLimit) }},
		{"client_request_limit 0", "client_request_limit: 0", func(t *testing.T, p config.Pool) { assert.Zero(t, p.ClientRequestLimit) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools, err := parse(minimal + "  " + tt.line + "\n")
			require.NoError(t, err)
			require.Len(t, pools, 1)
			tt.check(t, pools[0])
		})
	}
}

func TestParseRedisValues(t *testing.T) {
	tests := []struct {
		name string
		auth string
		want string
	}{
		{"plain", "redis_auth: s3cret", "s3cret"},
		{"null is text", "redis_auth: null", "null"},
		{"tilde is text", "redis_auth: ~", "~"},
		{"spaces", `redis_auth: "two words"`, "two words"},
		{"block scalar", "redis_auth: |\n    line\n", "line\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools, err := parse(minimal + "  redis: true\n  " + tt.auth + "\n")
			require.NoError(t, err)
			assert.Equal(t, tt.want, pools[0].RedisAuth)
			assert.True(t, pools[0].Redis)
		})
	}
}

func TestParseRefuseCommands(t *testing.T) {
	pools, err := parse(minimal + "  redis: true\n  redis_refuse_commands:\n    - FlushAll\n    - flushdb\n    - script flush\n    - \"client|kill\"\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"flushall", "flushdb", "script|flush", "client|kill"}, pools[0].RedisRefuseCommands)

	pools, err = parse(minimal + "  redis: true\n")
	require.NoError(t, err)
	assert.Nil(t, pools[0].RedisRefuseCommands, "default: none")
}

func TestParseSortsPools(t *testing.T) {
	var b strings.Builder
	names := []string{"zz", "a", "ab", "b", "aaa", "B", "é"}
	for i, n := range names {
		fmt.Fprintf(&b, "%s:\n  listen: 127.0.0.1:%d\n  servers:\n    - 127.0.0.1:11212:1\n", n, 20000+i)
	}
	pools, err := parse(b.String())
	require.NoError(t, err)
	var got []string
	lines := make(map[string]int)
	for _, p := range pools {
		got = append(got, p.Name)
		lines[p.Name] = p.Line
	}
	// Shorter first, then bytewise: "é" is two bytes.
	assert.Equal(t, []string{"B", "a", "b", "ab", "zz", "é", "aaa"}, got)
	assert.Equal(t, 1, lines["zz"])
	assert.Equal(t, 5, lines["a"])
	assert.Equal(t, 25, lines["é"])
}

func TestParseSortsServers(t *testing.T) {
	yml := `alpha:
  listen: 127.0.0.1:22121
  servers:
    - 127.0.0.1:6380:1
    - 127.0.0.1:11211:3
    - /tmp/mc.sock:1
    - 127.0.0.1:6379:1 zz
    - 10.0.0.1:6379:2
    - "[::1]:6379:1"
    - ::1:6379:1 a
`
	pools, err := parse(yml)
	require.NoError(t, err)
	p := pools[0]
	var ids []string
	for _, s := range p.Servers {
		ids = append(ids, s.ID())
	}
	assert.Equal(t, []string{"a", "zz", "127.0.0.1", "[::1]:6379", "/tmp/mc.sock:", "10.0.0.1:6379", "127.0.0.1:6380"}, ids)
	assert.Equal(t, []int{10, 7, 5, 9, 6, 8, 4}, p.ServerLines)
	assert.Equal(t, shard.Server{Addr: "127.0.0.1:11211", Weight: 3}, p.Servers[2])
	assert.Equal(t, shard.Server{Addr: "::1:6379", Weight: 1, Name: "a"}, p.Servers[0])

	ring, err := shard.NewRing(p.Servers, p.RingOptions())
	require.NoError(t, err)
	for i, s := range p.Servers {
		assert.Equal(t, s.ID(), ring.ID(i), "the pool's order is the ring's order")
	}
}

func TestRingOptions(t *testing.T) {
	pools, err := parse(minimal + "  hash: md5\n  distribution: modula\n  hash_tag: \"{}\"\n")
	require.NoError(t, err)
	opts := pools[0].RingOptions()
	assert.Equal(t, shard.Modula, opts.Distribution)
	assert.Equal(t, "{}", opts.HashTag)
	require.NotNil(t, opts.Hash)
	assert.Equal(t, hashkit.MD5([]byte("key")), opts.Hash([]byte("key")))
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		listen  string
		network string
		addr    string
		perm    os.FileMode
		err     string // substring of Msg; "" = accepted
	}{
		{listen: "127.0.0.1:22121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "127.0.0.1:022121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "127.0.0.1:1", network: "tcp", addr: "127.0.0.1:1"},
		{listen: "127.0.0.1:65535", network: "tcp", addr: "127.0.0.1:65535"},
		{listen: "0.0.0.0:22121", network: "tcp", addr: "0.0.0.0:22121"},
		{listen: "localhost:22121", network: "tcp", addr: "localhost:22121"},
		{listen: "cache.test:22121", network: "tcp", addr: "cache.test:22121"},
		{listen: "::1:22121", network: "tcp", addr: "[::1]:22121"},
		{listen: `"[::1]:22121"`, network: "tcp", addr: "[::1]:22121"},
		{listen: "::ffff:127.0.0.1:22121", network: "tcp", addr: "[::ffff:127.0.0.1]:22121"},
		{listen: "fe80::1%lo:22121", network: "tcp", addr: "[fe80::1%lo]:22121"},
		{listen: "/tmp/x.sock", network: "unix", addr: "/tmp/x.sock"},
		{listen: "/tmp/x.sock 0666", network: "unix", addr: "/tmp/x.sock", perm: 0o666},
		{listen: "/tmp/x.sock 666", network: "unix", addr: "/tmp/x.sock", perm: 0o666},
		{listen: "/tmp/x.sock 0777", network: "unix", addr: "/tmp/x.sock", perm: 0o777},
		{listen: "/tmp/x.sock 0", network: "unix", addr: "/tmp/x.sock"},
		{listen: "/tmp/x.sock 0999", network: "unix", addr: "/tmp/x.sock"},
		{listen: "/tmp/x.sock 0755x", network: "unix", addr: "/tmp/x.sock", perm: 0o755},
		{listen: "/tmp/x.sock +0644", network: "unix", addr: "/tmp/x.sock", perm: 0o644},
		{listen: "/tmp/x.sock -0", network: "unix", addr: "/tmp/x.sock"},
		{listen: "/tmp/x.sock abc", network: "unix", addr: "/tmp/x.sock"},
		{listen: `"/tmp/x.sock "`, network: "unix", addr: "/tmp/x.sock"},
		{listen: "\"/tmp/x.sock \\t0640\"", network: "unix", addr: "/tmp/x.sock", perm: 0o640},
		{listen: "/tmp/a b.sock", network: "unix", addr: "/tmp/a"},
		{listen: "/tmp/x.sock  0600", network: "unix", addr: "/tmp/x.sock ", perm: 0o600},
		{listen: "/" + strings.Repeat("x", 106), network: "unix", addr: "/" + strings.Repeat("x", 106)},

		{listen: "/" + strings.Repeat("x", 107), err: "the unix socket path is 108 bytes long; the maximum is 107"},
		{listen: "/tmp/x.sock 01000", err: `invalid file permission "01000"`},
		{listen: "/tmp/x.sock 1777", err: `invalid file permission "1777"`},
		{listen: "/tmp/x.sock -1", err: `invalid file permission "-1"`},
		{listen: "/tmp/x.sock 40000000666", err: `invalid file permission "40000000666"`},
		{listen: "/tmp/x.sock -37777777112", err: `invalid file permission "-37777777112"`},
		{listen: "/tmp/x.sock 7777777777777777777777777", err: "invalid file permission"},
		{listen: "127.0.0.1", err: `"127.0.0.1" is neither "host:port" nor an absolute unix socket path`},
		{listen: "tmp/x.sock", err: "is neither"},
		{listen: "127.0.0.1:0", err: `has an invalid port "0": want a number from 1 to 65535`},
		{listen: "127.0.0.1:65536", err: `invalid port "65536"`},
		{listen: "127.0.0.1:4294967297", err: `invalid port "4294967297"`},
		{listen: "127.0.0.1:-1", err: `invalid port "-1"`},
		{listen: "127.0.0.1:http", err: `invalid port "http"`},
		{listen: `"127.0.0.1:"`, err: `invalid port ""`},
		{listen: `"127.0.0.1: 22121"`, err: `invalid port " 22121"`},
		{listen: "127.0.0.1:22121 0666", err: `invalid port "22121 0666"`},
		{listen: `":22121"`, err: "has no host before the port"},
		{listen: `"[]:22121"`, err: "has no host before the port"},
		{listen: "nowhere.test:22121", err: `host "nowhere.test" does not resolve: lookup nowhere.test: no such host`},
		{listen: "empty.test:22121", err: `host "empty.test" does not resolve`},
		{listen: `"[::1:22121"`, err: `host "[::1" does not resolve`},
		{listen: "127.1:22121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "127.0.1:22121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "2130706433:22121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "0x7f.1:22121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "0X7F.0.0.0x1:22121", network: "tcp", addr: "127.0.0.1:22121"},
		{listen: "017.0.0.1:22121", network: "tcp", addr: "15.0.0.1:22121"},
		{listen: "1.2.65535:22121", network: "tcp", addr: "1.2.255.255:22121"},
		{listen: "4294967295:22121", network: "tcp", addr: "255.255.255.255:22121"},
		{listen: "fe80::1%1:22121", network: "tcp", addr: "[fe80::1%1]:22121"},
		{listen: "::1%7:22121", network: "tcp", addr: "[::1%7]:22121"},
		{listen: "4294967296:22121", err: `host "4294967296" does not resolve`},
		{listen: "1.2.3.256:22121", err: `host "1.2.3.256" does not resolve`},
		{listen: "256.1:22121", err: `host "256.1" does not resolve`},
		{listen: "1.2.3.4.5:22121", err: `host "1.2.3.4.5" does not resolve`},
		{listen: "08.0.0.1:22121", err: `host "08.0.0.1" does not resolve`},
		{listen: "0x.1:22121", err: `host "0x.1" does not resolve`},
		{listen: "127.0.0.1.:22121", err: `host "127.0.0.1." does not resolve`},
		{listen: "1..2:22121", err: `host "1..2" does not resolve`},
		{listen: "1e3:22121", err: `host "1e3" does not resolve`},
		{listen: "::1%lo:22121", err: `host "::1%lo" has an invalid zone "lo"`},
		{listen: "fe80::1%no-such-if0:22121", err: `has an invalid zone "no-such-if0"`},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			pools, err := parse("alpha:\n  listen: " + tt.listen + "\n  servers:\n    - 127.0.0.1:11212:1\n")
			if tt.err != "" {
				var e *config.Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, config.Error{File: "test.yml", Line: 2, Pool: "alpha", Key: "listen", Msg: e.Msg}, *e)
				assert.Contains(t, e.Msg, tt.err)
				return
			}
			require.NoError(t, err)
			p := pools[0]
			assert.Equal(t, tt.network, p.ListenNetwork)
			assert.Equal(t, tt.addr, p.ListenAddr)
			assert.Equal(t, tt.perm, p.ListenPerm)
			if p.ListenNetwork == "tcp" {
				_, _, err := net.SplitHostPort(p.ListenAddr)
				assert.NoError(t, err, "ListenAddr must suit net.Listen")
			}
		})
	}
}

func TestParseResolvesOnlyNames(t *testing.T) {
	var asked []string
	lookup := func(ctx context.Context, host string) ([]string, error) {
		asked = append(asked, host)
		_, ok := ctx.Deadline()
		assert.True(t, ok, "lookups must be bounded")
		return fakeLookup(ctx, host)
	}
	yml := "a:\n  listen: 127.0.0.1:1\n  servers:\n    - unresolvable.test:1:1\n" +
		"b:\n  listen: ::1:2\n  servers:\n    - 127.0.0.1:1:1\n" +
		"c:\n  listen: \"[::1]:3\"\n  servers:\n    - 127.0.0.1:1:1\n" +
		"d:\n  listen: localhost:4\n  servers:\n    - 127.0.0.1:1:1\n" +
		"e:\n  listen: /tmp/e.sock\n  servers:\n    - 127.0.0.1:1:1\n"
	_, err := config.ParseWithLookup("t.yml", []byte(yml), lookup)
	require.NoError(t, err)
	assert.Equal(t, []string{"localhost"}, asked, "IP literals, unix paths and server hosts are not resolved")
}

func TestParseRejects(t *testing.T) {
	const srv = "  servers:\n    - 127.0.0.1:11212:1\n"
	const pool = "alpha:\n  listen: 127.0.0.1:22121\n"
	tests := []struct {
		name string
		yml  string
		line int
		pool string
		key  string
		msg  string // substring
	}{
		// The document.
		{"empty", "", 0, "", "", "the file holds no YAML document"},
		{"blank lines", "\n\n  \n", 0, "", "", "no YAML document"},
		{"comments only", "# a\n# b\n", 0, "", "", "no YAML document"},
		{"two documents", pool + srv + "---\n" + "beta:\n  listen: 127.0.0.1:22122\n" + srv, 5, "", "", "the file holds 2 YAML documents; it must hold exactly one"},
		{"three documents", "a: 1\n---\nb: 2\n---\nc: 3\n", 2, "", "", "holds 3 YAML documents"},
		{"document start", "---\n" + pool + srv, 1, "", "", `explicit YAML document markers ("---") are not allowed`},
		{"document start with comment", "--- # hi\n" + pool + srv, 1, "", "", `("---")`},
		{"document end", pool + srv + "...\n", 5, "", "", `explicit YAML document markers ("...") are not allowed`},
		{"empty document", "---\n", 1, "", "", `("---")`},
		{"yaml directive", "%YAML 1.1\n---\n" + pool + srv, 1, "", "", `YAML directives ("%YAML") are not allowed`},
		{"tag directive", "# c\n%TAG !e! tag:e.com,2000:\n---\n" + pool + srv, 2, "", "", `("%TAG")`},
		{"syntax error", pool + "   hash: md5\n" + srv, 3, "", "", "invalid YAML: mapping values are not allowed in this context"},
		{"tab indent", "alpha:\n\tlisten: 127.0.0.1:22121\n", 2, "", "", "invalid YAML: found character that cannot start any token"},
		{"invalid utf-8", pool + "  hash: \xff\n" + srv, 3, "", "", "invalid YAML: invalid leading UTF-8 octet"},
		{"control character", pool + srv + "  redis_auth: a\x01\n", 5, "", "", "invalid YAML: control characters are not allowed"},
		{"document marker in quotes", pool + "  redis_auth: \"a\n---\n  b\"\n" + srv, 3, "", "", "invalid YAML: found unexpected document indicator"},
		{"unclosed quote", pool + "  hash: \"md5\n", 3, "", "", "invalid YAML"},
		{"bracketed IPv6 server unquoted", pool + "  servers:\n    - [::1]:6379:1\n", 4, "", "", "invalid YAML: did not find expected node content"},
		{"bracketed IPv6 listen unquoted", "alpha:\n  listen: [::1]:22121\n" + srv, 2, "", "", "did not find expected node content"},
		{"unclosed flow", pool + "  hash: [a, b\n  x: y\n", 3, "", "", "did not find expected ',' or ']'"},
		{"undefined tag handle", pool + "  hash: !x!y md5\n", 3, "", "", "found undefined tag handle"},
		{"key outdented", pool + "  hash: md5\n x: y\n", 4, "", "", "did not find expected key"},
		{"missing colon", pool + "  hash: md5\nx\ny: z\n", 4, "", "", "could not find expected ':'"},
		{"flow at end of file", "a: [\n", 1, "", "", "did not find expected node content"},
		{"sequence then mapping", "- a\nb: c\n", 2, "", "", "did not find expected '-' indicator"},
		{"utf-16 odd length", "\xff\xfea\x00:", 1, "", "", "UTF-16 but ends in the middle of a character"},
		{"utf-16 unpaired surrogate", "\xff\xfe\n\x00\x00\xd8a\x00", 2, "", "", "unpaired surrogate (0xD800)"},

		// YAML features nutcracker's token scan refuses.
		{"flow sequence", pool + "  servers: [127.0.0.1:11212:1]\n", 3, "alpha", "servers", `flow sequences ("[a, b]") are not allowed`},
		{"empty flow sequence", pool + "  servers: []\n", 3, "alpha", "servers", "flow sequences"},
		{"flow mapping pool", "alpha: {listen: 127.0.0.1:22121}\n", 1, "alpha", "", `flow mappings ("{a: b}") are not allowed`},
		{"flow mapping root", "{alpha: b}\n", 1, "", "", "flow mappings"},
		{"anchor", pool + "  hash: &h md5\n" + srv, 3, "alpha", "hash", `YAML anchors ("&h") are not allowed`},
		{"anchor on pool", "alpha: &p\n  listen: 127.0.0.1:22121\n" + srv, 1, "alpha", "", `("&p")`},
		{"alias", pool + "  redis: true\n  redis_auth: *x\n" + srv, 4, "", "", `YAML aliases ("*x") are not allowed`},
		{"alias after anchor", pool + "  hash: &x md5\n  redis_auth: *x\n" + srv, 3, "alpha", "hash", `YAML anchors ("&x")`},
		{"tag", pool + "  hash: !!str md5\n" + srv, 3, "alpha", "hash", "YAML tags"},
		{"non-specific tag", pool + "  hash: ! md5\n" + srv, 3, "alpha", "hash", "YAML tags"},
		{"local tag", pool + "  hash: !h md5\n" + srv, 3, "alpha", "hash", "YAML tags"},
		{"tag on key", pool + "  ! hash: md5\n" + srv, 3, "alpha", "hash", "YAML tags"},
		{"tag on pool name", "!!str alpha:\n  listen: 127.0.0.1:22121\n" + srv, 1, "alpha", "", "YAML tags"},
		{"tag on server", pool + "  servers:\n    - ! 127.0.0.1:11212:1\n", 4, "alpha", "servers", "YAML tags"},
		{"tag after unicode", "é:\n  listen: 127.0.0.1:22121\n  hash: ! md5\n" + srv, 3, "é", "hash", "YAML tags"},

		// Structure.
		{"root scalar", "alpha\n", 1, "", "", `the file must be a mapping from pool names to pools, but it holds the value "alpha"`},
		{"root list", "- alpha\n", 1, "", "", "but it holds a list"},
		{"pool scalar", "alpha: 127.0.0.1:22121\n", 1, "alpha", "", "a pool must be a mapping of keys (listen, servers, ...), not the value"},
		{"pool list", "alpha:\n  - 127.0.0.1:22121\n", 2, "alpha", "", "not a list"},
		{"pool empty", "alpha:\n" + pool + srv, 1, "alpha", "", "the pool has no keys"},
		{"pool name empty", "\"\":\n  listen: 127.0.0.1:22121\n" + srv, 1, "", "", "a pool name must be a non-empty string"},
		{"pool name list", "? - a\n: b\n", 1, "", "", "a pool name must be a non-empty string, not a list"},
		{"depth three", pool + "  hash:\n    name: md5\n" + srv, 4, "alpha", "hash", "depth greater than 2"},
		{"key list", pool + "  hash:\n    - md5\n" + srv, 4, "alpha", "hash", `not a list (only "servers" and "redis_refuse_commands" are lists)`},
		{"refuse scalar", pool + "  redis: true\n  redis_refuse_commands: flushall\n" + srv, 4, "alpha", "redis_refuse_commands", `the value must be a list, one "- command" entry per line`},
		{"refuse flow list", pool + "  redis: true\n  redis_refuse_commands: [flushall]\n" + srv, 4, "alpha", "redis_refuse_commands", `flow sequences ("[a, b]") are not allowed`},
		{"refuse empty", pool + "  redis: true\n  redis_refuse_commands:\n" + srv, 4, "alpha", "redis_refuse_commands", "the list is empty"},
		{"refuse empty entry", pool + "  redis: true\n  redis_refuse_commands:\n    - ''\n" + srv, 5, "alpha", "redis_refuse_commands", "each entry must be a command name, not nothing"},
		{"refuse three words", pool + "  redis: true\n  redis_refuse_commands:\n    - client kill now\n" + srv, 5, "alpha", "redis_refuse_commands", `"client kill now" is not a command name`},
		{"refuse twice", pool + "  redis: true\n  redis_refuse_commands:\n    - flushall\n    - FLUSHALL\n" + srv, 6, "alpha", "redis_refuse_commands", `"FLUSHALL" is listed twice (first on line 5)`},
		{"refuse twice, two spellings", pool + "  redis: true\n  redis_refuse_commands:\n    - script flush\n    - script|flush\n" + srv, 6, "alpha", "redis_refuse_commands", "listed twice"},
		{"refuse memcached", pool + "  redis_refuse_commands:\n    - flushall\n" + srv, 3, "alpha", "redis_refuse_commands", "the key is only valid in a redis pool"},
		{"listen list, servers scalar", "alpha:\n  listen:\n    - 127.0.0.1:22121\n  servers: 127.0.0.1:11212:1\n", 3, "alpha", "listen", "not a list"},
		{"key empty", pool + "  \"\": md5\n" + srv, 3, "alpha", "", "a key must be a non-empty string, not nothing"},
		{"key list key", pool + "  ? - a\n  : b\n" + srv, 3, "alpha", "", "a key must be a non-empty string, not a list"},
		{"unknown key", pool + "  foo: bar\n" + srv, 3, "alpha", "foo", "the key is unknown; valid keys: listen, hash,"},
		{"sentinels", pool + "  sentinels: x\n" + srv, 3, "alpha", "sentinels", "the key is unknown"},
		{"key case", pool + "  Hash: md5\n" + srv, 3, "alpha", "Hash", `keys are case-sensitive: did you mean "hash"?`},
		{"duplicate key", pool + "  hash: md5\n  hash: md5\n" + srv, 4, "alpha", "hash", "the key is given twice (first on line 3)"},
		{"duplicate listen key", pool + "  listen: 127.0.0.1:22122\n" + srv, 3, "alpha", "listen", "given twice (first on line 2)"},
		{"duplicate servers", pool + srv + srv, 5, "alpha", "servers", "given twice (first on line 3)"},
		{"duplicate pool", pool + srv + "alpha:\n  listen: 127.0.0.1:22122\n" + srv, 5, "alpha", "", "the pool name is used twice (first on line 1)"},
		{"empty value", pool + "  hash:\n" + srv, 3, "alpha", "hash", "the value is empty"},
		{"empty quoted value", pool + "  hash_tag: \"\"\n" + srv, 3, "alpha", "hash_tag", "the value is empty"},
		{"empty redis_auth", pool + "  redis: true\n  redis_auth: ''\n" + srv, 4, "alpha", "redis_auth", "the value is empty"},
		{"empty listen", "alpha:\n  listen:\n" + srv, 2, "alpha", "listen", "the value is empty"},
		{"listen missing", "alpha:\n  hash: md5\n" + srv, 1, "alpha", "listen", "the key is missing"},
		{"servers missing", pool, 1, "alpha", "servers", "the key is missing: every pool needs a list of servers"},
		{"servers empty", pool + "  servers:\n", 3, "alpha", "servers", "the list is empty"},
		{"servers null", pool + "  servers: ~\n", 3, "alpha", "servers", `the value must be a list, one "- host:port:weight [name]" entry per line, not the value "~"`},
		{"servers scalar", pool + "  servers: 127.0.0.1:11212:1\n", 3, "alpha", "servers", "the value must be a list"},
		{"servers mapping", pool + "  servers:\n    a: b\n", 4, "alpha", "servers", "not a mapping"},
		{"server mapping", pool + "  servers:\n    - a: b\n", 4, "alpha", "servers", "each entry must be one"},
		{"server list", pool + "  servers:\n    - - 127.0.0.1:11212:1\n", 4, "alpha", "servers", "not a list"},
		{"server empty", pool + "  servers:\n    - 127.0.0.1:11212:1\n    -\n", 5, "alpha", "servers", "an entry is empty"},

		// Values.
		{"negative", pool + "  timeout: -1\n" + srv, 3, "alpha", "timeout", `"-1" is not a number`},
		{"unit", pool + "  timeout: 1s\n" + srv, 3, "alpha", "timeout", `"1s" is not a number`},
		{"plus", pool + "  backlog: +5\n" + srv, 3, "alpha", "backlog", `"+5" is not a number`},
		{"leading space", pool + "  redis_db: \" 5\"\n" + srv, 3, "alpha", "redis_db", `" 5" is not a number`},
		{"trailing space", pool + "  redis_db: \"5 \"\n" + srv, 3, "alpha", "redis_db", `"5 " is not a number`},
		{"float", pool + "  server_retry_timeout: 1.5\n" + srv, 3, "alpha", "server_retry_timeout", "not a number"},
		{"hex", pool + "  server_failure_limit: 0x10\n" + srv, 3, "alpha", "server_failure_limit", "not a number"},
		{"int32 overflow", pool + "  timeout: 2147483648\n" + srv, 3, "alpha", "timeout", `"2147483648" is too large: the maximum is 2147483647`},
		{"wraps positive in nutcracker", pool + "  client_connections: 99999999999\n" + srv, 3, "alpha", "client_connections", "too large"},
		{"huge", pool + "  backlog: " + strings.Repeat("9", 40) + "\n" + srv, 3, "alpha", "backlog", "too large"},
		{"server_connections 0", pool + "  server_connections: 0\n" + srv, 3, "alpha", "server_connections", "the value cannot be 0"},
		{"server_connections 00", pool + "  server_connections: 00\n" + srv, 3, "alpha", "server_connections", "cannot be 0"},
		{"yes", pool + "  redis: yes\n" + srv, 3, "alpha", "redis", `"yes" is not "true" or "false"`},
		{"True", pool + "  preconnect: True\n" + srv, 3, "alpha", "preconnect", `"True" is not "true" or "false"`},
		{"on", pool + "  tcpkeepalive: on\n" + srv, 3, "alpha", "tcpkeepalive", "is not"},
		{"1", pool + "  reuseport: 1\n" + srv, 3, "alpha", "reuseport", "is not"},
		{"bool with space", pool + "  auto_eject_hosts: \"true \"\n" + srv, 3, "alpha", "auto_eject_hosts", "is not"},
		{"hash unknown", pool + "  hash: sha1\n" + srv, 3, "alpha", "hash", `"sha1" is not a valid hash; valid: one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins, farm`},
		{"hash uppercase", pool + "  hash: MD5\n" + srv, 3, "alpha", "hash", `"MD5" is not a valid hash`},
		{"distribution unknown", pool + "  distribution: consistent\n" + srv, 3, "alpha", "distribution", `"consistent" is not a valid distribution; valid: ketama, modula, random`},
		{"distribution uppercase", pool + "  distribution: Ketama\n" + srv, 3, "alpha", "distribution", "not a valid distribution"},
		{"hash tag one", pool + "  hash_tag: \"{\"\n" + srv, 3, "alpha", "hash_tag", `"{" is not a valid hash tag: it must be exactly two bytes`},
		{"hash tag three", pool + "  hash_tag: \"{x}\"\n" + srv, 3, "alpha", "hash_tag", "exactly two bytes"},
		{"redis_auth without redis", pool + "  redis_auth: pw\n" + srv, 3, "alpha", "redis_auth", "the key is only valid in a redis pool (add redis: true)"},
		{"redis_auth with redis false", pool + "  redis_auth: pw\n  redis: false\n" + srv, 3, "alpha", "redis_auth", "only valid in a redis pool"},

		// Servers.
		{"server bad port", pool + "  servers:\n    - 127.0.0.1:99999:1\n", 4, "alpha", "servers", `invalid server "127.0.0.1:99999:1": has an invalid port in "hostname:port:weight [name]" format string`},
		{"server zero weight", pool + "  servers:\n    - 127.0.0.1:11212:1\n    - 127.0.0.1:11213:0\n", 5, "alpha", "servers", "has a zero weight"},
		{"server no weight", pool + "  servers:\n    - 127.0.0.1:11212\n", 4, "alpha", "servers", `has an invalid "hostname:port:weight [name]"or "/path/unix_socket:weight [name]" format string`},
		{"server weight overflow", pool + "  servers:\n    - 127.0.0.1:11212:4294967297\n", 4, "alpha", "servers", "has an invalid weight"},
		{"server weight too large for the ring", pool + "  servers:\n    - 127.0.0.1:11212:1\n    - 127.0.0.1:11213:8388609\n", 5, "alpha", "servers", `the servers cannot be placed on a ring: invalid weight 8388609 for server "127.0.0.1:11213"`},
		{"server empty name", pool + "  servers:\n    - \"127.0.0.1:11212:1 \"\n", 4, "alpha", "servers", "has an empty name"},
		{"duplicate server", pool + "  servers:\n    - 127.0.0.1:11212:1\n    - 127.0.0.1:11213:1\n    - 127.0.0.1:11212:2\n", 6, "alpha", "servers", `the servers on lines 4 and 6 have the same name "127.0.0.1:11212"`},
		{"duplicate server name", pool + "  servers:\n    - 127.0.0.1:11212:1 x\n    - 127.0.0.1:11213:1 x\n", 5, "alpha", "servers", `lines 4 and 5 have the same name "x"`},
		{"duplicate 11211", pool + "  servers:\n    - 127.0.0.1:11212:1 127.0.0.1\n    - 127.0.0.1:11211:1\n", 5, "alpha", "servers", `same name "127.0.0.1"`},
		{"duplicate unix", pool + "  servers:\n    - /tmp/a.sock:1\n    - /tmp/a.sock:2\n", 5, "alpha", "servers", `same name "/tmp/a.sock:"`},

		// Across pools.
		{"same listen", pool + srv + "beta:\n  listen: 127.0.0.1:22121\n" + srv, 6, "beta", "listen", `"127.0.0.1:22121" is also the listen address of pool "alpha" (line 2)`},
		{"same unix listen", "a:\n  listen: /tmp/s 0600\n" + srv + "b:\n  listen: /tmp/s 0600\n" + srv, 6, "b", "listen", `also the listen address of pool "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools, err := parse(tt.yml)
			require.Error(t, err)
			require.Nil(t, pools)
			assert.ErrorIs(t, err, config.ErrInvalid)
			var e *config.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "test.yml", e.File)
			assert.Equal(t, tt.line, e.Line, "line; message: %s", e.Msg)
			assert.Equal(t, tt.pool, e.Pool, "pool")
			assert.Equal(t, tt.key, e.Key, "key")
			assert.Contains(t, e.Msg, tt.msg)
		})
	}
}

func TestParseAcceptsLikeNutcracker(t *testing.T) {
	// Inputs that look wrong but that nutcracker 0.5.0 accepts.
	tests := []struct {
		name string
		yml  string
	}{
		{"same listen host, other port", minimal + "beta:\n  listen: 127.0.0.1:22122\n  servers:\n    - 127.0.0.1:11212:1\n"},
		{"same listen spelled differently", minimal + "beta:\n  listen: 127.0.0.1:022121\n  servers:\n    - 127.0.0.1:11212:1\n"},
		{"dashes inside a quoted scalar", minimal + "  redis: true\n  redis_auth: \"a\n---b\"\n"},
		{"dashes starting a plain key", "---alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:11212:1\n"},
		{"percent inside a value", minimal + "  redis: true\n  redis_auth: \"a\n%b\"\n"},
		{"explicit keys", "? alpha\n: listen: 127.0.0.1:22121\n  ? servers\n  : - 127.0.0.1:11212:1\n"},
		{"compact servers", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n  - 127.0.0.1:11212:1\n"},
		{"byte order mark", "\xef\xbb\xbf" + minimal},
		{"crlf", strings.ReplaceAll(minimal, "\n", "\r\n")},
		{"cr", strings.ReplaceAll(minimal, "\n", "\r")},
		{"unresolvable server host", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - nowhere.test:11212:1\n"},
		{"server with two colons in host", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:6379:1:2\n"},
		{"server with empty host", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - \":6379:1\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools, err := parse(tt.yml)
			require.NoError(t, err)
			require.NotEmpty(t, pools)
		})
	}
}

func TestParseUTF16(t *testing.T) {
	// minimal in UTF-16, both byte orders, with a non-ASCII server name and
	// a character outside the BMP (a surrogate pair).
	text := []rune(minimal[:len(minimal)-1] + " café😀\n")
	for _, order := range []string{"le", "be"} {
		t.Run(order, func(t *testing.T) {
			var b []byte
			if order == "le" {
				b = append(b, 0xFF, 0xFE)
			} else {
				b = append(b, 0xFE, 0xFF)
			}
			for _, r := range text {
				units := []rune{r}
				if r > 0xFFFF {
					r -= 0x10000
					units = []rune{0xD800 + r>>10, 0xDC00 + r&0x3FF}
				}
				for _, u := range units {
					if order == "le" {
						b = append(b, byte(u), byte(u>>8))
					} else {
						b = append(b, byte(u>>8), byte(u))
					}
				}
			}
			pools, err := parse(string(b))
			require.NoError(t, err)
			assert.Equal(t, "café😀", pools[0].Servers[0].Name)
			assert.Equal(t, []int{4}, pools[0].ServerLines)
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "conf/nutcracker.yml", Line: 7, Pool: "alpha", Key: "hash", Msg: "bad"}, `conf/nutcracker.yml:7: pool "alpha": key "hash": bad`},
		{config.Error{File: "c.yml", Line: 3, Pool: "alpha", Msg: "bad"}, `c.yml:3: pool "alpha": bad`},
		{config.Error{File: "c.yml", Line: 3, Msg: "bad"}, `c.yml:3: bad`},
		{config.Error{File: "c.yml", Msg: "empty"}, `c.yml: empty`},
		{config.Error{Line: 2, Msg: "bad"}, `line 2: bad`},
		{config.Error{Msg: "bad"}, `bad`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
			assert.ErrorIs(t, &tt.err, config.ErrInvalid)
			assert.NotErrorIs(t, &tt.err, fs.ErrNotExist)
		})
	}
	_, err := parse(minimal + "  hash: sha1\n")
	require.Error(t, err)
	assert.Equal(t, `test.yml:5: pool "alpha": key "hash": "sha1" is not a valid hash; valid: `+strings.Join(hashkit.Names(), ", "), err.Error())
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nutcracker.yml")
	require.NoError(t, os.WriteFile(path, []byte(minimal), 0o600))
	f, err := config.Load(path)
	require.NoError(t, err)
	assert.Equal(t, path, f.Name)
	pools := f.Pools
	require.Len(t, pools, 1)
	assert.Equal(t, "alpha", pools[0].Name)

	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte(minimal+"  hash: sha1\n"), 0o600))
	_, err = config.Load(bad)
	var e *config.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, bad, e.File)
	assert.Equal(t, 5, e.Line)

	_, err = config.Load(filepath.Join(dir, "missing.yml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.False(t, errors.Is(err, config.ErrInvalid), "a file that cannot be read is not an invalid configuration")
}

func TestFilePool(t *testing.T) {
	f, err := config.Parse("t.yml", []byte("beta:\n  listen: 127.0.0.1:22122\n  servers:\n    - 127.0.0.1:11212:1\n"+minimal))
	require.NoError(t, err)
	assert.Equal(t, "t.yml", f.Name)
	assert.Equal(t, []string{"beta", "alpha"}, f.Names(), "shorter names first, then bytewise")
	p, ok := f.Pool("alpha")
	require.True(t, ok)
	assert.Equal(t, "alpha", p.Name)
	assert.Equal(t, "127.0.0.1:22121", p.ListenAddr)
	p, ok = f.Pool("beta")
	require.True(t, ok)
	assert.Equal(t, "127.0.0.1:22122", p.ListenAddr)
	p, ok = f.Pool("gamma")
	assert.False(t, ok)
	assert.Zero(t, p.Name)
}

// TestListenOptional checks that Loader.ListenOptional accepts pools without
// listen, and only that: Parse still refuses them with nutcracker's rule,
// and every other check still applies.
func TestListenOptional(t *testing.T) {
	const srv = "  servers:\n    - 127.0.0.1:11212:1\n"
	clientOnly := "alpha:\n  redis: true\n" + srv + "beta:\n" + srv + "gamma:\n  listen: 127.0.0.1:22121\n" + srv
	_, err := config.Parse("t.yml", []byte(clientOnly))
	require.ErrorIs(t, err, config.ErrInvalid)
	assert.Equal(t, `t.yml:1: pool "alpha": key "listen": the key is missing: every pool needs a listen address`, err.Error())

	l := config.Loader{ListenOptional: true}
	f, err := l.Parse("t.yml", []byte(clientOnly))
	require.NoError(t, err)
	require.Len(t, f.Pools, 3)
	a, ok := f.Pool("alpha")
	require.True(t, ok)
	assert.True(t, a.Redis)
	assert.Empty(t, a.Listen)
	assert.Empty(t, a.ListenNetwork)
	assert.Empty(t, a.ListenAddr)
	assert.Len(t, a.Servers, 1)
	g, ok := f.Pool("gamma")
	require.True(t, ok)
	assert.Equal(t, "127.0.0.1:22121", g.ListenAddr)

	for _, tt := range []struct {
		name, yml, want string
	}{
		{"servers missing", "alpha:\n  redis: true\n", `t.yml:1: pool "alpha": key "servers": the key is missing: every pool needs a list of servers`},
		{"bad listen", "alpha:\n  listen: nowhere\n" + srv, `t.yml:2: pool "alpha": key "listen": "nowhere" is neither "host:port" nor an absolute unix socket path`},
		{"same listen", "a:\n  listen: /tmp/s\n" + srv + "b:\n" + srv + "c:\n  listen: /tmp/s\n" + srv, `t.yml:9: pool "c": key "listen": "/tmp/s" is also the listen address of pool "a" (line 2)`},
		{"bad hash", "alpha:\n  hash: sha1\n" + srv, `t.yml:2: pool "alpha": key "hash": "sha1" is not a valid hash; valid: ` + strings.Join(hashkit.Names(), ", ")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Parse("t.yml", []byte(tt.yml))
			require.ErrorIs(t, err, config.ErrInvalid)
			assert.Equal(t, tt.want, err.Error())
		})
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "clients.yml")
	require.NoError(t, os.WriteFile(path, []byte(clientOnly), 0o600))
	f, err = l.Load(path)
	require.NoError(t, err)
	assert.Equal(t, path, f.Name)
	assert.Equal(t, []string{"beta", "alpha", "gamma"}, f.Names())
	_, err = config.Load(path)
	require.ErrorIs(t, err, config.ErrInvalid)
}
