package walnut_test

// The property that matters (README): one key → one server, the same in
// nutcracker, in walnut's proxy and in a Go service using walnut's library.
// These tests write keys through walnut's proxy and read every one back
// through each in-process path and through nutcracker, with the same
// nutcracker.yml, then eject a server and check again.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	gm "github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
)

const crossKeys = 10000

// crossKeySet returns n distinct random keys of printable bytes, a third of
// them with a {tag} shared by several keys.
func crossKeySet(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	seen := map[string]bool{}
	var keys []string
	for len(keys) < n {
		b := make([]byte, 4+r.IntN(20))
		for i := range b {
			b[i] = byte(0x21 + r.IntN(0x7e-0x21+1))
			if b[i] == '{' || b[i] == '}' {
				b[i] = 'x'
			}
		}
		k := string(b)
		if r.IntN(3) == 0 {
			k = "u:{" + strconv.Itoa(r.IntN(200)) + "}:" + k
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// crossPool writes a one-pool nutcracker.yml over addrs with unequal
// weights, names on every other server, the {} hash tag and ejection after
// one failure.
func crossPool(listen string, redis bool, dist string, addrs []string) string {
	yml := fmt.Sprintf("cross:\n  listen: %s\n  redis: %v\n  hash_tag: \"{}\"\n  distribution: %s\n"+
		"  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 1000\n  servers:\n",
		listen, redis, dist)
	for i, a := range addrs {
		yml += fmt.Sprintf("   - %s:%d", a, 1+i%3)
		if i%2 == 1 {
			yml += fmt.Sprintf(" node%d", i)
		}
		yml += "\n"
	}
	return yml
}

// pipelined sends reqs on a new connection to addr, in batches, and returns
// the raw replies; frame splits a reply off the front of a buffer.
func pipelined(t *testing.T, addr string, reqs [][]byte, frame func([]byte, int) (int, error)) [][]byte {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	var replies [][]byte
	buf := make([]byte, 0, 1<<16)
	tmp := make([]byte, 1<<16)
	for start := 0; start < len(reqs); start += 500 {
		end := min(start+500, len(reqs))
		var out []byte
		for _, r := range reqs[start:end] {
			out = append(out, r...)
		}
		_, err := nc.Write(out)
		require.NoError(t, err)
		for i := start; i < end; {
			n, err := frame(buf, i)
			require.NoError(t, err)
			if n > 0 {
				replies = append(replies, bytes.Clone(buf[:n]))
				buf = buf[n:]
				i++
				continue
			}
			m, err := nc.Read(tmp)
			require.NoError(t, err)
			buf = append(buf, tmp[:m]...)
		}
	}
	return replies
}

func respFrame(b []byte, _ int) (int, error) { return resp.FrameReply(b, protocol.Limits{}) }

// crossRig is one pool served by nutcracker and by walnut's proxy, over the
// same three backends, with walnut's in-process client beside them.
type crossRig struct {
	backs     []*testserver.Server
	pool      config.Pool
	nutListen string
	srv       *proxy.Server
	walListen string
	inproc    *proxy.Client
}

func newCrossRig(t *testing.T, redis bool, dist string) *crossRig {
	t.Helper()
	rig := &crossRig{}
	var addrs []string
	for range 3 {
		var s *testserver.Server
		if redis {
			s = testserver.StartRedis(t, testserver.RedisOptions{})
		} else {
			s = testserver.StartMemcached(t, testserver.MemcachedOptions{})
		}
		rig.backs = append(rig.backs, s)
		addrs = append(addrs, s.Addr)
	}
	rig.nutListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	yml := crossPool(rig.nutListen, redis, dist, addrs)
	testserver.StartNutcracker(t, yml, testserver.NutcrackerOptions{Listen: []string{rig.nutListen}})
	f, err := config.Parse("cross.yml", []byte(yml))
	require.NoError(t, err)
	rig.pool = f.Pools[0]
	// walnut's proxy, on its own port, from the same pool.
	rig.srv, err = proxy.New(proxy.FromPool(rig.pool, nil))
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rig.walListen = l.Addr().String()
	go func() { _ = rig.srv.Serve(l) }()
	t.Cleanup(func() { rig.srv.Close() })
	rig.inproc, err = proxy.NewClient(proxy.FromPool(rig.pool, nil))
	require.NoError(t, err)
	t.Cleanup(func() { rig.inproc.Close() })
	return rig
}

// byServer groups key indexes by the backend walnut's ring names.
func (rig *crossRig) byServer(keys []string) map[string][]int {
	m := map[string][]int{}
	r := rig.srv.Ring()
	for i, k := range keys {
		a := r.Server(r.PickString(k)).Addr
		m[a] = append(m[a], i)
	}
	return m
}

// stopOwner stops the backend that owns key and returns its index.
func (rig *crossRig) stopOwner(key string) int {
	victim := rig.srv.Ring().PickString(key)
	addr := rig.srv.Ring().Server(victim).Addr
	for _, b := range rig.backs {
		if b.Addr == addr {
			b.Stop()
		}
	}
	return victim
}

func TestCrossCheckRedis(t *testing.T) {
	for _, dist := range []string{"ketama", "modula"} {
		t.Run(dist, func(t *testing.T) { crossCheckRedis(t, dist) })
	}
}

func crossCheckRedis(t *testing.T, dist string) {
	ctx := context.Background()
	rig := newCrossRig(t, true, dist)
	pool, nutListen, inproc := rig.pool, rig.nutListen, rig.inproc
	ring, err := goredis.NewRingFromPool(pool, goredis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ring.Close() })

	keys := crossKeySet(crossKeys, 1)
	check := func(stage string, keys []string, writeVia string) {
		sets := make([][]byte, len(keys))
		gets := make([][]byte, len(keys))
		for i, k := range keys {
			sets[i] = resp.AppendCommandString(nil, "SET", k, stage+k)
			gets[i] = resp.AppendCommandString(nil, "GET", k)
		}
		for i, r := range pipelined(t, writeVia, sets, respFrame) {
			require.Equal(t, "+OK\r\n", string(r), "SET %q", keys[i])
		}
		want := func(i int) string { v := stage + keys[i]; return fmt.Sprintf("$%d\r\n%s\r\n", len(v), v) }
		miss := map[string]int{}
		for i, r := range pipelined(t, nutListen, gets, respFrame) {
			if string(r) != want(i) {
				miss["nutcracker"]++
			}
		}
		replies, err := inproc.DoMulti(ctx, gets...)
		require.NoError(t, err)
		for i, r := range replies {
			if string(r) != want(i) {
				miss["in-process client"]++
			}
		}
		pipe := ring.Pipeline()
		cmds := make([]interface{ Val() string }, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Get(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		for i, c := range cmds {
			if c.Val() != stage+keys[i] {
				miss["go-redis Ring adapter"]++
			}
		}
		// Directly from the backend walnut's ring names.
		for a, idx := range rig.byServer(keys) {
			var g [][]byte
			for _, i := range idx {
				g = append(g, gets[i])
			}
			for j, rep := range pipelined(t, a, g, respFrame) {
				if string(rep) != want(idx[j]) {
					miss["backend named by the ring"]++
				}
			}
		}
		t.Logf("%s %d keys written through %s, read back through nutcracker, the in-process client, the go-redis adapter and directly: misses %v", stage, len(keys), writeVia, miss)
		assert.Empty(t, miss, stage)
	}
	check("before:", keys, rig.walListen)

	// Eject one server: stop it, and let each path notice.
	rig.stopOwner(keys[0])
	ejected := func(addr string) bool {
		// A request for keys[0] fails until the path ejects the server,
		// then succeeds on another server.
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = nc.Write(resp.AppendCommandString(nil, "SET", keys[0], "x"))
		b := make([]byte, 64)
		n, _ := nc.Read(b)
		return string(b[:n]) == "+OK\r\n"
	}
	require.Eventually(t, func() bool { return ejected(rig.walListen) }, 20*time.Second, 50*time.Millisecond, "walnut ejects")
	require.Eventually(t, func() bool { return ejected(nutListen) }, 20*time.Second, 50*time.Millisecond, "nutcracker ejects")
	require.Eventually(t, func() bool {
		v, err := inproc.Command(ctx, "SET", keys[0], "x")
		return err == nil && string(v.Str) == "OK"
	}, 20*time.Second, 50*time.Millisecond, "the in-process client ejects")
	require.Eventually(t, func() bool { return ring.Set(ctx, keys[0], "x", 0).Err() == nil }, 20*time.Second, 100*time.Millisecond, "go-redis marks the shard down")

	check("after:", crossKeySet(2000, 2), rig.walListen)
}

func mcFrame(gets bool) func([]byte, int) (int, error) {
	return func(b []byte, _ int) (int, error) {
		cmd := memcache.Set
		if gets {
			cmd = memcache.Get
		}
		return memcache.FrameResponse(b, cmd, protocol.Limits{})
	}
}

func TestCrossCheckMemcache(t *testing.T) {
	for _, dist := range []string{"ketama", "modula"} {
		t.Run(dist, func(t *testing.T) { crossCheckMemcache(t, dist) })
	}
}

func crossCheckMemcache(t *testing.T, dist string) {
	ctx := context.Background()
	rig := newCrossRig(t, false, dist)
	pool, nutListen, srv, inproc := rig.pool, rig.nutListen, rig.srv, rig.inproc
	sel, err := gomemcache.NewSelectorFromPool(pool)
	require.NoError(t, err)
	mc := gm.NewFromSelector(sel)
	mc.Timeout = 2 * time.Second

	keys := crossKeySet(crossKeys, 3)
	check := func(stage string, keys []string, writeVia string) {
		sets := make([][]byte, len(keys))
		gets := make([][]byte, len(keys))
		for i, k := range keys {
			v := stage + strconv.Itoa(i)
			sets[i] = fmt.Appendf(nil, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
			gets[i] = fmt.Appendf(nil, "get %s\r\n", k)
		}
		for i, r := range pipelined(t, writeVia, sets, mcFrame(false)) {
			require.Equal(t, "STORED\r\n", string(r), "set %q", keys[i])
		}
		want := func(i int) string {
			v := stage + strconv.Itoa(i)
			return fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", keys[i], len(v), v)
		}
		miss := map[string]int{}
		for i, r := range pipelined(t, nutListen, gets, mcFrame(true)) {
			if string(r) != want(i) {
				miss["nutcracker"]++
			}
		}
		replies, err := inproc.DoMulti(ctx, gets...)
		require.NoError(t, err)
		for i, r := range replies {
			if string(r) != want(i) {
				miss["in-process client"]++
			}
		}
		for start := 0; start < len(keys); start += 100 {
			batch := keys[start:min(start+100, len(keys))]
			items, err := mc.GetMulti(batch)
			require.NoError(t, err)
			for j, k := range batch {
				if it, ok := items[k]; !ok || string(it.Value) != stage+strconv.Itoa(start+j) {
					miss["gomemcache adapter"]++
				}
			}
		}
		for a, idx := range rig.byServer(keys) {
			var g [][]byte
			for _, i := range idx {
				g = append(g, gets[i])
			}
			for j, rep := range pipelined(t, a, g, mcFrame(true)) {
				if string(rep) != want(idx[j]) {
					miss["backend named by the ring"]++
				}
			}
		}
		t.Logf("%s %d keys written through %s, read back through nutcracker, the in-process client, the gomemcache adapter and directly: misses %v", stage, len(keys), writeVia, miss)
		assert.Empty(t, miss, stage)
	}
	check("before:", keys, rig.walListen)

	victim := rig.stopOwner(keys[0])
	setOK := func(addr string) bool {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = fmt.Fprintf(nc, "set %s 0 0 1\r\nx\r\n", keys[0])
		b := make([]byte, 64)
		n, _ := nc.Read(b)
		return string(b[:n]) == "STORED\r\n"
	}
	require.Eventually(t, func() bool { return setOK(rig.walListen) }, 20*time.Second, 50*time.Millisecond, "walnut ejects")
	require.Eventually(t, func() bool { return setOK(nutListen) }, 20*time.Second, 50*time.Millisecond, "nutcracker ejects")
	require.Eventually(t, func() bool {
		r, err := inproc.Do(ctx, fmt.Appendf(nil, "set %s 0 0 1\r\nx\r\n", keys[0]))
		return err == nil && string(r) == "STORED\r\n"
	}, 20*time.Second, 50*time.Millisecond, "the in-process client ejects")
	// The gomemcache adapter is told, as its owner would be, which server
	// is down.
	live := make([]bool, srv.Ring().Len())
	for i := range live {
		live[i] = i != victim
	}
	require.NoError(t, sel.SetLive(live))

	check("after:", crossKeySet(2000, 4), rig.walListen)
}
