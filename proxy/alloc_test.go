package proxy_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// The request path allocates nothing per request once a connection is
// warm: a client's batch reuses its calls, slots and buffers, and the
// backend pool reuses its own. testing.AllocsPerRun counts the allocations
// of every goroutine (the client's, the pool's writer and reader), so this
// covers the whole round trip.
func TestRoundTripAllocs(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := rawDial(t, addr)
	require.Equal(t, "+OK\r\n", c.do("SET", "k", "v"))
	get := []byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
	mget := []byte("*6\r\n$4\r\nMGET\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\nk3\r\n$2\r\nk4\r\n$1\r\nk\r\n")
	roundTrip := func(req []byte) func() {
		return func() {
			_, err := c.nc.Write(req)
			require.NoError(t, err)
			_, err = c.rd.ReadRawReply()
			require.NoError(t, err)
		}
	}
	for name, req := range map[string][]byte{"GET": get, "MGET over servers": mget} {
		f := roundTrip(req)
		for range 100 {
			f() // warm up
		}
		allocs := testing.AllocsPerRun(500, f)
		t.Logf("%s: %.2f allocations per round trip", name, allocs)
		// The test client's own reads may allocate now and then; the
		// proxy must not add one per request.
		require.Less(t, allocs, 0.5, name)
	}
}

func TestRoundTripAllocsMemcache(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	_, addr := startProxy(t, protocol.Memcache, bs, nil)
	setter := testserver.DialMemcache(t, addr)
	for _, k := range []string{"a", "b", "c", "d"} {
		require.NoError(t, setter.Set([]byte(k), []byte("x")))
	}
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	rd := memcache.NewReader(nc, protocol.Limits{})
	for _, req := range [][]byte{[]byte("get a\r\n"), []byte("get a b c d\r\n")} {
		f := func() {
			_, err := nc.Write(req)
			require.NoError(t, err)
			_, err = rd.ReadResponse(memcache.Get)
			require.NoError(t, err)
		}
		for range 100 {
			f()
		}
		allocs := testing.AllocsPerRun(500, f)
		t.Logf("%q: %.2f allocations per round trip", req, allocs)
		require.Less(t, allocs, 0.5, string(req))
	}
}
