package goredis_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

// parsePool parses a one-pool nutcracker.yml.
func parsePool(t testing.TB, yml string) config.Pool {
	t.Helper()
	f, err := config.Parse("nutcracker.yml", []byte(yml))
	require.NoError(t, err)
	require.Len(t, f.Pools, 1)
	return f.Pools[0]
}

// poolYAML returns a redis pool over three servers with unequal weights
// and names (nothing listens on them; placement needs no connection).
func poolYAML(dist, tag string) string {
	y := "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  distribution: " + dist + "\n"
	if tag != "" {
		y += fmt.Sprintf("  hash_tag: %q\n", tag)
	}
	return y + "  servers:\n" +
		"   - 127.0.0.1:7003:3 gamma\n" +
		"   - 127.0.0.1:7001:1 alpha\n" +
		"   - 127.0.0.1:7002:2 beta\n"
}

// goRedisPicker returns a function giving the server ID that a real
// go-redis Ring, built by the adapter for pool, chooses for a key: it asks
// the Ring (GetShardClientForKey runs go-redis's own key extraction and
// then the adapter's ConsistentHash) and maps the shard's address back to
// the server. Nothing is dialled.
func goRedisPicker(t testing.TB, pool config.Pool) func(key string) string {
	t.Helper()
	ro, err := goredis.RingOptionsFromPool(pool, goredis.Options{AllowMisplacedBraceKeys: true})
	require.NoError(t, err)
	ro.HeartbeatFrequency = time.Hour
	ring := redis.NewRing(ro)
	t.Cleanup(func() { _ = ring.Close() })
	byAddr := map[string]string{}
	for id, addr := range ro.Addrs {
		byAddr[addr] = id
	}
	return func(key string) string {
		c, err := ring.GetShardClientForKey(key)
		require.NoError(t, err)
		id, ok := byAddr[c.Options().Addr]
		require.True(t, ok, "unknown shard %s", c.Options().Addr)
		return id
	}
}

func nutRing(t testing.TB, pool config.Pool) (*shard.Ring, *goredis.Placement) {
	t.Helper()
	ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
	require.NoError(t, err)
	p, err := goredis.NewPlacement(pool.Servers, pool.RingOptions())
	require.NoError(t, err)
	return ring, p
}

// TestTrickyKeys places keys with braces in odd places through a real
// go-redis Ring under each kind of hash tag, and requires Exact to say
// precisely which ones go-redis would hash differently from nutcracker, and
// every key Exact accepts to land on nutcracker's server.
func TestTrickyKeys(t *testing.T) {
	tags := []string{"", "{}", "$$", "[]"}
	tests := []struct {
		key string
		// exact for tags "", "$$", "[]"; "{}" is always exact.
		none, dollar, bracket bool
	}{
		{key: "", none: true, dollar: true, bracket: true},
		{key: "foo", none: true, dollar: true, bracket: true},
		{key: "{}", none: true, dollar: true, bracket: true},
		{key: "{", none: true, dollar: true, bracket: true},
		{key: "}", none: true, dollar: true, bracket: true},
		{key: "}{", none: true, dollar: true, bracket: true},
		{key: "}x{", none: true, dollar: true, bracket: true},
		{key: "a{b", none: true, dollar: true, bracket: true},
		{key: "a{}b{c}", none: true, dollar: true, bracket: true}, // go-redis stops at the empty pair
		{key: "{}{a}", none: true, dollar: true, bracket: true},
		{key: "x{}}", none: true, dollar: true, bracket: true},
		{key: "{a}"},
		{key: "{ }"},
		{key: "user:{42}:name"},
		{key: "{{a}}"},
		{key: "a{b{c}d"},
		{key: "}a{b}"},
		{key: "a}b{c}"},
		{key: "{a}{b}"},
		{key: "{$a$}", dollar: true},      // both hash "a"
		{key: "$a${b}"},                   // "a" vs "b"
		{key: "{[a]}", bracket: true},     // both hash "a"
		{key: "{[a]}x[b]", bracket: true}, // both hash "a"
		{key: "[{a}]"},                    // "{a}" vs "a"
		{key: "[a]{b}"},                   // "a" vs "b"
		{key: "{$$}"},                     // "$$" (nothing between) vs "{$$}"
		{key: "$x${x}", dollar: true},     // both hash "x"
		{key: "[x]{x}", bracket: true},    // both hash "x"
		{key: "a{bc}d{e}f"},
	}
	for _, tag := range tags {
		pool := parsePool(t, poolYAML("ketama", tag))
		ring, p := nutRing(t, pool)
		pick := goRedisPicker(t, pool)
		t.Run(fmt.Sprintf("tag=%q", tag), func(t *testing.T) {
			misplaced := 0
			for _, tt := range tests {
				want := true
				switch tag {
				case "":
					want = tt.none
				case "$$":
					want = tt.dollar
				case "[]":
					want = tt.bracket
				}
				assert.Equal(t, want, p.Exact(tt.key), "Exact(%q)", tt.key)
				if p.Exact(tt.key) {
					assert.Equal(t, ring.ID(ring.PickString(tt.key)), pick(tt.key), "server of %q", tt.key)
				} else if ring.ID(ring.PickString(tt.key)) != pick(tt.key) {
					misplaced++
				}
			}
			if tag != "{}" {
				assert.Positive(t, misplaced, "some keys Exact rejects must really be misplaced")
			}
		})
	}
}

// randomKey returns a key of 0 to 24 bytes rich in the bytes that matter
// to hash tags.
func randomKey(r *rand.Rand) string {
	const alphabet = "{{{}}}$$[]]ab:x0 "
	b := make([]byte, r.IntN(25))
	for i := range b {
		if r.IntN(4) == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	return string(b)
}

// TestRandomKeys compares, for 100,000 random keys per pool, the server a
// real go-redis Ring picks through the adapter with the server nutcracker
// picks for the full key (shard.Ring.Pick): no key may differ with hash tag
// "{}", and with other tags only keys Exact rejects may, and some do (the
// test can tell).
func TestRandomKeys(t *testing.T) {
	const n = 100_000
	for di, dist := range []string{"ketama", "modula"} {
		for ti, tag := range []string{"", "{}", "$$", "[]"} {
			t.Run(fmt.Sprintf("%s/tag=%q", dist, tag), func(t *testing.T) {
				pool := parsePool(t, poolYAML(dist, tag))
				ring, p := nutRing(t, pool)
				pick := goRedisPicker(t, pool)
				r := rand.New(rand.NewPCG(uint64(di), uint64(ti)))
				var tagged, inexact, mismatch, mismatchExact int
				var examples []string
				for range n {
					key := randomKey(r)
					want := ring.ID(ring.PickString(key))
					got := pick(key)
					exact := p.Exact(key)
					if !exact {
						inexact++
					}
					if got != want {
						mismatch++
						if exact {
							mismatchExact++
							if len(examples) < 5 {
								examples = append(examples, fmt.Sprintf("%q: %s, want %s", key, got, want))
							}
						}
					}
					if goredisTagged(key) != key {
						tagged++
					}
				}
				t.Logf("%d keys, %d with a go-redis hash tag, %d of them hashed differently by nutcracker (Exact false), %d placed on another server than nutcracker's",
					n, tagged, inexact, mismatch)
				assert.Zero(t, mismatchExact, "keys Exact accepts placed elsewhere, e.g. %v", examples)
				if tag == "{}" {
					assert.Zero(t, inexact)
					assert.Zero(t, mismatch)
					return
				}
				assert.Positive(t, mismatch, "the comparison must be able to fail")
				assert.LessOrEqual(t, mismatch, inexact)
			})
		}
	}
}

// goredisTagged is go-redis's key extraction, for counting keys that have
// a go-redis hash tag at all.
func goredisTagged(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}

// TestNewConsistentHashLive checks that for every set of live shards the
// ConsistentHash places keys as nutcracker does with the others ejected,
// whatever the order of the names and with unknown names ignored.
func TestNewConsistentHashLive(t *testing.T) {
	for _, dist := range []string{"ketama", "modula"} {
		t.Run(dist, func(t *testing.T) {
			yml := "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n  distribution: " + dist + "\n  servers:\n" +
				"   - 127.0.0.1:7001:1 s1\n   - 127.0.0.1:7002:4 s2\n   - 127.0.0.1:7003:2 s3\n   - 127.0.0.1:7004:3 s4\n"
			pool := parsePool(t, yml)
			ring, p := nutRing(t, pool)
			r := rand.New(rand.NewPCG(1, 2))
			keys := make([]string, 5000)
			for i := range keys {
				keys[i] = randomKey(r)
			}
			for mask := 1; mask < 1<<ring.Len(); mask++ {
				live := make([]bool, ring.Len())
				var names []string
				for i := range live {
					if mask&(1<<i) != 0 {
						live[i] = true
						names = append(names, ring.ID(i))
					}
				}
				want, err := ring.WithLive(live)
				require.NoError(t, err)
				names = append(names, "not-a-server")
				r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
				h := p.NewConsistentHash(names)
				for _, k := range keys {
					require.Equal(t, want.ID(want.PickString(k)), h.Get(k), "key %q, live %v", k, live)
				}
			}
			for _, names := range [][]string{nil, {}, {"x", "y"}} {
				assert.Empty(t, p.NewConsistentHash(names).Get("foo"), "names %q", names)
			}
		})
	}
}

func TestRingOptions(t *testing.T) {
	const servers = "  servers:\n   - 127.0.0.1:7001:1 a\n   - /tmp/walnut-redis.sock:1\n   - ::1:7003:2\n"
	tests := []struct {
		name    string
		give    string
		opts    goredis.Options
		wantErr error
		check   func(t *testing.T, ro *redis.RingOptions)
	}{
		{
			name: "full",
			give: "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n  redis_auth: pw\n  redis_db: 3\n  timeout: 400\n  auto_eject_hosts: true\n" + servers,
			check: func(t *testing.T, ro *redis.RingOptions) {
				assert.Equal(t, map[string]string{"a": "127.0.0.1:7001", "/tmp/walnut-redis.sock:": "/tmp/walnut-redis.sock", "::1:7003": "[::1]:7003"}, ro.Addrs)
				assert.Equal(t, "pw", ro.Password)
				assert.Zero(t, ro.DB, "the Dialer selects redis_db before AUTH, as nutcracker")
				assert.NotNil(t, ro.Dialer)
				assert.Equal(t, 400*time.Millisecond, ro.DialTimeout)
				assert.Equal(t, 400*time.Millisecond, ro.ReadTimeout)
				assert.Equal(t, 400*time.Millisecond, ro.WriteTimeout)
				assert.Nil(t, ro.HeartbeatFn, "auto_eject_hosts: go-redis's own heartbeat ejects dead shards")
				assert.NotNil(t, ro.NewConsistentHash)
			},
		},
		{
			name: "defaults",
			give: "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n" + servers,
			check: func(t *testing.T, ro *redis.RingOptions) {
				assert.Empty(t, ro.Password)
				assert.Zero(t, ro.DB)
				assert.Nil(t, ro.Dialer)
				assert.Zero(t, ro.DialTimeout, "no timeout: go-redis's default")
				assert.Zero(t, ro.ReadTimeout)
				require.NotNil(t, ro.HeartbeatFn, "without auto_eject_hosts no shard is ejected")
				assert.True(t, ro.HeartbeatFn(context.Background(), nil))
			},
		},
		{
			name:    "memcached",
			give:    "p:\n  listen: 127.0.0.1:22121\n  hash_tag: \"{}\"\n" + servers,
			wantErr: goredis.ErrNotRedis,
		},
		{
			name:    "no hash tag",
			give:    "p:\n  listen: 127.0.0.1:22121\n  redis: true\n" + servers,
			wantErr: goredis.ErrHashTag,
		},
		{
			name:    "other hash tag",
			give:    "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"$$\"\n" + servers,
			wantErr: goredis.ErrHashTag,
		},
		{
			name: "no hash tag allowed",
			give: "p:\n  listen: 127.0.0.1:22121\n  redis: true\n" + servers,
			opts: goredis.Options{AllowMisplacedBraceKeys: true},
			check: func(t *testing.T, ro *redis.RingOptions) {
				assert.Len(t, ro.Addrs, 3)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := parsePool(t, tt.give)
			ro, err := goredis.RingOptionsFromPool(pool, tt.opts)
			ring, ringErr := goredis.NewRingFromPool(pool, tt.opts)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorIs(t, ringErr, tt.wantErr)
				assert.Contains(t, err.Error(), `pool "p"`)
				return
			}
			require.NoError(t, err)
			require.NoError(t, ringErr)
			require.NoError(t, ring.Close())
			tt.check(t, ro)
		})
	}
}

// TestRingOptionsServers checks the primary form: from servers, ring
// options and Options alone it builds what the pool form builds from the
// pool, and refuses the same rings, without naming a pool.
func TestRingOptionsServers(t *testing.T) {
	pool := parsePool(t, "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n  redis_auth: pw\n  redis_db: 3\n  timeout: 400\n  auto_eject_hosts: true\n  servers:\n   - 127.0.0.1:7001:1 a\n   - /tmp/walnut-redis.sock:1\n   - ::1:7003:2\n")
	fromPool, err := goredis.RingOptionsFromPool(pool, goredis.Options{})
	require.NoError(t, err)
	opts := goredis.Options{Password: "pw", DB: 3, Timeout: 400 * time.Millisecond, AutoEjectHosts: true}
	ro, err := goredis.RingOptions(pool.Servers, pool.RingOptions(), opts)
	require.NoError(t, err)
	assert.Equal(t, fromPool.Addrs, ro.Addrs)
	assert.Equal(t, "pw", ro.Password)
	assert.Zero(t, ro.DB, "the Dialer selects DB before AUTH, as nutcracker")
	assert.NotNil(t, ro.Dialer)
	assert.Equal(t, 400*time.Millisecond, ro.DialTimeout)
	assert.Equal(t, 400*time.Millisecond, ro.ReadTimeout)
	assert.Equal(t, 400*time.Millisecond, ro.WriteTimeout)
	assert.Nil(t, ro.HeartbeatFn)
	shards := []string{"a", "/tmp/walnut-redis.sock:", "::1:7003"}
	a, b := fromPool.NewConsistentHash(shards), ro.NewConsistentHash(shards)
	for i := range 1000 {
		k := "k" + strconv.Itoa(i)
		require.Equal(t, a.Get(k), b.Get(k), k)
	}

	ro, err = goredis.RingOptions(pool.Servers, pool.RingOptions(), goredis.Options{})
	require.NoError(t, err)
	assert.Empty(t, ro.Password)
	assert.Nil(t, ro.Dialer)
	assert.Zero(t, ro.DialTimeout)
	require.NotNil(t, ro.HeartbeatFn, "zero Options: no shard is ejected, as nutcracker's default")
	assert.True(t, ro.HeartbeatFn(context.Background(), nil))
	ring, err := goredis.NewRing(pool.Servers, pool.RingOptions(), opts)
	require.NoError(t, err)
	assert.Equal(t, 3, ring.Len())
	require.NoError(t, ring.Close())

	noTag := pool.RingOptions()
	noTag.HashTag = ""
	_, err = goredis.RingOptions(pool.Servers, noTag, goredis.Options{})
	require.ErrorIs(t, err, goredis.ErrHashTag)
	assert.Contains(t, err.Error(), "the ring has no hash tag")
	_, err = goredis.NewRing(pool.Servers, shard.RingOptions{HashTag: "$$"}, goredis.Options{})
	require.ErrorIs(t, err, goredis.ErrHashTag)
	assert.Contains(t, err.Error(), `the ring has hash tag "$$"`)
	ro, err = goredis.RingOptions(pool.Servers, noTag, goredis.Options{AllowMisplacedBraceKeys: true})
	require.NoError(t, err)
	assert.Len(t, ro.Addrs, 3)
	_, err = goredis.RingOptions(nil, shard.RingOptions{HashTag: "{}"}, goredis.Options{})
	require.ErrorIs(t, err, shard.ErrNoServers)
	assert.True(t, strings.HasPrefix(err.Error(), "goredis: "), "%v", err)
}

func TestNewPlacementErrors(t *testing.T) {
	a := shard.Server{Addr: "127.0.0.1:7001"}
	_, err := goredis.NewPlacement(nil, shard.RingOptions{})
	require.ErrorIs(t, err, shard.ErrNoServers)
	_, err = goredis.NewPlacement([]shard.Server{a, a}, shard.RingOptions{})
	require.ErrorIs(t, err, shard.ErrDuplicateName)
	_, err = goredis.NewPlacement([]shard.Server{a}, shard.RingOptions{HashTag: "{"})
	require.ErrorIs(t, err, shard.ErrInvalidHashTag)
}

func TestExactOneServer(t *testing.T) {
	p, err := goredis.NewPlacement([]shard.Server{{Addr: "127.0.0.1:7001"}}, shard.RingOptions{})
	require.NoError(t, err)
	for _, k := range []string{"{a}", "user:{42}:name", "x"} {
		assert.True(t, p.Exact(k), k)
	}
}

func TestAddrsIsACopy(t *testing.T) {
	p, err := goredis.NewPlacement([]shard.Server{{Addr: "127.0.0.1:7001"}, {Addr: "127.0.0.1:7002"}}, shard.RingOptions{})
	require.NoError(t, err)
	m := p.Addrs()
	clear(m)
	assert.Equal(t, []string{"127.0.0.1:7001", "127.0.0.1:7002"}, sortedKeys(p.Addrs()))
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestSelectFirstDialer checks the Dialer RingOptions sets for a pool with
// redis_db against a fake server: it sends SELECT before anything else,
// accepts an error reply as nutcracker does, and leaves whatever follows
// the reply unread for go-redis.
func TestSelectFirstDialer(t *testing.T) {
	pool := parsePool(t, "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n  redis_db: 12\n  servers:\n   - 127.0.0.1:7001:1\n")
	ro, err := goredis.RingOptionsFromPool(pool, goredis.Options{})
	require.NoError(t, err)
	require.NotNil(t, ro.Dialer)
	tests := []struct {
		name    string
		reply   string // the fake server's answer to SELECT, then "+NEXT\r\n"
		wantErr bool
	}{
		{name: "ok", reply: "+OK\r\n"},
		{name: "noauth", reply: "-NOAUTH Authentication required.\r\n"},
		{name: "range", reply: "-ERR DB index is out of range\r\n"},
		{name: "bulk", reply: "$2\r\nok\r\n", wantErr: true},
		{name: "closed", reply: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				want := "*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n"
				buf := make([]byte, len(want))
				_, err = io.ReadFull(c, buf)
				got <- string(buf)
				if err != nil || tt.reply == "" {
					return
				}
				_, _ = io.WriteString(c, tt.reply+"+NEXT\r\n")
				_, _ = io.Copy(io.Discard, c)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := ro.Dialer(ctx, "tcp", ln.Addr().String())
			assert.Equal(t, "*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n", <-got)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			defer conn.Close()
			rest := make([]byte, len("+NEXT\r\n"))
			_, err = io.ReadFull(conn, rest)
			require.NoError(t, err)
			assert.Equal(t, "+NEXT\r\n", string(rest))
		})
	}
}
