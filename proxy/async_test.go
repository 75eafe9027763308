package proxy_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// TestAsyncReplyToStalledClient: a single GET's reply is written by the
// goroutine that reads it from the backend, without waiting. A client
// that does not read a reply larger than its socket takes must not hold
// up that goroutine: another client on the same backend connection keeps
// being answered, and the stalled client gets its reply whole once it
// reads.
func TestAsyncReplyToStalledClient(t *testing.T) {
	if testing.Short() {
		t.Skip("a stalled-client fault run; run without -short")
	}
	bs := startBackends(t, protocol.Redis, 1)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	big := strings.Repeat("v", 32<<20)
	setter := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", setter.do("SET", "big", big))

	stalled := rawDial(t, addr)
	stalled.send([]string{"GET", "big"}) // and read nothing for now
	other := rawDial(t, addr)
	start := time.Now()
	for i := range 200 {
		k := "k" + strconv.Itoa(i)
		require.Equal(t, "+OK\r\n", other.do("SET", k, k))
		require.Equal(t, "$"+strconv.Itoa(len(k))+"\r\n"+k+"\r\n", other.do("GET", k))
	}
	t.Logf("400 requests of another client while one stalls: %v", time.Since(start))
	assert.Equal(t, "$"+strconv.Itoa(len(big))+"\r\n"+big+"\r\n", stalled.reply(), "the stalled client's reply, whole")
	assert.Equal(t, "+PONG\r\n", stalled.do("PING"), "and the connection goes on")
}

// TestAsyncRepliesInOrder: single requests sent back to back, each in its
// own write, so that each is read as a batch of one while the previous
// reply may still be outstanding, with replies of very different sizes
// from several servers: the replies come back in request order.
func TestAsyncRepliesInOrder(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	vals := map[string]string{}
	for i := range 30 {
		k := "key:" + strconv.Itoa(i)
		vals[k] = strings.Repeat(strconv.Itoa(i%10), 1+(i%3)*200_000)
		require.Equal(t, "+OK\r\n", c.do("SET", k, vals[k]))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		for i := range 300 {
			if _, werr = c.nc.Write(resp.AppendCommandString(nil, "GET", "key:"+strconv.Itoa(i%30))); werr != nil {
				return
			}
		}
	}()
	for i := range 300 {
		v := vals["key:"+strconv.Itoa(i%30)]
		require.Equal(t, "$"+strconv.Itoa(len(v))+"\r\n"+v+"\r\n", c.reply(), "reply %d", i)
	}
	wg.Wait()
	require.NoError(t, werr)
}
