//go:build linux

package proxy_test

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
)

func TestNewEngineRejectsNoLoops(t *testing.T) {
	_, err := proxy.NewEngine(0)
	require.Error(t, err)
}

// TestEngineSharedByServers serves a Redis and a memcached pool with one
// Engine of two loops: many clients at once on both, pipelined and one
// request at a time, large values included; then the Servers shut down,
// the Engine closes, and no goroutine is left.
func TestEngineSharedByServers(t *testing.T) {
	e, err := proxy.NewEngine(2)
	require.NoError(t, err)
	require.Equal(t, 2, e.Loops())
	rbs := startBackends(t, protocol.Redis, 3)
	mbs := startBackends(t, protocol.Memcache, 2)
	var rs, ms *proxy.Server
	var raddr, maddr string
	t.Run("serve", func(t *testing.T) {
		rs, raddr = startProxy(t, protocol.Redis, rbs, func(c *proxy.Config) { c.Engine = e })
		ms, maddr = startProxy(t, protocol.Memcache, mbs, func(c *proxy.Config) { c.Engine = e })
		big := strings.Repeat("v", 3<<20)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				c := rawDial(t, raddr)
				for j := range 50 {
					k := fmt.Sprintf("k%d.%d", i, j)
					if c.do("SET", k, k) != "+OK\r\n" {
						t.Errorf("SET %s", k)
						return
					}
				}
				var cmds [][]string
				for j := range 50 {
					cmds = append(cmds, cmd("GET", fmt.Sprintf("k%d.%d", i, j)))
				}
				cmds = append(cmds, cmd("MGET", fmt.Sprintf("k%d.0", i), fmt.Sprintf("k%d.1", i), "nokey"))
				c.send(cmds...)
				for j := range 50 {
					k := fmt.Sprintf("k%d.%d", i, j)
					if got := c.reply(); got != fmt.Sprintf("$%d\r\n%s\r\n", len(k), k) {
						t.Errorf("GET %s: %q", k, got)
						return
					}
				}
				k0, k1 := fmt.Sprintf("k%d.0", i), fmt.Sprintf("k%d.1", i)
				want := fmt.Sprintf("*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$-1\r\n", len(k0), k0, len(k1), k1)
				if got := c.reply(); got != want {
					t.Errorf("MGET: %q", got)
				}
				if i == 0 {
					if c.do("SET", "big", big) != "+OK\r\n" {
						t.Error("SET big")
					}
					if got := c.do("GET", "big"); got != fmt.Sprintf("$%d\r\n%s\r\n", len(big), big) {
						t.Errorf("GET big: %d bytes", len(got))
					}
				}
			}()
			go func() {
				defer wg.Done()
				nc, err := net.Dial("tcp", maddr)
				if err != nil {
					t.Error(err)
					return
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
				k := fmt.Sprintf("m%d", i)
				want := fmt.Sprintf("STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
				if _, err := fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(k), k, k); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
					t.Errorf("memcached %s: %q %v", k, got, err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int64(0), rs.Stats().ClientErr)
	})
	// The subtest's cleanup shut both Servers down.
	require.NoError(t, e.Close())
	_ = ms
	if proxy.EngineLoopsForTest() == 0 {
		// Close waited for the loops (those of WALNUT_TEST_LOOPS's
		// engine run on).
		buf := make([]byte, 1<<20)
		require.NotContains(t, string(buf[:runtime.Stack(buf, true)]), "proxy.(*eloop).run")
	}
}

// TestEngineRedialsAfterIdleClose: a request queued on a backend
// connection in the same loop iteration in which the server closes that
// idle connection is kept for the next connection, which the loop must
// dial. The loop is held busy while the client's GET and the server's FIN
// (CLIENT KILL) both arrive.
func TestEngineRedialsAfterIdleClose(t *testing.T) {
	e, err := proxy.NewEngine(1)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	bs := startBackends(t, protocol.Redis, 1)
	_, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Engine = e })
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", "a", "1"))

	admin, err := net.Dial("tcp", bs[0].Addr)
	require.NoError(t, err)
	defer admin.Close()
	proxy.PostToLoops(e, func() { time.Sleep(400 * time.Millisecond) })
	time.Sleep(100 * time.Millisecond)
	c.send(cmd("GET", "a"))
	time.Sleep(50 * time.Millisecond)
	_, err = admin.Write([]byte("CLIENT KILL TYPE normal\r\n"))
	require.NoError(t, err)
	buf := make([]byte, 64)
	_, err = admin.Read(buf)
	require.NoError(t, err)

	_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := c.rd.ReadRawReply()
	require.NoError(t, err, "GET after the backend closed its idle connection")
	require.Equal(t, "$1\r\n1\r\n", string(b))
}

// TestEngineFairness: a client that pipelines requests answered by the
// proxy itself, as fast as the loop reads them, must not keep the loop
// from serving another client of the same loop. (Here the socket buffers
// filling with PONGs already hand the loop back; the step budget,
// stepReads, covers a client whose replies never fill them.)
func TestEngineFairness(t *testing.T) {
	e, err := proxy.NewEngine(1)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	bs := startBackends(t, protocol.Redis, 1)
	_, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Engine = e })
	flood, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer flood.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // send PINGs without pause
		defer wg.Done()
		chunk := []byte(strings.Repeat("PING\r\n", 4096))
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = flood.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := flood.Write(chunk); err != nil {
				return
			}
		}
	}()
	go func() { // and read the PONGs as fast
		defer wg.Done()
		_, _ = io.Copy(io.Discard, flood)
	}()
	c := rawDial(t, addr)
	for i := range 50 {
		start := time.Now()
		require.Equal(t, "+OK\r\n", c.do("SET", "k", fmt.Sprint(i)))
		require.Less(t, time.Since(start), 2*time.Second, "a request waited behind the flooding client")
	}
	close(stop)
	flood.Close()
	wg.Wait()
}

// TestEngineWrappedListener: a listener whose connections are not sockets
// the loop can own (a wrapper type) still has its clients served, each by
// a goroutine of its own.
func TestEngineWrappedListener(t *testing.T) {
	e, err := proxy.NewEngine(1)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	bs := startBackends(t, protocol.Redis, 1)
	cfg := proxy.Config{Name: "wrapped", Protocol: protocol.Redis, Servers: entries(bs), Engine: e}
	s, err := proxy.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(wrapListener{l}) }()
	c := rawDial(t, l.Addr().String())
	require.Equal(t, "+OK\r\n", c.do("SET", "w", "1"))
	require.Equal(t, "$1\r\n1\r\n", c.do("GET", "w"))
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-done, proxy.ErrServerClosed)
}

// wrapListener wraps its connections in a type that hides the socket.
type wrapListener struct{ net.Listener }

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrapConn{c}, nil
}

type wrapConn struct{ net.Conn }

// TestEngineWritesCompletePrefix: an event loop writes the replies of a
// pipelined window as soon as a prefix of them is complete, not when the
// whole window is. One server is kept busy by a script while a client
// pipelines GETs of a key on the other server around a GET of a key on
// the busy one: the first reply must reach the client while the script
// still runs, and every reply must arrive in order once it ends.
func TestEngineWritesCompletePrefix(t *testing.T) {
	e, err := proxy.NewEngine(1)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.Engine = e })
	ring := s.Ring()
	keyOn := func(addr string) string {
		for i := 0; ; i++ {
			k := fmt.Sprintf("prefix:%d", i)
			if ring.Server(ring.PickString(k)).Addr == addr {
				return k
			}
		}
	}
	fast, slow := keyOn(bs[0].Addr), keyOn(bs[1].Addr)
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", fast, "f"))
	require.Equal(t, "+OK\r\n", c.do("SET", slow, "s"))

	// Keep the slow key's server busy for 1.5 s.
	var scriptDone atomic.Bool
	started := make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		bc := testserver.DialRedis(t, bs[1].Addr)
		close(started)
		_, err := bc.Do("EVAL", "local s = redis.call('TIME') local t0 = s[1]*1000000 + s[2] "+
			"repeat local n = redis.call('TIME') until n[1]*1000000 + n[2] - t0 > 1500000 return 1", "0")
		scriptDone.Store(true)
		finished <- err
	}()
	<-started
	time.Sleep(200 * time.Millisecond) // the script has begun
	c.send(cmd("GET", fast), cmd("GET", fast), cmd("GET", slow), cmd("GET", fast))
	require.Equal(t, "$1\r\nf\r\n", c.reply())
	require.Equal(t, "$1\r\nf\r\n", c.reply())
	require.False(t, scriptDone.Load(), "the replies before the busy server's came only after it answered")
	require.Equal(t, "$1\r\ns\r\n", c.reply())
	require.Equal(t, "$1\r\nf\r\n", c.reply())
	require.NoError(t, <-finished)
}
