package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// rawRedis is a raw client: it writes bytes and reads whole replies.
type rawRedis struct {
	t  *testing.T
	nc net.Conn
	rd *resp.Reader
}

func rawDial(t *testing.T, addr string) *rawRedis {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawRedis{t: t, nc: nc, rd: resp.NewReader(nc, protocol.Limits{})}
}

func (c *rawRedis) send(cmds ...[]string) {
	var b []byte
	for _, cmd := range cmds {
		b = resp.AppendCommandString(b, cmd...)
	}
	_, err := c.nc.Write(b)
	require.NoError(c.t, err)
}

func (c *rawRedis) reply() string {
	b, err := c.rd.ReadRawReply()
	require.NoError(c.t, err)
	return string(b)
}

// do sends one command and returns its raw reply.
func (c *rawRedis) do(args ...string) string {
	c.send(args)
	return c.reply()
}

// closed reports whether the server closed the connection (after any
// bytes still to come).
func (c *rawRedis) closed() bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.rd.ReadRawReply()
	return err == io.EOF || err == io.ErrUnexpectedEOF
}

func cmd(args ...string) []string { return args }

func TestRedisPipelineOrder(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 4)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	const n = 3000
	var cmds [][]string
	for i := range n {
		cmds = append(cmds, cmd("SET", fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)))
	}
	for i := range n {
		cmds = append(cmds, cmd("GET", fmt.Sprintf("k%d", i)))
	}
	c.send(cmds...)
	for range n {
		require.Equal(t, "+OK\r\n", c.reply())
	}
	for i := range n {
		v := fmt.Sprintf("v%d", i)
		require.Equal(t, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v), c.reply(), "reply %d", i)
	}
}

func TestRedisFragmentation(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	// Find keys on three different servers.
	keys := keysOnDistinctServers(t, s, 3)
	k1, k2, k3 := keys[0], keys[1], keys[2]
	for _, k := range keys {
		require.Equal(t, "+OK\r\n", c.do("SET", k, "v"+k))
	}
	bulk := func(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
	tests := []struct {
		give []string
		want string
	}{
		{cmd("MGET", k1, k2, "nokey", k3, k1), "*5\r\n" + bulk("v"+k1) + bulk("v"+k2) + "$-1\r\n" + bulk("v"+k3) + bulk("v"+k1)},
		{cmd("mget", k3), "*1\r\n" + bulk("v"+k3)},
		{cmd("EXISTS", k1, k2, k3, "nokey", k1), ":4\r\n"},
		{cmd("TOUCH", k1, k2, "nokey"), ":2\r\n"},
		{cmd("MSET", k1, "a", k2, "b", k3, "c", k1, "d"), "+OK\r\n"},
		{cmd("MGET", k1, k2, k3), "*3\r\n" + bulk("d") + bulk("b") + bulk("c")},
		{cmd("DEL", k1, k2, k3, "nokey"), ":3\r\n"},
		{cmd("UNLINK", k1, k2), ":0\r\n"},
		{cmd("MSET", k1), "-ERR wrong number of arguments for 'mset' command\r\n"},
		{cmd("MSET", k1, "a", k2), "-ERR wrong number of arguments for 'mset' command\r\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			assert.Equal(t, tt.want, c.do(tt.give...))
		})
	}
	// The fragments were counted.
	assert.Positive(t, s.Stats().Fragments)
}

// keysOnDistinctServers returns n keys that the proxy's ring puts on n
// different servers.
func keysOnDistinctServers(t *testing.T, s *proxy.Server, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var keys []string
	for i := 0; len(keys) < n && i < 10000; i++ {
		k := fmt.Sprintf("key%d", i)
		if srv := s.Ring().PickString(k); !seen[srv] {
			seen[srv] = true
			keys = append(keys, k)
		}
	}
	require.Len(t, keys, n)
	return keys
}

func TestRedisAuth(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	_, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Auth = "s3cret" })
	c := rawDial(t, addr)
	// Nothing works before AUTH, not even pipelined or multi-key commands.
	c.send(cmd("PING"), cmd("SET", "a", "1"), cmd("MGET", "a", "b", "c"), cmd("DEL", "a", "b"))
	for range 4 {
		assert.Equal(t, "-NOAUTH Authentication required\r\n", c.reply())
	}
	assert.Equal(t, "-ERR invalid password\r\n", c.do("AUTH", "wrong"))
	assert.Equal(t, "+OK\r\n", c.do("AUTH", "s3cret"))
	assert.Equal(t, "+OK\r\n", c.do("SET", "a", "1"))
	assert.Equal(t, "$1\r\n1\r\n", c.do("GET", "a"))
	// A wrong password de-authenticates, as in twemproxy.
	assert.Equal(t, "-ERR invalid password\r\n", c.do("AUTH", "nope"))
	assert.Equal(t, "-NOAUTH Authentication required\r\n", c.do("GET", "a"))
	assert.Equal(t, "+OK\r\n", c.do("AUTH", "default", "s3cret"))
	assert.Equal(t, "$1\r\n1\r\n", c.do("GET", "a"))
	assert.Equal(t, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", c.do("AUTH", "bob", "s3cret"))

	// A pool without a password answers AUTH as twemproxy does.
	bs2 := startBackends(t, protocol.Redis, 1)
	_, addr2 := startProxy(t, protocol.Redis, bs2, nil)
	c2 := rawDial(t, addr2)
	assert.Equal(t, "-ERR Client sent AUTH, but no password is set\r\n", c2.do("AUTH", "x"))
}

func TestRedisLocalAndUnsupported(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	tests := []struct {
		give []string
		want string
	}{
		{cmd("PING"), "+PONG\r\n"},
		{cmd("ping", "hello"), "$5\r\nhello\r\n"},
		{cmd("ECHO", "hi"), "$2\r\nhi\r\n"},
		{cmd("SELECT", "0"), "+OK\r\n"},
		{cmd("NOSUCHCOMMAND", "x"), "-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' \r\n"},
		{cmd("GET"), "-ERR wrong number of arguments for 'get' command\r\n"},
		{cmd("CLIENT", "SETNAME", "me"), "+OK\r\n"},
		{cmd("CLIENT", "GETNAME"), "$2\r\nme\r\n"},
		{cmd("HELLO", "4"), "-NOPROTO unsupported protocol version\r\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			assert.Equal(t, tt.want, c.do(tt.give...))
		})
	}
	// Refused commands name themselves and keep the connection open.
	for _, give := range [][]string{cmd("CONFIG", "GET", "x"), cmd("SELECT", "1"), cmd("SLOWLOG", "GET"), cmd("WAIT", "0", "0")} {
		r := c.do(give...)
		assert.True(t, strings.HasPrefix(r, "-"), "%v: %q", give, r)
		assert.Contains(t, strings.ToUpper(r), give[0], "the error names the command")
		assert.Equal(t, "+PONG\r\n", c.do("PING"))
	}
	// Keys of a first-key command on different servers are refused.
	r := c.do("SUNION", "a", "b", "c", "d", "e", "f")
	assert.True(t, strings.HasPrefix(r, "-CROSSSLOT") || strings.HasPrefix(r, "*"), r)
	assert.True(t, strings.HasPrefix(c.do("SUNION", "{t}a", "{t}b"), "*"))
	// Inline commands work.
	_, err := c.nc.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", c.reply())
	// QUIT answers +OK and closes after earlier replies.
	c.send(cmd("SET", "q", "1"), cmd("QUIT"), cmd("GET", "q"))
	assert.Equal(t, "+OK\r\n", c.reply())
	assert.Equal(t, "+OK\r\n", c.reply())
	assert.True(t, c.closed())
}

func TestRedisMalformedFraming(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	for _, give := range []string{"*1\r\n$x\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n", "*2\r\n$3\r\nGET\r\n$abc\r\n"} {
		t.Run(fmt.Sprintf("%q", give), func(t *testing.T) {
			c := rawDial(t, addr)
			c.send(cmd("SET", "a", "1"))
			_, err := c.nc.Write([]byte(give))
			require.NoError(t, err)
			assert.Equal(t, "+OK\r\n", c.reply())
			r := c.reply()
			assert.True(t, strings.HasPrefix(r, "-ERR Protocol error"), r)
			assert.True(t, c.closed())
		})
	}
}

func TestMaxClients(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.MaxClients = 2 })
	c1, c2 := rawDial(t, addr), rawDial(t, addr)
	assert.Equal(t, "+PONG\r\n", c1.do("PING"))
	assert.Equal(t, "+PONG\r\n", c2.do("PING"))
	c3 := rawDial(t, addr)
	assert.Equal(t, "-ERR max number of clients reached (client_connections: 2)\r\n", c3.reply())
	assert.True(t, c3.closed())
	c1.nc.Close()
	require.Eventually(t, func() bool { return s.Stats().ClientConnections == 1 }, 5*time.Second, 10*time.Millisecond)
	c4 := rawDial(t, addr)
	assert.Equal(t, "+PONG\r\n", c4.do("PING"))
}

func TestRedisBackendFailures(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) {
		c.Ring.Distribution = 1 // modula
		c.Backend.AutoEject = true
		c.Backend.FailureLimit = 2
		c.Backend.RetryTimeout = time.Hour
	})
	c := rawDial(t, addr)
	keys := keysOnDistinctServers(t, s, 2)
	dead := s.Ring().PickString(keys[0])
	// Stop the backend that owns keys[0].
	for _, b := range bs {
		if b.Addr == s.Ring().Server(dead).Addr {
			b.Stop()
		}
	}
	// Until ejection: a clear error; the other server's keys work.
	assert.Equal(t, "+OK\r\n", c.do("SET", keys[1], "x"))
	r := c.do("GET", keys[0])
	assert.Contains(t, []string{"-ERR Connection refused\r\n", "-ERR unknown\r\n", "-ERR Connection reset by peer\r\n"}, r)
	// An MGET touching the dead server gets one error, and the connection
	// stays usable.
	r = c.do("MGET", keys[0], keys[1])
	assert.True(t, strings.HasPrefix(r, "-ERR "), r)
	assert.Equal(t, "+PONG\r\n", c.do("PING"))
	// After FailureLimit failures the server is ejected and keys[0] is
	// served by the other server.
	require.Eventually(t, func() bool {
		return c.do("SET", keys[0], "y") == "+OK\r\n"
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "$1\r\ny\r\n", c.do("GET", keys[0]))
	assert.NotEqual(t, dead, s.Ring().PickString(keys[0]))
	st := s.Stats()
	assert.Equal(t, int64(1), st.ServerEjects)
	assert.Positive(t, st.ForwardError)
}

func TestMemcacheFragmentation(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	s, addr := startProxy(t, protocol.Memcache, bs, nil)
	keys := keysOnDistinctServers(t, s, 3)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	rd := memcache.NewReader(nc, protocol.Limits{})
	do := func(req string, cmd memcache.Command) string {
		_, err := nc.Write([]byte(req))
		require.NoError(t, err)
		b, err := rd.ReadResponse(cmd)
		require.NoError(t, err)
		return string(b)
	}
	for i, k := range keys {
		require.Equal(t, "STORED\r\n", do(fmt.Sprintf("set %s %d 0 2\r\nv%d\r\n", k, i, i), memcache.Set))
	}
	k0, k1, k2 := keys[0], keys[1], keys[2]
	val := func(k string, i int) string { return fmt.Sprintf("VALUE %s %d 2\r\nv%d\r\n", k, i, i) }
	assert.Equal(t, val(k2, 2)+val(k0, 0)+val(k1, 1)+val(k0, 0)+"END\r\n",
		do(fmt.Sprintf("get %s nokey %s %s %s\r\n", k2, k0, k1, k0), memcache.Get))
	r := do(fmt.Sprintf("gets %s %s\r\n", k1, k2), memcache.Gets)
	assert.Regexp(t, fmt.Sprintf(`^VALUE %s 1 2 \d+\r\nv1\r\nVALUE %s 2 2 \d+\r\nv2\r\nEND\r\n$`, k1, k2), r)
	// noreply requests get no reply; the next reply is the get's.
	_, err = nc.Write([]byte(fmt.Sprintf("set %s 9 0 1 noreply\r\nx\r\ndelete %s noreply\r\nget %s %s\r\n", k0, k1, k0, k1)))
	require.NoError(t, err)
	b, err := rd.ReadResponse(memcache.Get)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("VALUE %s 9 1\r\nx\r\nEND\r\n", k0), string(b))
	// Unsupported commands get an error, and the connection stays open.
	assert.True(t, strings.HasPrefix(do("stats slabs\r\n", memcache.Stats), "CLIENT_ERROR stats slabs"))
	assert.True(t, strings.HasPrefix(do("mg "+k0+" v\r\n", memcache.MetaGet), "CLIENT_ERROR meta"))
	assert.Equal(t, "ERROR\r\n", do("bogus\r\n", memcache.Unknown))
	assert.Equal(t, "VERSION 1.6.18\r\n", do("version\r\n", memcache.Version))
	// A multi-get with a dead server: one SERVER_ERROR, connection usable.
	dead := s.Ring().PickString(k2)
	for _, bk := range bs {
		if bk.Addr == s.Ring().Server(dead).Addr {
			bk.Stop()
		}
	}
	assert.True(t, strings.HasPrefix(do(fmt.Sprintf("get %s %s\r\n", k0, k2), memcache.Get), "SERVER_ERROR "))
	assert.Equal(t, fmt.Sprintf("VALUE %s 9 1\r\nx\r\nEND\r\n", k0), do(fmt.Sprintf("get %s\r\n", k0), memcache.Get))
	// quit closes.
	_, err = nc.Write([]byte("quit\r\n"))
	require.NoError(t, err)
	n, err := nc.Read(make([]byte, 1))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF)
}

func TestShutdownDrains(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	var cmds [][]string
	for i := range 500 {
		cmds = append(cmds, cmd("SET", fmt.Sprintf("k%d", i), "v"))
	}
	c.send(cmds...)
	// Wait until the batch is being served, then shut down: every reply
	// of the batch still arrives.
	require.Equal(t, "+OK\r\n", c.reply())
	require.NoError(t, s.Shutdown(t.Context()))
	for range 499 {
		require.Equal(t, "+OK\r\n", c.reply())
	}
	assert.True(t, c.closed())
	_, err := net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err)
}

func TestRedisTimeout(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) {
		c.Backend.Timeout = 300 * time.Millisecond
	})
	c := rawDial(t, addr)
	keys := keysOnDistinctServers(t, s, 2)
	assert.Equal(t, "+OK\r\n", c.do("SET", keys[0], "a"))
	stopped := s.Ring().PickString(keys[0])
	for _, b := range bs {
		if b.Addr == s.Ring().Server(stopped).Addr {
			require.NoError(t, syscall.Kill(b.PID, syscall.SIGSTOP))
			t.Cleanup(func() { _ = syscall.Kill(b.PID, syscall.SIGCONT) })
			defer func() { _ = syscall.Kill(b.PID, syscall.SIGCONT) }()
		}
	}
	start := time.Now()
	c.send(cmd("GET", keys[0]), cmd("GET", keys[0]))
	assert.Equal(t, "-ERR Connection timed out\r\n", c.reply())
	assert.Equal(t, "-ERR Connection timed out\r\n", c.reply())
	assert.Less(t, time.Since(start), 3*time.Second)
	c2 := rawDial(t, addr)
	assert.Equal(t, "+OK\r\n", c2.do("SET", keys[1], "b"), "the other server is unaffected")
	st := s.Stats()
	assert.Equal(t, int64(1), st.Servers[stopped].ServerTimedOut)
}

func TestEmptyServerHostIsDown(t *testing.T) {
	// ":<port>:1" passes nutcracker's config check, and its requests fail
	// with "Host is down"; Go would otherwise dial the local machine.
	bs := startBackends(t, protocol.Redis, 1)
	_, port, err := net.SplitHostPort(bs[0].Addr)
	require.NoError(t, err)
	bs[0].entry.Addr = ":" + port
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	assert.Equal(t, "-ERR Host is down\r\n", c.do("GET", "k"))
}

func TestUnixListenKeepsLiveSocket(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	path := t.TempDir() + "/w.sock"
	cfg := proxy.Config{Name: "u", Network: "unix", Addr: path, Protocol: protocol.Redis, Servers: entries(bs), SocketPerm: 0o600}
	s1, err := proxy.New(cfg)
	require.NoError(t, err)
	l1, err := s1.Listen()
	require.NoError(t, err)
	go func() { _ = s1.Serve(l1) }()
	defer s1.Close()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	// A second server on the same path must not steal the live socket.
	s2, err := proxy.New(cfg)
	require.NoError(t, err)
	defer s2.Close()
	_, err = s2.Listen()
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	nc, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	buf := make([]byte, 7)
	_, err = io.ReadFull(nc, buf)
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", string(buf))
	// A stale socket file (nobody accepting) is replaced.
	require.NoError(t, s1.Close())
	l3, err := net.Listen("unix", path+".stale")
	require.NoError(t, err)
	l3.(*net.UnixListener).SetUnlinkOnClose(false)
	l3.Close()
	cfg.Addr = path + ".stale"
	s3, err := proxy.New(cfg)
	require.NoError(t, err)
	defer s3.Close()
	l4, err := s3.Listen()
	require.NoError(t, err)
	l4.Close()
}

func TestMemcacheNoreplyToStuckServerDoesNotBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("a stopped-backend fault run; run without -short")
	}
	bs := startBackends(t, protocol.Memcache, 2)
	s, addr := startProxy(t, protocol.Memcache, bs, func(c *proxy.Config) {
		c.Backend.Timeout = 300 * time.Millisecond
	})
	keys := keysOnDistinctServers(t, s, 2)
	stopped := s.Ring().PickString(keys[0])
	for _, b := range bs {
		if b.Addr == s.Ring().Server(stopped).Addr {
			require.NoError(t, syscall.Kill(b.PID, syscall.SIGSTOP))
			t.Cleanup(func() { _ = syscall.Kill(b.PID, syscall.SIGCONT) })
		}
	}
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	// 40 MB of noreply sets to the stopped server (more than its socket
	// buffers take), then a get from the healthy one.
	val := strings.Repeat("x", 500_000)
	var req strings.Builder
	for range 80 {
		fmt.Fprintf(&req, "set %s 0 0 %d noreply\r\n%s\r\n", keys[0], len(val), val)
	}
	fmt.Fprintf(&req, "get %s\r\n", keys[1])
	go func() { _, _ = nc.Write([]byte(req.String())) }()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rd := memcache.NewReader(nc, protocol.Limits{})
	b, err := rd.ReadResponse(memcache.Get)
	require.NoError(t, err, "the get is answered although the noreply sets are stuck")
	assert.Equal(t, "END\r\n", string(b))
}

func TestMemcacheEjectedServerIsReinstated(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 2)
	s, addr := startProxy(t, protocol.Memcache, bs, func(c *proxy.Config) {
		c.Ring.Distribution = 1 // modula
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
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	mc := dialMemcacheRaw(t, addr)
	assert.Equal(t, "SERVER_ERROR Connection timed out\r\n", mc(fmt.Sprintf("get %s\r\n", keys[0])))
	require.Eventually(t, func() bool { return !s.Ring().Live(victim) }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	// The probe ("version") must succeed and bring it back.
	require.Eventually(t, func() bool { return s.Ring().Live(victim) }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, victim, s.Ring().PickString(keys[0]))
}

// dialMemcacheRaw returns a function that sends one request and returns
// the raw reply line(s) up to the first CRLF-terminated line or END.
func dialMemcacheRaw(t *testing.T, addr string) func(string) string {
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	rd := memcache.NewReader(nc, protocol.Limits{})
	return func(req string) string {
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := nc.Write([]byte(req))
		require.NoError(t, err)
		b, err := rd.ReadResponse(memcache.Get)
		require.NoError(t, err)
		return string(b)
	}
}

// fakeMemcached answers every get with a value for each key, then END,
// except that a request including the key "bad" ends with a SERVER_ERROR
// after the values, as memcached does when it runs out of memory midway.
func fakeMemcached(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				rd := memcache.NewReader(nc, protocol.Limits{})
				for {
					var req memcache.Request
					if err := rd.ReadRequest(&req); err != nil {
						return
					}
					var out []byte
					bad := false
					for _, k := range req.Keys {
						if string(k) == "bad" {
							bad = true
							continue
						}
						out = memcache.AppendValue(out, k, 0, []byte("x"))
					}
					if bad {
						out = append(out, "SERVER_ERROR out of memory writing get response\r\n"...)
					} else if req.Command == memcache.Version {
						out = append(out[:0], "VERSION fake\r\n"...)
					} else {
						out = memcache.AppendEnd(out)
					}
					if _, err := nc.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestMemcacheSplitGetErrorAfterValues(t *testing.T) {
	a, b := fakeMemcached(t), fakeMemcached(t)
	cfg := proxy.Config{Name: "f", Protocol: protocol.Memcache, Servers: []shard.Server{{Addr: a}, {Addr: b}}}
	cfg.Ring.Distribution = shard.Modula
	s, err := proxy.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(l) }()
	defer s.Close()
	keys := keysOnDistinctServers(t, s, 2)
	// Find a key living with "bad".
	badSrv := s.Ring().PickString("bad")
	other, same := keys[0], keys[1]
	if s.Ring().PickString(other) == badSrv {
		other, same = keys[1], keys[0]
	}
	mc := dialMemcacheRaw(t, l.Addr().String())
	// The fragment for badSrv is "get <same> bad": a value, then the error.
	got := mc(fmt.Sprintf("get %s %s bad\r\n", other, same))
	assert.Equal(t, "SERVER_ERROR out of memory writing get response\r\n", got,
		"an error after values must not turn into a clean END")
	assert.Equal(t, fmt.Sprintf("VALUE %s 0 1\r\nx\r\nEND\r\n", other), mc(fmt.Sprintf("get %s\r\n", other)))
}

func TestShutdownAnswersRequestsInTransit(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	require.Equal(t, "+PONG\r\n", c.do("PING"))
	require.NoError(t, syscall.Kill(bs[0].PID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(bs[0].PID, syscall.SIGCONT) })
	// SET a waits at the stopped backend; SET b is sent meanwhile, so it
	// is still in the socket when Shutdown begins.
	c.send(cmd("SET", "a", "1"))
	time.Sleep(200 * time.Millisecond)
	c.send(cmd("SET", "b", "2"))
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, syscall.Kill(bs[0].PID, syscall.SIGCONT))
	assert.Equal(t, "+OK\r\n", c.reply())
	assert.Equal(t, "+OK\r\n", c.reply())
	assert.True(t, c.closed(), "closed cleanly (EOF, not reset)")
	require.NoError(t, <-done)
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestIdleClientKeepsLittleMemory(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	val := strings.Repeat("v", 200_000)
	require.Equal(t, "+OK\r\n", c.do("SET", "big", val))
	before := heapInuse()
	// One batch of 300 GETs of a 200 kB value: 60 MB of replies.
	_, err := c.nc.Write([]byte(strings.Repeat("GET big\r\n", 300)))
	require.NoError(t, err)
	for range 300 {
		b, err := c.rd.ReadRawReply()
		require.NoError(t, err)
		require.Len(t, b, len(val)+len("$200000\r\n\r\n"))
	}
	after := heapInuse()
	t.Logf("heap in use before %d MB, idle after the batch %d MB", before>>20, after>>20)
	assert.Less(t, int64(after)-int64(before), int64(16<<20), "an idle client must not keep its batch's buffers")
}

func TestListenIPv6(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	bs := startBackends(t, protocol.Redis, 1)
	// nutcracker's unbracketed form, split at the last colon.
	f, err := config.Parse("v6.yml", []byte(fmt.Sprintf("v6:\n  listen: ::1:%d\n  redis: true\n  servers:\n   - %s:1\n", port, bs[0].Addr)))
	require.NoError(t, err)
	s, err := proxy.New(proxy.FromPool(f.Pools[0], nil))
	require.NoError(t, err)
	l, err := s.Listen()
	require.NoError(t, err)
	go func() { _ = s.Serve(l) }()
	defer s.Close()
	c := rawDial(t, fmt.Sprintf("[::1]:%d", port))
	assert.Equal(t, "+OK\r\n", c.do("SET", "v6", "1"))
	assert.Equal(t, "$1\r\n1\r\n", c.do("GET", "v6"))
}

func TestRedisDBWithAuthLikeNutcracker(t *testing.T) {
	// nutcracker sends SELECT before AUTH: against a server that requires
	// the password, SELECT fails and keys land in database 0. walnut does
	// the same so that it finds what nutcracker wrote.
	locked := testserver.StartRedis(t, testserver.RedisOptions{Password: "pw"})
	open := testserver.StartRedis(t, testserver.RedisOptions{})
	for _, tt := range []struct {
		name   string
		server *testserver.Server
		auth   string
		wantDB string
	}{
		{"password required", locked, "pw", "0"},
		{"no password", open, "", "3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bs := []backend{{Server: tt.server, entry: shard.Server{Addr: tt.server.Addr}}}
			_, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.DB = 3; c.Auth = tt.auth })
			c := rawDial(t, addr)
			if tt.auth != "" {
				require.Equal(t, "+OK\r\n", c.do("AUTH", tt.auth))
			}
			require.Equal(t, "+OK\r\n", c.do("SET", "dbkey", "x"))
			d := rawDial(t, tt.server.Addr)
			if tt.auth != "" {
				require.Equal(t, "+OK\r\n", d.do("AUTH", tt.auth))
			}
			require.Equal(t, "+OK\r\n", d.do("SELECT", tt.wantDB))
			assert.Equal(t, "$1\r\nx\r\n", d.do("GET", "dbkey"), "the key is in database %s", tt.wantDB)
		})
	}
}

func TestReusePort(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	port := testserver.FreePort(t, "127.0.0.1")
	cfg := proxy.Config{Name: "rp", Addr: fmt.Sprintf("127.0.0.1:%d", port), Protocol: protocol.Redis, Servers: entries(bs), ReusePort: true}
	var servers []*proxy.Server
	for range 2 {
		s, err := proxy.New(cfg)
		require.NoError(t, err)
		l, err := s.Listen()
		require.NoError(t, err, "a second listener on the same port with reuseport")
		go func() { _ = s.Serve(l) }()
		servers = append(servers, s)
	}
	c := rawDial(t, cfg.Addr)
	assert.Equal(t, "+PONG\r\n", c.do("PING"))
	for _, s := range servers {
		require.NoError(t, s.Close())
	}
	// Without reuseport the second bind fails.
	cfg.ReusePort = false
	s1, err := proxy.New(cfg)
	require.NoError(t, err)
	l1, err := s1.Listen()
	require.NoError(t, err)
	defer l1.Close()
	defer s1.Close()
	s2, err := proxy.New(cfg)
	require.NoError(t, err)
	defer s2.Close()
	_, err = s2.Listen()
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
}
