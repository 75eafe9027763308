package pool_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

func TestNewValidates(t *testing.T) {
	ok := pool.Options{Framer: lineFramer}
	tests := []struct {
		give   string
		server pool.Server
		opts   pool.Options
		want   string
	}{
		{give: "no framer", server: one("x:1"), opts: pool.Options{}, want: "Framer is nil"},
		{give: "empty addr", opts: ok, want: "empty server address"},
		{give: "bad network", server: pool.Server{Network: "udp", Addr: "x:1"}, opts: ok, want: "unsupported network"},
		{give: "negative conns", server: one("x:1"), opts: pool.Options{Framer: lineFramer, Conns: -1}, want: "Conns is negative"},
		{give: "negative limit", server: one("x:1"), opts: pool.Options{Framer: lineFramer, FailureLimit: -1}, want: "FailureLimit is negative"},
		{give: "negative timeout", server: one("x:1"), opts: pool.Options{Framer: lineFramer, Timeout: -1}, want: "negative duration"},
		{give: "empty init", server: one("x:1"), opts: pool.Options{Framer: lineFramer, Init: [][]byte{nil}}, want: "Init[0] is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			p, err := pool.New(tt.server, tt.opts)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestErrorTexts: each error has a Go-style text of its own, so logs tell
// the causes apart (the proxy maps them to twemproxy's reply texts).
func TestErrorTexts(t *testing.T) {
	all := []error{
		pool.ErrConnRefused, pool.ErrEjected, pool.ErrTimedOut, pool.ErrEOF, pool.ErrUnknown,
		pool.ErrConnReset, pool.ErrHostDown, pool.ErrInvalid, pool.ErrClosed,
	}
	seen := map[string]bool{}
	for _, err := range all {
		text := err.Error()
		assert.True(t, strings.HasPrefix(text, "pool: "), text)
		assert.Equal(t, strings.ToLower(text), text, "lower case")
		assert.False(t, seen[text], "duplicate text %q", text)
		seen[text] = true
	}
}

// TestPipelinedFake checks FIFO matching of many concurrent requests over
// one connection, and that the pool batches them.
func TestPipelinedFake(t *testing.T) {
	var reads atomic.Int64
	f := startFake(t, func(_ int, c net.Conn) {
		echoLines(0, countingConn{c, &reads})
	})
	// The framer checks that each reply is framed with its own request.
	framer := func(b []byte, req *pool.Request) (int, error) {
		n, _ := lineFramer(b, req)
		if n > 0 && string(b[1:n]) != string(req.Data) {
			return 0, fmt.Errorf("reply %q framed with request %q", b[:n], req.Data)
		}
		return n, nil
	}
	p := newPool(t, one(f.addr()), pool.Options{Framer: framer})
	const goroutines, each = 50, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				line := fmt.Sprintf("g%d-%d\r\n", g, j)
				reply, err := p.Call(context.Background(), []byte(line))
				if !assert.NoError(t, err) || !assert.Equal(t, "+"+line, string(reply)) {
					return
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), f.accepts.Load(), "one connection")
	st := p.Stats()
	assert.Equal(t, int64(goroutines*each), st.Requests)
	assert.Equal(t, int64(goroutines*each), st.Responses)
	assert.Zero(t, st.InQueue+st.OutQueue+st.InQueueBytes+st.OutQueueBytes)
	assert.Equal(t, int64(1), st.ServerConnections)
	assert.Less(t, reads.Load(), int64(goroutines*each), "requests were batched")
}

type countingConn struct {
	net.Conn
	reads *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(b)
}

// TestReplySplitAcrossReads sends replies in small pieces and a large one,
// with a framer that gives the length hint and one that does not.
func TestReplySplitAcrossReads(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			var reply string
			switch strings.TrimSpace(line) {
			case "small":
				reply = "*2\r\n" + bulk("hello") + ":42\r\n"
			case "big":
				reply = bulk(big)
			}
			// Byte by byte for the small reply, 64 KiB pieces for the big one.
			step := 1
			if len(reply) > 1000 {
				step = 64 << 10
			}
			for i := 0; i < len(reply); i += step {
				if _, err := c.Write([]byte(reply[i:min(i+step, len(reply))])); err != nil {
					return
				}
				if step == 1 {
					time.Sleep(time.Millisecond)
				}
			}
		}
	})
	noHint := func(b []byte, req *pool.Request) (int, error) {
		n, err := respFramer(b, req)
		return max(n, 0), err
	}
	for _, tt := range []struct {
		give   string
		framer pool.Framer
	}{{"hint", respFramer}, {"no hint", noHint}} {
		t.Run(tt.give, func(t *testing.T) {
			p := newPool(t, one(f.addr()), pool.Options{Framer: tt.framer})
			small := doAsync(p, []byte("small\r\n"))
			large := doAsync(p, []byte("big\r\n"))
			small2 := doAsync(p, []byte("small\r\n"))
			for _, ch := range []<-chan result{small, small2} {
				r := await(t, ch)
				require.NoError(t, r.err)
				assert.Equal(t, "*2\r\n$5\r\nhello\r\n:42\r\n", r.reply)
			}
			r := await(t, large)
			require.NoError(t, r.err)
			assert.Equal(t, bulk(big), r.reply)
			assert.Equal(t, int64(3), p.Stats().Responses)
		})
	}
}

// TestGarbageReply: a reply the framer rejects fails every request on the
// connection with ErrInvalid and closes it; the next request
// redials.
func TestGarbageReply(t *testing.T) {
	closed := make(chan struct{})
	f := startFake(t, func(n int, c net.Conn) {
		if n > 1 {
			echoLines(n, c)
			return
		}
		r := bufio.NewReader(c)
		for range 3 {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
		_, _ = c.Write([]byte("+fine\r\n%garbage\r\n"))
		_, _ = r.ReadByte() // returns when the pool closes the connection
		close(closed)
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: respFramer})
	chs := []<-chan result{
		doAsync(p, []byte("a\r\n")), doAsync(p, []byte("b\r\n")), doAsync(p, []byte("c\r\n")),
	}
	r := await(t, chs[0])
	require.NoError(t, r.err)
	assert.Equal(t, "+fine\r\n", r.reply)
	for _, ch := range chs[1:] {
		r := await(t, ch)
		assert.ErrorIs(t, r.err, pool.ErrInvalid)
		assert.ErrorIs(t, r.err, pool.ErrInvalid)
	}
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("the pool did not close the connection")
	}
	st := p.Stats()
	assert.Equal(t, int64(1), st.ServerErr)
	assert.Equal(t, int64(1), st.Responses)
	reply, err := p.Call(context.Background(), []byte("again\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "+again\r\n", string(reply))
	assert.Equal(t, int32(2), f.accepts.Load())
}

// TestStrayReply: a reply with no request outstanding closes the connection.
func TestStrayReply(t *testing.T) {
	f := startFake(t, func(n int, c net.Conn) {
		if n > 1 {
			echoLines(n, c)
			return
		}
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		_, _ = c.Write([]byte("+one\r\n+stray\r\n"))
		_, _ = r.ReadByte()
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	reply, err := p.Call(context.Background(), []byte("x\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "+one\r\n", string(reply))
	require.Eventually(t, func() bool { return p.Stats().ServerErr == 1 }, waitFor, time.Millisecond)
	assert.Zero(t, p.Stats().ServerConnections)
	reply, err = p.Call(context.Background(), []byte("y\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "+y\r\n", string(reply))
}

// TestNoReply: NoReply requests complete once written and do not take a
// reply; replies still match the other requests.
func TestNoReply(t *testing.T) {
	got := make(chan string, 10)
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got <- line
			if !strings.HasPrefix(line, "nr") {
				if _, err := c.Write([]byte("+" + line)); err != nil {
					return
				}
			}
		}
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, Timeout: time.Minute})
	var chs []<-chan result
	for _, line := range []string{"nr1\r\n", "get1\r\n", "nr2\r\n", "nr3\r\n", "get2\r\n"} {
		ch := make(chan result, 1)
		p.Do(&pool.Request{Data: []byte(line), NoReply: strings.HasPrefix(line, "nr"), Done: func(reply []byte, err error) {
			ch <- result{string(reply), err}
		}})
		chs = append(chs, ch)
	}
	want := []result{{}, {reply: "+get1\r\n"}, {}, {}, {reply: "+get2\r\n"}}
	for i, ch := range chs {
		assert.Equal(t, want[i], await(t, ch), "request %d", i)
	}
	for _, line := range []string{"nr1\r\n", "get1\r\n", "nr2\r\n", "nr3\r\n", "get2\r\n"} {
		assert.Equal(t, line, <-got)
	}
	st := p.Stats()
	assert.Equal(t, int64(5), st.Requests)
	assert.Equal(t, int64(2), st.Responses)
	assert.Zero(t, st.InQueue+st.OutQueue)
}

// TestTimeoutSilentServer: a server that accepts and reads but never
// answers. Every request in flight fails with ErrTimedOut when
// the oldest's time is up, the connection is closed (one failure), and the
// next request redials. NoReply requests are exempt.
func TestTimeoutSilentServer(t *testing.T) {
	f := startFake(t, silent)
	const timeout = 300 * time.Millisecond
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, Timeout: timeout})
	start := time.Now()
	nr := make(chan result, 1)
	p.Do(&pool.Request{Data: []byte("nr\r\n"), NoReply: true, Done: func(reply []byte, err error) {
		nr <- result{string(reply), err}
	}})
	var chs []<-chan result
	for i := range 3 {
		chs = append(chs, doAsync(p, []byte("get"+strconv.Itoa(i)+"\r\n")))
	}
	assert.Equal(t, result{}, await(t, nr), "NoReply completes once written")
	for _, ch := range chs {
		r := await(t, ch)
		assert.ErrorIs(t, r.err, pool.ErrTimedOut)
		assert.ErrorIs(t, r.err, pool.ErrTimedOut)
	}
	assert.GreaterOrEqual(t, time.Since(start), timeout)
	st := p.Stats()
	assert.Equal(t, int64(1), st.ServerTimedOut, "one failure however many requests")
	assert.Zero(t, st.ServerErr+st.ServerEOF)
	assert.Zero(t, st.InQueue+st.OutQueue)

	_, err := p.Call(context.Background(), []byte("again\r\n"))
	assert.ErrorIs(t, err, pool.ErrTimedOut)
	assert.Equal(t, int32(2), f.accepts.Load(), "the next request redialled")
	assert.Equal(t, int64(2), p.Stats().ServerTimedOut)
}

// TestTimeoutRearms: requests answered in time keep their connection for
// longer than Timeout in all: the deadline follows the oldest request, and
// none is left armed while the connection is idle.
func TestTimeoutRearms(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out several request timeouts; run without -short")
	}
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
			if _, err := c.Write([]byte("+" + line)); err != nil {
				return
			}
		}
	})
	const timeout = 2 * time.Second
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, Timeout: timeout})
	var slowest time.Duration
	for start, i := time.Now(), 0; time.Since(start) < timeout*5/4; i++ {
		t0 := time.Now()
		reply, err := p.Call(context.Background(), []byte("r"+strconv.Itoa(i)+"\r\n"))
		slowest = max(slowest, time.Since(t0))
		require.NoError(t, err, "call %d, slowest so far %v", i, slowest)
		require.Equal(t, "+r"+strconv.Itoa(i)+"\r\n", string(reply))
	}
	time.Sleep(100 * time.Millisecond) // idle
	_, err := p.Call(context.Background(), []byte("last\r\n"))
	require.NoError(t, err)
	assert.Equal(t, int32(1), f.accepts.Load())
	assert.Zero(t, p.Stats().ServerTimedOut)
	t.Logf("slowest call %v", slowest)
}

// TestTimeoutWhileDialling: the clock starts when the request is queued,
// so a slow connection attempt times it out.
func TestTimeoutWhileDialling(t *testing.T) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	p := newPool(t, one("192.0.2.1:6379"), pool.Options{Framer: lineFramer, Dial: dial, Timeout: 100 * time.Millisecond})
	r := await(t, doAsync(p, []byte("x\r\n")))
	assert.ErrorIs(t, r.err, pool.ErrTimedOut)
	assert.Equal(t, int64(1), p.Stats().ServerTimedOut)

	p2 := newPool(t, one("192.0.2.1:6379"), pool.Options{Framer: lineFramer, Dial: dial, DialTimeout: 100 * time.Millisecond})
	r = await(t, doAsync(p2, []byte("x\r\n")))
	assert.ErrorIs(t, r.err, pool.ErrTimedOut)
	assert.Equal(t, int64(1), p2.Stats().ServerErr, "a connect timeout is a server error")
}

func TestDialErrors(t *testing.T) {
	port := testserver.FreePort(t, "127.0.0.1")
	tests := []struct {
		give string
		dial func(ctx context.Context, network, addr string) (net.Conn, error)
		want error
		text string
	}{
		{give: "refused", want: pool.ErrConnRefused, text: "pool: connection refused"},
		{give: "dns", want: pool.ErrHostDown, text: "pool: host is down", dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nohost", IsNotFound: true}}
		}},
		{give: "other", want: pool.ErrUnknown, text: "pool: connection failed", dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("tls: handshake failure")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			p := newPool(t, one("127.0.0.1:"+strconv.Itoa(port)), pool.Options{Framer: lineFramer, Dial: tt.dial})
			_, err := p.Call(context.Background(), []byte("x\r\n"))
			assert.ErrorIs(t, err, tt.want)
			assert.Equal(t, tt.text, err.Error())
			assert.Equal(t, int64(1), p.Stats().ServerErr)
			assert.Equal(t, int64(1), p.Stats().Requests)
			assert.Zero(t, p.Stats().InQueue)
		})
	}
}

// TestEjectionFake walks the ejection cycle against a port that refuses,
// then accepts.
func TestEjectionFake(t *testing.T) {
	port := testserver.FreePort(t, "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	events := make(chan bool, 10)
	p := newPool(t, one(addr), pool.Options{
		Framer: lineFramer, AutoEject: true, FailureLimit: 3, RetryTimeout: 100 * time.Millisecond,
		Probe:    []byte("PING\r\n"),
		OnChange: func(ejected bool) { events <- ejected },
	})
	for range 3 {
		_, err := p.Call(context.Background(), []byte("x\r\n"))
		require.ErrorIs(t, err, pool.ErrConnRefused)
	}
	require.True(t, p.Ejected())
	assert.True(t, <-events)
	_, err := p.Call(context.Background(), []byte("x\r\n"))
	assert.ErrorIs(t, err, pool.ErrEjected)
	st := p.Stats()
	assert.Equal(t, int64(3), st.Requests, "fast failures are not requests")
	assert.Equal(t, int64(1), st.Ejects)
	assert.InDelta(t, time.Now().UnixMicro(), st.ServerEjectedAt, float64(waitFor.Microseconds()))

	time.Sleep(400 * time.Millisecond) // several probes, all refused
	assert.True(t, p.Ejected())
	assert.Empty(t, events)

	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	f := serveFake(t, ln, echoLines)
	select {
	case ejected := <-events:
		assert.False(t, ejected)
	case <-time.After(waitFor):
		t.Fatal("not reinstated")
	}
	assert.False(t, p.Ejected())
	reply, err := p.Call(context.Background(), []byte("back\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "+back\r\n", string(reply))
	assert.Equal(t, int32(2), f.accepts.Load(), "the probe's connection, then the pool's")
}

// TestProbeFailureReply: a probe answered with a failure reply does not
// reinstate.
func TestProbeFailureReply(t *testing.T) {
	var loading atomic.Bool
	loading.Store(true)
	f := startFake(t, func(n int, c net.Conn) {
		r := bufio.NewReader(c)
		if n == 1 {
			_, _ = r.ReadString('\n')
			return // the first connection closes after one request: one failure
		}
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			reply := "+PONG\r\n"
			if loading.Load() {
				reply = "-LOADING Redis is loading the dataset in memory\r\n"
			}
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
	})
	events := make(chan bool, 10)
	p := newPool(t, one(f.addr()), pool.Options{
		Framer: lineFramer, IsFailure: redisFailure, AutoEject: true, FailureLimit: 1,
		RetryTimeout: 50 * time.Millisecond, Probe: []byte("PING\r\n"),
		OnChange: func(ejected bool) { events <- ejected },
	})
	_, err := p.Call(context.Background(), []byte("x\r\n"))
	require.ErrorIs(t, err, pool.ErrEOF)
	require.True(t, <-events)
	require.Eventually(t, func() bool { return f.accepts.Load() >= 4 }, waitFor, time.Millisecond, "probes keep running")
	assert.True(t, p.Ejected())
	loading.Store(false)
	select {
	case ejected := <-events:
		assert.False(t, ejected)
	case <-time.After(waitFor):
		t.Fatal("not reinstated")
	}
}

// TestOneEventOneFailure is the fix for twemproxy #430: a server closing
// all of its Conns connections at once is one failure, not Conns.
func TestOneEventOneFailure(t *testing.T) {
	f := startFake(t, echoLines)
	var changes atomic.Int32
	p := newPool(t, one(f.addr()), pool.Options{
		Framer: lineFramer, Conns: 3, Preconnect: true, AutoEject: true, FailureLimit: 2,
		OnChange: func(bool) { changes.Add(1) },
	})
	// Connected is not accepted: closeConns closes only what the fake
	// has accepted, which lags on a loaded machine.
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return p.Stats().ServerConnections == 3 && len(f.conns) == 3
	}, waitFor, time.Millisecond)
	f.closeConns()
	require.Eventually(t, func() bool { return p.Stats().ServerEOF == 3 }, waitFor, time.Millisecond)
	assert.False(t, p.Ejected())
	assert.Zero(t, changes.Load())
	for i := range 6 {
		_, err := p.Call(context.Background(), []byte("x"+strconv.Itoa(i)+"\r\n"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(6), f.accepts.Load(), "redialled each slot")
}

// TestConsecutiveFailuresReset: a reply between failures resets the count.
func TestConsecutiveFailuresReset(t *testing.T) {
	// Every connection answers one request, then closes.
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("+" + line))
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, AutoEject: true, FailureLimit: 2})
	for i := range 5 {
		reply, err := p.Call(context.Background(), []byte("x\r\n"))
		require.NoError(t, err, "call %d", i)
		assert.Equal(t, "+x\r\n", string(reply))
		require.Eventually(t, func() bool { return p.Stats().ServerEOF == int64(i+1) }, waitFor, time.Millisecond)
	}
	assert.False(t, p.Ejected())
}

func TestNoAutoEject(t *testing.T) {
	port := testserver.FreePort(t, "127.0.0.1")
	p := newPool(t, one("127.0.0.1:"+strconv.Itoa(port)), pool.Options{Framer: lineFramer, FailureLimit: 1})
	for range 5 {
		_, err := p.Call(context.Background(), []byte("x\r\n"))
		assert.ErrorIs(t, err, pool.ErrConnRefused)
	}
	assert.False(t, p.Ejected())
	assert.Equal(t, int64(5), p.Stats().ServerErr)
}

// TestInitFake: Init requests go first on every connection, their replies
// are swallowed and not counted, error replies are counted and logged once.
func TestInitFake(t *testing.T) {
	var mu sync.Mutex
	var firstLines []string
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			reply := "+" + line
			if i == 0 {
				mu.Lock()
				firstLines = append(firstLines, line)
				mu.Unlock()
			}
			if strings.HasPrefix(line, "AUTH") {
				reply = "-ERR invalid password\r\n"
			}
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
	})
	var logs logBuffer
	p := newPool(t, one(f.addr()), pool.Options{
		Framer: lineFramer, Conns: 3, Init: [][]byte{[]byte("AUTH pw\r\n"), []byte("SELECT 3\r\n")},
		IsError: redisError, Logger: newLogger(&logs),
	})
	for i := range 6 {
		reply, err := p.Call(context.Background(), []byte("GET k"+strconv.Itoa(i)+"\r\n"))
		require.NoError(t, err)
		assert.Equal(t, "+GET k"+strconv.Itoa(i)+"\r\n", string(reply))
	}
	st := p.Stats()
	assert.Equal(t, int64(6), st.Requests)
	assert.Equal(t, int64(6), st.Responses)
	assert.Equal(t, int64(3), st.InitErrors)
	assert.Equal(t, 1, logs.count("init request failed"), logs.String())
	mu.Lock()
	assert.Equal(t, []string{"AUTH pw\r\n", "AUTH pw\r\n", "AUTH pw\r\n"}, firstLines)
	mu.Unlock()
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	serveFake(t, ln, echoLines)
	p := newPool(t, pool.Server{Network: "unix", Addr: path}, pool.Options{Framer: lineFramer})
	reply, err := p.Call(context.Background(), []byte("hi\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "+hi\r\n", string(reply))
}

func TestRoundRobinAndPreconnect(t *testing.T) {
	f := startFake(t, echoLines)
	g := startFake(t, echoLines)
	opts := pool.Options{Framer: lineFramer, Conns: 4, Preconnect: true}
	p := newPool(t, one(f.addr()), opts)
	q := newPool(t, pool.Server{Addr: g.addr(), Name: "second"}, opts)
	require.Eventually(t, func() bool {
		return p.Stats().ServerConnections == 4 && q.Stats().ServerConnections == 4
	}, waitFor, time.Millisecond)
	for i := range 40 {
		_, err := []*pool.Pool{p, q}[i%2].Call(context.Background(), []byte("x\r\n"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(4), f.accepts.Load())
	assert.Equal(t, int32(4), g.accepts.Load())
	assert.Equal(t, int64(20), q.Stats().Responses)
}

// TestQueueGauges: requests waiting for a connection are in_queue; written
// ones awaiting replies are out_queue.
func TestQueueGauges(t *testing.T) {
	f := startFake(t, silent)
	release := make(chan struct{})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-release
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	p, err := pool.New(one(f.addr()), pool.Options{Framer: lineFramer, Dial: dial})
	require.NoError(t, err)
	var chs []<-chan result
	for range 5 {
		chs = append(chs, doAsync(p, []byte("12345\r\n")))
	}
	st := p.Stats()
	assert.Equal(t, int64(5), st.InQueue)
	assert.Equal(t, int64(35), st.InQueueBytes)
	close(release)
	require.Eventually(t, func() bool { return p.Stats().OutQueue == 5 }, waitFor, time.Millisecond)
	st = p.Stats()
	assert.Equal(t, int64(35), st.OutQueueBytes)
	assert.Zero(t, st.InQueue)
	require.NoError(t, p.Close())
	for _, ch := range chs {
		assert.ErrorIs(t, await(t, ch).err, pool.ErrClosed)
	}
	st = p.Stats()
	assert.Zero(t, st.OutQueue+st.ServerConnections)
	assert.Zero(t, st.ServerErr+st.ServerEOF, "closing is not a server failure")
}

// TestClose: queued and in-flight requests fail with ErrClosed, later ones
// at once, and Close may be called again.
func TestClose(t *testing.T) {
	f := startFake(t, silent)
	p, err := pool.New(one(f.addr()), pool.Options{Framer: lineFramer})
	require.NoError(t, err)
	var chs []<-chan result
	for range 10 {
		chs = append(chs, doAsync(p, []byte("x\r\n")))
	}
	require.Eventually(t, func() bool { return p.Stats().OutQueue == 10 }, waitFor, time.Millisecond)
	require.NoError(t, p.Close())
	for _, ch := range chs {
		assert.ErrorIs(t, await(t, ch).err, pool.ErrClosed)
	}
	_, err = p.Call(context.Background(), []byte("x\r\n"))
	assert.ErrorIs(t, err, pool.ErrClosed)
	require.NoError(t, p.Close())
}

// TestDoDuringClose: every Done is called exactly once however Do and Close
// interleave.
func TestDoDuringClose(t *testing.T) {
	f := startFake(t, echoLines)
	p, err := pool.New(one(f.addr()), pool.Options{Framer: lineFramer, Conns: 2})
	require.NoError(t, err)
	var issued, completed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var once atomic.Bool
				issued.Add(1)
				p.Do(&pool.Request{Data: []byte("x\r\n"), Done: func(reply []byte, err error) {
					if once.Swap(true) {
						panic("Done called twice")
					}
					if (reply == nil) == (err == nil) {
						panic("Done needs exactly one of reply and err")
					}
					completed.Add(1)
				}})
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, p.Close())
	close(stop)
	wg.Wait()
	assert.Equal(t, issued.Load(), completed.Load())
}

func TestCallContext(t *testing.T) {
	f := startFake(t, silent)
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Call(ctx, []byte("x\r\n"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = p.Call(ctx, []byte("x\r\n"))
	assert.ErrorIs(t, err, context.DeadlineExceeded, "an ended context sends nothing")
	assert.Equal(t, int64(1), p.Stats().Requests)
}

func TestCallAllocs(t *testing.T) {
	f := startFake(t, echoLines)
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	data := []byte("x\r\n")
	ctx := context.Background()
	_, err := p.Call(ctx, data)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := p.Call(ctx, data); err != nil {
			panic(err)
		}
	})
	want := 1.0 // the returned reply
	if raceEnabled {
		want = 3 // plus, now and then, a new pooled call (struct, channel, buffer, Done)
	}
	assert.LessOrEqual(t, allocs, want)
}

// TestTimeoutStuckWrite: a server that stops reading blocks the writer on a
// NoReply request; a request queued behind it still times out.
func TestTimeoutStuckWrite(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, func(int, net.Conn) { <-release }) // never reads
	t.Cleanup(func() { close(release) })
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, Timeout: 300 * time.Millisecond})
	big := make([]byte, 64<<20) // more than the socket buffers hold
	nr := make(chan result, 1)
	p.Do(&pool.Request{Data: big, NoReply: true, Done: func(reply []byte, err error) {
		nr <- result{string(reply), err}
	}})
	// Let the writer take the big request and get stuck writing it, so
	// that the next one waits behind it on a connection nobody reads.
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	r := await(t, doAsync(p, []byte("behind\r\n")))
	assert.ErrorIs(t, r.err, pool.ErrTimedOut)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.ErrorIs(t, await(t, nr).err, pool.ErrTimedOut, "the unfinished write fails too")
	assert.Equal(t, int64(1), p.Stats().ServerTimedOut)
}
