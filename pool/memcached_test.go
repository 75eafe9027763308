package pool_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

func mcSet(key, val string, noreply bool) []byte {
	b := "set " + key + " 0 0 " + strconv.Itoa(len(val))
	if noreply {
		b += " noreply"
	}
	return []byte(b + "\r\n" + val + "\r\n")
}

func mcGet(key string) []byte { return []byte("get " + key + "\r\n") }

func mcValue(key, val string) string {
	return "VALUE " + key + " 0 " + strconv.Itoa(len(val)) + "\r\n" + val + "\r\nEND\r\n"
}

// TestMemcachedPipelined: 100 goroutines each pipeline 1,000 requests (set,
// get, …) over one connection; every reply must be its own request's.
func TestMemcachedPipelined(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: memcacheFramer, Timeout: time.Minute})
	const goroutines, pairs = 100, 500
	pipelinePairs(t, p, goroutines, pairs, func(g, j int) (set, get []byte, wantSet, wantGet string) {
		key := "k" + strconv.Itoa(g) + ":" + strconv.Itoa(j)
		val := "v" + strconv.Itoa(g*j)
		return mcSet(key, val, false), mcGet(key), "STORED\r\n", mcValue(key, val)
	})
	st := p.Stats()
	assert.Equal(t, int64(goroutines*pairs*2), st.Responses)
	assert.Equal(t, int64(1), st.ServerConnections)
	assert.Zero(t, st.InQueue+st.OutQueue)
}

// TestMemcachedNoReply: noreply sets complete once written; a get behind
// them sees the value.
func TestMemcachedNoReply(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: memcacheFramer})
	var chs []<-chan result
	for i := range 10 {
		ch := make(chan result, 1)
		p.Do(&pool.Request{Data: mcSet("nr", "v"+strconv.Itoa(i), true), NoReply: true, Done: func(reply []byte, err error) {
			ch <- result{string(reply), err}
		}})
		chs = append(chs, ch)
	}
	for _, ch := range chs {
		assert.Equal(t, result{}, await(t, ch))
	}
	reply, err := p.Call(context.Background(), mcGet("nr"))
	require.NoError(t, err)
	assert.Equal(t, mcValue("nr", "v9"), string(reply))
	st := p.Stats()
	assert.Equal(t, int64(11), st.Requests)
	assert.Equal(t, int64(1), st.Responses)
}

// TestMemcachedKilled: as TestRedisKilled. What blocks the connection is a
// set whose data block has not been sent: memcached reads what follows as
// data and answers nothing.
func TestMemcachedKilled(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
			p := newPool(t, one(srv.Addr), pool.Options{Framer: memcacheFramer})
			testKilled(t, p, srv, sig, []byte("set blocker 0 0 500000\r\n"),
				func(g, j int) ([]byte, []byte, string) {
					key := "k" + strconv.Itoa(g) + ":" + strconv.Itoa(j)
					return mcSet(key, key, false), mcGet(key), mcValue(key, key)
				},
				func() { testserver.StartMemcached(t, testserver.MemcachedOptions{Port: srv.Port}) })
		})
	}
}
