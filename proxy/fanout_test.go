package proxy_test

// Fan-out differential tests: the same command stream goes to one
// redis-server holding every key (the reference) and to walnut in front of
// several redis-servers, and the replies are compared as the merge rules
// say they must match: exactly for counts, OK replies, digests and errors;
// as sets for KEYS and for a full SCAN iteration; by membership for
// RANDOMKEY; by the summed fields for INFO keyspace.

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
)

// fanErr is an error reply, told apart from a simple string.
type fanErr string

// fanValue turns a parsed reply into plain Go values: string (bulk or
// simple), fanErr, int64, nil, []any.
func fanValue(v resp.Value) any {
	switch {
	case v.IsError():
		return fanErr(v.Str)
	case v.Null:
		return nil
	case v.Type == resp.TypeInt:
		return v.Int
	case v.Type == resp.TypeArray:
		out := make([]any, len(v.Elems))
		for i, e := range v.Elems {
			out[i] = fanValue(e)
		}
		return out
	}
	return string(v.Str)
}

// fanDo sends one command on c and returns its reply as plain values.
func fanDo(t *testing.T, c *rawRedis, args ...string) any {
	t.Helper()
	c.send(args)
	var v resp.Value
	require.NoError(t, c.rd.ReadReply(&v), "%q", args)
	return fanValue(v)
}

// A fanTwin is a reference redis-server and a walnut proxy over several.
type fanTwin struct {
	t   *testing.T
	ref *rawRedis
	wal *rawRedis
	bs  []backend
	srv *proxy.Server
	// nkeys is the number of keys the last fill wrote.
	nkeys int
}

func startFanTwin(t *testing.T, nservers int, mutate func(*proxy.Config)) *fanTwin {
	t.Helper()
	bs := startBackends(t, protocol.Redis, nservers)
	ref := testserver.StartRedis(t, testserver.RedisOptions{})
	s, addr := startProxy(t, protocol.Redis, bs, mutate)
	return &fanTwin{t: t, ref: rawDial(t, ref.Addr), wal: rawDial(t, addr), bs: bs, srv: s}
}

// both sends args to the reference and to walnut and returns both replies.
func (f *fanTwin) both(args ...string) (ref, wal any) {
	f.t.Helper()
	return fanDo(f.t, f.ref, args...), fanDo(f.t, f.wal, args...)
}

// same sends args to both and requires equal replies, which it returns.
func (f *fanTwin) same(args ...string) any {
	f.t.Helper()
	ref, wal := f.both(args...)
	require.Equal(f.t, ref, wal, "%q", args)
	return wal
}

// sameSet sends args to both and requires arrays with the same elements,
// each once, which it returns sorted.
func (f *fanTwin) sameSet(args ...string) []string {
	f.t.Helper()
	ref, wal := f.both(args...)
	rs, ws := strs(f.t, ref), strs(f.t, wal)
	require.ElementsMatch(f.t, rs, ws, "%q", args)
	requireUnique(f.t, ws)
	slices.Sort(ws)
	return ws
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	a, ok := v.([]any)
	require.True(t, ok, "not an array: %#v", v)
	out := make([]string, len(a))
	for i, e := range a {
		out[i], ok = e.(string)
		require.True(t, ok, "element %d: %#v", i, e)
	}
	return out
}

func requireUnique(t *testing.T, keys []string) {
	t.Helper()
	seen := make(map[string]bool)
	for _, k := range keys {
		require.False(t, seen[k], "key %q twice", k)
		seen[k] = true
	}
}

// fill writes the same keys of several types to both, some with a TTL,
// and then one more on each server of the pool: every server gets some.
func (f *fanTwin) fill(n int) {
	f.t.Helper()
	for i := range n {
		k := fmt.Sprintf("key:%d", i)
		switch i % 4 {
		case 0:
			f.same("SET", k, "v")
		case 1:
			f.same("SET", k, "v", "EX", "1000")
		case 2:
			f.same("HSET", "h"+k, "f", "v")
		case 3:
			f.same("RPUSH", "l"+k, "a", "b")
		}
	}
	f.same("SET", "{tag}a", "1")
	f.same("SET", "{tag}b", "2")
	// With random ports (and so names) the keys above may all miss a
	// server of the ring: give each server a key of its own.
	ring := f.srv.Ring()
	f.nkeys = n + 2 + len(f.bs)
	for _, b := range f.bs {
		for i := 0; ; i++ {
			k := fmt.Sprintf("own:%d", i)
			if ring.Server(ring.PickString(k)).Addr == b.Addr {
				f.same("SET", k, "v")
				break
			}
		}
	}
	for _, b := range f.bs {
		n, err := testserver.DialRedis(f.t, b.Addr).Do("DBSIZE")
		require.NoError(f.t, err)
		if n == ":0" {
			// Say where walnut sent the requests.
			for _, st := range f.srv.Stats().Servers {
				f.t.Logf("walnut's server %s: %d requests, %d responses, %d connections, live %v",
					st.Name, st.Requests, st.Responses, st.ServerConnections, st.Live)
			}
			for _, o := range f.bs {
				on, _ := testserver.DialRedis(f.t, o.Addr).Do("DBSIZE")
				f.t.Logf("backend %s (%s): DBSIZE %v", o.Addr, o.entry.Name, on)
			}
		}
		require.NotEqual(f.t, ":0", n, "server %s got no key", b.Addr)
	}
}

// scanAll iterates SCAN with opts to its end on c and returns the keys
// and the number of calls.
func scanAll(t *testing.T, c *rawRedis, opts ...string) (keys []string, calls int) {
	t.Helper()
	cursor := "0"
	for {
		calls++
		require.Less(t, calls, 10000, "SCAN does not end")
		v, ok := fanDo(t, c, append([]string{"SCAN", cursor}, opts...)...).([]any)
		require.True(t, ok && len(v) == 2, "SCAN reply %#v", v)
		cursor = v[0].(string)
		keys = append(keys, strs(t, v[1])...)
		if cursor == "0" {
			return keys, calls
		}
	}
}

func TestFanoutDifferential(t *testing.T) {
	f := startFanTwin(t, 3, nil)
	// Empty: every merge of nothing.
	f.same("DBSIZE")
	f.sameSet("KEYS", "*")
	f.same("RANDOMKEY")
	keys, _ := scanAll(t, f.wal)
	assert.Empty(t, keys)

	f.fill(400)

	t.Run("DBSIZE", func(t *testing.T) {
		assert.Equal(t, int64(f.nkeys), f.same("DBSIZE"))
	})
	t.Run("KEYS", func(t *testing.T) {
		assert.Len(t, f.sameSet("KEYS", "*"), f.nkeys)
		for _, pat := range []string{"key:1*", "hkey:?", "{tag}*", "nosuch*", "*:[12]0", "\\{tag\\}a"} {
			f.sameSet("KEYS", pat)
		}
		f.same("KEYS")           // arity error
		f.same("KEYS", "a", "b") // arity error
	})
	t.Run("SCAN", func(t *testing.T) {
		ref, _ := scanAll(t, f.ref)
		for _, opts := range [][]string{
			nil,
			{"COUNT", "7"},
			{"COUNT", "1000"},
			{"MATCH", "key:*", "COUNT", "5"},
			{"TYPE", "hash"},
			{"MATCH", "l*", "TYPE", "list", "COUNT", "3"},
			{"MATCH", "nosuch*"},
		} {
			want, _ := scanAll(t, f.ref, opts...)
			got, calls := scanAll(t, f.wal, opts...)
			requireUnique(t, got) // nothing changed meanwhile: every key once
			assert.ElementsMatch(t, want, got, "SCAN %q", opts)
			assert.GreaterOrEqual(t, calls, len(f.bs), "one call per server at least")
		}
		assert.Len(t, ref, f.nkeys)
		// Invalid cursors and options get redis-server's errors.
		for _, cur := range []string{"abc", " 1", "1x", "18446744073709551616", "+", "-", "0x10", "1 ", "1.0"} {
			f.same("SCAN", cur)
		}
		// Cursors redis-server reads as strtoul does: "" and "-0" are 0,
		// "+1" is 1; a negative one is a number near 2^64, which names no
		// server of the pool.
		for _, cur := range []string{"", "-0", "+1", "00"} {
			v, ok := fanDo(t, f.wal, "SCAN", cur, "COUNT", "1").([]any)
			assert.True(t, ok && len(v) == 2, "SCAN %q: %#v", cur, v)
		}
		assert.Equal(t, fanErr("ERR invalid cursor"), fanDo(t, f.wal, "SCAN", "-1"))
		f.same("SCAN", "0", "COUNT", "0")
		f.same("SCAN", "0", "COUNT", "x")
		f.same("SCAN", "0", "foo")
		f.same("SCAN", "0", "MATCH")
		f.same("SCAN")
		// A cursor naming a server the pool does not have.
		assert.Equal(t, fanErr("ERR invalid cursor"), fanDo(t, f.wal, "SCAN", strconv.FormatUint(uint64(len(f.bs))<<48, 10)))
		assert.Equal(t, fanErr("ERR invalid cursor"), fanDo(t, f.wal, "SCAN", "18446744073709551615"))
		// Cursors stay below 2^63 and name the server in bits 48 up.
		v := fanDo(t, f.wal, "SCAN", strconv.FormatUint(2<<48, 10), "COUNT", "1").([]any)
		cur, err := strconv.ParseUint(v[0].(string), 10, 64)
		require.NoError(t, err)
		assert.True(t, cur == 0 || cur>>48 == 2, "cursor %d after a call to server 2, the last", cur)
	})
	t.Run("RANDOMKEY", func(t *testing.T) {
		// Every key about as likely as on one server: each server is
		// drawn in proportion to the keys it holds (not 1 in 3).
		all := f.sameSet("KEYS", "*")
		held := make(map[int]int)
		for _, k := range all {
			held[f.srv.Ring().PickString(k)]++
		}
		const draws = 600
		drawn := make(map[int]int)
		for range draws {
			k, ok := fanDo(t, f.wal, "RANDOMKEY").(string)
			require.True(t, ok)
			require.Contains(t, all, k)
			drawn[f.srv.Ring().PickString(k)]++
		}
		for i, n := range held {
			p := float64(n) / float64(len(all))
			mean, sd := draws*p, math.Sqrt(draws*p*(1-p))
			assert.InDelta(t, mean, float64(drawn[i]), 5*sd+1, "server %d holds %d of %d keys, drawn %d times in %d", i, n, len(all), drawn[i], draws)
			assert.Positive(t, drawn[i], "server %d never drawn", i)
		}
		f.same("RANDOMKEY", "x") // arity error
	})
	t.Run("EXISTS", func(t *testing.T) {
		f.same("EXISTS", "key:0", "key:1", "key:0", "nosuch", "hkey:2", "{tag}a", "lkey:3", "key:0")
		f.same("EXISTS", "nosuch")
		f.same("TOUCH", "key:0", "key:4", "nosuch", "key:4")
	})
	t.Run("INFO", func(t *testing.T) {
		ks := func(v any) string {
			s, ok := v.(string)
			require.True(t, ok, "INFO reply %#v", v)
			m := regexp.MustCompile(`(?m)^db0:keys=(\d+),expires=(\d+),avg_ttl=\d+\r$`).FindStringSubmatch(s)
			require.NotNil(t, m, "no db0 line in %q", s)
			return m[1] + "/" + m[2]
		}
		ref, wal := f.both("INFO", "keyspace")
		assert.Equal(t, ks(ref), ks(wal))
		assert.Equal(t, fmt.Sprintf("%d/100", f.nkeys), ks(wal))
		assert.Regexp(t, fmt.Sprintf(`^# Keyspace\r\ndb0:keys=%d,expires=100,avg_ttl=\d+\r\n$`, f.nkeys), wal)

		_, wal = f.both("INFO")
		s := wal.(string)
		assert.Equal(t, ks(wal), fmt.Sprintf("%d/100", f.nkeys))
		assert.Regexp(t, `^# Server\r\nredis_version:7\.`, s)
		assert.Contains(t, s, "\r\n\r\n# Keyspace\r\n")
		assert.Contains(t, s, "\r\n\r\n# Walnut\r\nwalnut_pool:test\r\nwalnut_servers:3\r\nwalnut_servers_in_ring:3\r\nwalnut_servers_ejected:\r\nwalnut_server_section_from:")
		for _, sec := range []string{"Clients", "Memory", "Stats", "Replication"} {
			assert.NotContains(t, s, "# "+sec, "a one-server section")
		}
		f.same("INFO", "nosuch")
		sections := func(v any) []string { return regexp.MustCompile(`(?m)^# \w+`).FindAllString(v.(string), -1) }
		assert.Equal(t, []string{"# Server", "# Keyspace", "# Walnut"}, sections(fanDo(t, f.wal, "INFO", "all")))
		assert.Equal(t, []string{"# Server", "# Keyspace", "# Walnut"}, sections(fanDo(t, f.wal, "INFO", "default", "nosuch")))
		assert.Equal(t, []string{"# Server", "# Keyspace", "# Walnut"}, sections(fanDo(t, f.wal, "INFO", "everything")))
		assert.Equal(t, []string{"# Server", "# Keyspace"}, sections(fanDo(t, f.wal, "INFO", "keyspace", "SERVER")))
		assert.Regexp(t, `^# Walnut\r\n`, fanDo(t, f.wal, "INFO", "WALNUT"))
		assert.Regexp(t, `^# Server\r\n[^#]*$`, fanDo(t, f.wal, "INFO", "server"))

		// INFO <server-name> [section]: that server's own reply.
		for _, b := range f.bs {
			name := b.entry.ID()
			direct, err := testserver.DialRedis(t, b.Addr).Do("DBSIZE")
			require.NoError(t, err)
			v := fanDo(t, f.wal, "INFO", name, "keyspace").(string)
			assert.Regexp(t, `^# Keyspace\r\ndb0:keys=`+strings.TrimPrefix(direct, ":")+`,`, v, "server %s", name)
			assert.Contains(t, fanDo(t, f.wal, "INFO", name), "# Clients\r\n")
		}
	})
	t.Run("TIME and LASTSAVE", func(t *testing.T) {
		v, ok := fanDo(t, f.wal, "TIME").([]any)
		require.True(t, ok && len(v) == 2)
		sec, err := strconv.ParseInt(v[0].(string), 10, 64)
		require.NoError(t, err)
		assert.InDelta(t, time.Now().Unix(), sec, 5)
		_, ok = fanDo(t, f.wal, "LASTSAVE").(int64)
		assert.True(t, ok)
		f.same("LASTSAVE", "x")
	})
	t.Run("SCRIPT", func(t *testing.T) {
		const script = "return redis.call('GET', KEYS[1])"
		sha := f.same("SCRIPT", "LOAD", script).(string)
		f.same("SCRIPT", "EXISTS", sha, "0000000000000000000000000000000000000000", sha)
		// EVALSHA finds the script on every server.
		for i := range 40 {
			f.same("EVALSHA", sha, "1", fmt.Sprintf("key:%d", 4*i))
		}
		f.same("SCRIPT", "LOAD", "return +") // a compile error, alike everywhere
		f.same("SCRIPT", "LOAD")
		f.same("SCRIPT", "FLUSH", "ASYNC")
		f.same("SCRIPT", "EXISTS", sha)
		f.same("EVALSHA", sha, "1", "key:0")
		f.same("SCRIPT", "FLUSH", "SYNC")
		f.same("SCRIPT", "FLUSH", "NOW")
		f.same("SCRIPT", "HELP")
		f.same("SCRIPT", "NOSUCH")
		assert.Equal(t, fanErr("ERR SCRIPT KILL is not supported through a sharding proxy: a script that runs too long blocks its server for every client; kill it on that server directly"),
			fanDo(t, f.wal, "SCRIPT", "KILL"))
		assert.Regexp(t, `^ERR SCRIPT DEBUG is not supported`, fanDo(t, f.wal, "script", "debug", "yes"))
	})
	t.Run("FUNCTION", func(t *testing.T) {
		const lib = "#!lua name=fanlib\nredis.register_function('fanget', function(keys, args) return redis.call('GET', keys[1]) end)"
		f.same("FUNCTION", "LOAD", lib)
		f.same("FUNCTION", "LOAD", lib) // already exists: the same error everywhere
		f.same("FUNCTION", "LOAD", "REPLACE", lib)
		for i := range 40 {
			f.same("FCALL", "fanget", "1", fmt.Sprintf("key:%d", 4*i))
		}
		f.same("FUNCTION", "LIST")
		dump, ok := fanDo(t, f.wal, "FUNCTION", "DUMP").(string)
		require.True(t, ok)
		f.same("FUNCTION", "DELETE", "fanlib")
		f.same("FUNCTION", "DELETE", "fanlib")
		f.same("FCALL", "fanget", "1", "key:0")
		assert.Equal(t, "OK", fanDo(t, f.wal, "FUNCTION", "RESTORE", dump))
		for i := range 40 {
			assert.Equal(t, "v", fanDo(t, f.wal, "FCALL", "fanget", "1", fmt.Sprintf("key:%d", 4*i)), "restored everywhere")
		}
		f.same("FUNCTION", "LOAD", "#!lua name=bad\nreturn +")
		f.same("FUNCTION", "FLUSH")
		f.same("FUNCTION", "LIST")
		f.same("FUNCTION", "FLUSH", "BOTH")
		f.same("FUNCTION", "HELP")
		assert.Regexp(t, `^ERR FUNCTION KILL is not supported`, fanDo(t, f.wal, "FUNCTION", "KILL"))
		assert.Regexp(t, `^ERR FUNCTION STATS is not supported`, fanDo(t, f.wal, "FUNCTION", "STATS"))
	})
	t.Run("inline", func(t *testing.T) {
		_, err := f.wal.nc.Write([]byte("DBSIZE\r\nKEYS {tag}*\r\n"))
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf(":%d\r\n", f.nkeys), f.wal.reply())
		assert.ElementsMatch(t, []string{"{tag}a", "{tag}b"}, strs(t, func() any {
			var v resp.Value
			require.NoError(t, f.wal.rd.ReadReply(&v))
			return fanValue(v)
		}()))
	})
	t.Run("FLUSH", func(t *testing.T) {
		f.same("FLUSHDB", "NOW")
		f.same("FLUSHALL", "ASYNC", "SYNC")
		f.same("FLUSHDB", "ASYNC")
		f.same("DBSIZE")
		f.fill(400)
		f.same("FLUSHALL", "SYNC")
		f.same("DBSIZE")
		f.fill(400)
		f.same("FLUSHALL")
		assert.Equal(t, int64(0), f.same("DBSIZE"))
		for _, b := range f.bs {
			n, err := testserver.DialRedis(t, b.Addr).Do("DBSIZE")
			require.NoError(t, err)
			assert.Equal(t, ":0", n, "server %s", b.Addr)
		}
		f.same("RANDOMKEY")
	})
}

// TestFanoutPipelined sends fan-out commands among others in one write:
// the replies keep their order.
func TestFanoutPipelined(t *testing.T) {
	f := startFanTwin(t, 3, nil)
	f.fill(400)
	var req []byte
	cmds := [][]string{{"DBSIZE"}, {"SET", "x", "1"}, {"DBSIZE"}, {"FLUSHDB"}, {"GET", "x"}, {"DBSIZE"}, {"SCRIPT", "LOAD", "return 1"}, {"PING"}}
	for _, c := range cmds {
		req = resp.AppendCommandString(req, c...)
	}
	var want []string
	for _, c := range []*rawRedis{f.ref, f.wal} {
		_, err := c.nc.Write(req)
		require.NoError(t, err)
		var got []string
		for range cmds {
			got = append(got, c.reply())
		}
		if want == nil {
			want = got
			continue
		}
		assert.Equal(t, want, got)
	}
}

// TestFanoutEjected checks which servers a fan-out reaches while one is
// ejected: reads skip it (its keys are out of reach; INFO names it),
// writes fail naming it, and the other servers have run them.
func TestFanoutEjected(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, func(cfg *proxy.Config) {
		cfg.Backend.AutoEject = true
		cfg.Backend.FailureLimit = 1
		cfg.Backend.RetryTimeout = time.Minute
		cfg.Ring.Hash = hashkit.Murmur // spreads these few keys over every server
	})
	c := rawDial(t, addr)
	perServer := make([]int, len(bs))
	for i := range 90 {
		k := fmt.Sprintf("%s:%d", []string{"user", "session", "k", "cart"}[i%4], i)
		require.Equal(t, "+OK\r\n", c.do("SET", k, "v"))
		perServer[s.Ring().PickString(k)]++
	}
	require.NotContains(t, perServer, 0, "every server holds keys")
	const down = 1
	name := s.Ring().ID(down)
	var addrOf = func(i int) string {
		for _, b := range bs {
			if b.entry.ID() == s.Ring().ID(i) {
				return b.Addr
			}
		}
		t.Fatalf("no backend for server %d", i)
		return ""
	}
	// Keys and counts of the servers that stay.
	var liveKeys []string
	var liveCount int64
	for i := range bs {
		if i == down {
			continue
		}
		bc := rawDial(t, addrOf(i))
		liveKeys = append(liveKeys, strs(t, fanDo(t, bc, "KEYS", "*"))...)
		liveCount += fanDo(t, bc, "DBSIZE").(int64)
	}
	require.Positive(t, liveCount)
	for _, b := range bs {
		if b.Addr == addrOf(down) {
			b.Stop()
		}
	}
	// The closed connection, or the failure of a request, ejects it.
	require.Eventually(t, func() bool {
		fanDo(t, c, "DBSIZE")
		return !s.Ring().Live(down)
	}, 5*time.Second, 10*time.Millisecond)

	assert.Equal(t, liveCount, fanDo(t, c, "DBSIZE"))
	assert.ElementsMatch(t, liveKeys, strs(t, fanDo(t, c, "KEYS", "*")))
	got, _ := scanAll(t, c, "COUNT", "3")
	requireUnique(t, got)
	assert.ElementsMatch(t, liveKeys, got)
	// A cursor naming the ejected server goes on with the next one.
	v := fanDo(t, c, "SCAN", strconv.FormatUint(uint64(down)<<48|5, 10), "COUNT", "1000").([]any)
	assert.Equal(t, "0", v[0], "server 2 was scanned whole")
	for range 20 {
		k := fanDo(t, c, "RANDOMKEY").(string)
		assert.Contains(t, liveKeys, k)
	}
	info := fanDo(t, c, "INFO", "walnut").(string)
	assert.Contains(t, info, "walnut_servers_in_ring:2\r\nwalnut_servers_ejected:"+name+"\r\n")
	ks := fanDo(t, c, "INFO", "keyspace").(string)
	assert.Contains(t, ks, "db0:keys="+strconv.FormatInt(liveCount, 10)+",")
	sha := fanDo(t, c, "SCRIPT", "EXISTS", "0000000000000000000000000000000000000000")
	assert.Equal(t, []any{int64(0)}, sha)

	// Writes go to every server: the ejected one fails the request.
	want := fanErr("ERR Connection refused (server " + name + "; the command was sent to every server)")
	assert.Equal(t, want, fanDo(t, c, "FLUSHALL"))
	assert.Equal(t, want, fanDo(t, c, "SCRIPT", "LOAD", "return 1"))
	assert.Equal(t, int64(0), fanDo(t, c, "DBSIZE"), "the live servers were flushed")
	// The per-server form reaches only the named server.
	assert.Equal(t, fanErr("ERR Connection refused"), fanDo(t, c, "INFO", name))
	assert.Equal(t, "+PONG\r\n", c.do("PING"))
}

// TestFanoutServerDown: without ejection, a fan-out that reaches a server
// that is down fails, naming the server.
func TestFanoutServerDown(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	require.Equal(t, ":0\r\n", c.do("DBSIZE"))
	bs[2].Stop()
	name := bs[2].entry.ID()
	require.True(t, s.Live(0) && s.Live(1) && s.Live(2))
	for _, give := range [][]string{{"DBSIZE"}, {"KEYS", "*"}, {"RANDOMKEY"}, {"INFO", "keyspace"}, {"SCRIPT", "EXISTS", "x"}} {
		assert.Equal(t, "-ERR Connection refused (server "+name+")\r\n", c.do(give...), "%q", give)
	}
	for _, give := range [][]string{{"FLUSHALL"}, {"FLUSHDB", "ASYNC"}, {"SCRIPT", "LOAD", "return 1"}, {"FUNCTION", "FLUSH"}} {
		assert.Equal(t, "-ERR Connection refused (server "+name+"; the command was sent to every server)\r\n", c.do(give...), "%q", give)
	}
	assert.Equal(t, "+PONG\r\n", c.do("PING"))
}

// TestFanoutOneServer: with one server, fan-out is that server's reply
// (SCAN cursors are the server's own).
func TestFanoutOneServer(t *testing.T) {
	f := startFanTwin(t, 1, nil)
	f.fill(400)
	f.same("DBSIZE")
	f.sameSet("KEYS", "*")
	want, _ := scanAll(t, f.ref, "COUNT", "4")
	got, _ := scanAll(t, f.wal, "COUNT", "4")
	assert.ElementsMatch(t, want, got)
	ref, wal := f.both("SCAN", "0", "COUNT", "1000") // the whole keyspace in one call
	assert.Equal(t, "0", wal.([]any)[0])
	assert.ElementsMatch(t, ref.([]any)[1], wal.([]any)[1])
	f.same("FLUSHALL")
}

func TestRefuseCommands(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	refuse := []string{"flushall", "SCRIPT flush", "client", "keys", "object|encoding"}
	s, addr := startProxy(t, protocol.Redis, bs, func(cfg *proxy.Config) { cfg.RefuseCommands = refuse })
	c := rawDial(t, addr)
	for _, tt := range []struct {
		give []string
		want string
	}{
		{cmd("FLUSHALL"), "-ERR FLUSHALL is refused by this pool's configuration (redis_refuse_commands)\r\n"},
		{cmd("flushall", "async"), "-ERR FLUSHALL is refused by this pool's configuration (redis_refuse_commands)\r\n"},
		{cmd("SCRIPT", "FLUSH"), "-ERR SCRIPT FLUSH is refused by this pool's configuration (redis_refuse_commands)\r\n"},
		{cmd("CLIENT", "SETNAME", "x"), "-ERR CLIENT SETNAME is refused by this pool's configuration (redis_refuse_commands)\r\n"},
		{cmd("KEYS", "*"), "-ERR KEYS is refused by this pool's configuration (redis_refuse_commands)\r\n"},
		{cmd("OBJECT", "ENCODING", "k"), "-ERR OBJECT ENCODING is refused by this pool's configuration (redis_refuse_commands)\r\n"},
		{cmd("FLUSHDB"), "+OK\r\n"},
		{cmd("SCRIPT", "EXISTS", "x"), "*1\r\n:0\r\n"},
		{cmd("OBJECT", "REFCOUNT", "k"), "$-1\r\n"},
		{cmd("DBSIZE"), ":0\r\n"},
	} {
		assert.Equal(t, tt.want, c.do(tt.give...), "%q", tt.give)
	}
	// A reload changes the list for what is read afterwards.
	cfg := proxy.Config{Name: "test", Protocol: protocol.Redis, Servers: entries(bs)}
	require.NoError(t, s.Reload(cfg))
	assert.Equal(t, "+OK\r\n", c.do("FLUSHALL"))

	for _, tt := range []struct {
		give []string
		want string
	}{
		{[]string{"nosuch"}, `"nosuch" is not a Redis command`},
		{[]string{"script nosuch"}, `SCRIPT NOSUCH is not one of walnut's SCRIPT and FUNCTION subcommands`},
		{[]string{"get foo"}, `GET has no subcommands`},
		{[]string{"client nosuch"}, `CLIENT has no subcommand NOSUCH`},
		{[]string{"client kill now"}, `"client kill now" is not a Redis command`},
		{[]string{""}, `"" is not a Redis command`},
	} {
		cfg.RefuseCommands = tt.give
		err := cfg.Validate()
		require.Error(t, err, "%q", tt.give)
		assert.Contains(t, err.Error(), tt.want)
		assert.Error(t, s.Reload(cfg), "a reload with %q is refused", tt.give)
	}
	cfg.RefuseCommands = []string{"flushall"}
	cfg.Protocol = protocol.Memcache
	assert.ErrorContains(t, cfg.Validate(), "needs a redis pool")
}

// TestFanoutStats: each part of a fan-out counts as a fragment.
func TestFanoutStats(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	before := s.Stats().Fragments
	require.Equal(t, ":0\r\n", c.do("DBSIZE"))
	assert.Equal(t, before+3, s.Stats().Fragments)
}
