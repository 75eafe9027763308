package proxy_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// loadClient pipelines SET k v / GET k batches on one connection and
// checks that every reply is its own request's.
type loadClient struct {
	nc       net.Conn
	rd       *resp.Reader
	requests atomic.Int64
	nfail    int
	failures []string // the first few
}

func valueOf(key string) string { return "v:" + key + ":" + strconv.Itoa(len(key)*7) }

// run sends batches until stop is closed or the connection fails.
func (c *loadClient) run(id int, stop <-chan struct{}) {
	const batch = 8
	var b []byte
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		// Each key's SET and GET share a batch, so they share a
		// configuration and a server connection: the GET must see the
		// SET even when a reload moves the key. (A key SET before a
		// reload and read after it may have moved: resharding.)
		b = b[:0]
		keys := make([]string, batch)
		for i := range keys {
			keys[i] = fmt.Sprintf("load%d:%d:%d", id, n, i)
			b = resp.AppendCommandString(b, "SET", keys[i], valueOf(keys[i]))
			b = resp.AppendCommandString(b, "GET", keys[i])
		}
		if _, err := c.nc.Write(b); err != nil {
			c.fail("write: " + err.Error())
			return
		}
		for _, k := range keys {
			for _, want := range []string{"+OK\r\n", fmt.Sprintf("$%d\r\n%s\r\n", len(valueOf(k)), valueOf(k))} {
				got, err := c.rd.ReadRawReply()
				if err != nil {
					c.fail("read: " + err.Error())
					return
				}
				if string(got) != want {
					c.fail(fmt.Sprintf("%s: got %q, want %q", k, got, want))
				}
				c.requests.Add(1)
			}
		}
	}
}

func (c *loadClient) fail(msg string) {
	c.nfail++
	if len(c.failures) < 5 {
		c.failures = append(c.failures, msg)
	}
}

// redisInfo returns field of INFO from a persistent connection.
func redisInfo(t *testing.T, c *testserver.RedisConn, field string) int {
	t.Helper()
	info, err := c.Do("INFO")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + field + `:(\d+)`).FindStringSubmatch(info)
	require.NotNil(t, m, "INFO has no %s", field)
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestReloadUnderLoad reloads a proxy three times (a server added, one
// removed, weights changed) while clients pipeline through it: no request
// fails, no client is disconnected, every reply is its own request's,
// keys land where a fresh ring of the new configuration puts them, kept
// servers keep their connections and a removed server's are closed.
func TestReloadUnderLoad(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 4)
	admin := make([]*testserver.RedisConn, len(bs))
	for i, b := range bs {
		admin[i] = testserver.DialRedis(t, b.Addr)
	}
	servers := entries(bs)
	cfg := proxy.Config{
		Name:     "reload",
		Protocol: protocol.Redis,
		Servers:  servers[:3],
		Ring:     shard.RingOptions{HashTag: "{}"},
	}
	cfg.Backend.Timeout = 5 * time.Second
	s, addr := startProxy(t, protocol.Redis, nil, func(c *proxy.Config) { *c = cfg })

	const nclients = 6
	clients := make([]*loadClient, nclients)
	for i := range clients {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		clients[i] = &loadClient{nc: nc, rd: resp.NewReader(nc, protocol.Limits{})}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(i, stop)
		}()
	}
	total := func() int64 {
		var n int64
		for _, c := range clients {
			n += c.requests.Load()
		}
		return n
	}
	waitProgress := func() {
		t.Helper()
		start := total()
		deadline := time.Now().Add(10 * time.Second)
		for total() < start+2000 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		require.GreaterOrEqual(t, total(), start+2000, "load stalled")
	}
	waitProgress()
	// Connections received by servers 1 and 2, which every reload keeps.
	recv := func() []int {
		return []int{redisInfo(t, admin[1], "total_connections_received"), redisInfo(t, admin[2], "total_connections_received")}
	}
	before := recv()

	steps := []struct {
		name    string
		servers []shard.Server
	}{
		{"add a server", servers[:4]},
		{"remove a server", servers[1:4]},
		{"change weights", func() []shard.Server {
			ss := append([]shard.Server(nil), servers[1:4]...)
			ss[0].Weight, ss[2].Weight = 5, 1
			return ss
		}()},
	}
	for _, step := range steps {
		next := cfg
		next.Servers = step.servers
		require.NoError(t, s.Reload(next), step.name)
		waitProgress()

		// Placement: the proxy's ring is a fresh ring of the new
		// configuration, and keys written now are on its servers.
		want, err := shard.NewRing(step.servers, cfg.Ring)
		require.NoError(t, err)
		got := s.Ring()
		require.Equal(t, want.Len(), got.Len(), step.name)
		c := rawDial(t, addr)
		for i := range 300 {
			key := fmt.Sprintf("placed:%s:%d", step.name, i)
			idx := want.Pick([]byte(key))
			require.Equal(t, want.ID(idx), got.ID(got.Pick([]byte(key))), "%s: %s", step.name, key)
			require.Equal(t, "+OK\r\n", c.do("SET", key, "x"))
			var direct *testserver.RedisConn
			for j, e := range servers {
				if e.Addr == want.Server(idx).Addr {
					direct = admin[j]
				}
			}
			v, err := direct.Do("GET", key)
			require.NoError(t, err)
			require.Equal(t, "x", v, "%s: %s is not on %s", step.name, key, want.ID(idx))
		}
	}
	close(stop)
	wg.Wait()
	for i, c := range clients {
		assert.Zero(t, c.nfail, "client %d: %q", i, c.failures)
	}
	assert.Equal(t, before, recv(), "servers kept by every reload were reconnected")
	st := s.Stats()
	// The load clients are connected still, plus the three placement checkers.
	assert.EqualValues(t, nclients+3, st.ClientConnections)
	// The removed server's connections are closed once its requests are done.
	require.Eventually(t, func() bool { return redisInfo(t, admin[0], "connected_clients") == 1 },
		5*time.Second, 20*time.Millisecond, "connections to the removed server stay open")
	t.Logf("%d requests through 3 reloads, 0 failed", total())
}

// TestReloadCompletesRequestsInFlight removes a server while a request to
// it is in flight (the redis-server is stopped with SIGSTOP): the request
// is answered once the server resumes, and then the server's connection is
// closed.
func TestReloadCompletesRequestsInFlight(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	cfg := proxy.Config{
		Name:     "inflight",
		Protocol: protocol.Redis,
		Servers:  []shard.Server{{Name: "fast", Addr: bs[0].Addr, Weight: 1}, {Name: "slow", Addr: bs[1].Addr, Weight: 1}},
	}
	cfg.Backend.Timeout = 5 * time.Second
	s, addr := startProxy(t, protocol.Redis, nil, func(c *proxy.Config) { *c = cfg })
	var key string
	for i := 0; ; i++ {
		key = "k" + strconv.Itoa(i)
		if s.Ring().ID(s.Ring().Pick([]byte(key))) == "slow" {
			break
		}
	}
	slow := testserver.DialRedis(t, bs[1].Addr)
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", key, "old")) // connects the proxy to slow
	require.NoError(t, syscall.Kill(bs[1].PID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(bs[1].PID, syscall.SIGCONT) })
	c.send(cmd("SET", key, "v"))
	require.Eventually(t, func() bool { return s.Stats().Servers[1].OutQueue == 1 }, 5*time.Second, time.Millisecond)
	next := cfg
	next.Servers = cfg.Servers[:1]
	require.NoError(t, s.Reload(next))
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, syscall.Kill(bs[1].PID, syscall.SIGCONT))
	assert.Equal(t, "+OK\r\n", c.reply(), "the request in flight to the removed server")
	v, err := slow.Do("GET", key)
	require.NoError(t, err)
	assert.Equal(t, "v", v, "the request reached the removed server")
	require.Eventually(t, func() bool { return redisInfo(t, slow, "connected_clients") == 1 }, 5*time.Second, 10*time.Millisecond,
		"the removed server's connection is not closed")
	// The same client goes on, now on the remaining server.
	assert.Equal(t, "+OK\r\n", c.do("SET", key, "w"))
	assert.Equal(t, "$1\r\nw\r\n", c.do("GET", key))
}

// TestReloadRejected checks that a Reload that fails changes nothing.
func TestReloadRejected(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", "a", "1"))
	good := s.Config()
	ring := s.Ring()

	cases := map[string]func(*proxy.Config){
		"other name":     func(c *proxy.Config) { c.Name = "other" },
		"other protocol": func(c *proxy.Config) { c.Protocol = protocol.Memcache },
		"no servers":     func(c *proxy.Config) { c.Servers = nil },
		"bad hash tag":   func(c *proxy.Config) { c.Ring.HashTag = "{" },
		"duplicate name": func(c *proxy.Config) {
			c.Servers = []shard.Server{{Name: "a", Addr: "127.0.0.1:1", Weight: 1}, {Name: "a", Addr: "127.0.0.1:2", Weight: 1}}
		},
		"negative conns": func(c *proxy.Config) { c.Backend.Conns = -1 },
	}
	for name, mutate := range cases {
		cfg := s.Config()
		mutate(&cfg)
		err := s.Reload(cfg)
		require.Error(t, err, name)
		t.Logf("%s: %v", name, err)
		assert.Same(t, ring, s.Ring(), name)
		assert.Equal(t, good.Servers, s.Config().Servers, name)
	}
	assert.Equal(t, "$1\r\n1\r\n", c.do("GET", "a"))
}

// TestReloadAuth checks that a new password applies to new
// clients while authenticated ones stay so.
func TestReloadAuth(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Auth = "one" })
	old := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", old.do("AUTH", "one"))
	cfg := s.Config()
	cfg.Auth = "two"
	require.NoError(t, s.Reload(cfg))
	assert.Equal(t, "+OK\r\n", old.do("SET", "k", "v"), "an authenticated client stays authenticated")
	c := rawDial(t, addr)
	assert.True(t, strings.HasPrefix(c.do("GET", "k"), "-NOAUTH"))
	assert.True(t, strings.HasPrefix(c.do("AUTH", "one"), "-ERR invalid password"))
	assert.Equal(t, "+OK\r\n", c.do("AUTH", "two"))
	assert.Equal(t, "$1\r\nv\r\n", c.do("GET", "k"))
}

// TestLatencies checks the per-command and per-server histograms against
// known traffic, and that they survive a Reload.
func TestLatencies(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	const sets, gets = 30, 50
	for i := range sets {
		require.Equal(t, "+OK\r\n", c.do("SET", "k"+strconv.Itoa(i), "v"))
	}
	for i := range gets {
		c.do("GET", "k"+strconv.Itoa(i))
	}
	c.do("PING")
	c.do("NOSUCHCOMMAND")
	byName := func() map[string]proxy.Histogram {
		m := map[string]proxy.Histogram{}
		for _, l := range s.Latencies() {
			m[l.Command] = l.Histogram
		}
		return m
	}
	m := byName()
	require.Len(t, m, 3, "%v", m)
	assert.EqualValues(t, sets, m["set"].Count)
	assert.EqualValues(t, gets, m["get"].Count)
	assert.EqualValues(t, 1, m["ping"].Count)
	for name, h := range m {
		var n uint64
		for _, c := range h.Counts {
			n += c
		}
		assert.Equal(t, h.Count, n, name)
		assert.Len(t, h.Counts, len(h.Bounds)+1, name)
		assert.Greater(t, h.Sum, 0.0, name)
		assert.Less(t, h.Sum, float64(h.Count)*5, name)
	}
	var rtt uint64
	st := s.Stats()
	for _, ss := range st.Servers {
		assert.EqualValues(t, ss.Responses, ss.RTT.Count, ss.Name)
		var n uint64
		for _, c := range ss.RTT.Counts {
			n += c
		}
		assert.Equal(t, ss.RTT.Count, n, ss.Name)
		assert.True(t, ss.Live)
		rtt += ss.RTT.Count
	}
	assert.EqualValues(t, sets+gets, rtt)

	require.NoError(t, s.Reload(s.Config()))
	c.do("GET", "k0")
	assert.EqualValues(t, gets+1, byName()["get"].Count)
	rtt = 0
	for _, ss := range s.Stats().Servers {
		rtt += ss.RTT.Count
	}
	assert.EqualValues(t, sets+gets+1, rtt, "a reload of the same servers keeps their histograms")
}

// TestStatsServerSetPools checks that the stats document follows SetPools.
func TestStatsServerSetPools(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	a, _ := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Name = "alpha" })
	b, _ := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Name = "beta" })
	st := &proxy.StatsServer{Pools: []*proxy.Server{a}, Interval: time.Hour}
	doc := string(st.Document(time.Now()))
	assert.Contains(t, doc, `"alpha":`)
	assert.NotContains(t, doc, `"beta":`)
	st.SetPools([]*proxy.Server{b})
	doc = string(st.Document(time.Now()))
	assert.NotContains(t, doc, `"alpha":`)
	assert.Contains(t, doc, `"beta":`)
}

// TestClientReload reloads an in-process Client while goroutines call it.
func TestClientReload(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	cfg := proxy.Config{Name: "inproc", Protocol: protocol.Redis, Servers: entries(bs)[:2]}
	c, err := proxy.NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("c%d:%d", g, i)
				reps, err := c.DoMulti(ctx, resp.AppendCommandString(nil, "SET", k, valueOf(k)), resp.AppendCommandString(nil, "GET", k))
				calls.Add(1)
				if err != nil || string(reps[1]) != fmt.Sprintf("$%d\r\n%s\r\n", len(valueOf(k)), valueOf(k)) {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	cfg.Servers = entries(bs)[1:]
	require.NoError(t, c.Reload(cfg))
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.Zero(t, failed.Load(), "of %d calls", calls.Load())
	want, err := shard.NewRing(cfg.Servers, cfg.Ring)
	require.NoError(t, err)
	assert.Equal(t, want.ID(want.Pick([]byte("x"))), c.Ring().ID(c.Ring().Pick([]byte("x"))))
	assert.Equal(t, 2, c.Ring().Len())
}
