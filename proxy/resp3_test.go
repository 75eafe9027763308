package proxy_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// helloFields matches the two fields of HELLO's reply that differ between
// walnut and a redis-server: the version and the connection id.
var helloFields = regexp.MustCompile(`(\$7\r\nversion\r\n)\$[0-9]+\r\n[^\r]*\r\n|(\$2\r\nid\r\n):[0-9]+\r\n`)

// normalizeHello replaces the version and id of a HELLO reply by
// placeholders.
func normalizeHello(reply string) string {
	return helloFields.ReplaceAllString(reply, "${1}${2}<x>\r\n")
}

// resp3Stream is the command stream of TestRESP3MatchesRedis: every RESP3
// reply type redis-server 7 sends for commands walnut forwards, the split
// commands, errors, and the protocol switches. k are keys on distinct
// servers of the proxy.
func resp3Stream(k []string) [][]string {
	return [][]string{
		cmd("HELLO", "3"),
		cmd("PING"),
		cmd("GET", k[0]), // null: "_"
		cmd("SET", k[0], "v0"),
		cmd("MSET", k[1], "v1", k[2], "v2", k[3], "v3"),
		cmd("MGET", k[0], k[1], k[2], k[3], k[4], k[5]), // split, with "_" for the missing keys
		cmd("EXISTS", k[0], k[1], k[4], k[5], k[2]),
		cmd("TOUCH", k[0], k[1], k[2], k[5]),
		cmd("MSET", k[0]), // arity error
		cmd("HSET", "{h}", "f", "v", "g", "w"),
		cmd("HGETALL", "{h}"), // map
		cmd("SADD", "{s}", "3", "1", "2"),
		cmd("SMEMBERS", "{s}"), // set
		cmd("ZADD", "{z}", "1.5", "a", "2", "b"),
		cmd("ZSCORE", "{z}", "a"), // double
		cmd("ZRANGE", "{z}", "0", "-1", "WITHSCORES"),
		cmd("INCRBYFLOAT", k[4], "1.5"),
		cmd("EVAL", "redis.setresp(3); return true", "1", k[0]),  // boolean
		cmd("EVAL", "redis.setresp(3); return false", "1", k[0]), // boolean
		cmd("EVAL", "return {big_number='1234567890123456789012345678901234567890'}", "1", k[1]),
		cmd("EVAL", "return {verbatim_string={format='txt',string='hello'}}", "1", k[2]),
		cmd("EVAL", "redis.setresp(3); return {1,{double=2.5},{map={x={set={a=true}}}},false}", "1", k[3]),
		cmd("EVAL", "return redis.error_reply('MYERR custom')", "1", k[0]),
		cmd("MGET", k[0], "{h}", k[1]), // a hash among them: "_"
		cmd("GET", "{h}"),              // WRONGTYPE
		cmd("INCR", k[0]),              // not an integer
		cmd("CLIENT", "GETNAME"),       // no name: "_"
		cmd("HELLO", "3", "SETNAME", "me"),
		cmd("CLIENT", "GETNAME"),
		cmd("HELLO"), // the protocol in force: 3
		cmd("HELLO", "4"),
		cmd("HELLO", "x"),
		cmd("HELLO", "3", "BOGUS"),
		cmd("DEL", k[0], k[1], "{h}", k[5]),
		cmd("UNLINK", k[2], k[3], k[5]),
		cmd("HELLO", "2"),
		cmd("GET", k[5]), // $-1 again
		cmd("MGET", k[4], k[5], k[1]),
		cmd("ZRANGE", "{z}", "0", "-1", "WITHSCORES"),
		cmd("CLIENT", "GETNAME"),
		cmd("HELLO", "3"),
		cmd("HGETALL", "{h}"),
		cmd("RESET"), // back to RESP2, name forgotten
		cmd("GET", k[5]),
		cmd("CLIENT", "GETNAME"),
		cmd("HELLO"),
	}
}

// TestRESP3MatchesRedis sends the same stream to one redis-server and to
// walnut over three, each as a RESP3 client, and compares every reply: a
// split command's merged reply must be the reply of the one server that
// holds all the keys. It runs the stream pipelined (the protocol switches
// within a batch) and one command at a time.
func TestRESP3MatchesRedis(t *testing.T) {
	direct := testserver.StartRedis(t, testserver.RedisOptions{})
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	k := keysOnDistinctServers(t, s, 3)
	k = append(k, "other:a", "other:b", "other:c")
	stream := resp3Stream(k)
	for _, pipelined := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelined=%t", pipelined), func(t *testing.T) {
			dtFlushAll(t, protocol.Redis, append(bs, backend{Server: direct}))
			before := s.Stats().Fragments
			want := resp3Replies(t, direct.Addr, stream, pipelined)
			got := resp3Replies(t, addr, stream, pipelined)
			for i := range stream {
				w, g := want[i], got[i]
				if stream[i][0] == "HELLO" {
					w, g = normalizeHello(w), normalizeHello(g)
				}
				assert.Equal(t, w, g, "%d: %q", i, stream[i])
			}
			assert.Greater(t, s.Stats().Fragments, before, "the split commands were split")
		})
	}
	// The stream covers what it claims to.
	all := strings.Join(resp3Replies(t, direct.Addr, stream, true), "")
	for _, typ := range []string{"\r\n_\r\n", "\r\n%2\r\n", "\r\n~3\r\n", "\r\n,1.5\r\n", "\r\n#t\r\n", "\r\n#f\r\n", "\r\n(1234", "\r\n=9\r\ntxt:hello", "\r\n-MYERR", "\r\n-WRONGTYPE", "\r\n$-1\r\n", "\r\n*14\r\n"} {
		assert.Contains(t, "\r\n"+all, typ)
	}
}

// resp3Replies sends cmds to addr, pipelined or one at a time, and returns
// the raw replies.
func resp3Replies(t *testing.T, addr string, cmds [][]string, pipelined bool) []string {
	t.Helper()
	c := rawDial(t, addr)
	defer c.nc.Close()
	out := make([]string, len(cmds))
	if pipelined {
		c.send(cmds...)
		for i := range cmds {
			out[i] = c.reply()
		}
		return out
	}
	for i, cm := range cmds {
		out[i] = c.do(cm...)
	}
	return out
}

// clientList returns the lines of CLIENT LIST on a backend, without the
// connection asking.
func clientList(t *testing.T, addr string, auth ...string) []string {
	t.Helper()
	c := rawDial(t, addr)
	defer c.nc.Close()
	if len(auth) > 0 {
		require.Equal(t, "+OK\r\n", c.do("AUTH", auth[0]))
	}
	list := c.do("CLIENT", "LIST")
	require.True(t, strings.HasPrefix(list, "$"), list)
	var lines []string
	for _, l := range strings.Split(list[strings.Index(list, "\r\n")+2:], "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.Contains(l, " cmd=client|list ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// countResp counts the lines of a CLIENT LIST with resp=proto.
func countResp(lines []string, proto int) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l+" ", fmt.Sprintf(" resp=%d ", proto)) {
			n++
		}
	}
	return n
}

// TestRESP3BackendConnections checks that a RESP3 client's requests go to
// connections of their own, in RESP3 mode, made when first needed, counted
// in the server's stats, and closed with their backend by a Reload.
func TestRESP3BackendConnections(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	k := keysOnDistinctServers(t, s, 2)

	c2 := rawDial(t, addr)
	for _, key := range k {
		require.Equal(t, "$-1\r\n", c2.do("GET", key))
	}
	for _, b := range bs {
		lines := clientList(t, b.Addr)
		assert.Equal(t, 1, countResp(lines, 2), "%s: %q", b.Addr, lines)
		assert.Equal(t, 0, countResp(lines, 3), "no RESP3 connection before a RESP3 client: %q", lines)
	}

	c3 := rawDial(t, addr)
	require.True(t, strings.HasPrefix(c3.do("HELLO", "3"), "%7\r\n"))
	for _, key := range k {
		require.Equal(t, "_\r\n", c3.do("GET", key))
		require.Equal(t, "$-1\r\n", c2.do("GET", key), "the RESP2 client is unchanged")
	}
	for _, b := range bs {
		lines := clientList(t, b.Addr)
		assert.Equal(t, 1, countResp(lines, 2), "%q", lines)
		assert.Equal(t, 1, countResp(lines, 3), "%q", lines)
	}
	st := s.Stats()
	for _, ss := range st.Servers {
		assert.Equal(t, int64(2), ss.ServerConnections, "%s", ss.Name)
		assert.Equal(t, int64(3), ss.Requests, "%s: two requests of the RESP2 client, one of the RESP3 client", ss.Name)
		assert.Zero(t, ss.InitErrors)
	}

	// A Reload without the second server closes both its pools; the
	// first keeps its RESP3 connection.
	keep := s.Ring().PickString(k[0])
	kept := connIDs(clientList(t, bs[keep].Addr))
	cfg := s.Config()
	var gone backend
	for i, b := range bs {
		if i != keep {
			gone = b
		}
	}
	cfg.Servers = []shard.Server{bs[keep].entry}
	require.NoError(t, s.Reload(cfg))
	require.Eventually(t, func() bool { return len(clientList(t, gone.Addr)) == 0 },
		5*time.Second, 10*time.Millisecond, "the removed server's connections are closed")
	require.Equal(t, "_\r\n", c3.do("GET", k[1]), "now on the kept server")
	assert.Subset(t, connIDs(clientList(t, bs[keep].Addr)), kept, "the kept server's connections are the same")
}

// connIDs returns the id and protocol of each connection of a CLIENT LIST.
func connIDs(lines []string) []string {
	field := regexp.MustCompile(`\b(id|resp)=[0-9]+\b`)
	var out []string
	for _, l := range lines {
		out = append(out, strings.Join(field.FindAllString(l, -1), " "))
	}
	return out
}

// TestRESP3WithAuth checks HELLO 3 with AUTH against a pool with a
// password, whose backends require it: the RESP3 connections send AUTH
// before HELLO 3, and a failed HELLO leaves the protocol unchanged.
func TestRESP3WithAuth(t *testing.T) {
	const secret = "s3cret"
	r := testserver.StartRedis(t, testserver.RedisOptions{Password: secret})
	_, addr := startProxy(t, protocol.Redis, nil, func(cfg *proxy.Config) {
		cfg.Servers = []shard.Server{{Addr: r.Addr, Weight: 1}}
		cfg.Auth = secret
	})
	c := rawDial(t, addr)
	assert.True(t, strings.HasPrefix(c.do("HELLO", "3"), "-NOAUTH HELLO must be called"))
	assert.True(t, strings.HasPrefix(c.do("HELLO", "3", "AUTH", "default", "wrong"), "-WRONGPASS"))
	assert.Equal(t, "-NOAUTH Authentication required\r\n", c.do("GET", "k"))
	assert.Equal(t, "+OK\r\n", c.do("AUTH", secret))
	assert.Equal(t, "$-1\r\n", c.do("GET", "k"), "still RESP2")
	hello := c.do("HELLO", "3", "AUTH", "default", secret, "SETNAME", "app")
	assert.Equal(t, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:3\r\n"+
		"$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n", hello)
	assert.Equal(t, "_\r\n", c.do("GET", "k"))
	assert.Equal(t, ":1\r\n", c.do("HSET", "h", "f", "v"))
	assert.Equal(t, "%1\r\n$1\r\nf\r\n$1\r\nv\r\n", c.do("HGETALL", "h"))
	assert.Equal(t, "$3\r\napp\r\n", c.do("CLIENT", "GETNAME"))
	lines := clientList(t, r.Addr, secret)
	assert.Equal(t, 1, countResp(lines, 3), "%q", lines)
}

// TestRESP3InProcessClientRefuses checks that the in-process Client keeps
// answering HELLO 3 with NOPROTO (its sessions are shared by callers).
func TestRESP3InProcessClientRefuses(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	c := newInProcess(t, protocol.Redis, bs, nil)
	ctx := context.Background()
	v, err := c.Command(ctx, "HELLO", "3")
	require.NoError(t, err)
	assert.Equal(t, "NOPROTO unsupported protocol version", string(v.Str))
	v, err = c.Command(ctx, "HELLO", "2")
	require.NoError(t, err)
	assert.Len(t, v.Elems, 14)
	v, err = c.Command(ctx, "GET", "missing")
	require.NoError(t, err)
	assert.True(t, v.Null)
	assert.Equal(t, byte('$'), v.Type)
}

// TestRESP3GoRedis runs go-redis v9, which speaks RESP3 when the server
// accepts HELLO 3, through walnut, with replies whose RESP3 types differ
// from RESP2's, over split commands.
func TestRESP3GoRedis(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 3})
	defer rdb.Close()
	keys := keysOnDistinctServers(t, s, 3)
	require.NoError(t, rdb.MSet(ctx, keys[0], "a", keys[1], "b").Err())
	vals, err := rdb.MGet(ctx, keys[0], keys[1], keys[2]).Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"a", "b", nil}, vals)
	require.NoError(t, rdb.HSet(ctx, "h", "f", "v").Err())
	m, err := rdb.HGetAll(ctx, "h").Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"f": "v"}, m)
	require.NoError(t, rdb.ZAdd(ctx, "z", redis.Z{Score: 1.5, Member: "m"}).Err())
	zs, err := rdb.ZRangeWithScores(ctx, "z", 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []redis.Z{{Score: 1.5, Member: "m"}}, zs)
	n, err := rdb.Del(ctx, keys[0], keys[1], keys[2], "h").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	_, err = rdb.Get(ctx, keys[0]).Result()
	assert.ErrorIs(t, err, redis.Nil)
	// The connections go-redis used are RESP3 ones.
	resp3 := 0
	for _, b := range bs {
		resp3 += countResp(clientList(t, b.Addr), 3)
	}
	assert.Positive(t, resp3)
}

// TestRESP3SplitCommandErrors checks the merge of split commands when one
// server answers with an error, in RESP3: the error is the reply, as that
// server gives it to a RESP3 client directly, and the reads still merge.
func TestRESP3SplitCommandErrors(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	// A replica of nothing refuses writes with -READONLY.
	ro := testserver.StartRedis(t, testserver.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", "1"}})
	bs = append(bs, backend{Server: ro, entry: shard.Server{Addr: ro.Addr, Weight: 1, Name: "ro"}})
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	k := keysOnDistinctServers(t, s, 2)
	if s.Ring().ID(s.Ring().PickString(k[0])) == "ro" {
		k[0], k[1] = k[1], k[0] // k[0] on the writable server, k[1] on ro
	}

	direct := rawDial(t, ro.Addr)
	require.True(t, strings.HasPrefix(direct.do("HELLO", "3"), "%7\r\n"))
	want := direct.do("MSET", "x", "1")
	require.True(t, strings.HasPrefix(want, "-READONLY "), want)

	c := rawDial(t, addr)
	require.True(t, strings.HasPrefix(c.do("HELLO", "3"), "%7\r\n"))
	assert.Equal(t, want, c.do("MSET", k[0], "1", k[1], "2"))
	assert.Equal(t, "*3\r\n$1\r\n1\r\n_\r\n_\r\n", c.do("MGET", k[0], k[1], "missing"+k[0]),
		"the writable server's part of the MSET was applied, as when split by twemproxy")
	assert.Equal(t, ":1\r\n", c.do("EXISTS", k[0], k[1]))
	assert.Equal(t, want, c.do("DEL", k[0], k[1]))
	assert.Equal(t, ":0\r\n", c.do("EXISTS", k[0], k[1]), "the writable server's part of the DEL was applied")
}

// TestRESP3RoundTripAllocs checks that a RESP3 client's requests, once its
// RESP3 connections are made, allocate no more than a RESP2 client's (see
// TestRoundTripAllocs).
func TestRESP3RoundTripAllocs(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	require.True(t, strings.HasPrefix(c.do("HELLO", "3"), "%7\r\n"))
	require.Equal(t, "+OK\r\n", c.do("SET", "k", "v"))
	require.Equal(t, ":1\r\n", c.do("HSET", "h", "f", "v"))
	for name, req := range map[string][]string{
		"GET":               {"GET", "k"},
		"MGET over servers": {"MGET", "k1", "k2", "k3", "k4", "k"},
		"HGETALL (a map)":   {"HGETALL", "h"},
	} {
		raw := resp.AppendCommandString(nil, req...)
		f := func() {
			_, err := c.nc.Write(raw)
			require.NoError(t, err)
			_, err = c.rd.ReadRawReply()
			require.NoError(t, err)
		}
		for range 100 {
			f() // warm up
		}
		allocs := testing.AllocsPerRun(500, f)
		t.Logf("%s: %.2f allocations per round trip", name, allocs)
		require.Less(t, allocs, 0.5, name)
	}
}

// TestRESP3EjectAndReinstate checks that failures on RESP3 connections eject
// the server, as failures on RESP2 ones do, and that it comes back when the
// RESP3 pool's probe succeeds, though no RESP2 client ever used it.
func TestRESP3EjectAndReinstate(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) {
		c.Ring.Distribution = shard.Modula
		c.Backend.Timeout = 200 * time.Millisecond
		c.Backend.AutoEject = true
		c.Backend.FailureLimit = 1
		c.Backend.RetryTimeout = 100 * time.Millisecond
	})
	keys := keysOnDistinctServers(t, s, 2)
	victim := s.Ring().PickString(keys[0])
	var pid int
	for _, b := range bs {
		if b.Addr == s.Ring().Server(victim).Addr {
			pid = b.PID
		}
	}
	c := rawDial(t, addr)
	require.True(t, strings.HasPrefix(c.do("HELLO", "3"), "%7\r\n"))
	require.Equal(t, "_\r\n", c.do("GET", keys[0]))
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	assert.Equal(t, "-ERR Connection timed out\r\n", c.do("GET", keys[0]))
	require.Eventually(t, func() bool { return !s.Live(victim) }, 5*time.Second, 10*time.Millisecond)
	assert.NotEqual(t, victim, s.Ring().PickString(keys[0]))
	assert.Equal(t, "_\r\n", c.do("GET", keys[0]), "served by the other server meanwhile")
	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	require.Eventually(t, func() bool { return s.Live(victim) }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, victim, s.Ring().PickString(keys[0]))
	assert.Equal(t, "_\r\n", c.do("GET", keys[0]))
	st := s.Stats()
	assert.Equal(t, int64(1), st.ServerEjects)
	assert.Zero(t, st.Servers[victim].InitErrors)
}
