//go:build linux

package pool_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

// loopSock is a non-blocking TCP socket used through raw system calls, as
// an event loop uses it: the LoopIO of the test driver.
type loopSock struct {
	fd  int
	iov []unix.Iovec
	// written, if not nil, records where each buffer given to Writev
	// starts.
	written map[*byte]bool
	sent    int // bytes written
}

func (s *loopSock) Read(p []byte) (int, error) {
	n, err := unix.Read(s.fd, p)
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (s *loopSock) Writev(bufs [][]byte) (int, error) {
	s.iov = s.iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if s.written != nil {
			s.written[&b[0]] = true
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		s.iov = append(s.iov, v)
	}
	if len(s.iov) == 0 {
		return 0, nil
	}
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(s.fd), uintptr(unsafe.Pointer(&s.iov[0])), uintptr(len(s.iov)))
	clear(s.iov)
	if e != 0 {
		return 0, e
	}
	s.sent += int(r)
	return int(r), nil
}

// loopDriver is a minimal event loop for one LoopConn: a non-blocking
// connect, poll(2) for readiness, and the LoopConn's calls in the order
// an event loop makes them. It runs on the test's goroutine.
type loopDriver struct {
	t          *testing.T
	c          *pool.LoopConn
	sa         unix.Sockaddr
	sock       loopSock
	connecting bool
	pfd        [1]unix.PollFd
	poolClosed atomic.Int32 // calls of the closed callback
	dials      int
	gone       []error // errors that ended a connection, in order
}

func newDriver(t *testing.T, p *pool.Pool) *loopDriver {
	t.Helper()
	d := &loopDriver{t: t}
	d.sock.fd = -1
	d.c = p.NewLoopConn(func() { d.poolClosed.Add(1) })
	ap, err := netip.ParseAddrPort(d.c.Server().Addr)
	require.NoError(t, err)
	d.sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	t.Cleanup(func() {
		d.c.Close()
		d.closeFD()
	})
	return d
}

func (d *loopDriver) closeFD() {
	if d.sock.fd >= 0 {
		_ = unix.Close(d.sock.fd)
		d.sock.fd = -1
	}
	d.connecting = false
}

// lost records the end of a connection, reported by err.
func (d *loopDriver) lost(err error) {
	if err != nil {
		d.gone = append(d.gone, err)
		d.closeFD()
	}
}

func (d *loopDriver) dial() {
	c := d.c
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(d.t, err)
	d.dials++
	c.Dialing(time.Now())
	err = unix.Connect(fd, d.sa)
	switch {
	case err == nil:
		d.sock.fd = fd
		c.Connected(&d.sock)
	case errors.Is(err, unix.EINPROGRESS):
		d.sock.fd = fd
		d.connecting = true
	default:
		_ = unix.Close(fd)
		c.DialFailed(err)
	}
}

// step runs one round of the loop, waiting at most wait for an event:
// readiness first, then the Flush of what was queued meanwhile, as an
// event loop does once its handlers have run.
func (d *loopDriver) step(wait time.Duration) {
	c := d.c
	if d.poolClosed.Load() > 0 {
		c.Close()
		d.closeFD()
		return
	}
	if c.NeedDial() {
		d.dial()
	}
	if next := c.Next(); !next.IsZero() {
		wait = min(wait, time.Until(next))
	}
	wait = max(wait, 0)
	if d.sock.fd < 0 {
		time.Sleep(wait)
		d.lost(c.Expire(time.Now()))
		return
	}
	ev := int16(unix.POLLIN)
	if d.connecting || c.Pending() {
		ev |= unix.POLLOUT
	}
	d.pfd[0] = unix.PollFd{Fd: int32(d.sock.fd), Events: ev}
	ms := int((wait + time.Millisecond - 1) / time.Millisecond)
	if _, err := unix.Poll(d.pfd[:], ms); err != nil && !errors.Is(err, unix.EINTR) {
		require.NoError(d.t, err)
	}
	re := d.pfd[0].Revents
	switch {
	case d.connecting:
		if re&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0 {
			d.connecting = false
			soerr, err := unix.GetsockoptInt(d.sock.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			require.NoError(d.t, err)
			if soerr != 0 {
				d.closeFD()
				c.DialFailed(syscall.Errno(soerr))
			} else {
				c.Connected(&d.sock)
			}
		}
	default:
		if re&(unix.POLLIN|unix.POLLERR|unix.POLLHUP) != 0 {
			d.lost(c.Readable())
		}
	}
	if d.sock.fd >= 0 || d.connecting {
		d.lost(c.Expire(time.Now()))
	}
	if d.sock.fd >= 0 && !d.connecting {
		d.lost(c.Flush())
	}
}

// run runs the loop until cond holds, failing the test after waitFor.
func (d *loopDriver) run(cond func() bool) {
	d.t.Helper()
	end := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(end) {
			d.t.Fatalf("loop: condition not met after %v", waitFor)
		}
		d.step(10 * time.Millisecond)
	}
}

// runFor runs the loop for dur.
func (d *loopDriver) runFor(dur time.Duration) {
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		d.step(time.Until(end))
	}
}

// loopResults collects the outcomes of requests given to a LoopConn, in
// the order their Done ran.
type loopResults struct {
	order []int
	res   map[int]result
}

// req returns a request for data whose outcome is recorded as request i's.
func (r *loopResults) req(i int, data []byte) *pool.Request {
	return &pool.Request{Data: data, Done: func(reply []byte, err error) {
		if r.res == nil {
			r.res = map[int]result{}
		}
		r.order = append(r.order, i)
		r.res[i] = result{string(reply), err}
	}}
}

// do queues data on c as request i.
func (r *loopResults) do(c *pool.LoopConn, i int, data []byte) {
	c.Do(r.req(i, data))
}

func (r *loopResults) done() int { return len(r.order) }

// TestLoopConnRedisPipelined: 2,000 pipelined SET/GET pairs, some with
// values too large to copy, written as fast as the socket takes them and
// completed in order with their own replies; AUTH and SELECT as Init are
// swallowed and land the keys in db 3.
func TestLoopConnRedisPipelined(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "pw"})
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError, Timeout: time.Minute,
		Init: [][]byte{cmd("AUTH", "pw"), cmd("SELECT", "3")},
	})
	d := newDriver(t, p)
	d.sock.written = map[*byte]bool{}
	var r loopResults
	const pairs = 2000
	want := make([]string, 0, 2*pairs)
	var bytesSent int64
	var large, small [][]byte
	for j := range pairs {
		key := "k" + strconv.Itoa(j)
		val := "v" + strconv.Itoa(j*j)
		if j%50 == 0 {
			val = strings.Repeat(strconv.Itoa(j%10), 64<<10) // written from where it lies
		}
		set, get := cmd("SET", key, val), cmd("GET", key)
		if len(val) > 1000 {
			large = append(large, set)
		} else {
			small = append(small, set)
		}
		r.do(d.c, 2*j, set)
		r.do(d.c, 2*j+1, get)
		bytesSent += int64(len(set) + len(get))
		want = append(want, "+OK\r\n", bulk(val))
	}
	st := p.Stats()
	assert.Equal(t, int64(2*pairs), st.InQueue)
	assert.Equal(t, bytesSent, st.InQueueBytes)
	d.run(func() bool { return r.done() == 2*pairs })
	for i := range 2 * pairs {
		require.Equal(t, i, r.order[i], "completed in order")
		require.NoError(t, r.res[i].err)
		require.Equal(t, want[i], r.res[i].reply, "request %d", i)
	}
	assert.Empty(t, d.gone)
	assert.Equal(t, 1, d.dials)
	for _, b := range large {
		require.True(t, d.sock.written[&b[0]], "a large request is written from its Data")
	}
	for _, b := range small[1:] {
		require.False(t, d.sock.written[&b[0]], "a small request is copied")
	}
	st = p.Stats()
	assert.Equal(t, int64(2*pairs), st.Requests, "Init not counted")
	assert.Equal(t, bytesSent, st.RequestBytes)
	assert.Equal(t, int64(2*pairs), st.Responses)
	assert.Equal(t, int64(1), st.ServerConnections)
	assert.Zero(t, st.InQueue+st.OutQueue+st.InQueueBytes+st.OutQueueBytes)
	assert.Zero(t, st.ServerErr+st.ServerEOF+st.ServerTimedOut+st.InitErrors)

	rc := testserver.DialRedis(t, srv.Addr)
	_, err := rc.Do("AUTH", "pw")
	require.NoError(t, err)
	got, err := rc.Do("GET", "k7")
	require.NoError(t, err)
	assert.Empty(t, got, "not in db 0")
	_, err = rc.Do("SELECT", "3")
	require.NoError(t, err)
	got, err = rc.Do("GET", "k7")
	require.NoError(t, err)
	assert.Equal(t, "v49", got)
}

// TestLoopConnInitError: a failed Init is counted and logged as the pool
// does, and is not fatal.
func TestLoopConnInitError(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "right"})
	var logs logBuffer
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError,
		Init: [][]byte{cmd("AUTH", "wrong")}, Logger: newLogger(&logs),
	})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, cmd("GET", "k"))
	d.run(func() bool { return r.done() == 1 })
	require.NoError(t, r.res[0].err)
	assert.Contains(t, r.res[0].reply, "-NOAUTH")
	assert.Equal(t, int64(1), p.Stats().InitErrors)
	assert.Equal(t, 1, logs.count("init request failed"))
	assert.Contains(t, logs.String(), "WRONGPASS")
}

// TestLoopConnKeepLarge: a 2.5 MiB value asked for with KeepLarge comes
// in a buffer of its own, which stays intact while the connection reads
// on, and is not copied on its way.
func TestLoopConnKeepLarge(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer})
	d := newDriver(t, p)
	const size = 5 << 19
	big1, big2 := strings.Repeat("a", size), strings.Repeat("b", size)
	var r loopResults
	r.do(d.c, 0, cmd("SET", "big1", big1))
	r.do(d.c, 1, cmd("SET", "big2", big2))
	d.run(func() bool { return r.done() == 2 })

	var kept []byte
	var keptErr error
	get := &pool.Request{Data: cmd("GET", "big1"), KeepLarge: true, Done: func(reply []byte, err error) {
		kept, keptErr = reply, err
	}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d.c.Do(get)
	d.run(func() bool { return kept != nil || keptErr != nil })
	runtime.ReadMemStats(&after)
	require.NoError(t, keptErr)
	require.Equal(t, bulk(big1), string(kept))
	// One buffer for the reply (and a small one to read on): not two.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(size*3/2), "the reply was copied")

	r.do(d.c, 2, cmd("GET", "big2"))
	for j := range 20 {
		r.do(d.c, 3+j, cmd("GET", "missing"))
	}
	d.run(func() bool { return r.done() == 23 })
	assert.Equal(t, bulk(big2), r.res[2].reply)
	assert.Equal(t, bulk(big1), string(kept), "the kept reply is its own")
	assert.Equal(t, int64(24), p.Stats().Responses)
}

// TestLoopConnMemcachedNoReply: noreply sets complete with Done(nil, nil)
// once written; a get behind them sees the last value.
func TestLoopConnMemcachedNoReply(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: memcacheFramer, Timeout: time.Minute})
	d := newDriver(t, p)
	var r loopResults
	for i := range 10 {
		req := r.req(i, mcSet("nr", "v"+strconv.Itoa(i), true))
		req.NoReply = true
		d.c.Do(req)
	}
	assert.Zero(t, d.c.Next(), "NoReply requests have no deadline")
	r.do(d.c, 10, mcGet("nr"))
	d.run(func() bool { return r.done() == 11 })
	for i := range 10 {
		assert.Equal(t, result{}, r.res[i], "noreply %d", i)
	}
	assert.Equal(t, result{mcValue("nr", "v9"), nil}, r.res[10])
	st := p.Stats()
	assert.Equal(t, int64(11), st.Requests)
	assert.Equal(t, int64(1), st.Responses)
	assert.Zero(t, st.InQueue+st.OutQueue)
}

// TestLoopConnEarlyReply: a server may answer a request before it has
// read all of it and swallow the rest (memcached did so for an item too
// large to store; 1.6 waits for the whole item, hence a listener here).
// The reply is held, copied, until the request is written in full: Done
// never runs while the LoopConn may still write from the request's Data.
func TestLoopConnEarlyReply(t *testing.T) {
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReaderSize(c, 64<<10)
		for {
			head, err := r.ReadSlice(' ')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte("+early " + string(head) + "\r\n")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the request is still being written
			for err = bufio.ErrBufferFull; err == bufio.ErrBufferFull; {
				_, err = r.ReadSlice('\n')
			}
			if err != nil {
				return
			}
		}
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	d := newDriver(t, p)
	data := append([]byte("big "), bytes.Repeat([]byte{'x'}, 32<<20)...)
	data = append(data, "\r\n"...)
	orig := bytes.Clone(data)
	var reply string
	var calls int
	var sentAtDone int
	d.c.Do(&pool.Request{Data: data, Done: func(b []byte, err error) {
		require.NoError(t, err)
		reply, sentAtDone = string(b), d.sock.sent
		calls++
	}})
	// Another request queued while the first is partly written goes out
	// behind it.
	d.run(func() bool { return p.Stats().OutQueue == 1 })
	require.True(t, d.c.Pending())
	var r loopResults
	r.do(d.c, 0, []byte("next \r\n"))
	d.run(func() bool { return r.done() == 1 })
	assert.Equal(t, 1, calls)
	assert.Equal(t, "+early big \r\n", reply)
	assert.GreaterOrEqual(t, sentAtDone, len(data), "Done ran before the request was written")
	assert.Equal(t, result{"+early next \r\n", nil}, r.res[0])
	assert.Equal(t, orig, data)
	assert.Empty(t, d.gone)
	assert.Equal(t, int32(1), f.accepts.Load())
}

// TestLoopConnTimeout: a server that accepts and never answers: when the
// oldest request's time is up, the connection fails and every request on
// it gets ErrTimedOut, counted once in ServerTimedOut. A NoReply request
// has no deadline.
func TestLoopConnTimeout(t *testing.T) {
	f := startFake(t, silent)
	const timeout = 50 * time.Millisecond
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, Timeout: timeout})
	d := newDriver(t, p)
	var r loopResults
	start := time.Now()
	r.do(d.c, 0, []byte("a\r\n"))
	d.runFor(timeout / 2)
	r.do(d.c, 1, []byte("b\r\n"))
	st := p.Stats()
	assert.Equal(t, int64(1), st.OutQueue)
	assert.Equal(t, int64(1), st.InQueue)
	d.run(func() bool { return r.done() == 2 })
	assert.GreaterOrEqual(t, time.Since(start), timeout)
	for i := range 2 {
		assert.ErrorIs(t, r.res[i].err, pool.ErrTimedOut)
	}
	require.Len(t, d.gone, 1)
	assert.ErrorIs(t, d.gone[0], pool.ErrTimedOut)
	st = p.Stats()
	assert.Equal(t, int64(1), st.ServerTimedOut)
	assert.Zero(t, st.ServerConnections+st.OutQueue+st.InQueue)

	nr := &pool.Request{Data: []byte("n\r\n"), NoReply: true}
	var nrDone bool
	nr.Done = func(reply []byte, err error) { nrDone = err == nil && reply == nil }
	d.c.Do(nr)
	d.run(func() bool { return nrDone })
	assert.Zero(t, d.c.Next())
	d.runFor(2 * timeout)
	assert.Equal(t, int64(1), p.Stats().ServerTimedOut)
	assert.Equal(t, int64(1), p.Stats().ServerConnections)
}

// TestLoopConnDialTimeout: an attempt that never completes is bounded by
// the oldest request's deadline (ServerTimedOut) or by DialTimeout
// (ServerErr), whichever is first.
func TestLoopConnDialTimeout(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		timeout, dial         time.Duration
		wantTimedOut, wantErr int64
	}{
		{name: "request", timeout: 30 * time.Millisecond, dial: time.Minute, wantTimedOut: 1},
		{name: "dial", timeout: time.Minute, dial: 30 * time.Millisecond, wantErr: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(t, one("127.0.0.1:1"), pool.Options{Framer: lineFramer, Timeout: tt.timeout, DialTimeout: tt.dial})
			c := p.NewLoopConn(nil)
			defer c.Close()
			var r loopResults
			r.do(c, 0, []byte("a\r\n"))
			require.True(t, c.NeedDial())
			c.Dialing(time.Now())
			assert.False(t, c.NeedDial())
			next := c.Next()
			assert.WithinDuration(t, time.Now().Add(30*time.Millisecond), next, 25*time.Millisecond)
			require.NoError(t, c.Expire(time.Now()))
			time.Sleep(time.Until(next))
			require.ErrorIs(t, c.Expire(time.Now()), pool.ErrTimedOut)
			assert.ErrorIs(t, r.res[0].err, pool.ErrTimedOut)
			st := p.Stats()
			assert.Equal(t, tt.wantTimedOut, st.ServerTimedOut)
			assert.Equal(t, tt.wantErr, st.ServerErr)
			assert.Zero(t, c.Next())
			assert.False(t, c.NeedDial())
		})
	}
}

// TestLoopConnRefused: a refused attempt fails the queued requests with
// ErrConnRefused and counts in ServerErr.
func TestLoopConnRefused(t *testing.T) {
	port := testserver.FreePort(t, "127.0.0.1")
	p := newPool(t, one("127.0.0.1:"+strconv.Itoa(port)), pool.Options{Framer: respFramer})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, cmd("PING"))
	r.do(d.c, 1, cmd("PING"))
	d.run(func() bool { return r.done() == 2 })
	assert.ErrorIs(t, r.res[0].err, pool.ErrConnRefused)
	assert.ErrorIs(t, r.res[1].err, pool.ErrConnRefused)
	assert.Equal(t, int64(1), p.Stats().ServerErr)
	assert.False(t, d.c.NeedDial())
}

// TestLoopConnServerKilled: redis killed with requests in flight behind a
// BLPOP: they fail with ErrEOF, counted once in ServerEOF; the LoopConn
// reconnects once redis is back.
func TestLoopConnServerKilled(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, cmd("BLPOP", "nolist", "0"))
	for j := range 20 {
		r.do(d.c, 1+j, cmd("GET", "k"+strconv.Itoa(j)))
	}
	d.run(func() bool { return p.Stats().OutQueue == 21 && !d.c.Pending() })
	d.runFor(20 * time.Millisecond)
	require.Zero(t, r.done())
	require.NoError(t, syscall.Kill(srv.PID, syscall.SIGKILL))
	d.run(func() bool { return r.done() == 21 })
	for i := range 21 {
		assert.Equal(t, i, r.order[i])
		assert.ErrorIs(t, r.res[i].err, pool.ErrEOF)
	}
	require.Len(t, d.gone, 1)
	assert.ErrorIs(t, d.gone[0], pool.ErrEOF)
	st := p.Stats()
	assert.Equal(t, int64(1), st.ServerEOF)
	assert.Zero(t, st.ServerErr+st.ServerConnections+st.OutQueue)

	require.Eventually(t, srv.Exited, waitFor, time.Millisecond)
	testserver.StartRedis(t, testserver.RedisOptions{Port: srv.Port})
	r.do(d.c, 21, cmd("PING"))
	d.run(func() bool { return r.done() == 22 })
	assert.Equal(t, result{"+PONG\r\n", nil}, r.res[21])
}

// TestLoopConnIdleClose: a server that closes an idle connection costs a
// failure, not the request queued meanwhile, which goes on a new one.
func TestLoopConnIdleClose(t *testing.T) {
	f := startFake(t, echoLines)
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, []byte("a\r\n"))
	d.run(func() bool { return r.done() == 1 })
	f.closeConns()
	time.Sleep(10 * time.Millisecond)
	r.do(d.c, 1, []byte("b\r\n"))
	d.run(func() bool { return r.done() == 2 })
	assert.Equal(t, result{"+b\r\n", nil}, r.res[1])
	assert.Equal(t, 2, d.dials)
	st := p.Stats()
	assert.Equal(t, int64(1), st.ServerEOF)
	assert.Equal(t, int64(1), st.ServerConnections)
}

// TestLoopConnFailureReply: a reply IsFailure rejects (redis -OOM) is
// dropped, and the connection fails with ErrInvalid, counted in
// ServerErr.
func TestLoopConnFailureReply(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Args: []string{"--maxmemory", "1", "--maxmemory-policy", "noeviction"}})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer, IsFailure: redisFailure})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, cmd("GET", "k"))
	r.do(d.c, 1, cmd("SET", "k", "v"))
	r.do(d.c, 2, cmd("GET", "k"))
	d.run(func() bool { return r.done() == 3 })
	assert.Equal(t, result{"$-1\r\n", nil}, r.res[0])
	assert.ErrorIs(t, r.res[1].err, pool.ErrInvalid)
	assert.ErrorIs(t, r.res[2].err, pool.ErrInvalid)
	assert.Equal(t, []int{0, 1, 2}, r.order)
	st := p.Stats()
	assert.Equal(t, int64(1), st.ServerErr)
	assert.Equal(t, int64(1), st.Responses, "a failure reply is not a response")
	assert.Zero(t, st.OutQueue+st.ServerConnections)
}

// TestLoopConnEjection: with AutoEject, a dead redis is ejected after
// FailureLimit refused attempts, LoopConn requests then fail at once with
// ErrEjected, and the pool's probe reinstates it once it is back.
func TestLoopConnEjection(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	changes := make(chan bool, 10)
	const retry = 100 * time.Millisecond
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, AutoEject: true, FailureLimit: 2, RetryTimeout: retry,
		Probe: cmd("PING"), OnChange: func(ejected bool) { changes <- ejected },
	})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, cmd("PING"))
	d.run(func() bool { return r.done() == 1 })
	require.Equal(t, result{"+PONG\r\n", nil}, r.res[0])

	srv.Stop()
	require.Eventually(t, srv.Exited, waitFor, time.Millisecond)
	i := 1
	for ; !p.Ejected(); i++ {
		require.Less(t, i, 10, "not ejected")
		r.do(d.c, i, cmd("PING"))
		d.run(func() bool { return r.done() == i+1 })
		assert.True(t, killedError(r.res[i].err), "%v", r.res[i].err)
	}
	assert.True(t, <-changes)
	assert.Equal(t, int64(1), p.Stats().Ejects)
	dials := d.dials
	r.do(d.c, i, cmd("PING"))
	assert.ErrorIs(t, r.res[i].err, pool.ErrEjected, "failed by Do itself")
	assert.False(t, d.c.NeedDial())
	d.runFor(10 * time.Millisecond)
	assert.Equal(t, dials, d.dials)

	testserver.StartRedis(t, testserver.RedisOptions{Port: srv.Port})
	select {
	case ej := <-changes:
		assert.False(t, ej)
	case <-time.After(waitFor):
		t.Fatal("not reinstated")
	}
	i++
	r.do(d.c, i, cmd("PING"))
	d.run(func() bool { return r.done() == i+1 })
	assert.Equal(t, result{"+PONG\r\n", nil}, r.res[i])
}

// TestLoopConnStats: the pool's Stats add up its own connections and its
// LoopConns, live or closed.
func TestLoopConnStats(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer})
	_, err := p.Call(context.Background(), cmd("PING"))
	require.NoError(t, err)
	d1, d2 := newDriver(t, p), newDriver(t, p)
	var r1, r2 loopResults
	for j := range 3 {
		r1.do(d1.c, j, cmd("PING"))
	}
	for j := range 5 {
		r2.do(d2.c, j, cmd("PING"))
	}
	st := p.Stats()
	assert.Equal(t, int64(9), st.Requests)
	assert.Equal(t, int64(8), st.InQueue)
	d1.run(func() bool { return r1.done() == 3 })
	d2.run(func() bool { return r2.done() == 5 })
	st = p.Stats()
	assert.Equal(t, int64(9), st.Responses)
	assert.Equal(t, int64(9*len("+PONG\r\n")), st.ResponseBytes)
	assert.Equal(t, int64(3), st.ServerConnections)
	assert.Zero(t, st.InQueue+st.OutQueue)

	d1.c.Close()
	d1.closeFD()
	st = p.Stats()
	assert.Equal(t, int64(9), st.Requests, "a closed LoopConn's counts remain")
	assert.Equal(t, int64(9), st.Responses)
	assert.Equal(t, int64(2), st.ServerConnections)
}

// TestLoopConnPoolClose: Pool.Close calls the closed callback of each live
// LoopConn once, without waiting for it; the owner's Close then fails the
// requests left with ErrClosed, and Do fails at once.
func TestLoopConnPoolClose(t *testing.T) {
	f := startFake(t, silent)
	p, err := pool.New(one(f.addr()), pool.Options{Framer: lineFramer})
	require.NoError(t, err)
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, []byte("a\r\n"))
	r.do(d.c, 1, []byte("b\r\n"))
	d.run(func() bool { return p.Stats().OutQueue == 2 })
	require.NoError(t, p.Close())
	assert.Equal(t, int32(1), d.poolClosed.Load())
	assert.False(t, d.c.NeedDial())
	r.do(d.c, 2, []byte("c\r\n"))
	assert.ErrorIs(t, r.res[2].err, pool.ErrClosed)
	assert.Equal(t, 1, r.done())

	d.c.Close()
	d.closeFD()
	require.Equal(t, 3, r.done())
	assert.ErrorIs(t, r.res[0].err, pool.ErrClosed)
	assert.ErrorIs(t, r.res[1].err, pool.ErrClosed)
	assert.Zero(t, p.Stats().ServerConnections)
	require.NoError(t, p.Close())
	assert.Equal(t, int32(1), d.poolClosed.Load())

	var late error
	c := p.NewLoopConn(func() { t.Error("closed called for a LoopConn made after Close") })
	c.Do(&pool.Request{Data: []byte("x\r\n"), Done: func(_ []byte, err error) { late = err }})
	assert.ErrorIs(t, late, pool.ErrClosed)
	assert.False(t, c.NeedDial())
}

// TestLoopConnAllocs: a warm round trip of a small GET (Do, Flush,
// Readable) allocates nothing.
func TestLoopConnAllocs(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer, Timeout: time.Minute})
	d := newDriver(t, p)
	var r loopResults
	r.do(d.c, 0, cmd("SET", "k", "v"))
	d.run(func() bool { return r.done() == 1 })

	var got int
	var gotErr error
	req := &pool.Request{Data: cmd("GET", "k")}
	req.Done = func(reply []byte, err error) {
		got, gotErr = len(reply), err
	}
	roundTrip := func() {
		got = 0
		d.c.Do(req)
		if err := d.c.Flush(); err != nil {
			panic(err)
		}
		for got == 0 && gotErr == nil {
			d.pfd[0] = unix.PollFd{Fd: int32(d.sock.fd), Events: unix.POLLIN}
			_, _ = unix.Poll(d.pfd[:], 1000)
			if err := d.c.Readable(); err != nil {
				panic(err)
			}
		}
	}
	for range 10 {
		roundTrip() // warm up
	}
	allocs := testing.AllocsPerRun(200, roundTrip)
	require.NoError(t, gotErr)
	assert.Equal(t, len(bulk("v")), got)
	assert.Zero(t, allocs)
	assert.Equal(t, int64(212), p.Stats().Responses, "warm-up, AllocsPerRun's own and 200 runs")
}
