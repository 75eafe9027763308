package proxy_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// TestMemcacheLongGetCost: a get of ~18,000 keys (a line of about 1 MB)
// through the proxy, split over three servers, returns every value in
// request order, and costs the proxy a few times the line in allocations
// (the read buffer grows by doubling; the keys and the fragments are sized
// once), not the dozen times that appending key by key cost.
func TestMemcacheLongGetCost(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	_, addr := startProxy(t, protocol.Memcache, bs, nil)
	c := dialMc(t, addr)
	_ = c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	var keys []string
	var sets strings.Builder
	line := []byte("get")
	for i := 0; len(line) < 1_000_000-60; i++ {
		k := fmt.Sprintf("long:%07d:%s", i, strings.Repeat("k", 40))
		keys = append(keys, k)
		line = append(line, ' ')
		line = append(line, k...)
		if i%100 == 0 {
			fmt.Fprintf(&sets, "set %s 0 0 %d noreply\r\n%s\r\n", k, len(k), k)
		}
	}
	line = append(line, "\r\n"...)
	_, err := c.nc.Write([]byte(sets.String()))
	require.NoError(t, err)
	require.Equal(t, "VERSION 1.6.18\r\n", c.do(memcache.Version, "version\r\n"))
	// The noreply sets were sent to their servers before the get.

	runtime.GC()
	before := totalAlloc()
	_, err = c.nc.Write(line)
	require.NoError(t, err)
	reply, err := c.rd.ReadResponse(memcache.Get)
	require.NoError(t, err)
	cost := totalAlloc() - before

	var want strings.Builder
	for i, k := range keys {
		if i%100 == 0 {
			fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
		}
	}
	want.WriteString("END\r\n")
	require.Equal(t, want.String(), string(reply))
	t.Logf("get of %d keys, a line of %d bytes: %d values, the proxy allocated %d KiB (%.1f times the line)",
		len(keys), len(line), len(keys)/100+1, cost>>10, float64(cost)/float64(len(line)))
	assert.Less(t, cost, uint64(8*len(line)))
}
