package proxy_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
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

func newInProcess(t *testing.T, kind protocol.Kind, bs []backend, mutate func(*proxy.Config)) *proxy.Client {
	t.Helper()
	cfg := proxy.Config{Name: "inproc", Protocol: kind, Servers: entries(bs), Ring: shard.RingOptions{HashTag: "{}"}}
	cfg.Backend.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := proxy.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

func TestClientRedis(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	c := newInProcess(t, protocol.Redis, bs, nil)
	ctx := context.Background()
	keys := make([]string, 30)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		v, err := c.Command(ctx, "SET", keys[i], "v"+keys[i])
		require.NoError(t, err)
		require.Equal(t, "OK", string(v.Str))
	}
	// Cross-server MGET, merged in key order, with a missing key.
	v, err := c.Command(ctx, append([]string{"MGET"}, append(keys, "nokey")...)...)
	require.NoError(t, err)
	require.Len(t, v.Elems, len(keys)+1)
	for i, k := range keys {
		assert.Equal(t, "v"+k, string(v.Elems[i].Str))
	}
	assert.True(t, v.Elems[len(keys)].Null)
	v, err = c.Command(ctx, append([]string{"EXISTS"}, keys...)...)
	require.NoError(t, err)
	assert.Equal(t, int64(len(keys)), v.Int)
	// Each key is on the backend the ring names, found there directly.
	for _, k := range keys {
		b := bs[0]
		for _, x := range bs {
			if x.Addr == c.Ring().Server(c.Ring().PickString(k)).Addr {
				b = x
			}
		}
		got, err := testserver.DialRedis(t, b.Addr).Do("GET", k)
		require.NoError(t, err)
		assert.Equal(t, "v"+k, got)
	}
	// Error replies are replies.
	v, err = c.Command(ctx, "CONFIG", "GET", "maxmemory")
	require.NoError(t, err)
	assert.Equal(t, resp.TypeError, v.Type)
	// DoMulti pipelines and keeps the order.
	replies, err := c.DoMulti(ctx,
		resp.AppendCommandString(nil, "SET", "a", "1"),
		resp.AppendCommandString(nil, "INCR", "a"),
		resp.AppendCommandString(nil, "GET", "a"))
	require.NoError(t, err)
	assert.Equal(t, []string{"+OK\r\n", ":2\r\n", "$1\r\n2\r\n"}, []string{string(replies[0]), string(replies[1]), string(replies[2])})
	// A malformed request is an error, and the client goes on.
	_, err = c.Do(ctx, []byte("*2\r\n$3\r\nGET\r\n$x\r\n"))
	assert.ErrorIs(t, err, protocol.ErrProtocol)
	_, err = c.Do(ctx, []byte("*2\r\n$3\r\nGET\r\n"))
	assert.ErrorIs(t, err, proxy.ErrIncomplete)
	v, err = c.Command(ctx, "PING")
	require.NoError(t, err)
	assert.Equal(t, "PONG", string(v.Str))
}

func TestClientConcurrent(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 4)
	c := newInProcess(t, protocol.Redis, bs, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprintf("g%d:%d", g, i)
				v, err := c.Command(ctx, "SET", k, k)
				if !assert.NoError(t, err) || !assert.Equal(t, "OK", string(v.Str)) {
					return
				}
				v, err = c.Command(ctx, "MGET", k, "x"+k, k)
				if !assert.NoError(t, err) || !assert.Len(t, v.Elems, 3) {
					return
				}
				assert.Equal(t, k, string(v.Elems[0].Str))
				assert.True(t, v.Elems[1].Null)
				assert.Equal(t, k, string(v.Elems[2].Str))
			}
		}()
	}
	wg.Wait()
}

func TestClientMemcache(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	c := newInProcess(t, protocol.Memcache, bs, nil)
	ctx := context.Background()
	var gets []byte
	gets = append(gets, "get"...)
	for i := range 20 {
		k := fmt.Sprintf("k%d", i)
		r, err := c.Do(ctx, []byte(fmt.Sprintf("set %s %d 0 2\r\nv%d\r\n", k, i, i%10)))
		require.NoError(t, err)
		require.Equal(t, "STORED\r\n", string(r))
		gets = append(gets, " "+k...)
	}
	gets = append(gets, " nokey\r\n"...)
	r, err := c.Do(ctx, gets)
	require.NoError(t, err)
	var want string
	for i := range 20 {
		want += fmt.Sprintf("VALUE k%d %d 2\r\nv%d\r\n", i, i, i%10)
	}
	assert.Equal(t, want+"END\r\n", string(r))
	r, err = c.Do(ctx, []byte("set q 0 0 1 noreply\r\nz\r\n"))
	require.NoError(t, err)
	assert.Nil(t, r)
	replies, err := c.DoMulti(ctx, []byte("get q\r\n"), []byte("bogus\r\n"), []byte("delete q\r\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"VALUE q 0 1\r\nz\r\nEND\r\n", "ERROR\r\n", "DELETED\r\n"},
		[]string{string(replies[0]), string(replies[1]), string(replies[2])})
}

func TestClientContextAndClose(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 1)
	c := newInProcess(t, protocol.Redis, bs, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Command(ctx, "SET", "a", "1")
	assert.ErrorIs(t, err, context.Canceled)
	c2 := newInProcess(t, protocol.Redis, bs, nil)
	require.NoError(t, c2.Close())
	_, err = c2.Command(context.Background(), "PING")
	assert.ErrorIs(t, err, proxy.ErrClientClosed)
}

func TestClientReviewFindings(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 2)
	c := newInProcess(t, protocol.Redis, bs, func(cfg *proxy.Config) { cfg.Auth = "pw" })
	ctx := context.Background()
	// A wrong AUTH must not leave a pooled connection unauthenticated.
	v, err := c.Command(ctx, "AUTH", "wrong")
	require.NoError(t, err)
	assert.Equal(t, "ERR invalid password", string(v.Str))
	for range 20 {
		v, err = c.Command(ctx, "SET", "k", "v")
		require.NoError(t, err)
		require.Equal(t, "OK", string(v.Str))
	}
	v, err = c.Command(ctx, "CLIENT", "SETNAME", "x")
	require.NoError(t, err)
	assert.Equal(t, resp.TypeError, v.Type)
	// One request per element: trailing bytes are an error, and nothing runs.
	_, err = c.Do(ctx, append(resp.AppendCommandString(nil, "SET", "t1", "1"), resp.AppendCommandString(nil, "SET", "t2", "2")...))
	assert.Error(t, err)
	_, err = c.DoMulti(ctx, resp.AppendCommandString(nil, "INCR", "ctr"), []byte("*2\r\n$3\r\nGET\r\n$x\r\n"))
	assert.Error(t, err)
	v, err = c.Command(ctx, "GET", "ctr")
	require.NoError(t, err)
	assert.True(t, v.Null, "INCR was not sent")
	v, err = c.Command(ctx, "GET", "t1")
	require.NoError(t, err)
	assert.True(t, v.Null, "SET t1 was not sent")
}

func TestClientCancelDoesNotLeak(t *testing.T) {
	// A backend that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, nc)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		mu.Unlock()
	}()
	c, err := proxy.NewClient(proxy.Config{Name: "stuck", Protocol: protocol.Redis, Servers: []shard.Server{{Addr: l.Addr().String()}}})
	require.NoError(t, err)
	before := runtime.NumGoroutine()
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := c.Command(ctx, "GET", "k")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	assert.Less(t, runtime.NumGoroutine()-before, 20, "cancelled calls must not leave goroutines behind")
	require.NoError(t, c.Close())
}
