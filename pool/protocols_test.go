package pool_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// TestRESPFramer runs the pool with protocol/resp's FrameReply, the framer
// the proxy uses, against redis.
func TestRESPFramer(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	framer := func(b []byte, _ *pool.Request) (int, error) { return resp.FrameReply(b, protocol.Limits{}) }
	p := newPool(t, one(srv.Addr), pool.Options{Framer: framer})
	var chs []<-chan result
	for i := range 50 {
		k := "k" + strconv.Itoa(i)
		chs = append(chs, doAsync(p, cmd("RPUSH", k, "a", k)), doAsync(p, cmd("LRANGE", k, "0", "-1")))
	}
	for i := range 50 {
		k := "k" + strconv.Itoa(i)
		assert.Equal(t, result{reply: ":2\r\n"}, await(t, chs[2*i]))
		assert.Equal(t, result{reply: "*2\r\n$1\r\na\r\n" + bulk(k)}, await(t, chs[2*i+1]))
	}
}

// TestMemcacheFramer runs the pool with protocol/memcache's FrameResponse,
// which needs the command: the request carries it in Tag, set when it was
// parsed, so the framer need not parse the request again.
func TestMemcacheFramer(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	framer := func(b []byte, req *pool.Request) (int, error) {
		return memcache.FrameResponse(b, memcache.Command(req.Tag), protocol.Limits{})
	}
	p := newPool(t, one(srv.Addr), pool.Options{Framer: framer})
	for _, tt := range []struct{ give, want string }{
		{"set a 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"incr a 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"get a nokey a\r\n", "VALUE a 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
		{"delete a\r\n", "DELETED\r\n"},
		{"get a\r\n", "END\r\n"},
	} {
		var parsed memcache.Request
		n, err := memcache.ParseRequest([]byte(tt.give), protocol.Limits{}, &parsed)
		require.NoError(t, err, tt.give)
		require.Equal(t, len(tt.give), n, tt.give)
		ch := make(chan result, 1)
		p.Do(&pool.Request{Data: []byte(tt.give), Tag: uint8(parsed.Command), Done: func(reply []byte, err error) {
			ch <- result{string(reply), err}
		}})
		assert.Equal(t, result{reply: tt.want}, await(t, ch), tt.give)
	}
}
