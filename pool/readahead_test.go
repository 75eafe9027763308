package pool_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/pool"
)

// TestHugeHintDoesNotPreallocate: a backend that announces a 1 GB bulk
// reply and then stalls must not make the pool allocate 1 GB up front; the
// request then fails by timeout as usual.
func TestHugeHintDoesNotPreallocate(t *testing.T) {
	f := startFake(t, func(_ int, c net.Conn) {
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			return
		}
		_, _ = c.Write([]byte("$1000000000\r\nabc"))
		_, _ = c.Read(buf) // hold the connection until the pool closes it
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: respFramer, Timeout: 300 * time.Millisecond})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := await(t, doAsync(p, cmd("GET", "k")))
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, res.err, pool.ErrTimedOut)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated while a 1 GB reply was announced")
}
