package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
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

// newInMem builds a Server over bs that serves no listener, closed at
// cleanup.
func newInMem(t *testing.T, kind protocol.Kind, bs []backend, mutate func(*proxy.Config)) *proxy.Server {
	t.Helper()
	cfg := proxy.Config{Name: "inmem", Protocol: kind, Servers: entries(bs), Ring: shard.RingOptions{HashTag: "{}"}}
	cfg.Backend.Timeout = 10 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := proxy.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// dialMem dials s in memory and wraps the connection as a raw client.
func dialMem(t *testing.T, s *proxy.Server) *rawRedis {
	t.Helper()
	nc, err := s.Dial(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	return &rawRedis{t: t, nc: nc, rd: resp.NewReader(nc, protocol.Limits{})}
}

// TestDialPipeline writes 20,000 commands over an in-memory connection
// before reading any reply: the pipeline net.Pipe would deadlock on (the
// session's replies wait for a reader that is still writing).
func TestDialPipeline(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 3)
	s := newInMem(t, protocol.Redis, bs, nil)
	c := dialMem(t, s)
	const n = 10000
	var cmds [][]string
	for i := range n {
		cmds = append(cmds, cmd("SET", fmt.Sprintf("p%d", i), fmt.Sprintf("v%d", i)))
	}
	for i := range n {
		cmds = append(cmds, cmd("GET", fmt.Sprintf("p%d", i)))
	}
	c.send(cmds...) // returns before the session has read anything
	for i := range n {
		require.Equal(t, "+OK\r\n", c.reply(), "reply %d", i)
	}
	for i := range n {
		v := fmt.Sprintf("v%d", i)
		require.Equal(t, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v), c.reply(), "reply %d", n+i)
	}
	// Each server got its share: the keys went through the ring.
	for _, b := range bs {
		n, err := testserver.DialRedis(t, b.Addr).Do("DBSIZE")
		require.NoError(t, err)
		assert.NotEqual(t, ":0", n, "server %s", b.Addr)
	}
}

// TestDialLargeValue sets and gets a 64 MiB value over an in-memory
// connection, pipelined with a small command after each.
func TestDialLargeValue(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	// The test's hundreds of MB of buffers are garbage once it ends:
	// collect them, so that a later test that reads the heap is not misled.
	t.Cleanup(runtime.GC)
	bs := startBackends(t, protocol.Redis, 2)
	s := newInMem(t, protocol.Redis, bs, nil)
	c := dialMem(t, s)
	big := strings.Repeat("0123456789abcdef", 4<<20)
	c.send(cmd("SET", "big", big), cmd("PING"))
	require.Equal(t, "+OK\r\n", c.reply())
	require.Equal(t, "+PONG\r\n", c.reply())
	c.send(cmd("GET", "big"), cmd("GET", "big"), cmd("PING"))
	for range 2 {
		got := c.reply()
		require.Equal(t, len(big)+len(fmt.Sprintf("$%d\r\n\r\n", len(big))), len(got))
		require.True(t, got[len(got)-len(big)-2:len(got)-2] == big)
	}
	require.Equal(t, "+PONG\r\n", c.reply())
}

// TestDialClose: the client's Close ends its session (counted while it
// lasts), and the server's Close ends the client's connection with EOF and
// refuses later dials.
func TestDialClose(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 1)
	s := newInMem(t, protocol.Redis, bs, nil)
	c := dialMem(t, s)
	require.Equal(t, "+PONG\r\n", c.do("PING"))
	require.EqualValues(t, 1, s.Stats().ClientConnections)
	require.NoError(t, c.nc.Close())
	require.Eventually(t, func() bool { return s.Stats().ClientConnections == 0 }, 5*time.Second, time.Millisecond)

	c2 := dialMem(t, s)
	require.Equal(t, "+PONG\r\n", c2.do("PING"))
	require.NoError(t, s.Close())
	_, err := c2.rd.ReadRawReply()
	require.ErrorIs(t, err, io.EOF)
	_, err = s.Dial(context.Background())
	require.ErrorIs(t, err, proxy.ErrServerClosed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Dial(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

// TestDialShutdown: Shutdown answers what the client sent, then closes
// its in-memory connection.
func TestDialShutdown(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 1)
	s := newInMem(t, protocol.Redis, bs, nil)
	c := dialMem(t, s)
	require.Equal(t, "+PONG\r\n", c.do("PING"))
	c.send(cmd("SET", "k", "v"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.Equal(t, "+OK\r\n", c.reply())
	_, err := c.rd.ReadRawReply()
	require.ErrorIs(t, err, io.EOF)
}

// TestDialMaxClients: an in-memory client over MaxClients gets the error
// reply, as over TCP.
func TestDialMaxClients(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 1)
	s := newInMem(t, protocol.Redis, bs, func(c *proxy.Config) { c.MaxClients = 1 })
	c := dialMem(t, s)
	require.Equal(t, "+PONG\r\n", c.do("PING"))
	c2 := dialMem(t, s)
	require.Equal(t, "-ERR max number of clients reached (client_connections: 1)\r\n", c2.reply())
	assert.True(t, c2.closed())
}

// TestServeConnWithEngine: ServeConn serves a connection on the calling
// goroutine even when the Server has an event-loop Engine, and returns
// when the client closes.
func TestServeConnWithEngine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the event-loop engine is Linux only")
	}
	t.Cleanup(func() { verifyNoLeaks(t) })
	eng, err := proxy.NewEngine(1)
	require.NoError(t, err)
	defer eng.Close()
	bs := startBackends(t, protocol.Redis, 1)
	s := newInMem(t, protocol.Redis, bs, func(c *proxy.Config) { c.Engine = eng })
	client, server := net.Pipe() // ServeConn takes any net.Conn
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(server) }()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawRedis{t: t, nc: client, rd: resp.NewReader(client, protocol.Limits{})}
	require.Equal(t, "+OK\r\n", rc.do("SET", "e", "1"))
	require.Equal(t, "$1\r\n1\r\n", rc.do("GET", "e"))
	require.NoError(t, client.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return after the client closed")
	}
	s.Close()
	client2, server2 := net.Pipe()
	defer client2.Close()
	require.ErrorIs(t, s.ServeConn(server2), proxy.ErrServerClosed)
}

// TestDialer: the Dialer makes its Server on the first dial, closes it
// when the last connection ends (linger 0), makes a new one on the next
// dial, and refuses dials after Close.
func TestDialer(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 2)
	cfg := proxy.Config{Name: "d", Protocol: protocol.Redis, Servers: entries(bs), Ring: shard.RingOptions{HashTag: "{}"}}
	_, err := proxy.NewDialer(proxy.Config{Name: "bad", Protocol: protocol.Redis}, 0)
	require.Error(t, err, "a Config New refuses")

	// mons[i] watches backend i: its other clients are the Server's.
	mons := make([]*testserver.RedisConn, len(bs))
	for i, be := range bs {
		mons[i] = testserver.DialRedis(t, be.Addr)
	}
	connected := func() int {
		n := 0
		for _, m := range mons {
			list, err := m.Do("CLIENT", "LIST")
			require.NoError(t, err)
			for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
				if !strings.Contains(line, "cmd=client|list") {
					n++
				}
			}
		}
		return n
	}
	for _, linger := range []time.Duration{0, 50 * time.Millisecond} {
		d, err := proxy.NewDialer(cfg, linger)
		require.NoError(t, err)
		ctx := context.Background()
		for round := range 2 {
			a, err := d.DialContext(ctx, "tcp", "ignored")
			require.NoError(t, err)
			b, err := d.DialContext(ctx, "tcp", "ignored")
			require.NoError(t, err)
			ra := &rawRedis{t: t, nc: a, rd: resp.NewReader(a, protocol.Limits{})}
			rb := &rawRedis{t: t, nc: b, rd: resp.NewReader(b, protocol.Limits{})}
			require.Equal(t, "+OK\r\n", ra.do("SET", fmt.Sprint("dk", round), "x"))
			require.Equal(t, "$1\r\nx\r\n", rb.do("GET", fmt.Sprint("dk", round)))
			require.Positive(t, connected())
			a.Close()
			b.Close()
			// The Server closes its backend connections once both are gone.
			require.Eventually(t, func() bool { return connected() == 0 }, 5*time.Second, 10*time.Millisecond, "linger %v round %d", linger, round)
		}
		require.NoError(t, d.Close())
		_, err = d.DialContext(ctx, "tcp", "x")
		require.ErrorIs(t, err, proxy.ErrDialerClosed)
	}
	assert.Equal(t, time.Duration(0), proxy.DefaultLinger(proxy.BackendOptions{}))
	assert.Equal(t, 7*time.Second, proxy.DefaultLinger(proxy.BackendOptions{AutoEject: true, RetryTimeout: 7 * time.Second}))
	assert.Positive(t, proxy.DefaultLinger(proxy.BackendOptions{AutoEject: true}))
}

// TestDialerCloseEndsConns: Close ends the connections open.
func TestDialerCloseEndsConns(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 1)
	d, err := proxy.NewDialer(proxy.Config{Name: "d", Protocol: protocol.Redis, Servers: entries(bs)}, time.Hour)
	require.NoError(t, err)
	nc, err := d.DialContext(context.Background(), "", "")
	require.NoError(t, err)
	defer nc.Close()
	rc := &rawRedis{t: t, nc: nc, rd: resp.NewReader(nc, protocol.Limits{})}
	require.Equal(t, "+PONG\r\n", rc.do("PING"))
	require.NoError(t, d.Close())
	_, err = rc.rd.ReadRawReply()
	require.True(t, errors.Is(err, io.EOF), "%v", err)
}
