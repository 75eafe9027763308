package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
)

// closedWithin reports how long the server took to close nc (reading and
// discarding what it sends), or false if it did not within max.
func closedWithin(nc net.Conn, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = nc.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, false
	}
	return time.Since(start), true
}

// TestClientTimeout checks that ClientTimeout closes a client holding half
// a request (slowloris) and an idle one, not one that keeps sending, and
// that without it such clients stay.
func TestClientTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out client timeouts; run without -short")
	}
	bs := startBackends(t, protocol.Redis, 1)
	half := []byte("*2\r\n$3\r\nGET\r\n$5\r\nke") // a GET cut short
	t.Run("off", func(t *testing.T) {
		_, addr := startProxy(t, protocol.Redis, bs, nil)
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		_, err = nc.Write(half)
		require.NoError(t, err)
		_, closed := closedWithin(nc, 700*time.Millisecond)
		assert.False(t, closed, "without client_timeout a slow client stays, as in twemproxy")
	})
	t.Run("on", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.ClientTimeout = timeout })
		slow, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer slow.Close()
		_, err = slow.Write(half)
		require.NoError(t, err)
		idle, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer idle.Close()

		busy := rawDial(t, addr)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 12 { // 1.2 s: four timeouts
				if busy.do("PING") != "+PONG\r\n" {
					return
				}
				time.Sleep(timeout / 3)
			}
		}()
		took, closed := closedWithin(slow, 5*time.Second)
		require.True(t, closed, "the slowloris client is not closed")
		assert.GreaterOrEqual(t, took, timeout-50*time.Millisecond)
		_, closed = closedWithin(idle, 5*time.Second)
		require.True(t, closed, "the idle client is not closed")
		<-done
		assert.Equal(t, "+PONG\r\n", busy.do("PING"), "a client that keeps sending stays")
		assert.Eventually(t, func() bool { return s.Stats().ClientErr >= 2 }, 5*time.Second, 10*time.Millisecond)
		t.Logf("slowloris client closed after %v (client_timeout %v)", took.Round(time.Millisecond), timeout)
	})
}

// TestOutputLimit checks that a client pipelining more replies than
// OutputLimit is told why and closed, that other clients are unaffected,
// and that a single request is not limited.
func TestOutputLimit(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	const limit = 1 << 20
	// Windows are sized to stay under the watermark, so the hard cap is
	// only passed by a window sized larger than it: a watermark above the
	// limit makes one.
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.OutputLimit, c.OutputWatermark = limit, 8<<20 })
	big := strings.Repeat("x", 100<<10)
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", "big", big))
	// One request whose reply passes the limit is answered.
	require.Equal(t, len(big)+len("$102400\r\n\r\n"), len(c.do("GET", "big")))
	require.Equal(t, "*2\r\n", c.do("MGET", "big", "big")[:4])

	// 100 pipelined GETs: 10 MB of replies.
	hog, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer hog.Close()
	var b []byte
	for range 100 {
		b = resp.AppendCommandString(b, "GET", "big")
	}
	_, err = hog.Write(b)
	require.NoError(t, err)
	_ = hog.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := resp.NewReader(bufio.NewReader(hog), protocol.Limits{})
	// An event loop answers a new client's first request alone (its reply
	// size sizes the windows after it): replies of whole windows under the
	// limit may come before the error, each intact.
	var reply []byte
	answered := 0
	for {
		reply, err = rd.ReadRawReply()
		require.NoError(t, err)
		if reply[0] == '-' {
			break
		}
		require.Len(t, reply, len(big)+len("$102400\r\n\r\n"), "reply %d", answered)
		answered++
	}
	assert.Less(t, answered, 100)
	assert.True(t, bytes.HasPrefix(reply, []byte("-ERR client output limit exceeded")), "%.200q", reply)
	_, err = rd.ReadRawReply()
	assert.ErrorIs(t, err, io.EOF, "the client is closed after the error")

	assert.Equal(t, "$102400\r\n", c.do("GET", "big")[:9], "another client is unaffected")
	assert.Eventually(t, func() bool { return s.Stats().ClientErr == 1 }, 5*time.Second, 10*time.Millisecond)
}

// TestOutputLimitMemcache is TestOutputLimit's cut-off for memcached.
func TestOutputLimitMemcache(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 1)
	_, addr := startProxy(t, protocol.Memcache, bs, func(c *proxy.Config) { c.OutputLimit, c.OutputWatermark = 1<<20, 8<<20 })
	mc := testserver.DialMemcache(t, addr)
	require.NoError(t, mc.Set([]byte("big"), bytes.Repeat([]byte("y"), 200<<10)))
	hog, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer hog.Close()
	_, err = hog.Write(bytes.Repeat([]byte("get big\r\n"), 50))
	require.NoError(t, err)
	_ = hog.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(hog)
	require.NoError(t, err)
	// Whole replies may come first (see TestOutputLimit), then the error.
	value := "VALUE big 0 204800\r\n" + strings.Repeat("y", 200<<10) + "\r\nEND\r\n"
	rest := string(all)
	for strings.HasPrefix(rest, value) {
		rest = rest[len(value):]
	}
	assert.True(t, strings.HasPrefix(rest, "SERVER_ERROR client output limit exceeded"), "%.100q", rest)
	got, err := mc.Get([]byte("big"))
	require.NoError(t, err)
	assert.Len(t, got["big"], 200<<10)
}

// TestNonReadingClient checks that a client that pipelines without ever
// reading holds the proxy's memory to one batch, does not slow the others,
// and is closed by ClientTimeout once its replies stop draining.
func TestNonReadingClient(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.ClientTimeout = 500 * time.Millisecond })
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", "v", strings.Repeat("z", 4<<10)))
	hog, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer hog.Close()
	req := resp.AppendCommandString(nil, "GET", "v")
	_ = hog.SetWriteDeadline(time.Now().Add(3 * time.Second))
	sent := 0
	for sent < 100_000 { // 400 MB of replies if it were read
		if _, err := hog.Write(req); err != nil {
			break // the proxy stopped reading, then closed
		}
		sent++
		if sent%1000 == 0 {
			// Others are served meanwhile.
			require.Equal(t, "+PONG\r\n", c.do("PING"))
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Had the proxy kept every reply, it would hold sent×4 KiB.
	t.Logf("the non-reading client wrote %d GETs (%d MB of replies); heap in use %d MB", sent, sent*4>>10, ms.HeapInuse>>20)
	assert.Less(t, ms.HeapInuse, uint64(64<<20), "memory follows the non-reading client's replies")
	// c, which has the same client_timeout, stays by sending.
	require.Eventually(t, func() bool { return c.do("PING") == "+PONG\r\n" && s.Stats().ClientErr == 1 },
		10*time.Second, 100*time.Millisecond, "the non-reading client is not closed by client_timeout")
	assert.Equal(t, "+PONG\r\n", c.do("PING"))
	assert.EqualValues(t, 1, s.Stats().ClientConnections)
}

// TestClientTimeoutReloadedOff checks that a Reload turning ClientTimeout
// off frees the clients connected under it, and that noreply requests
// still queued when Shutdown begins are sent.
func TestClientTimeoutReloadedOff(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.ClientTimeout = 300 * time.Millisecond })
	c := rawDial(t, addr)
	require.Equal(t, "+PONG\r\n", c.do("PING"))
	cfg := s.Config()
	cfg.ClientTimeout = 0
	require.NoError(t, s.Reload(cfg))
	require.Equal(t, "+PONG\r\n", c.do("PING")) // re-arms with the new setting
	time.Sleep(700 * time.Millisecond)
	assert.Equal(t, "+PONG\r\n", c.do("PING"), "the timeout of the old configuration still applies")
}

// TestShutdownSendsQueuedNoreply checks that Shutdown sends memcached
// noreply requests still queued (here behind a slow connect) before
// closing the backends.
func TestShutdownSendsQueuedNoreply(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 1)
	cfg := proxy.Config{Name: "noreply", Protocol: protocol.Memcache, Servers: entries(bs)}
	d := &net.Dialer{}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(300 * time.Millisecond)
		return d.DialContext(ctx, network, addr)
	}
	s, err := proxy.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(l) }()
	nc, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	_, err = nc.Write([]byte("set queued 0 0 1 noreply\r\nx\r\n"))
	require.NoError(t, err)
	nc.Close()
	require.Eventually(t, func() bool { return s.Stats().ClientEOF == 1 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	// memcached runs each connection on its own thread: the set may be
	// applied a moment after the proxy's connection closed.
	mc := testserver.DialMemcache(t, bs[0].Addr)
	assert.Eventually(t, func() bool {
		got, err := mc.Get([]byte("queued"))
		return err == nil && string(got["queued"]) == "x"
	}, 2*time.Second, 5*time.Millisecond, "the queued noreply set was not sent")
}
