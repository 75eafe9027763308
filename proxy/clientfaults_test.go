package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
)

// TestClientHalfRequest documents the proxy's answer to a slowloris
// client, one that sends half a request and holds the connection: there is
// no client idle or request timeout (twemproxy has none either; its
// timeout: is for servers), so the connection stays open with the partial
// request buffered for as long as the client likes, and the request is
// served when its last byte arrives. Other clients are unaffected, and
// Shutdown does not wait for the half request: it closes the connection
// after its drain grace period. What bounds such clients is
// client_connections (Config.MaxClients).
func TestClientHalfRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("slowloris clients held through a Shutdown grace period: slow, not part of the -short loop")
	}
	for _, tt := range []struct {
		kind       protocol.Kind
		half, rest string
		want       string
		other      string
		otherWant  string
	}{
		{protocol.Redis, "*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$5\r\nva", "lue\r\n", "+OK\r\n", "PING\r\n", "+PONG\r\n"},
		{protocol.Memcache, "set slow 0 0 5\r\nva", "lue\r\n", "STORED\r\n", "mn\r\n", "MN\r\n"},
	} {
		t.Run(tt.kind.String(), func(t *testing.T) {
			bs := startBackends(t, tt.kind, 2)
			s, addr := startProxy(t, tt.kind, bs, nil)
			slow := dialRaw(t, addr)
			writeAll(t, slow, tt.half)
			const hold = time.Second
			deadline := time.Now().Add(hold)
			other := dialRaw(t, addr)
			for time.Now().Before(deadline) {
				assert.Equal(t, tt.otherWant, roundTrip(t, other, tt.other, len(tt.otherWant)), "another client is served")
				time.Sleep(50 * time.Millisecond)
			}
			// Still open, nothing written: no timeout closed it.
			_ = slow.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := slow.Read(make([]byte, 1))
			assert.Zero(t, n)
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the half request is still waited for after %v", hold)
			assert.Equal(t, int64(2), s.Stats().ClientConnections)
			// The rest arrives: the request is served.
			assert.Equal(t, tt.want, roundTrip(t, slow, tt.rest, len(tt.want)))

			// Shutdown closes a connection holding half a request after
			// the drain grace period; it does not wait for the rest.
			writeAll(t, slow, tt.half)
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, s.Shutdown(ctx))
			assert.Less(t, time.Since(start), time.Second, "Shutdown with a client holding half a request")
			_ = slow.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = io.ReadAll(slow)
			assert.NoError(t, err, "closed with FIN")
		})
	}
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

func writeAll(t *testing.T, nc net.Conn, s string) {
	t.Helper()
	_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(nc, s)
	require.NoError(t, err)
}

// roundTrip writes req and reads exactly n bytes of reply.
func roundTrip(t *testing.T, nc net.Conn, req string, n int) string {
	t.Helper()
	writeAll(t, nc, req)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	_, err := io.ReadFull(nc, b)
	require.NoError(t, err)
	return string(b)
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestClientClaimsBeyondLimits: requests whose headers claim more than the
// Limits allow (counts and lengths up to 2^31, far beyond what the test
// sends) get the real server's error reply, and ones that claim the most
// the Limits allow but never send it cost the proxy only what arrived.
// TotalAlloc (of the whole process, proxy included) must grow by less
// than maxAlloc for each, while the claims are 512 MiB and more (a count
// claims 24 bytes of argument slice per element).
func TestClientClaimsBeyondLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("requests claiming up to 2^31 elements or bytes: part of the client-fault runs, not of the -short loop")
	}
	const maxAlloc = 1 << 20
	small := protocol.Limits{MaxArgs: 10, MaxBulk: 1000}
	big := strings.Repeat("v", 2_000_000)
	tests := []struct {
		name   string
		kind   protocol.Kind
		limits protocol.Limits
		give   string
		want   string // the reply (all of it)
		closed bool   // the proxy closes the connection after the reply
	}{
		{"redis: 10^9 arguments", protocol.Redis, protocol.Limits{}, "*1000000000\r\n",
			"-ERR Protocol error: invalid multibulk length\r\n", true},
		{"redis: 2^31-1 arguments", protocol.Redis, protocol.Limits{}, "*2147483647\r\n$3\r\nGET\r\n",
			"-ERR Protocol error: invalid multibulk length\r\n", true},
		{"redis: 2 GiB bulk", protocol.Redis, protocol.Limits{}, "*2\r\n$3\r\nGET\r\n$2147483648\r\nabc",
			"-ERR Protocol error: invalid bulk length\r\n", true},
		{"redis: bulk one over MaxBulk", protocol.Redis, protocol.Limits{}, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n",
			"-ERR Protocol error: invalid bulk length\r\n", true},
		{"redis: MaxArgs arguments announced, not sent", protocol.Redis, protocol.Limits{}, "*1048576\r\n$4\r\nMGET\r\n$1\r\nk\r\n",
			"", false},
		{"redis: MaxBulk announced, not sent", protocol.Redis, protocol.Limits{}, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc",
			"", false},
		{"redis: header line of 64 KiB", protocol.Redis, protocol.Limits{}, "*1\r\n$" + strings.Repeat("1", 70_000),
			"-ERR Protocol error: too big bulk count string\r\n", true},
		{"redis: inline line of 64 KiB", protocol.Redis, protocol.Limits{}, "GET " + strings.Repeat("k", 70_000),
			"-ERR Protocol error: too big inline request\r\n", true},
		{"redis: Limits.MaxArgs", protocol.Redis, small, "*11\r\n",
			"-ERR Protocol error: invalid multibulk length\r\n", true},
		{"redis: Limits.MaxBulk", protocol.Redis, small, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1001\r\n",
			"-ERR Protocol error: invalid bulk length\r\n", true},
		// As memcached: a length beyond int32 is a bad command line, one
		// beyond the limit a too-large object whose data is swallowed.
		{"memcache: 2 GiB data block", protocol.Memcache, protocol.Limits{}, "set k 0 0 2147483648\r\nabc",
			"CLIENT_ERROR bad command line format\r\n", false},
		{"memcache: data block one over MaxBulk", protocol.Memcache, protocol.Limits{}, "set k 0 0 536870913\r\nabc",
			"SERVER_ERROR object too large for cache\r\n", false},
		{"memcache: MaxBulk announced, not sent", protocol.Memcache, protocol.Limits{}, "set k 0 0 536870912\r\nabc",
			"", false},
		{"memcache: command line of 64 KiB", protocol.Memcache, protocol.Limits{}, "delete " + strings.Repeat("k", 70_000),
			"CLIENT_ERROR line too long\r\n", true},
		// A get line may be longer (up to Limits.MaxRequest): one not yet
		// ended costs what arrived.
		{"memcache: get line of 70 KB, not ended", protocol.Memcache, protocol.Limits{}, "get " + strings.Repeat("k ", 35_000),
			"", false},
		{"memcache: get line over Limits.MaxRequest", protocol.Memcache, protocol.Limits{MaxRequest: 100_000}, "gets " + strings.Repeat("k ", 60_000),
			"CLIENT_ERROR line too long\r\n", true},
		// memcached swallows a too-large data block and reads on; the
		// 2 MB block is skipped as it arrives, without being buffered.
		{"memcache: Limits.MaxBulk, data sent", protocol.Memcache, small, "set k 0 0 2000000\r\n" + big + "\r\nget k\r\n",
			"SERVER_ERROR object too large for cache\r\nEND\r\n", false},
		{"memcache: Limits.MaxArgs", protocol.Memcache, small, "get a b c d e f g h i j k\r\nmn\r\n",
			"CLIENT_ERROR too many keys\r\nMN\r\n", false},
	}
	servers := map[protocol.Kind][]backend{
		protocol.Redis:    startBackends(t, protocol.Redis, 2),
		protocol.Memcache: startBackends(t, protocol.Memcache, 2),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startProxy(t, tt.kind, servers[tt.kind], func(c *proxy.Config) { c.Limits = tt.limits })
			give := []byte(tt.give)
			runtime.GC()
			before := totalAlloc()
			nc := dialRaw(t, addr)
			_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, err := nc.Write(give)
			require.NoError(t, err)
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(tt.want))
			_, err = io.ReadFull(nc, got)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			if tt.closed {
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := nc.Read(make([]byte, 1))
				assert.Zero(t, n)
				assert.True(t, err == io.EOF || errors.Is(err, syscall.ECONNRESET), "closed by the proxy: %v", err)
			} else {
				// Still open and waiting for the rest of its claim.
				_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, err := nc.Read(make([]byte, 1))
				assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			}
			nc.Close()
			require.Eventually(t, func() bool { return s.Stats().ClientConnections == 0 }, 5*time.Second, 5*time.Millisecond)
			delta := totalAlloc() - before
			t.Logf("allocated %d KiB for %d bytes sent", delta>>10, len(tt.give))
			assert.Less(t, delta, uint64(maxAlloc), "allocated for a claim")
		})
	}
}

// garbage returns a random byte stream of one of several kinds: uniform
// bytes, bytes from the protocol's alphabet, or valid requests with bytes
// flipped, inserted and cut.
func garbage(rng *rand.Rand, kind protocol.Kind) []byte {
	var alphabet string
	var valid []string
	if kind == protocol.Redis {
		alphabet = "*$:+-_,#!=(>%~|\r\n\r\n0123456789-  \"'\\xGETSMDLabck{}"
		valid = []string{
			"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nx\r\n",
			"*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nc\r\n",
			"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nc\r\n$1\r\n2\r\n", "PING\r\n", "GET \"a\\x41\" 'b'\r\n",
			"*4\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$1\r\na\r\n", "*2\r\n$4\r\nAUTH\r\n$1\r\nx\r\n",
		}
	} else {
		alphabet = "getsadlcrnoply VALUE0123456789 \r\n\r\n-"
		valid = []string{
			"get a b c\r\n", "gets a\r\n", "set a 0 0 1\r\nx\r\n", "add b 1 0 2 noreply\r\nxy\r\n",
			"delete a\r\n", "incr n 1\r\n", "touch a 10\r\n", "gat 0 a b\r\n", "cas a 0 0 1 1\r\nz\r\n",
			"version\r\n", "mn\r\n", "mg a v\r\n", "stats\r\n", "append a 0 0 1\r\nq\r\n",
		}
	}
	n := rng.IntN(4 << 10)
	b := make([]byte, 0, n+64)
	switch rng.IntN(3) {
	case 0:
		for range n {
			b = append(b, byte(rng.IntN(256)))
		}
	case 1:
		for range n {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
	default:
		for len(b) < n {
			b = append(b, valid[rng.IntN(len(valid))]...)
		}
		for range 1 + rng.IntN(8) {
			if len(b) == 0 {
				break
			}
			switch i := rng.IntN(len(b)); rng.IntN(3) {
			case 0:
				b[i] = byte(rng.IntN(256))
			case 1:
				b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
			default:
				b = b[:i]
			}
		}
	}
	return b
}

// TestClientGarbage sends hundreds of random byte streams over real
// connections, many at a time, while a canary client keeps checking its
// own keys. The proxy must not crash or hang: each garbage connection gets
// well-formed replies (error replies among them) and is closed after its
// client half-closes, if not before; the canary sees no error.
func TestClientGarbage(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of random garbage streams: a long fault run, not part of the -short loop")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WALNUT_GARBAGE_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (set WALNUT_GARBAGE_SEED to repeat)", seed)
	const conns, workers = 1000, 16
	for _, kind := range []protocol.Kind{protocol.Redis, protocol.Memcache} {
		t.Run(kind.String(), func(t *testing.T) {
			bs := startBackends(t, kind, 2)
			s, addr := startProxy(t, kind, bs, nil)
			stop := make(chan struct{})
			canaryDone := make(chan int)
			go canary(t, kind, addr, stop, canaryDone)

			var next atomic.Int64
			var wg sync.WaitGroup
			var errored, replied atomic.Int64
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, uint64(w)))
					for next.Add(1) <= conns {
						in := garbage(rng, kind)
						out, err := sendGarbage(addr, in)
						if err != nil {
							t.Errorf("%s: input %q: %v", kind, in, err)
							return
						}
						if len(out) > 0 {
							replied.Add(1)
						}
						if bad := checkReplies(kind, out); bad != "" {
							t.Errorf("%s: input %q: replies %q: %s", kind, in, out, bad)
							return
						}
						if bytes.Contains(out, []byte("ERR")) {
							errored.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			close(stop)
			rounds := <-canaryDone
			require.Eventually(t, func() bool { return s.Stats().ClientConnections == 0 }, 5*time.Second, 5*time.Millisecond,
				"every garbage connection closed")
			st := s.Stats()
			t.Logf("%s: %d garbage connections, %d answered, %d with an error reply, %d closed on an error; canary: %d clean round trips",
				kind, conns, replied.Load(), errored.Load(), st.ClientErr, rounds)
			assert.Positive(t, rounds)
		})
	}
}

// sendGarbage writes in on a new connection, half-closes it, and returns
// everything the proxy sends until it closes. A reset counts as a close
// (the proxy closes after a protocol error without reading the rest, as
// redis-server does); a connection still open after 10 s is an error.
func sendGarbage(addr string, in []byte) ([]byte, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	read := make(chan []byte, 1)
	readErr := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(nc)
		read <- b
		readErr <- err
	}()
	if _, err := nc.Write(in); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		return nil, err
	}
	_ = nc.(*net.TCPConn).CloseWrite()
	out := <-read
	if err := <-readErr; err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return out, fmt.Errorf("not closed by the proxy: %w", err)
	}
	return out, nil
}

// checkReplies reports what is wrong with out as a stream of replies, or
// "". A stream cut short by a reset may end in a partial reply.
func checkReplies(kind protocol.Kind, out []byte) string {
	if kind == protocol.Memcache {
		if len(out) > 0 && !bytes.Contains(out, []byte("\r\n")) {
			return "not a line"
		}
		return ""
	}
	rd := resp.NewReader(bytes.NewReader(out), protocol.Limits{})
	for {
		_, err := rd.ReadRawReply()
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return ""
		case err != nil:
			return err.Error()
		}
	}
}

// canary sets and gets its own keys on addr until stop is closed, failing
// t on any wrong reply, then sends the number of round trips to done.
func canary(t *testing.T, kind protocol.Kind, addr string, stop <-chan struct{}, done chan<- int) {
	rounds := 0
	defer func() { done <- rounds }()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("canary: %v", err)
		return
	}
	defer nc.Close()
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		key, val := fmt.Sprintf("canary-%d", i%50), fmt.Sprintf("v%08d", i)
		var reqs, want []string
		if kind == protocol.Redis {
			reqs = []string{fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$9\r\n%s\r\n", len(key), key, val),
				fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)}
			want = []string{"+OK\r\n", "$9\r\n" + val + "\r\n"}
		} else {
			reqs = []string{fmt.Sprintf("set %s 0 0 9\r\n%s\r\n", key, val), fmt.Sprintf("get %s\r\n", key)}
			want = []string{"STORED\r\n", fmt.Sprintf("VALUE %s 0 9\r\n%s\r\nEND\r\n", key, val)}
		}
		for j := range reqs {
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, reqs[j]); err != nil {
				t.Errorf("canary: %v", err)
				return
			}
			b := buf[:len(want[j])]
			if _, err := io.ReadFull(nc, b); err != nil || string(b) != want[j] {
				t.Errorf("canary: %q: got %q (%v), want %q", reqs[j], b, err, want[j])
				return
			}
		}
		rounds++
	}
}

// TestMalformedFramingReplies extends TestRedisMalformedFraming to more
// framing errors and to memcached: each gets the real server's reply after
// the replies to the requests before it; Redis then closes the connection
// (the stream cannot be resynchronised), memcached reads on where
// memcached does and closes where it cannot.
func TestMalformedFramingReplies(t *testing.T) {
	tests := []struct {
		kind   protocol.Kind
		give   string
		want   string // after the reply to the leading request
		closed bool
	}{
		{protocol.Redis, "*1\r\n*1\r\n", "-ERR Protocol error: expected '$', got '*'\r\n", true},
		{protocol.Redis, "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{protocol.Redis, "*1\r\n$01\r\nx\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{protocol.Redis, "*+1\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
		{protocol.Redis, "*1\r\n$1\r\nx\r\n*x\r\n", "-ERR unknown command 'x', with args beginning with: \r\n-ERR Protocol error: invalid multibulk length\r\n", true},
		{protocol.Redis, "SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n", true},
		{protocol.Redis, "GET 'a'b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n", true},
		{protocol.Memcache, "set k 0 0 3\r\nabcd\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n", false},
		{protocol.Memcache, "set k 0 0 x\r\n", "CLIENT_ERROR bad command line format\r\n", false},
		{protocol.Memcache, "set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n", false},
		{protocol.Memcache, "incr k abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n", false},
		{protocol.Memcache, "get " + strings.Repeat("k", 251) + "\r\n", "CLIENT_ERROR bad command line format\r\n", false},
		{protocol.Memcache, "\x00\x01\xff\r\n", "ERROR\r\n", false},
		{protocol.Memcache, "GET / HTTP/1.1\r\n", "ERROR\r\n", true}, // as memcached
	}
	servers := map[protocol.Kind][]backend{
		protocol.Redis:    startBackends(t, protocol.Redis, 1),
		protocol.Memcache: startBackends(t, protocol.Memcache, 1),
	}
	addrs := map[protocol.Kind]string{}
	for kind, bs := range servers {
		_, addrs[kind] = startProxy(t, kind, bs, nil)
	}
	lead := map[protocol.Kind][2]string{
		protocol.Redis:    {"PING\r\n", "+PONG\r\n"},
		protocol.Memcache: {"mn\r\n", "MN\r\n"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %q", tt.kind, tt.give), func(t *testing.T) {
			nc := dialRaw(t, addrs[tt.kind])
			l := lead[tt.kind]
			want := l[1] + tt.want
			got := roundTrip(t, nc, l[0]+tt.give, len(want))
			assert.Equal(t, want, got)
			if tt.closed {
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := nc.Read(make([]byte, 1))
				assert.Zero(t, n)
				assert.ErrorIs(t, err, io.EOF)
				return
			}
			assert.Equal(t, l[1], roundTrip(t, nc, l[0], len(l[1])), "the connection reads on")
		})
	}
}
