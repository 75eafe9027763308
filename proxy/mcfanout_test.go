package proxy_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// mcConn is a raw memcached connection whose replies are framed by
// memcache.Reader.
type mcConn struct {
	t  *testing.T
	nc net.Conn
	rd *memcache.Reader
}

func dialMc(t *testing.T, addr string) *mcConn {
	t.Helper()
	nc := dialRaw(t, addr)
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &mcConn{t: t, nc: nc, rd: memcache.NewReader(nc, protocol.Limits{})}
}

// do sends req, one request of command cmd, and returns its reply.
func (c *mcConn) do(cmd memcache.Command, req string) string {
	c.t.Helper()
	_, err := c.nc.Write([]byte(req))
	require.NoError(c.t, err)
	b, err := c.rd.ReadResponse(cmd)
	require.NoError(c.t, err, "reply to %.60q", req)
	return string(b)
}

// mcStats is the general stats of one server (or of walnut's merge): the
// names in order and their values.
type mcStats struct {
	names  []string
	values map[string]string
}

var statLine = regexp.MustCompile(`^STAT (\S+) (.*)$`)

func parseStats(t *testing.T, reply string) mcStats {
	t.Helper()
	require.True(t, strings.HasSuffix(reply, "END\r\n"), "%q", reply)
	st := mcStats{values: map[string]string{}}
	for _, line := range strings.Split(strings.TrimSuffix(reply, "END\r\n"), "\r\n") {
		if line == "" {
			continue
		}
		m := statLine.FindStringSubmatch(line)
		require.NotNil(t, m, "line %q", line)
		st.names = append(st.names, m[1])
		st.values[m[1]] = m[2]
	}
	return st
}

func (st mcStats) num(t *testing.T, name string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(st.values[name], 10, 64)
	require.NoError(t, err, "stat %s", name)
	return v
}

// ringOrder returns the backends in the ring's (server index) order.
func ringOrder(s *proxy.Server, bs []backend) []backend {
	out := make([]backend, len(bs))
	for i := range out {
		for _, b := range bs {
			if b.Addr == s.Ring().Server(i).Addr {
				out[i] = b
			}
		}
	}
	return out
}

// TestMemcacheFlushAll: flush_all, verbosity and their noreply forms reach
// every server of the pool, checked on each server directly.
func TestMemcacheFlushAll(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	s, addr := startProxy(t, protocol.Memcache, bs, nil)
	keys := keysOnDistinctServers(t, s, 3)
	c := dialMc(t, addr)
	direct := make([]*mcConn, len(bs))
	for i, b := range ringOrder(s, bs) {
		direct[i] = dialMc(t, b.Addr)
	}
	setAll := func() {
		for i, k := range keys {
			require.Equal(t, "STORED\r\n", c.do(memcache.Set, fmt.Sprintf("set %s 0 0 1\r\n%d\r\n", k, i)))
		}
		for i, k := range keys {
			require.Equal(t, fmt.Sprintf("VALUE %s 0 1\r\n%d\r\nEND\r\n", k, i), direct[s.Ring().PickString(k)].do(memcache.Get, "get "+k+"\r\n"))
		}
	}
	cmdFlush := func() []uint64 {
		var n []uint64
		for _, d := range direct {
			n = append(n, parseStats(t, d.do(memcache.Stats, "stats\r\n")).num(t, "cmd_flush"))
		}
		return n
	}
	allGone := func() {
		t.Helper()
		for _, k := range keys {
			assert.Equal(t, "END\r\n", direct[s.Ring().PickString(k)].do(memcache.Get, "get "+k+"\r\n"), k)
			assert.Equal(t, "END\r\n", c.do(memcache.Get, "get "+k+"\r\n"), k)
		}
	}

	setAll()
	assert.Equal(t, []uint64{0, 0, 0}, cmdFlush())
	assert.Equal(t, "OK\r\n", c.do(memcache.FlushAll, "flush_all\r\n"))
	allGone()
	assert.Equal(t, []uint64{1, 1, 1}, cmdFlush())

	// noreply: no reply, and every server flushed by the time the next
	// reply (from any server) arrives, as the requests are sent in order
	// on each server's connection.
	setAll()
	_, err := c.nc.Write([]byte("flush_all noreply\r\nflush_all 0 noreply\r\n"))
	require.NoError(t, err)
	for _, k := range keys {
		assert.Equal(t, "END\r\n", c.do(memcache.Get, "get "+k+"\r\n"), k)
	}
	assert.Equal(t, []uint64{3, 3, 3}, cmdFlush())
	allGone()

	// A delay reaches every server too: the items are still there now.
	setAll()
	assert.Equal(t, "OK\r\n", c.do(memcache.FlushAll, "flush_all 60\r\n"))
	assert.Equal(t, []uint64{4, 4, 4}, cmdFlush())
	for i, k := range keys {
		assert.Equal(t, fmt.Sprintf("VALUE %s 0 1\r\n%d\r\nEND\r\n", k, i), c.do(memcache.Get, "get "+k+"\r\n"))
	}
	// Cancel the delayed flush everywhere (a flush_all now supersedes it).
	assert.Equal(t, "OK\r\n", c.do(memcache.FlushAll, "flush_all\r\n"))

	// verbosity: OK from every server, noreply silent.
	assert.Equal(t, "OK\r\n", c.do(memcache.Verbosity, "verbosity 0\r\n"))
	_, err = c.nc.Write([]byte("verbosity 0 noreply\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "VERSION 1.6.18\r\n", c.do(memcache.Version, "version\r\n"))

	// Rejected arguments are answered by walnut as memcached answers them.
	assert.Equal(t, "CLIENT_ERROR invalid exptime argument\r\n", c.do(memcache.FlushAll, "flush_all x\r\n"))
}

// TestMemcacheFlushAllFailures: flush_all is OK only when every server
// says OK; otherwise the first failure in server order is the reply, and
// the connection stays usable.
func TestMemcacheFlushAllFailures(t *testing.T) {
	// One server refuses flush_all (memcached -F).
	mcs := []*testserver.Server{
		testserver.StartMemcached(t, testserver.MemcachedOptions{}),
		testserver.StartMemcached(t, testserver.MemcachedOptions{Args: []string{"-F"}}),
		testserver.StartMemcached(t, testserver.MemcachedOptions{}),
	}
	var bs []backend
	for _, m := range mcs {
		bs = append(bs, backend{Server: m, entry: shard.Server{Addr: m.Addr, Weight: 1}})
	}
	s, addr := startProxy(t, protocol.Memcache, bs, nil)
	c := dialMc(t, addr)
	direct := dialMc(t, mcs[1].Addr)
	require.Equal(t, "CLIENT_ERROR flush_all not allowed\r\n", direct.do(memcache.FlushAll, "flush_all\r\n"))
	assert.Equal(t, "CLIENT_ERROR flush_all not allowed\r\n", c.do(memcache.FlushAll, "flush_all\r\n"))
	assert.Equal(t, "VERSION 1.6.18\r\n", c.do(memcache.Version, "version\r\n"))
	// The servers that allow it were flushed all the same.
	for _, i := range []int{0, 2} {
		d := dialMc(t, mcs[i].Addr)
		assert.Equal(t, "1", parseStats(t, d.do(memcache.Stats, "stats\r\n")).values["cmd_flush"])
	}

	// A server that is down as well: its failure is the reply, naming it,
	// before any server's error line; stats (a read) fails the same way
	// without auto_eject_hosts, as the server is still in the ring.
	mcs[2].Stop()
	name := regexp.QuoteMeta(mcs[2].Addr)
	before := s.Stats().ForwardError
	assert.Regexp(t, `^SERVER_ERROR (Connection refused|unknown|Connection reset by peer) \(server `+name+`; the command was sent to every server\)\r\n$`,
		c.do(memcache.FlushAll, "flush_all\r\n"))
	assert.Regexp(t, `^SERVER_ERROR (Connection refused|unknown|Connection reset by peer) \(server `+name+`\)\r\n$`, c.do(memcache.Stats, "stats\r\n"))
	assert.Greater(t, s.Stats().ForwardError, before)
	assert.Equal(t, "VERSION 1.6.18\r\n", c.do(memcache.Version, "version\r\n"))
	// noreply to a pool with a dead server: nothing, the connection goes on.
	_, err := c.nc.Write([]byte("flush_all noreply\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "VERSION 1.6.18\r\n", c.do(memcache.Version, "version\r\n"))
}

// TestMemcacheFanOutEjected: with auto_eject_hosts, an ejected server
// fails flush_all (sent to every server, the others flushed), while stats
// merges the servers left in the ring.
func TestMemcacheFanOutEjected(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	s, addr := startProxy(t, protocol.Memcache, bs, func(c *proxy.Config) {
		c.Backend.AutoEject = true
		c.Backend.FailureLimit = 1
		c.Backend.RetryTimeout = time.Hour
	})
	order := ringOrder(s, bs)
	c := dialMc(t, addr)
	keys := make([]string, 3) // keys[i] lives on server i
	for _, k := range keysOnDistinctServers(t, s, 3) {
		keys[s.Ring().PickString(k)] = k
		require.Equal(t, "STORED\r\n", c.do(memcache.Set, "set "+k+" 0 0 1\r\nx\r\n"))
	}
	order[1].Stop()
	// The closed connection, or a request that fails, ejects the server.
	require.Eventually(t, func() bool {
		c.do(memcache.Get, "get "+keys[1]+"\r\n")
		return !s.Ring().Live(1)
	}, 5*time.Second, 10*time.Millisecond)

	assert.Equal(t, "SERVER_ERROR Connection refused (server "+s.Ring().ID(1)+"; the command was sent to every server)\r\n",
		c.do(memcache.FlushAll, "flush_all\r\n"))
	for _, i := range []int{0, 2} {
		assert.Equal(t, "END\r\n", dialMc(t, order[i].Addr).do(memcache.Get, "get "+keys[i]+"\r\n"), "server %d flushed", i)
	}
	st := parseStats(t, c.do(memcache.Stats, "stats\r\n"))
	var want uint64
	for _, i := range []int{0, 2} {
		want += parseStats(t, dialMc(t, order[i].Addr).do(memcache.Stats, "stats\r\n")).num(t, "cmd_flush")
	}
	assert.Equal(t, want, st.num(t, "cmd_flush"), "the live servers' cmd_flush")
	assert.Equal(t, uint64(2), st.num(t, "cmd_flush"))
}

// TestMemcacheStats: stats is the servers' stats merged, each counter the
// sum of the servers' (read directly before and after), the per-server
// values the first server's; stats reset resets every server.
func TestMemcacheStats(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	s, addr := startProxy(t, protocol.Memcache, bs, nil)
	order := ringOrder(s, bs)
	c := dialMc(t, addr)
	// Known traffic on every server.
	for i := range 60 {
		k := "stat:" + strconv.Itoa(i)
		require.Equal(t, "STORED\r\n", c.do(memcache.Set, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(k), k)))
		c.do(memcache.Get, "get "+k+" missing:"+strconv.Itoa(i)+"\r\n")
	}
	direct := make([]*mcConn, len(order))
	for i, b := range order {
		direct[i] = dialMc(t, b.Addr)
	}
	read := func() []mcStats {
		var out []mcStats
		for _, d := range direct {
			out = append(out, parseStats(t, d.do(memcache.Stats, "stats\r\n")))
		}
		return out
	}
	sum := func(sts []mcStats, name string) uint64 {
		var n uint64
		for _, st := range sts {
			n += st.num(t, name)
		}
		return n
	}
	before := read()
	merged := parseStats(t, c.do(memcache.Stats, "stats\r\n"))
	after := read()

	assert.Equal(t, before[0].names, merged.names, "the first server's stats, in its order")
	// Counters not moved by reading stats: exactly the sum.
	for _, name := range []string{"cmd_get", "cmd_set", "get_hits", "get_misses", "curr_items", "total_items", "bytes",
		"limit_maxbytes", "max_connections", "cmd_flush", "evictions", "hash_bytes"} {
		assert.Equal(t, sum(before, name), merged.num(t, name), name)
		assert.Equal(t, sum(after, name), merged.num(t, name), name)
	}
	assert.Equal(t, uint64(60), merged.num(t, "cmd_set"))
	assert.Equal(t, uint64(120), merged.num(t, "get_hits")+merged.num(t, "get_misses"))
	// Counters that reading stats moves: between the sums before and after.
	for _, name := range []string{"total_connections", "curr_connections", "bytes_read", "bytes_written"} {
		v := merged.num(t, name)
		assert.True(t, sum(before, name) <= v && v <= sum(after, name), "%s: %d not in [%d, %d]", name, v, sum(before, name), sum(after, name))
	}
	// Fractions (CPU seconds) are summed too.
	f := func(v string) float64 {
		x, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err)
		return x
	}
	var lo, hi float64
	for i := range before {
		lo += f(before[i].values["rusage_user"])
		hi += f(after[i].values["rusage_user"])
	}
	assert.Regexp(t, `^\d+\.\d{6}$`, merged.values["rusage_user"])
	assert.True(t, lo-1e-6 <= f(merged.values["rusage_user"]) && f(merged.values["rusage_user"]) <= hi+1e-6)
	// Per-server values: the first server's.
	for _, name := range []string{"pid", "version", "libevent", "pointer_size", "threads", "hash_power_level", "accepting_conns", "reserved_fds"} {
		assert.Equal(t, before[0].values[name], merged.values[name], name)
	}

	// stats reset: RESET from every server, and every server's counters
	// start again.
	assert.Equal(t, "RESET\r\n", c.do(memcache.Stats, "stats reset\r\n"))
	for i, st := range read() {
		assert.Zero(t, st.num(t, "cmd_get"), "server %d", i)
		assert.Zero(t, st.num(t, "get_hits"), "server %d", i)
	}
	// Other stats arguments describe one server: refused, connection kept.
	for _, arg := range []string{"slabs", "items", "settings", "sizes", "conns", "detail dump"} {
		assert.Equal(t, "CLIENT_ERROR stats "+strings.Fields(arg)[0]+" is not supported through a sharding proxy: it describes one server; ask the servers directly\r\n",
			c.do(memcache.Stats, "stats "+arg+"\r\n"))
	}
	assert.Equal(t, "VERSION 1.6.18\r\n", c.do(memcache.Version, "version\r\n"))
}

// TestClientMemcacheFanOut: the in-process Client sends flush_all and stats
// to every server as the proxy does.
func TestClientMemcacheFanOut(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 2)
	cl, err := proxy.NewClient(proxy.Config{Protocol: protocol.Memcache, Servers: entries(bs)})
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		r, err := cl.Do(ctx, fmt.Appendf(nil, "set k%d 0 0 1\r\nx\r\n", i))
		require.NoError(t, err)
		require.Equal(t, "STORED\r\n", string(r))
	}
	r, err := cl.Do(ctx, []byte("stats\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "10", parseStats(t, string(r)).values["curr_items"])
	r, err = cl.Do(ctx, []byte("flush_all\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "OK\r\n", string(r))
	r, err = cl.Do(ctx, []byte("get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "END\r\n", string(r))
	r, err = cl.Do(ctx, []byte("version\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "VERSION 1.6.18\r\n", string(r))
}
