package pool_test

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

// TestWaiterReadsItsOwnReply: a goroutine alone on an idle connection
// writes its batch in Waiter.Read and reads the replies itself, so every
// Done has run, on its own goroutine, when Read returns. Through the
// connection's goroutines instead, Done would run later, elsewhere.
func TestWaiterReadsItsOwnReply(t *testing.T) {
	f := startFake(t, echoLines)
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer, Preconnect: true})
	require.Eventually(t, func() bool { return p.Stats().ServerConnections == 1 }, waitFor, time.Millisecond)
	var w pool.Waiter
	for round := range 50 {
		var done atomic.Int32
		var replies [3]string
		reqs := make([]pool.Request, 3)
		for i := range reqs {
			reqs[i] = pool.Request{
				Data:   []byte("r" + strconv.Itoa(round) + "-" + strconv.Itoa(i) + "\r\n"),
				Waiter: &w,
				Done: func(reply []byte, err error) {
					assert.NoError(t, err)
					replies[i] = string(reply)
					done.Add(1)
				},
			}
			p.Do(&reqs[i])
		}
		assert.Equal(t, int64(3), p.Stats().InQueue, "round %d: nothing written before Read", round)
		w.Read()
		require.Equal(t, int32(3), done.Load(), "round %d: every Done ran inside Read", round)
		for i, r := range replies {
			assert.Equal(t, "+r"+strconv.Itoa(round)+"-"+strconv.Itoa(i)+"\r\n", r)
		}
	}
}

// TestWaitersConcurrent: many goroutines with Waiters on the connections
// to a real redis-server, some reading inline, others answered by whoever
// reads: every reply is the request's own, and none is lost.
func TestWaitersConcurrent(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	p := newPool(t, one(srv.Addr), pool.Options{Framer: respFramer, Conns: 2})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w pool.Waiter
			ch := make(chan string, 4)
			for j := range 300 {
				n := 1 + j%4
				want := make([]string, n)
				reqs := make([]pool.Request, n)
				for i := range reqs {
					msg := "g" + strconv.Itoa(g) + "-" + strconv.Itoa(j) + "-" + strconv.Itoa(i)
					want[i] = bulk(msg)
					reqs[i] = pool.Request{Data: cmd("ECHO", msg), Waiter: &w, Done: func(reply []byte, err error) {
						if err != nil {
							ch <- err.Error()
							return
						}
						ch <- string(reply)
					}}
					p.Do(&reqs[i])
				}
				w.Read()
				got := map[string]bool{}
				for range n {
					select {
					case r := <-ch:
						got[r] = true
					case <-time.After(waitFor):
						t.Error("reply lost")
						return
					}
				}
				for _, s := range want {
					assert.True(t, got[s], "reply %q", s)
				}
			}
		}()
	}
	wg.Wait()
}

// TestIdleConnectionClosedByServer: a server that closes a connection
// while it is idle costs a new connection, not the next request, whether
// the close is seen by the check before a write (idle over 1 ms) or by the
// idle connection's watcher (idle over 10 ms); each close counts as
// ServerEOF.
func TestIdleConnectionClosedByServer(t *testing.T) {
	// Every connection answers one line, then closes, and says so.
	closed := make(chan struct{}, 10)
	f := startFake(t, func(_ int, c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			_, _ = c.Write([]byte("+" + line))
		}
		_ = c.Close()
		closed <- struct{}{}
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	idle := time.Duration(0)
	for i, next := range []time.Duration{2 * time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond, 2 * time.Millisecond, 0} {
		reply, err := p.Call(context.Background(), []byte("x\r\n"))
		require.NoError(t, err, "call %d, %v after the server closed the connection", i, idle)
		assert.Equal(t, "+x\r\n", string(reply))
		// The next request goes after the server has closed this
		// connection (a close racing a request fails it, in any proxy),
		// and after the connection has been idle a while.
		select {
		case <-closed:
		case <-time.After(waitFor):
			t.Fatal("the fake did not close")
		}
		idle = next
		time.Sleep(idle)
	}
	require.Eventually(t, func() bool { return p.Stats().ServerEOF >= 4 }, waitFor, time.Millisecond)
	assert.Equal(t, int32(5), f.accepts.Load(), "one connection per request")
}

// TestWaiterLetsOtherConnectionsGo: a waiter whose batch went to a server
// that does not answer and to a healthy one reads the first one first; it
// must not hold up, meanwhile, the replies of others who use the healthy
// server's connection.
func TestWaiterLetsOtherConnectionsGo(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 2 s request timeout; run without -short")
	}
	stuck := startFake(t, silent)
	healthy := startFake(t, echoLines)
	opts := pool.Options{Framer: lineFramer, Preconnect: true, Timeout: 2 * time.Second}
	pools := []*pool.Pool{newPool(t, one(stuck.addr()), opts), newPool(t, one(healthy.addr()), opts)}
	require.Eventually(t, func() bool {
		return pools[0].Stats().ServerConnections == 1 && pools[1].Stats().ServerConnections == 1
	}, waitFor, time.Millisecond)

	var w pool.Waiter
	results := make(chan error, 2)
	for i, data := range []string{"to-stuck\r\n", "to-healthy\r\n"} {
		pools[i].Do(&pool.Request{Data: []byte(data), Waiter: &w, Done: func(_ []byte, err error) { results <- err }})
	}
	go w.Read() // reads the stuck server's connection first, until its timeout
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	for i := range 20 {
		reply, err := pools[1].Call(context.Background(), []byte("x"+strconv.Itoa(i)+"\r\n"))
		require.NoError(t, err)
		assert.Equal(t, "+x"+strconv.Itoa(i)+"\r\n", string(reply))
	}
	assert.Less(t, time.Since(start), time.Second, "others on the healthy connection wait for the stuck server")

	got := []error{<-results, <-results}
	assert.Contains(t, got, error(nil), "the healthy server answered the waiter")
	assert.Contains(t, got, pool.ErrTimedOut, "the stuck server's request timed out")
}
