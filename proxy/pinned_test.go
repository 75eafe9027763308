package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
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

// A pinStep is one step of a differential script: client c sends args and
// reads the reply, or with send only sends them (the reply is read by a
// later step with args nil), or with blocked waits until the servers have
// that many clients blocked.
type pinStep struct {
	c       int
	args    []string
	send    bool
	blocked int
	close   bool // close client c
}

func st(c int, args ...string) pinStep     { return pinStep{c: c, args: args} }
func stSend(c int, args ...string) pinStep { return pinStep{c: c, args: args, send: true} }
func stRead(c int) pinStep                 { return pinStep{c: c} }
func stBlocked(n int) pinStep              { return pinStep{c: -1, blocked: n} }

// runPinScript runs steps against addr with fresh clients and returns each
// reply, in step order. servers are the redis-servers behind addr (addr
// itself when it is a redis-server), for the blocked steps.
func runPinScript(t *testing.T, addr string, servers []string, steps []pinStep) []string {
	t.Helper()
	clients := map[int]*rawRedis{}
	client := func(i int) *rawRedis {
		if clients[i] == nil {
			clients[i] = rawDial(t, addr)
		}
		return clients[i]
	}
	var out []string
	for _, s := range steps {
		switch {
		case s.close:
			client(s.c).nc.Close()
		case s.c < 0:
			waitBlocked(t, servers, s.blocked)
		case s.args == nil:
			out = append(out, client(s.c).reply())
		case s.send:
			client(s.c).send(s.args)
		default:
			out = append(out, client(s.c).do(s.args...))
		}
	}
	return out
}

// redisInfoInt returns field of INFO on the redis-server at addr, over a
// connection of its own (which connected_clients counts: it is taken off).
func redisInfoInt(t *testing.T, addr, field string) int {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = nc.Write(resp.AppendCommandString(nil, "INFO", "clients"))
	require.NoError(t, err)
	var v resp.Value
	require.NoError(t, resp.NewReader(bufio.NewReader(nc), protocol.Limits{}).ReadReply(&v))
	for line := range strings.SplitSeq(string(v.Str), "\r\n") {
		if s, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(s)
			require.NoError(t, err)
			if field == "connected_clients" {
				n--
			}
			return n
		}
	}
	t.Fatalf("no %s in INFO clients", field)
	return 0
}

// waitBlocked waits until the servers have n clients blocked in all.
func waitBlocked(t *testing.T, servers []string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		sum := 0
		for _, a := range servers {
			sum += redisInfoInt(t, a, "blocked_clients")
		}
		return sum == n
	}, 10*time.Second, 5*time.Millisecond, "%d blocked clients", n)
}

// connectedClients returns each server's connected_clients.
func connectedClients(t *testing.T, servers []string) []int {
	out := make([]int, len(servers))
	for i, a := range servers {
		out[i] = redisInfoInt(t, a, "connected_clients")
	}
	return out
}

// pinRig is a proxy over three redis-servers and one redis-server to
// compare it with.
type pinRig struct {
	s       *proxy.Server
	addr    string
	direct  string
	servers []string
	bs      []backend
}

func newPinRig(t *testing.T, mutate func(*proxy.Config)) *pinRig {
	t.Helper()
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, mutate)
	d := testserver.StartRedis(t, testserver.RedisOptions{})
	r := &pinRig{s: s, addr: addr, direct: d.Addr, bs: bs}
	for _, b := range bs {
		r.servers = append(r.servers, b.Addr)
	}
	return r
}

// tagsOnDistinctServers returns n hash tags ("{x}") whose keys the proxy
// puts on n different servers.
func tagsOnDistinctServers(t *testing.T, s *proxy.Server, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var tags []string
	for i := 0; len(tags) < n && i < 10000; i++ {
		tag := fmt.Sprintf("{t%d}", i)
		if srv := s.Ring().PickString(tag[1 : len(tag)-1]); !seen[srv] {
			seen[srv] = true
			tags = append(tags, tag)
		}
	}
	require.Len(t, tags, n)
	return tags
}

// base opens the shared server connections every path of the proxy
// uses (each event loop's, and the goroutine engine's, which a client
// that pinned uses from then on, in RESP2 and RESP3) and returns the servers'
// connected_clients then: what they come back to once nothing is pinned.
func (r *pinRig) base(t *testing.T) []int {
	t.Helper()
	tags := tagsOnDistinctServers(t, r.s, len(r.servers))
	for i := range 2 * (proxy.EngineLoopsForTest() + 1) {
		c := rawDial(t, r.addr)
		if i%2 == 1 {
			c.do("HELLO", "3") // and the RESP3 connections
		}
		for _, tag := range tags {
			c.do("GET", tag)
		}
		c.do("BLPOP", tags[0]+"warm", "0.01")
		for _, tag := range tags {
			c.do("GET", tag)
		}
		c.nc.Close()
	}
	require.Eventually(t, func() bool { return r.s.Stats().PinnedConnections == 0 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	return connectedClients(t, r.servers)
}

// compare runs steps against the proxy and the direct server and checks
// that every reply is the same.
func (r *pinRig) compare(t *testing.T, steps []pinStep) []string {
	t.Helper()
	want := runPinScript(t, r.direct, []string{r.direct}, steps)
	got := runPinScript(t, r.addr, r.servers, steps)
	require.Equal(t, want, got)
	return got
}

// settled checks that the proxy holds no pinned connection and the
// servers' connected_clients come back to base.
func (r *pinRig) settled(t *testing.T, base []int) {
	t.Helper()
	require.Eventually(t, func() bool { return r.s.Stats().PinnedConnections == 0 }, 5*time.Second, 5*time.Millisecond,
		"pinned connections: %d", r.s.Stats().PinnedConnections)
	require.Eventually(t, func() bool {
		got := connectedClients(t, r.servers)
		for i := range got {
			if got[i] > base[i] {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "connected_clients back to %v", base)
}

func TestTransactionsDifferential(t *testing.T) {
	r := newPinRig(t, nil)
	base := r.base(t)

	scripts := map[string][]pinStep{
		"multi exec": {st(0, "MULTI"), st(0, "SET", "{t}a", "1"), st(0, "INCR", "{t}a"), st(0, "GET", "{t}a"),
			st(0, "EXEC"), st(0, "GET", "{t}a")},
		"pipelined": {stSend(0, "MULTI"), stSend(0, "SET", "{t}a", "5"), stSend(0, "GET", "{t}a"), stSend(0, "EXEC"),
			stSend(0, "GET", "{t}a"), stRead(0), stRead(0), stRead(0), stRead(0), stRead(0)},
		"keyless first": {st(0, "MULTI"), st(0, "PING"), st(0, "ECHO", "hi"), st(0, "SET", "{t}a", "2"),
			st(0, "PING", "x"), st(0, "EXEC")},
		"keyless only": {st(0, "MULTI"), st(0, "PING"), st(0, "EXEC")},
		"empty":        {st(0, "MULTI"), st(0, "EXEC")},
		"discard": {st(0, "SET", "{t}b", "old"), st(0, "MULTI"), st(0, "SET", "{t}b", "new"), st(0, "DISCARD"),
			st(0, "GET", "{t}b")},
		"discard keyless":      {st(0, "MULTI"), st(0, "PING"), st(0, "DISCARD"), st(0, "PING")},
		"exec without multi":   {st(0, "EXEC"), st(0, "DISCARD"), st(0, "UNWATCH"), st(0, "PING")},
		"nested multi":         {st(0, "MULTI"), st(0, "MULTI"), st(0, "SET", "{t}a", "3"), st(0, "MULTI"), st(0, "EXEC")},
		"watch inside multi":   {st(0, "MULTI"), st(0, "WATCH", "{t}a"), st(0, "SET", "{t}a", "4"), st(0, "EXEC")},
		"unknown in multi":     {st(0, "MULTI"), st(0, "NOSUCH", "x"), st(0, "SET", "{t}a", "1"), st(0, "EXEC"), st(0, "GET", "{t}a")},
		"arity in multi":       {st(0, "MULTI"), st(0, "SET", "{t}a", "1"), st(0, "GET"), st(0, "EXEC")},
		"error at exec":        {st(0, "SET", "{t}s", "x"), st(0, "MULTI"), st(0, "INCR", "{t}s"), st(0, "SET", "{t}s", "y"), st(0, "EXEC"), st(0, "GET", "{t}s")},
		"blocking inside":      {st(0, "DEL", "{t}l"), st(0, "MULTI"), st(0, "BLPOP", "{t}l", "0"), st(0, "RPUSH", "{t}l", "v"), st(0, "BLPOP", "{t}l", "0"), st(0, "EXEC")},
		"unwatch inside":       {st(0, "MULTI"), st(0, "UNWATCH"), st(0, "SET", "{t}a", "6"), st(0, "EXEC")},
		"reset inside":         {st(0, "SET", "{t}a", "7"), st(0, "MULTI"), st(0, "SET", "{t}a", "8"), st(0, "RESET"), st(0, "GET", "{t}a"), st(0, "EXEC")},
		"multi key same tag":   {st(0, "MULTI"), st(0, "MSET", "{t}a", "1", "{t}b", "2"), st(0, "MGET", "{t}a", "{t}b"), st(0, "DEL", "{t}a", "{t}b"), st(0, "EXEC")},
		"watch unchanged":      {st(0, "SET", "{t}w", "1"), st(0, "WATCH", "{t}w"), st(0, "GET", "{t}w"), st(0, "MULTI"), st(0, "INCR", "{t}w"), st(0, "EXEC"), st(0, "GET", "{t}w")},
		"watch changed":        {st(0, "SET", "{t}w", "1"), st(0, "WATCH", "{t}w"), st(1, "SET", "{t}w", "2"), st(0, "MULTI"), st(0, "SET", "{t}w", "3"), st(0, "EXEC"), st(0, "GET", "{t}w")},
		"watch own change":     {st(0, "WATCH", "{t}w"), st(0, "SET", "{t}w", "9"), st(0, "MULTI"), st(0, "SET", "{t}w", "10"), st(0, "EXEC"), st(0, "GET", "{t}w")},
		"watch unwatch":        {st(0, "WATCH", "{t}w"), st(0, "UNWATCH"), st(1, "SET", "{t}w", "2"), st(0, "MULTI"), st(0, "SET", "{t}w", "3"), st(0, "EXEC"), st(0, "GET", "{t}w")},
		"watch exec no multi":  {st(0, "WATCH", "{t}w"), st(0, "EXEC"), st(0, "DISCARD"), st(1, "SET", "{t}w", "4"), st(0, "MULTI"), st(0, "SET", "{t}w", "5"), st(0, "EXEC"), st(0, "GET", "{t}w")},
		"watch then multi":     {st(0, "WATCH", "{t}w", "{t}a"), st(0, "WATCH", "{t}b"), st(0, "MULTI"), st(0, "PING"), st(0, "EXEC")},
		"quit inside":          {st(0, "MULTI"), st(0, "SET", "{t}a", "q"), st(0, "QUIT"), st(1, "GET", "{t}a")},
		"client closes inside": {st(0, "SET", "{t}a", "c"), st(0, "MULTI"), st(0, "SET", "{t}a", "d"), {c: 0, close: true}, st(1, "GET", "{t}a")},
	}
	for name, steps := range scripts {
		t.Run(name, func(t *testing.T) {
			r.compare(t, steps)
			r.settled(t, base)
		})
	}
}

// TestTransactionCrossServer checks what redis-server itself cannot show:
// keys of a transaction on different servers.
func TestTransactionCrossServer(t *testing.T) {
	r := newPinRig(t, nil)
	tags := tagsOnDistinctServers(t, r.s, 2)
	a, b := tags[0]+"a", tags[1]+"b"
	base := r.base(t)

	// A queued error on redis-server gives the EXECABORT walnut must give.
	direct := runPinScript(t, r.direct, nil, []pinStep{st(0, "MULTI"), st(0, "NOSUCH"), st(0, "EXEC")})
	execAbort := direct[2]
	require.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", execAbort)

	got := runPinScript(t, r.addr, r.servers, []pinStep{
		st(0, "SET", a, "before"), st(0, "SET", b, "before"),
		st(0, "MULTI"), st(0, "SET", a, "1"), st(0, "SET", b, "1"), st(0, "SET", a, "2"), st(0, "EXEC"),
		st(0, "GET", a), st(0, "GET", b),
	})
	assert.Equal(t, []string{"+OK\r\n", "+OK\r\n", "+OK\r\n", "+QUEUED\r\n"}, got[:4])
	assert.True(t, strings.HasPrefix(got[4], "-CROSSSLOT "), got[4])
	assert.Equal(t, "+QUEUED\r\n", got[5])
	assert.Equal(t, execAbort, got[6])
	assert.Equal(t, []string{"$6\r\nbefore\r\n", "$6\r\nbefore\r\n"}, got[7:], "nothing of the transaction ran")

	// One command with keys on two servers.
	got = runPinScript(t, r.addr, r.servers, []pinStep{st(0, "MULTI"), st(0, "MSET", a, "x", b, "y"), st(0, "EXEC")})
	assert.True(t, strings.HasPrefix(got[1], "-CROSSSLOT "), got[1])
	assert.Equal(t, execAbort, got[2])

	// WATCH on two servers: refused, and the client is not in a
	// transaction; a WATCH on another server than the first: refused.
	got = runPinScript(t, r.addr, r.servers, []pinStep{st(0, "WATCH", a, b), st(0, "EXEC"),
		st(0, "WATCH", a), st(0, "WATCH", b), st(0, "MULTI"), st(0, "SET", a, "w"), st(0, "EXEC"), st(0, "GET", a)})
	assert.True(t, strings.HasPrefix(got[0], "-CROSSSLOT "), got[0])
	assert.Equal(t, "-ERR EXEC without MULTI\r\n", got[1])
	assert.Equal(t, "+OK\r\n", got[2])
	assert.True(t, strings.HasPrefix(got[3], "-CROSSSLOT "), got[3])
	assert.Equal(t, []string{"+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n", "$1\r\nw\r\n"}, got[4:])

	// Between WATCH and MULTI, any key may be read.
	got = runPinScript(t, r.addr, r.servers, []pinStep{st(0, "WATCH", a), st(0, "GET", b), st(0, "MULTI"), st(0, "GET", a), st(0, "EXEC")})
	assert.Equal(t, []string{"+OK\r\n", "$6\r\nbefore\r\n", "+OK\r\n", "+QUEUED\r\n", "*1\r\n$1\r\nw\r\n"}, got)

	// Commands the proxy cannot queue on one server abort the transaction.
	for _, c := range [][]string{{"KEYS", "*"}, {"SELECT", "0"}, {"CONFIG", "GET", "x"}, {"SUBSCRIBE", "ch"}} {
		got = runPinScript(t, r.addr, r.servers, []pinStep{st(0, "MULTI"), st(0, "SET", a, "z"), st(0, c...), st(0, "EXEC"), st(0, "GET", a)})
		assert.True(t, strings.HasPrefix(got[2], "-ERR "), "%v: %q", c, got[2])
		assert.Equal(t, execAbort, got[3], "%v", c)
		assert.Equal(t, "$1\r\nw\r\n", got[4], "%v", c)
	}
	r.settled(t, base)
}

func TestBlockingDifferential(t *testing.T) {
	r := newPinRig(t, nil)
	base := r.base(t)
	reset := []pinStep{st(9, "DEL", "{t}a", "{t}b", "{t}z", "{t}s", "{t}g")}
	scripts := map[string][]pinStep{
		"blpop timeout":      {st(0, "BLPOP", "{t}a", "{t}b", "0.05")},
		"brpop ready":        {st(0, "RPUSH", "{t}b", "1", "2"), st(0, "BRPOP", "{t}a", "{t}b", "0"), st(0, "LRANGE", "{t}b", "0", "-1")},
		"blpop woken":        {stSend(0, "BLPOP", "{t}a", "0"), stBlocked(1), st(1, "RPUSH", "{t}a", "x"), stRead(0), st(0, "PING")},
		"brpop woken two":    {stSend(0, "BRPOP", "{t}a", "{t}b", "5"), stBlocked(1), stSend(1, "BRPOP", "{t}b", "5"), stBlocked(2), st(2, "RPUSH", "{t}b", "1", "2"), stRead(0), stRead(1)},
		"blmove":             {st(0, "BLMOVE", "{t}a", "{t}b", "LEFT", "RIGHT", "0.05"), st(0, "RPUSH", "{t}a", "m"), st(0, "BLMOVE", "{t}a", "{t}b", "LEFT", "RIGHT", "0"), st(0, "LRANGE", "{t}b", "0", "-1")},
		"brpoplpush":         {stSend(0, "BRPOPLPUSH", "{t}a", "{t}b", "0"), stBlocked(1), st(1, "LPUSH", "{t}a", "p"), stRead(0), st(0, "LRANGE", "{t}b", "0", "-1")},
		"blmpop":             {st(0, "BLMPOP", "0.05", "2", "{t}a", "{t}b", "LEFT"), st(0, "RPUSH", "{t}b", "1", "2", "3"), st(0, "BLMPOP", "0", "2", "{t}a", "{t}b", "RIGHT", "COUNT", "2")},
		"bzpopmin max":       {st(0, "BZPOPMIN", "{t}z", "0.05"), st(0, "ZADD", "{t}z", "1", "a", "2", "b", "3", "c"), st(0, "BZPOPMIN", "{t}z", "0"), st(0, "BZPOPMAX", "{t}z", "{t}a", "0")},
		"bzmpop":             {stSend(0, "BZMPOP", "1", "1", "{t}z", "MIN"), stBlocked(1), st(1, "ZADD", "{t}z", "5", "e"), stRead(0)},
		"xread block":        {st(0, "XREAD", "BLOCK", "50", "STREAMS", "{t}s", "$"), stSend(0, "XREAD", "BLOCK", "0", "STREAMS", "{t}s", "$"), stBlocked(1), st(1, "XADD", "{t}s", "1-1", "f", "v"), stRead(0)},
		"xread no block":     {st(0, "XADD", "{t}s", "1-1", "f", "v"), st(0, "XADD", "{t}s", "2-1", "f", "w"), st(0, "XREAD", "COUNT", "1", "STREAMS", "{t}s", "0"), st(0, "XREAD", "STREAMS", "{t}s", "{t}b", "1-1")},
		"xreadgroup block":   {st(0, "XGROUP", "CREATE", "{t}g", "grp", "$", "MKSTREAM"), st(0, "XREADGROUP", "GROUP", "grp", "c1", "BLOCK", "50", "STREAMS", "{t}g", ">"), stSend(0, "XREADGROUP", "GROUP", "grp", "c1", "COUNT", "1", "BLOCK", "0", "STREAMS", "{t}g", ">"), stBlocked(1), st(1, "XADD", "{t}g", "1-1", "k", "v"), stRead(0), st(0, "XREADGROUP", "GROUP", "grp", "c1", "NOACK", "STREAMS", "{t}g", "0")},
		"errors":             {st(0, "BLPOP", "{t}a"), st(0, "BLPOP", "{t}a", "x"), st(0, "BLMPOP", "0", "x", "{t}a", "LEFT"), st(0, "XREAD", "BLOCK", "10", "STREAMS", "{t}s"), st(0, "XREAD", "BLOCK", "10", "NOPE", "{t}s", "$"), st(0, "SET", "{t}a", "s"), st(0, "BLPOP", "{t}a", "0")},
		"pipelined":          {stSend(0, "RPUSH", "{t}a", "1"), stSend(0, "BLPOP", "{t}a", "0"), stSend(0, "BLPOP", "{t}a", "0.05"), stSend(0, "GET", "{t}b"), stRead(0), stRead(0), stRead(0), stRead(0)},
		"sent while blocked": {stSend(0, "BLPOP", "{t}a", "0"), stBlocked(1), stSend(0, "PING"), stSend(0, "GET", "{t}b"), st(1, "RPUSH", "{t}a", "v"), stRead(0), stRead(0), stRead(0)},
		"client closes":      {stSend(0, "BLPOP", "{t}a", "0"), stBlocked(1), {c: 0, close: true}, stBlocked(0), st(1, "RPUSH", "{t}a", "kept"), st(1, "LRANGE", "{t}a", "0", "-1")},
	}
	for name, steps := range scripts {
		t.Run(name, func(t *testing.T) {
			r.compare(t, append(reset, steps...))
			r.settled(t, base)
		})
	}

	// Keys on different servers.
	tags := tagsOnDistinctServers(t, r.s, 2)
	for _, c := range [][]string{{"BLPOP", tags[0] + "a", tags[1] + "b", "0"}, {"BLMOVE", tags[0], tags[1], "LEFT", "LEFT", "0"},
		{"XREAD", "BLOCK", "0", "STREAMS", tags[0], tags[1], "$", "$"}, {"XREAD", "STREAMS", tags[0], tags[1], "0", "0"}} {
		got := runPinScript(t, r.addr, r.servers, []pinStep{st(0, c...), st(0, "PING")})
		assert.True(t, strings.HasPrefix(got[0], "-CROSSSLOT "), "%v: %q", c, got[0])
		assert.Equal(t, "+PONG\r\n", got[1])
	}
	r.settled(t, base)
}

// TestPinnedRESP3 checks transactions and blocking commands of a RESP3
// client (HELLO 3, whose reply the proxy makes itself, is left out of the
// comparison).
func TestPinnedRESP3(t *testing.T) {
	r := newPinRig(t, nil)
	base := r.base(t)
	steps := []pinStep{st(0, "HELLO", "3"), st(0, "DEL", "{t}a", "{t}l"),
		st(0, "MULTI"), st(0, "SET", "{t}a", "1"), st(0, "GET", "{t}a"), st(0, "HGETALL", "{t}a"), st(0, "EXEC"),
		st(0, "BLPOP", "{t}l", "0.05"), st(0, "ZADD", "{t}z", "1.5", "m"), st(0, "BZPOPMIN", "{t}z", "0"),
		st(0, "WATCH", "{t}a"), st(1, "SET", "{t}a", "2"), st(0, "MULTI"), st(0, "GET", "{t}a"), st(0, "EXEC")}
	want := runPinScript(t, r.direct, []string{r.direct}, steps)
	got := runPinScript(t, r.addr, r.servers, steps)
	assert.Equal(t, want[1:], got[1:])
	assert.Equal(t, "_\r\n", got[7], "a RESP3 null")
	r.settled(t, base)
}

// TestTransactionWatchHello checks that a HELLO between WATCH and MULTI
// switches the protocol of EXEC's reply, as on redis-server (the HELLO
// replies, which the proxy makes itself, are left out of the comparison).
func TestTransactionWatchHello(t *testing.T) {
	r := newPinRig(t, nil)
	base := r.base(t)
	for _, protos := range [][2]string{{"2", "3"}, {"3", "2"}} {
		steps := []pinStep{st(0, "HELLO", protos[0]), st(0, "DEL", "{t}h"), st(0, "HSET", "{t}h", "f", "v"),
			st(0, "WATCH", "{t}h"), st(0, "HELLO", protos[1]), st(0, "MULTI"), st(0, "HGETALL", "{t}h"), st(0, "EXEC"),
			st(0, "WATCH", "{t}h"), st(1, "SET", "{t}h", "x"), st(0, "MULTI"), st(0, "GET", "{t}h"), st(0, "EXEC")}
		want := runPinScript(t, r.direct, []string{r.direct}, steps)
		got := runPinScript(t, r.addr, r.servers, steps)
		want[0], want[4], got[0], got[4] = "", "", "", ""
		assert.Equal(t, want, got, "HELLO %s, WATCH, HELLO %s", protos[0], protos[1])
	}
	r.settled(t, base)
}

// TestBlockingIgnoresTimeouts checks that the pool's timeout and
// client_timeout do not cut a blocking command short.
func TestBlockingIgnoresTimeouts(t *testing.T) {
	r := newPinRig(t, func(cfg *proxy.Config) {
		cfg.Backend.Timeout = 100 * time.Millisecond
		cfg.ClientTimeout = 100 * time.Millisecond
	})
	c := rawDial(t, r.addr)
	assert.Equal(t, "*-1\r\n", c.do("BLPOP", "{t}a", "0.4"))
	c.send(cmd("BLPOP", "{t}a", "0"))
	waitBlocked(t, r.servers, 1)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, ":1\r\n", rawDial(t, r.addr).do("RPUSH", "{t}a", "v"))
	assert.Equal(t, "*2\r\n$4\r\n{t}a\r\n$1\r\nv\r\n", c.reply())
	// An idle client is still closed by client_timeout afterwards.
	assert.True(t, c.closed())
}

// TestPinnedLimit checks max_pinned_connections: beyond it, an error
// reply; back under it, the commands work.
func TestPinnedLimit(t *testing.T) {
	r := newPinRig(t, func(cfg *proxy.Config) { cfg.MaxPinned = 2 })
	base := r.base(t)
	c1, c2, c3 := rawDial(t, r.addr), rawDial(t, r.addr), rawDial(t, r.addr)
	assert.Equal(t, "+OK\r\n", c1.do("MULTI"))
	c2.send(cmd("BLPOP", "{t}q", "0"))
	waitBlocked(t, r.servers, 1)
	assert.Equal(t, int64(2), r.s.Stats().PinnedConnections)
	for _, c := range [][]string{{"MULTI"}, {"WATCH", "{t}a"}, {"BLPOP", "{t}q", "0"}} {
		got := c3.do(c...)
		assert.True(t, strings.HasPrefix(got, "-ERR max pinned connections reached (2, max_pinned_connections)"), got)
	}
	assert.Equal(t, int64(3), r.s.Stats().PinnedRefused)
	// The refused client is not in a transaction.
	assert.Equal(t, "-ERR EXEC without MULTI\r\n", c3.do("EXEC"))
	assert.Equal(t, "+QUEUED\r\n", c1.do("SET", "{t}a", "1"))
	assert.Equal(t, "*1\r\n+OK\r\n", c1.do("EXEC"))
	assert.Equal(t, "+OK\r\n", c3.do("MULTI"))
	assert.Equal(t, "+QUEUED\r\n", c3.do("RPUSH", "{t}q", "v"))
	assert.Equal(t, "*1\r\n:1\r\n", c3.do("EXEC"))
	assert.Equal(t, "*2\r\n$4\r\n{t}q\r\n$1\r\nv\r\n", c2.reply())
	r.settled(t, base)
}

// TestPinnedClientTimeout checks that client_timeout closes a client idle
// inside a transaction, and its server connection with it.
func TestPinnedClientTimeout(t *testing.T) {
	r := newPinRig(t, func(cfg *proxy.Config) { cfg.ClientTimeout = 200 * time.Millisecond })
	base := r.base(t)
	c := rawDial(t, r.addr)
	assert.Equal(t, "+OK\r\n", c.do("WATCH", "{t}a"))
	assert.Equal(t, "+OK\r\n", c.do("MULTI"))
	assert.Equal(t, "+QUEUED\r\n", c.do("SET", "{t}a", "1"))
	assert.Equal(t, int64(1), r.s.Stats().PinnedConnections)
	assert.True(t, c.closed())
	r.settled(t, base)
	assert.Equal(t, "$-1\r\n", rawDial(t, r.addr).do("GET", "{t}a"), "the transaction did not run")
}

// TestPinnedServerKilled kills the server of a pinned connection in the
// middle of a transaction and of a BLPOP: the clients get clear errors,
// and the other clients, on the other servers, are not affected.
func TestPinnedServerKilled(t *testing.T) {
	for _, mode := range []string{"transaction", "blpop", "watch"} {
		t.Run(mode, func(t *testing.T) {
			r := newPinRig(t, nil)
			tags := tagsOnDistinctServers(t, r.s, 3)
			victimIdx := r.s.Ring().PickString(tags[0][1 : len(tags[0])-1])
			var victim backend
			for _, b := range r.bs {
				if r.s.Ring().Server(victimIdx).Addr == b.Addr {
					victim = b
				}
			}
			k := tags[0] + "k"
			others := []string{tags[1] + "o", tags[2] + "o"}

			// Other clients keep working throughout.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var otherErr []string
			var mu sync.Mutex
			for _, o := range others {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := rawDial(t, r.addr)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if got := c.do("SET", o, strconv.Itoa(i)); got != "+OK\r\n" {
							mu.Lock()
							otherErr = append(otherErr, got)
							mu.Unlock()
						}
						time.Sleep(time.Millisecond)
					}
				}()
			}

			c := rawDial(t, r.addr)
			switch mode {
			case "transaction":
				assert.Equal(t, "+OK\r\n", c.do("MULTI"))
				assert.Equal(t, "+QUEUED\r\n", c.do("SET", k, "1"))
			case "watch":
				assert.Equal(t, "+OK\r\n", c.do("WATCH", k))
			case "blpop":
				c.send(cmd("BLPOP", k, "0"))
				waitBlocked(t, []string{victim.Addr}, 1)
			}
			require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
			victim.Stop()
			switch mode {
			case "transaction":
				got := c.do("SET", k, "2")
				assert.True(t, strings.HasPrefix(got, "-ERR Connection "), got)
				assert.Contains(t, got, "(server ")
				assert.Contains(t, got, "the transaction is lost")
				assert.True(t, strings.HasPrefix(c.do("SET", k, "3"), "-ERR "))
				assert.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", c.do("EXEC"))
			case "watch":
				got := c.do("MULTI")
				assert.True(t, strings.HasPrefix(got, "-ERR Connection "), got)
				assert.Contains(t, got, "the transaction is lost")
				assert.True(t, strings.HasPrefix(c.do("SET", k, "2"), "-ERR "))
				assert.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", c.do("EXEC"))
			case "blpop":
				got := c.reply()
				assert.True(t, strings.HasPrefix(got, "-ERR Connection "), got)
				assert.Contains(t, got, "(server ")
			}
			// The client goes on, on the other servers.
			assert.Equal(t, "+OK\r\n", c.do("SET", others[0], "after"))
			assert.Equal(t, "+PONG\r\n", c.do("PING"))
			close(stop)
			wg.Wait()
			assert.Empty(t, otherErr, "the other clients were affected")
			require.Eventually(t, func() bool { return r.s.Stats().PinnedConnections == 0 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}

// TestPinnedClientResets checks that clients that send a pinned command
// and reset their connection at once do no harm: on an event loop, the
// reset may come before the loop hands the connection to a goroutine of
// its own, which then has no remote address.
func TestPinnedClientResets(t *testing.T) {
	r := newPinRig(t, nil)
	base := r.base(t)
	cmds := [][]string{{"MULTI"}, {"BLPOP", "{t}x", "0"}, {"SUBSCRIBE", "{t}x"}, {"WATCH", "{t}x"}}
	for i := range 300 {
		nc, err := net.Dial("tcp", r.addr)
		require.NoError(t, err)
		_, err = nc.Write(resp.AppendCommandString(nil, cmds[i%len(cmds)]...))
		require.NoError(t, err)
		require.NoError(t, nc.(*net.TCPConn).SetLinger(0))
		nc.Close()
	}
	assert.Equal(t, "+PONG\r\n", rawDial(t, r.addr).do("PING"))
	r.settled(t, base)
}

// TestPinnedShutdown checks that Shutdown ends a client blocked in a
// blocking command and one inside a transaction.
func TestPinnedShutdown(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	servers := []string{bs[0].Addr, bs[1].Addr}
	c1, c2 := rawDial(t, addr), rawDial(t, addr)
	c1.send(cmd("BLPOP", "{t}a", "0"))
	waitBlocked(t, servers, 1)
	assert.Equal(t, "+OK\r\n", c2.do("MULTI"))
	assert.Equal(t, "+QUEUED\r\n", c2.do("SET", "{t}a", "1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, s.Shutdown(ctx))
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.True(t, strings.HasPrefix(c1.reply(), "-ERR the proxy is shutting down"))
	assert.True(t, c1.closed())
	assert.True(t, c2.closed())
	waitBlocked(t, servers, 0)
}

// blockedFullClient starts a proxy over two servers and a client blocked
// in BLPOP … 0 that has then sent more than the proxy keeps for it while it
// waits (the proxy no longer reads it then).
func blockedFullClient(t *testing.T) (*proxy.Server, []string, *rawRedis) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	servers := []string{bs[0].Addr, bs[1].Addr}
	c := rawDial(t, addr)
	c.send(cmd("BLPOP", "{t}a", "0"))
	waitBlocked(t, servers, 1)
	c.send(cmd("SET", "{t}b", strings.Repeat("v", 80<<10)))
	time.Sleep(100 * time.Millisecond) // read up to the proxy's limit
	return s, servers, c
}

// TestPinnedShutdownFullClient checks that Shutdown also ends the wait of
// a blocking command whose client has sent more than the proxy keeps for
// it meanwhile (the proxy no longer reads that client then).
func TestPinnedShutdownFullClient(t *testing.T) {
	s, servers, _ := blockedFullClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, s.Shutdown(ctx))
	assert.Less(t, time.Since(start), 2*time.Second)
	waitBlocked(t, servers, 0)
}

// TestPinnedFullClientCloses checks that a client that closes its
// connection while its blocking command waits, after sending more than
// the proxy keeps for it meanwhile, gives back its server connection and
// its place under max_pinned_connections at once, not when the command
// returns (here never: BLPOP … 0).
func TestPinnedFullClientCloses(t *testing.T) {
	s, servers, c := blockedFullClient(t)
	require.Equal(t, int64(1), s.Stats().PinnedConnections)
	c.nc.Close()
	waitBlocked(t, servers, 0)
	require.Eventually(t, func() bool { return s.Stats().PinnedConnections == 0 }, 5*time.Second, 5*time.Millisecond)
}

// TestPinnedInProcessClient checks that the in-process Client, which has
// no connection of its own, refuses the pinned commands clearly.
func TestPinnedInProcessClient(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	c, err := proxy.NewClient(proxy.Config{Name: "inproc", Protocol: protocol.Redis, Servers: entries(bs)})
	require.NoError(t, err)
	defer c.Close()
	for _, args := range [][]string{{"MULTI"}, {"WATCH", "a"}, {"BLPOP", "a", "0"}, {"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}} {
		reply, err := c.Do(context.Background(), resp.AppendCommandString(nil, args...))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(reply), "-ERR "+args[0]+" is not supported by proxy.Client"), "%q", reply)
	}
	reply, err := c.Do(context.Background(), resp.AppendCommandString(nil, "XREAD", "STREAMS", "s", "0"))
	require.NoError(t, err)
	assert.Equal(t, "*-1\r\n", string(reply), "XREAD without BLOCK is routed")
}

// TestPinnedGoRedis runs go-redis's own transaction and blocking helpers
// through the proxy: an application written for one redis-server works
// unchanged when its transactions' keys share a hash tag.
func TestPinnedGoRedis(t *testing.T) {
	r := newPinRig(t, nil)
	base := r.base(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, PoolSize: 4})
	defer rdb.Close()

	// TxPipelined: MULTI … EXEC in one round trip.
	cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{u1}:name", "ann", 0)
		p.Incr(ctx, "{u1}:visits")
		p.Get(ctx, "{u1}:name")
		return nil
	})
	require.NoError(t, err)
	require.Len(t, cmds, 3)
	assert.Equal(t, "ann", cmds[2].(*redis.StringCmd).Val())

	// Watch: optimistic locking, retried when another client interferes.
	require.NoError(t, rdb.Set(ctx, "{u1}:balance", 100, 0).Err())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := rdb.Watch(ctx, func(tx *redis.Tx) error {
					n, err := tx.Get(ctx, "{u1}:balance").Int()
					if err != nil {
						return err
					}
					_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, "{u1}:balance", n-1, 0)
						return nil
					})
					return err
				}, "{u1}:balance")
				if err == redis.TxFailedErr {
					continue
				}
				assert.NoError(t, err)
				return
			}
		}()
	}
	wg.Wait()
	n, err := rdb.Get(ctx, "{u1}:balance").Int()
	require.NoError(t, err)
	assert.Equal(t, 92, n, "every decrement applied once")

	// A cross-server transaction fails as a whole.
	tags := tagsOnDistinctServers(t, r.s, 2)
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, tags[0]+"x", "1", 0)
		p.Set(ctx, tags[1]+"y", "1", 0)
		return nil
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "EXECABORT")
	assert.Equal(t, int64(0), rdb.Exists(ctx, tags[0]+"x", tags[1]+"y").Val())

	// BLPOP: a queue.
	got := make(chan []string, 1)
	go func() {
		v, err := rdb.BLPop(ctx, 5*time.Second, "{q}:jobs").Result()
		assert.NoError(t, err)
		got <- v
	}()
	waitBlocked(t, r.servers, 1)
	require.NoError(t, rdb.RPush(ctx, "{q}:jobs", "job1").Err())
	assert.Equal(t, []string{"{q}:jobs", "job1"}, <-got)
	_, err = rdb.BLPop(ctx, 50*time.Millisecond, "{q}:jobs").Result()
	assert.Equal(t, redis.Nil, err)
	rdb.Close()
	r.settled(t, base)
}

// TestPinnedReloadRemovesServer checks that a Reload that removes the
// server of a blocked client and of a transaction closes their
// connections: the clients get errors, and nothing waits for them.
func TestPinnedReloadRemovesServer(t *testing.T) {
	r := newPinRig(t, nil)
	tags := tagsOnDistinctServers(t, r.s, 3)
	gone := r.s.Ring().Server(r.s.Ring().PickString(tags[0][1 : len(tags[0])-1])).Addr
	c1, c2 := rawDial(t, r.addr), rawDial(t, r.addr)
	c1.send(cmd("BLPOP", tags[0]+"q", "0"))
	waitBlocked(t, []string{gone}, 1)
	assert.Equal(t, "+OK\r\n", c2.do("MULTI"))
	assert.Equal(t, "+QUEUED\r\n", c2.do("SET", tags[0]+"k", "1"))

	cfg := r.s.Config()
	var keep []shard.Server
	for _, e := range cfg.Servers {
		if e.Addr != gone {
			keep = append(keep, e)
		}
	}
	require.Len(t, keep, 2)
	cfg.Servers = keep
	require.NoError(t, r.s.Reload(cfg))
	got := c1.reply()
	assert.True(t, strings.HasPrefix(got, "-ERR Connection closed by the proxy"), got)
	// The key lives on another server now (CROSSSLOT), or the
	// transaction's connection is found closed: an error either way.
	got = c2.do("SET", tags[0]+"k", "2")
	assert.True(t, strings.HasPrefix(got, "-"), got)
	assert.Equal(t, "-EXECABORT Transaction discarded because of previous errors.\r\n", c2.do("EXEC"))
	waitBlocked(t, []string{gone}, 0)
	assert.Equal(t, "+OK\r\n", c1.do("SET", tags[0]+"k", "3"), "the key lives elsewhere now")
	require.Eventually(t, func() bool { return r.s.Stats().PinnedConnections == 0 }, 5*time.Second, 5*time.Millisecond)
}
