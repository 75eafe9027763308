package pool_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

// TestDedicatedRedis: a Dedicated connection gets the pool's Init (AUTH,
// SELECT), keeps its state (a transaction) and is not counted among the
// pool's connections; Close ends a read in progress.
func TestDedicatedRedis(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "pw"})
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError, Timeout: 50 * time.Millisecond,
		Init: [][]byte{cmd("AUTH", "pw"), cmd("SELECT", "2")},
	})
	d, err := p.Dedicated(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, p.DedicatedConns())
	assert.Zero(t, p.Stats().ServerConnections)
	assert.Equal(t, srv.Addr, d.Server().Addr)
	// One write, several replies, read one at a time.
	require.NoError(t, d.Write(append(append(cmd("MULTI"), cmd("SET", "k", "v")...), cmd("EXEC")...)))
	for _, want := range []string{"+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n"} {
		reply, err := d.ReadReply(time.Time{})
		require.NoError(t, err)
		assert.Equal(t, want, string(reply))
	}
	// SELECT 2 applied: the shared connections see the key.
	reply, err := p.Call(context.Background(), cmd("GET", "k"))
	require.NoError(t, err)
	assert.Equal(t, "$1\r\nv\r\n", string(reply))

	// Options.Timeout does not apply; the deadline does.
	require.NoError(t, d.Write(cmd("BLPOP", "nolist", "0.2")))
	reply, err = d.ReadReply(time.Time{})
	require.NoError(t, err)
	assert.Equal(t, "*-1\r\n", string(reply))
	require.NoError(t, d.Write(cmd("BLPOP", "nolist", "0")))
	_, err = d.ReadReply(time.Now().Add(50 * time.Millisecond))
	assert.ErrorIs(t, err, pool.ErrTimedOut)
	assert.Zero(t, p.DedicatedConns(), "a failed read closes it")

	// Close from another goroutine ends a read.
	d, err = p.Dedicated(context.Background())
	require.NoError(t, err)
	require.NoError(t, d.Write(cmd("BLPOP", "nolist", "0")))
	time.AfterFunc(50*time.Millisecond, func() { d.Close() })
	_, err = d.ReadReply(time.Time{})
	assert.ErrorIs(t, err, pool.ErrClosed)
	assert.Zero(t, p.Stats().ServerErr+p.Stats().ServerEOF+p.Stats().ServerTimedOut-1, "only the timed-out read counted as a failure")
}

// TestDedicatedInitError: an Init error reply is counted, as on the pool's
// connections, and the connection is usable (it answers NOAUTH).
func TestDedicatedInitError(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "right"})
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError, Init: [][]byte{cmd("AUTH", "wrong")},
	})
	d, err := p.Dedicated(context.Background())
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, int64(1), p.Stats().InitErrors)
	require.NoError(t, d.Write(cmd("GET", "k")))
	reply, err := d.ReadReply(time.Time{})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(reply), "-NOAUTH"), "%q", reply)
}

// TestDedicatedFailures: refused and ejected servers, a closed pool, a
// server that goes away.
func TestDedicatedFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	p := newPool(t, one(addr), pool.Options{Framer: respFramer, AutoEject: true, FailureLimit: 2, RetryTimeout: time.Hour})
	_, err = p.Dedicated(context.Background())
	assert.ErrorIs(t, err, pool.ErrConnRefused)
	_, err = p.Dedicated(context.Background())
	assert.ErrorIs(t, err, pool.ErrConnRefused)
	assert.True(t, p.Ejected(), "dial failures count towards ejection")
	_, err = p.Dedicated(context.Background())
	assert.ErrorIs(t, err, pool.ErrEjected)

	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p = newPool(t, one(srv.Addr), pool.Options{Framer: respFramer})
	d, err := p.Dedicated(context.Background())
	require.NoError(t, err)
	require.NoError(t, d.Write(cmd("BLPOP", "nolist", "0")))
	require.NoError(t, syscall.Kill(srv.PID, syscall.SIGKILL))
	_, err = d.ReadReply(time.Time{})
	assert.True(t, errors.Is(err, pool.ErrEOF) || errors.Is(err, pool.ErrConnReset), "%v", err)
	assert.Equal(t, int64(1), p.Stats().ServerEOF+p.Stats().ServerErr, "counted once")
	srv.Stop()

	srv = testserver.StartRedis(t, testserver.RedisOptions{})
	p = newPool(t, one(srv.Addr), pool.Options{Framer: respFramer})
	d, err = p.Dedicated(context.Background())
	require.NoError(t, err)
	require.NoError(t, d.Write(cmd("BLPOP", "nolist", "0")))
	done := make(chan error, 1)
	go func() {
		_, err := d.ReadReply(time.Time{})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, p.Close())
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, pool.ErrClosed), "%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the read")
	}
	_, err = p.Dedicated(context.Background())
	assert.ErrorIs(t, err, pool.ErrClosed)
}
