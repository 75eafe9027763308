package goredis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
)

// livePool is a redis pool of real redis-servers, served by nutcracker.
type livePool struct {
	spec    poolSpec
	pool    config.Pool          // the same nutcracker.yml, parsed by walnut
	listen  string               // nutcracker's listen address
	servers []*testserver.Server // in pool.Servers order: servers[i] is s<i>
}

type poolSpec struct {
	dist, hash, tag string
	auth            string // redis_auth
	openServers     bool   // the redis-servers require no password even with redis_auth
	db              int    // redis_db
	extra           string // more pool keys, each line indented by two spaces
}

// serverPass is the password the redis-servers require.
func (s poolSpec) serverPass() string {
	if s.openServers {
		return ""
	}
	return s.auth
}

// keyDB is the database in which nutcracker 0.5.0 stores keys: redis_db,
// unless the servers require a password, which makes nutcracker's SELECT
// (sent before AUTH) fail, or redis_db is out of redis-server's default
// range (16 databases).
func (s poolSpec) keyDB() int {
	if s.serverPass() != "" || s.db >= 16 {
		return 0
	}
	return s.db
}

// startPool starts three redis-servers (weights 1, 2 and 3, named s0, s1
// and s2) and a nutcracker serving them as one pool, and parses the same
// nutcracker.yml with config.Parse.
func startPool(t *testing.T, spec poolSpec) *livePool {
	t.Helper()
	testserver.RequireBinary(t, "nutcracker")
	lp := &livePool{spec: spec, listen: fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t, "127.0.0.1"))}
	var y strings.Builder
	fmt.Fprintf(&y, "p:\n  listen: %s\n  redis: true\n  distribution: %s\n", lp.listen, spec.dist)
	if spec.hash != "" {
		fmt.Fprintf(&y, "  hash: %s\n", spec.hash)
	}
	if spec.tag != "" {
		fmt.Fprintf(&y, "  hash_tag: %q\n", spec.tag)
	}
	if spec.auth != "" {
		fmt.Fprintf(&y, "  redis_auth: %s\n", spec.auth)
	}
	if spec.db != 0 {
		fmt.Fprintf(&y, "  redis_db: %d\n", spec.db)
	}
	y.WriteString(spec.extra)
	y.WriteString("  servers:\n")
	for i := range 3 {
		s := testserver.StartRedis(t, testserver.RedisOptions{Password: spec.serverPass()})
		lp.servers = append(lp.servers, s)
		fmt.Fprintf(&y, "   - %s:%d s%d\n", s.Addr, i+1, i)
	}
	testserver.StartNutcracker(t, y.String(), testserver.NutcrackerOptions{Listen: []string{lp.listen}})
	lp.pool = parsePool(t, y.String())
	for i, s := range lp.pool.Servers {
		require.Equal(t, fmt.Sprintf("s%d", i), s.ID())
	}
	return lp
}

// proxyConn connects to nutcracker, authenticated.
func (lp *livePool) proxyConn(t *testing.T) *testserver.RedisConn {
	t.Helper()
	c := testserver.DialRedis(t, lp.listen)
	if lp.spec.auth != "" {
		r, err := c.Do("AUTH", lp.spec.auth)
		require.NoError(t, err)
		require.Equal(t, "+OK", r)
	}
	return c
}

// serverConn connects to redis-server i directly, authenticated, in the
// database nutcracker stores keys in.
func (lp *livePool) serverConn(t *testing.T, i int) *testserver.RedisConn {
	t.Helper()
	c := testserver.DialRedis(t, lp.servers[i].Addr)
	if pw := lp.spec.serverPass(); pw != "" {
		r, err := c.Do("AUTH", pw)
		require.NoError(t, err)
		require.Equal(t, "+OK", r)
	}
	if db := lp.spec.keyDB(); db != 0 {
		r, err := c.Do("SELECT", fmt.Sprint(db))
		require.NoError(t, err)
		require.Equal(t, "+OK", r)
	}
	return c
}

// holders returns, for each key, the index of the live server that holds
// it, or -1 if none or more than one does.
func (lp *livePool) holders(t *testing.T, keys []string, dead int) []int {
	t.Helper()
	h := make([]int, len(keys))
	for i := range h {
		h[i] = -1
	}
	for s := range lp.servers {
		if s == dead {
			continue
		}
		c := lp.serverConn(t, s)
		for i, k := range keys {
			r, err := c.Do("EXISTS", k)
			require.NoError(t, err)
			if r == ":1" {
				if h[i] == -1 {
					h[i] = s
				} else {
					h[i] = -2
				}
			}
		}
	}
	for i := range h {
		if h[i] == -2 {
			h[i] = -1
		}
	}
	return h
}

// e2eKeys returns n distinct keys, many with braces in awkward places.
func e2eKeys(prefix string, n int) []string {
	forms := []string{
		"%s:k:%d", "%s:user:{%d}:name", "{}%s:%d", "%s:a{b{%d}c", "}{%s:%d}", "{%s:%d",
		"%s:x{}%d{y}", "%s:{%d}", "%s:}%d{", "%s:{{%d}}",
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf(forms[i%len(forms)], prefix, i)
	}
	return keys
}

// TestAgainstNutcracker writes 2,000 keys through nutcracker and reads each
// through a go-redis Ring built by NewRingFromPool from the same nutcracker.yml
// (and by NewRing from its servers and settings),
// then the reverse, for pools with hash_tag "{}": every key must be found,
// and in the database nutcracker uses.
func TestAgainstNutcracker(t *testing.T) {
	const n = 2000
	specs := map[string]poolSpec{
		// SELECT fails (NOAUTH): keys in database 0.
		"ketama-auth-db": {dist: "ketama", tag: "{}", auth: "s3cret", db: 2, extra: "  timeout: 2000\n"},
		// SELECT succeeds: keys in database 3.
		"ketama-crc32-auth-db-open": {dist: "ketama", hash: "crc32a", tag: "{}", auth: "pw", openServers: true, db: 3},
		"modula-db":                 {dist: "modula", hash: "murmur", tag: "{}", db: 1},
		"modula-auth":               {dist: "modula", hash: "md5", tag: "{}", auth: "pw"},
		// SELECT fails (no such database): keys in database 0.
		"ketama-db-out-of-range": {dist: "ketama", tag: "{}", db: 99},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name != "ketama-auth-db" {
				t.Skip("-short runs one pool of this differential check (ketama-auth-db)")
			}
			lp := startPool(t, spec)
			ctx := context.Background()
			ring, err := goredis.NewRingFromPool(lp.pool, goredis.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = ring.Close() })

			proxy := lp.proxyConn(t)
			keys := e2eKeys("n", n)
			for _, k := range keys {
				r, err := proxy.Do("SET", k, "v-"+k)
				require.NoError(t, err)
				require.Equal(t, "+OK", r, "SET %q through nutcracker", k)
			}
			hits := 0
			for _, k := range keys {
				v, err := ring.Get(ctx, k).Result()
				if assert.NoError(t, err, "GET %q through go-redis", k) && assert.Equal(t, "v-"+k, v) {
					hits++
				}
			}
			t.Logf("nutcracker -> go-redis: %d/%d keys found", hits, n)

			// The primary form, given the pool's settings by hand, finds
			// every key as well.
			direct, err := goredis.NewRing(lp.pool.Servers, lp.pool.RingOptions(), goredis.Options{Password: spec.auth, DB: spec.db})
			require.NoError(t, err)
			t.Cleanup(func() { _ = direct.Close() })
			for _, k := range keys {
				v, err := direct.Get(ctx, k).Result()
				require.NoError(t, err, "GET %q through a Ring from NewRing(servers, ring options)", k)
				require.Equal(t, "v-"+k, v)
			}

			back := e2eKeys("g", n)
			for _, k := range back {
				require.NoError(t, ring.Set(ctx, k, "w-"+k, 0).Err(), "SET %q through go-redis", k)
			}
			backHits := 0
			for _, k := range back {
				v, err := proxy.Do("GET", k)
				require.NoError(t, err)
				if assert.Equal(t, "w-"+k, v, "GET %q through nutcracker", k) {
					backHits++
				}
			}
			t.Logf("go-redis -> nutcracker: %d/%d keys found", backHits, n)

			// Every server holds some keys, so the test could tell.
			for i := range lp.servers {
				r, err := lp.serverConn(t, i).Do("DBSIZE")
				require.NoError(t, err)
				assert.NotEqual(t, ":0", r, "server s%d holds no key", i)
			}
		})
	}
}

// TestNoHashTagAgainstNutcracker shows the misplacement ErrHashTag guards
// against: in a pool without hash_tag, keys for which Exact is false can be
// missed, exactly those for which go-redis's pick (computed without any
// server) differs from nutcracker's, and all other keys are found.
func TestNoHashTagAgainstNutcracker(t *testing.T) {
	const n = 2000
	lp := startPool(t, poolSpec{dist: "ketama"})
	ctx := context.Background()
	_, err := goredis.NewRingFromPool(lp.pool, goredis.Options{})
	require.ErrorIs(t, err, goredis.ErrHashTag)
	ring, err := goredis.NewRingFromPool(lp.pool, goredis.Options{AllowMisplacedBraceKeys: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ring.Close() })
	nut, p := nutRing(t, lp.pool)
	pick := goRedisPicker(t, lp.pool)

	proxy := lp.proxyConn(t)
	keys := e2eKeys("n", n)
	for _, k := range keys {
		r, err := proxy.Do("SET", k, "v-"+k)
		require.NoError(t, err)
		require.Equal(t, "+OK", r)
	}
	var misses, predicted, inexact int
	for _, k := range keys {
		wantMiss := pick(k) != nut.ID(nut.PickString(k))
		if wantMiss {
			predicted++
		}
		if !p.Exact(k) {
			inexact++
		}
		v, err := ring.Get(ctx, k).Result()
		if err == redis.Nil {
			misses++
			assert.True(t, wantMiss, "%q missed", k)
			assert.False(t, p.Exact(k), "%q missed though Exact", k)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, "v-"+k, v)
		assert.False(t, wantMiss, "%q found though predicted elsewhere", k)
	}
	t.Logf("no hash_tag: %d keys, %d not Exact, %d predicted misplaced, %d missed", n, inexact, predicted, misses)
	assert.Positive(t, misses)
	assert.Equal(t, predicted, misses)
}

// TestEjection stops one redis-server of a pool with auto_eject_hosts and
// requires nutcracker, the go-redis Ring (after its heartbeat drops the
// shard) and shard.Ring.WithLive to agree on where every key goes.
func TestEjection(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for nutcracker and go-redis to eject a stopped server: slow, not part of the -short loop")
	}
	const n, dead = 1000, 2 // s2 has weight 3: the most keys move
	for _, dist := range []string{"ketama", "modula"} {
		t.Run(dist, func(t *testing.T) {
			lp := startPool(t, poolSpec{dist: dist, tag: "{}",
				extra: "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 2000\n"})
			ctx := context.Background()
			ro, err := goredis.RingOptionsFromPool(lp.pool, goredis.Options{})
			require.NoError(t, err)
			ro.HeartbeatFrequency = 20 * time.Millisecond
			ring := redis.NewRing(ro)
			t.Cleanup(func() { _ = ring.Close() })
			require.Equal(t, 3, ring.Len())

			full, p := nutRing(t, lp.pool)
			live := []bool{true, true, true}
			live[dead] = false
			ejected, err := full.WithLive(live)
			require.NoError(t, err)
			// The ConsistentHash go-redis builds over the live shards.
			h := p.NewConsistentHash([]string{"s0", "s1"})
			keys := e2eKeys("e", n)
			for _, k := range keys {
				require.Equal(t, ejected.ID(ejected.PickString(k)), h.Get(k), "key %q", k)
			}

			lp.servers[dead].Stop()
			// A request for a key on the stopped server fails once, and
			// nutcracker ejects it (server_failure_limit: 1).
			proxy := lp.proxyConn(t)
			var probe string
			for i := 0; probe == ""; i++ {
				if k := fmt.Sprintf("probe%d", i); full.PickString(k) == dead {
					probe = k
				}
			}
			r, err := proxy.Do("GET", probe)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(r, "-"), "GET of a key on the stopped server: %q", r)
			require.Eventually(t, func() bool { return ring.Len() == 2 }, 10*time.Second, 10*time.Millisecond,
				"go-redis must drop the stopped shard")

			// nutcracker -> go-redis.
			for _, k := range keys {
				r, err := proxy.Do("SET", k, "v-"+k)
				require.NoError(t, err)
				require.Equal(t, "+OK", r, "SET %q through nutcracker", k)
			}
			hits := 0
			for _, k := range keys {
				v, err := ring.Get(ctx, k).Result()
				if assert.NoError(t, err, "GET %q", k) && assert.Equal(t, "v-"+k, v) {
					hits++
				}
			}
			// go-redis -> nutcracker.
			back := e2eKeys("f", n)
			for _, k := range back {
				require.NoError(t, ring.Set(ctx, k, "w-"+k, 0).Err())
			}
			backHits := 0
			for _, k := range back {
				v, err := proxy.Do("GET", k)
				require.NoError(t, err)
				if assert.Equal(t, "w-"+k, v, "GET %q through nutcracker", k) {
					backHits++
				}
			}
			// And each key is on the server WithLive predicts.
			all := append(append([]string{}, keys...), back...)
			wrong := 0
			for i, s := range lp.holders(t, all, dead) {
				if s != ejected.PickString(all[i]) {
					wrong++
				}
			}
			t.Logf("s%d stopped: nutcracker -> go-redis %d/%d found, go-redis -> nutcracker %d/%d found, %d of %d keys off WithLive's server",
				dead, hits, n, backHits, n, wrong, len(all))
			assert.Zero(t, wrong)
		})
	}
}

// TestNoEjection stops one redis-server of a pool without
// auto_eject_hosts: as through nutcracker, the Ring keeps the server, keys
// on it fail and no other key moves.
func TestNoEjection(t *testing.T) {
	const dead = 1
	lp := startPool(t, poolSpec{dist: "ketama", tag: "{}"})
	ctx := context.Background()
	ro, err := goredis.RingOptionsFromPool(lp.pool, goredis.Options{})
	require.NoError(t, err)
	ro.HeartbeatFrequency = 20 * time.Millisecond
	ro.MaxRetries = -1
	ro.DialerRetries = 1
	ring := redis.NewRing(ro)
	t.Cleanup(func() { _ = ring.Close() })
	full, _ := nutRing(t, lp.pool)

	lp.servers[dead].Stop()
	time.Sleep(20 * ro.HeartbeatFrequency) // far more than the 3 failures go-redis needs
	require.Equal(t, 3, ring.Len(), "without auto_eject_hosts no shard is dropped")

	var stored []string
	failed := 0
	for _, k := range e2eKeys("d", 400) {
		i := full.PickString(k)
		if i == dead {
			if failed < 5 { // each costs a dial attempt
				assert.Error(t, ring.Set(ctx, k, "x", 0).Err(), "SET %q on the stopped server", k)
				failed++
			}
			continue
		}
		require.NoError(t, ring.Set(ctx, k, "x", 0).Err())
		stored = append(stored, k)
	}
	require.Equal(t, 5, failed)
	wrong := 0
	for i, s := range lp.holders(t, stored, dead) {
		if s != full.PickString(stored[i]) {
			wrong++
		}
	}
	t.Logf("s%d stopped without ejection: %d SETs failed on it, %d keys stored elsewhere, %d off nutcracker's server", dead, failed, len(stored), wrong)
	assert.Zero(t, wrong)
}
