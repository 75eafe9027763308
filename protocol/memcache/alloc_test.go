package memcache_test

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

var (
	getOne  = []byte("get k\r\n")
	getTen  = []byte("get k1 k2 k3 k4 k5 k6 k7 k8 k9 k10\r\n")
	set100  = []byte("set k 0 0 100\r\n" + strings.Repeat("v", 100) + "\r\n")
	getResp = tenValues()
)

// tenValues returns a get response with ten 100-byte values.
func tenValues() []byte {
	var b []byte
	for i := range 10 {
		b = memcache.AppendValue(b, []byte("key:"+strconv.Itoa(i)), uint32(i), bytes.Repeat([]byte{'a' + byte(i)}, 100))
	}
	return memcache.AppendEnd(b)
}

// loopReader replays b forever, so a Reader's input does not grow with
// the number of reads.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func TestAllocs(t *testing.T) {
	var req memcache.Request
	for _, give := range [][]byte{getOne, getTen, set100} {
		t.Run("ParseRequest/"+strconv.Quote(string(give[:min(len(give), 20)])), func(t *testing.T) {
			_, err := memcache.ParseRequest(give, protocol.Limits{}, &req) // sizes req.Keys
			require.NoError(t, err)
			assert.Zero(t, testing.AllocsPerRun(1000, func() {
				_, _ = memcache.ParseRequest(give, protocol.Limits{}, &req)
			}))
		})
	}
	t.Run("FrameResponse", func(t *testing.T) {
		n, err := memcache.FrameResponse(getResp, memcache.Get, protocol.Limits{})
		require.NoError(t, err)
		require.Equal(t, len(getResp), n)
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			_, _ = memcache.FrameResponse(getResp, memcache.Get, protocol.Limits{})
		}))
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			_, _ = memcache.FrameResponse([]byte("STORED\r\n"), memcache.Set, protocol.Limits{})
		}))
	})
	t.Run("ParseValue", func(t *testing.T) {
		var v memcache.Value
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			b := getResp
			for memcache.ClassifyResponse(b) == memcache.RespValue {
				n, _ := memcache.ParseValue(b, protocol.Limits{}, &v)
				b = b[n:]
			}
		}))
	})
	t.Run("Reader", func(t *testing.T) {
		stream := append(append(append([]byte{}, getOne...), getTen...), set100...)
		r := memcache.NewReader(&loopReader{b: stream}, protocol.Limits{})
		for range 10 {
			require.NoError(t, r.ReadRequest(&req))
		}
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			_ = r.ReadRequest(&req)
		}))
		reqs := make([]memcache.Request, 0, 64)
		reqs, err := r.ReadRequests(reqs)
		require.NoError(t, err)
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			reqs, _ = r.ReadRequests(reqs)
		}))
		rr := memcache.NewReader(&loopReader{b: getResp}, protocol.Limits{})
		_, err = rr.ReadResponse(memcache.Get)
		require.NoError(t, err)
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			_, _ = rr.ReadResponse(memcache.Get)
		}))
	})
	t.Run("Encode", func(t *testing.T) {
		buf := make([]byte, 0, 1024)
		keys := [][]byte{[]byte("k1"), []byte("k2")}
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			buf = memcache.AppendGet(buf[:0], memcache.Get, keys...)
			buf = memcache.AppendStorage(buf, memcache.Set, keys[0], 1, 2, 0, set100, false)
			buf = memcache.AppendValueCas(buf, keys[0], 1, set100, 5)
		}))
		w := memcache.NewWriter(io.Discard)
		req := memcache.Request{Command: memcache.Get, Keys: keys}
		w.WriteRequest(&req)
		require.NoError(t, w.Flush())
		assert.Zero(t, testing.AllocsPerRun(1000, func() {
			w.WriteRequest(&req)
			_ = w.Flush()
		}))
	})
}
