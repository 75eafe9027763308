package pool_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

// TestRedisPipelined: 100 goroutines each pipeline 1,000 requests (SET
// k v, GET k, …) without waiting, all over one connection; every reply must
// be its own request's.
func TestRedisPipelined(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer, Timeout: time.Minute})
	const goroutines, pairs = 100, 500
	pipelinePairs(t, p, goroutines, pairs, func(g, j int) (set, get []byte, wantSet, wantGet string) {
		key := "k" + strconv.Itoa(g) + ":" + strconv.Itoa(j)
		val := "v" + strconv.Itoa(g) + ":" + strconv.Itoa(j*j)
		return cmd("SET", key, val), cmd("GET", key), "+OK\r\n", bulk(val)
	})
	st := p.Stats()
	assert.Equal(t, int64(goroutines*pairs*2), st.Requests)
	assert.Equal(t, int64(goroutines*pairs*2), st.Responses)
	assert.Equal(t, int64(1), st.ServerConnections)
	assert.Zero(t, st.InQueue+st.OutQueue+st.InQueueBytes+st.OutQueueBytes)
	assert.Zero(t, st.ServerErr+st.ServerEOF+st.ServerTimedOut)
}

// killedErrors are the errors a request in flight may get when its server
// dies: EOF, or a reset when the server closed with unread input, or a
// broken pipe when the pool was writing; and refused once it is gone.
func killedError(err error) bool {
	return errors.Is(err, pool.ErrEOF) || errors.Is(err, pool.ErrConnReset) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, pool.ErrConnRefused)
}

// TestRedisKilled kills redis (SIGTERM and SIGKILL) with requests in flight
// behind a BLPOP and under concurrent load: every request completes, with
// its own reply or a connection error; then redis restarts on the same
// port and the pool recovers.
func TestRedisKilled(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			srv := testserver.StartRedis(t, testserver.RedisOptions{})
			p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer})
			testKilled(t, p, srv, sig, cmd("BLPOP", "nolist", "0"),
				func(g, j int) ([]byte, []byte, string) {
					key := "k" + strconv.Itoa(g) + ":" + strconv.Itoa(j)
					return cmd("SET", key, key), cmd("GET", key), bulk(key)
				},
				func() { testserver.StartRedis(t, testserver.RedisOptions{Port: srv.Port}) })
		})
	}
}

// testKilled is TestRedisKilled's and TestMemcachedKilled's body. block is a
// request the server leaves unanswered; pair returns a set, a get and the
// get's expected reply; restart starts the server again on its port.
func testKilled(t *testing.T, p *pool.Pool, srv *testserver.Server, sig syscall.Signal, block []byte,
	pair func(g, j int) (set, get []byte, want string), restart func()) {
	blocked := doAsync(p, block)
	var queued []<-chan result
	for j := range 20 {
		_, get, _ := pair(-1, j)
		queued = append(queued, doAsync(p, get))
	}
	require.Eventually(t, func() bool { return p.Stats().OutQueue == 21 }, waitFor, time.Millisecond)

	// Concurrent load: each reply is either the right one or an error.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				set, get, want := pair(g, j)
				if _, err := p.Call(context.Background(), set); err != nil {
					mu.Lock()
					counts[err.Error()]++
					mu.Unlock()
					assert.True(t, killedError(err), "SET: %v", err)
					time.Sleep(time.Millisecond)
					continue
				}
				reply, err := p.Call(context.Background(), get)
				if err != nil {
					assert.True(t, killedError(err), "GET: %v", err)
					continue
				}
				assert.Equal(t, want, string(reply))
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if sig == syscall.SIGKILL {
		require.NoError(t, syscall.Kill(srv.PID, syscall.SIGKILL))
	} else {
		srv.Stop()
	}
	require.Eventually(t, srv.Exited, waitFor, time.Millisecond)

	for _, ch := range append([]<-chan result{blocked}, queued...) {
		r := await(t, ch)
		assert.True(t, killedError(r.err), "in flight when killed: %+v", r)
		assert.NotErrorIs(t, r.err, pool.ErrConnRefused, "was in flight")
	}
	time.Sleep(50 * time.Millisecond)
	restart()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("errors seen by the load: %v", counts)

	set, get, want := pair(100, 0)
	_, err := p.Call(context.Background(), set)
	require.NoError(t, err)
	reply, err := p.Call(context.Background(), get)
	require.NoError(t, err)
	assert.Equal(t, want, string(reply))
	st := p.Stats()
	assert.Positive(t, st.ServerEOF+st.ServerErr)
	assert.Zero(t, st.InQueue+st.OutQueue)
}

// TestRedisEjection: with AutoEject, a dead redis is ejected after
// FailureLimit failures, stays ejected while the probe fails, and is
// reinstated once it is back.
func TestRedisEjection(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	changes := make(chan bool, 10)
	var logs logBuffer
	const retry = 150 * time.Millisecond
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsFailure: redisFailure, AutoEject: true, FailureLimit: 2, RetryTimeout: retry,
		Probe:    cmd("PING"),
		OnChange: func(ejected bool) { changes <- ejected },
		Logger:   newLogger(&logs),
	})
	t.Cleanup(func() { t.Log(logs.String()) })
	reply, err := p.Call(context.Background(), cmd("PING"))
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n", string(reply))

	srv.Stop()
	var errs []string
	for !errors.Is(err, pool.ErrEjected) {
		_, err = p.Call(context.Background(), cmd("PING"))
		require.Error(t, err)
		errs = append(errs, err.Error())
		require.Less(t, len(errs), 10, "not ejected: %v", errs)
	}
	t.Logf("errors until ErrEjected: %v", errs)
	assert.True(t, <-changes)
	assert.True(t, p.Ejected())
	assert.Positive(t, p.Stats().ServerEjectedAt)

	time.Sleep(4 * retry)
	assert.True(t, p.Ejected(), "a failing probe does not reinstate")
	assert.Empty(t, changes)

	testserver.StartRedis(t, testserver.RedisOptions{Port: srv.Port})
	select {
	case c := <-changes:
		assert.False(t, c)
	case <-time.After(waitFor):
		t.Fatal("not reinstated")
	}
	reply, err = p.Call(context.Background(), cmd("PING"))
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", string(reply))
	assert.Equal(t, int64(1), p.Stats().Ejects)
}

// TestRedisAuthSelect: AUTH and SELECT as Init land a SET in db 3 of a
// password-protected redis.
func TestRedisAuthSelect(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "s3cret"})
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError,
		Init: [][]byte{cmd("AUTH", "s3cret"), cmd("SELECT", "3")},
	})
	reply, err := p.Call(context.Background(), cmd("SET", "where", "db3"))
	require.NoError(t, err)
	assert.Equal(t, "+OK\r\n", string(reply))
	st := p.Stats()
	assert.Equal(t, int64(1), st.Requests)
	assert.Equal(t, int64(1), st.Responses)
	assert.Zero(t, st.InitErrors)

	c := testserver.DialRedis(t, srv.Addr)
	for _, tt := range []struct{ give, want string }{
		{"AUTH", "+OK"}, {"SELECT 3", "+OK"}, {"GET", "db3"}, {"SELECT 0", "+OK"}, {"GET", ""},
	} {
		var got string
		switch tt.give {
		case "AUTH":
			got, err = c.Do("AUTH", "s3cret")
		case "GET":
			got, err = c.Do("GET", "where")
		default:
			got, err = c.Do("SELECT", tt.give[len("SELECT "):])
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, tt.give)
	}
}

// TestRedisInitFailure: a wrong password is logged once and counted on
// every connection, and is not fatal: requests get redis's NOAUTH replies.
func TestRedisInitFailure(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "right"})
	var logs logBuffer
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError, Conns: 3, Preconnect: true,
		Init: [][]byte{cmd("AUTH", "wrong")}, Logger: newLogger(&logs),
	})
	require.Eventually(t, func() bool { return p.Stats().InitErrors == 3 }, waitFor, time.Millisecond)
	for range 3 {
		reply, err := p.Call(context.Background(), cmd("GET", "k"))
		require.NoError(t, err)
		assert.Contains(t, string(reply), "-NOAUTH")
	}
	assert.Equal(t, 1, logs.count("init request failed"), logs.String())
	assert.Contains(t, logs.String(), "WRONGPASS")
	st := p.Stats()
	assert.Equal(t, int64(3), st.ServerConnections)
	assert.Zero(t, st.ServerErr)
}

// TestRedisOOM: an -OOM reply is a server failure: the request gets
// ErrInvalid, the connection is closed, and the next request
// redials.
func TestRedisOOM(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Args: []string{"--maxmemory", "1", "--maxmemory-policy", "noeviction"}})
	// The first dial waits until both requests are queued, so that they
	// share the connection the -OOM reply closes (without it a loaded
	// machine could answer SET before GET is queued).
	queued := make(chan struct{})
	var d net.Dialer
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer, IsFailure: redisFailure,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-queued
			return d.DialContext(ctx, network, addr)
		}})
	set := doAsync(p, cmd("SET", "k", "v"))
	get := doAsync(p, cmd("GET", "k"))
	close(queued)
	r := await(t, set)
	assert.ErrorIs(t, r.err, pool.ErrInvalid)
	assert.ErrorIs(t, r.err, pool.ErrInvalid)
	r = await(t, get)
	assert.ErrorIs(t, r.err, pool.ErrInvalid, "every request on the closed connection fails")
	st := p.Stats()
	assert.Equal(t, int64(1), st.ServerErr)
	assert.Zero(t, st.Responses, "a failure reply is not a response")

	reply, err := p.Call(context.Background(), cmd("GET", "k"))
	require.NoError(t, err, "GET is allowed over maxmemory")
	assert.Equal(t, "$-1\r\n", string(reply))
}
