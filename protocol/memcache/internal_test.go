package memcache

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
)

// TestReaderShrinks checks that the buffer grown for a large request is
// dropped once that request is consumed.
func TestReaderShrinks(t *testing.T) {
	big := "set k 0 0 1000000\r\n" + strings.Repeat("v", 1000000) + "\r\n"
	r := NewReader(io.MultiReader(strings.NewReader(big), strings.NewReader("get a\r\n")), protocol.Limits{})
	var req Request
	require.NoError(t, r.ReadRequest(&req))
	assert.Equal(t, 1000000, len(req.Data))
	assert.GreaterOrEqual(t, cap(r.buf), len(big))
	require.NoError(t, r.ReadRequest(&req))
	assert.Equal(t, idleBufSize, cap(r.buf))
	assert.ErrorIs(t, r.ReadRequest(&req), io.EOF)

	r.buf = make([]byte, 1<<20)
	r.Reset(strings.NewReader(""))
	assert.Equal(t, idleBufSize, cap(r.buf), "Reset drops a large buffer")
}

// chunks is an io.Reader that returns one of its strings per Read (split
// if p is smaller), as a connection returns what each write sent.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	if (*c)[0] = (*c)[0][n:]; (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestReaderIdleBuffer checks that a Reader reads into its 512-byte
// buffer while requests fit, takes a pooled buffer for a larger batch,
// keeps it while batches keep coming, so that they are not cut at 512
// bytes, and goes back to 512 bytes after keepQuiet small requests in a
// row.
func TestReaderIdleBuffer(t *testing.T) {
	batch := strings.Repeat("get k1 k2 k3 k4 k5\r\n", 100) // 2,000 bytes
	in := chunks{"get a\r\n", batch, batch, "get b\r\n", batch, "get c\r\n", "get d\r\n", "get e\r\n", "get f\r\n", "get g\r\n"}
	r := NewReader(&in, protocol.Limits{})
	var reqs []Request
	read := func() int {
		var err error
		reqs, err = r.ReadRequests(reqs)
		require.NoError(t, err)
		return len(reqs)
	}
	assert.Equal(t, 1, read())
	assert.Equal(t, idleBufSize, len(r.buf))
	// The first batch after idling is what the idle buffer holds; the rest
	// is read into the pooled buffer.
	n := read()
	assert.Equal(t, idleBufSize/20, n)
	n += read()
	assert.Equal(t, defaultBufSize, len(r.buf))
	assert.Equal(t, 100, n)
	assert.Equal(t, 100, read(), "a batch arriving after a batch is read whole")
	assert.Equal(t, defaultBufSize, len(r.buf), "kept while batches come")
	assert.Equal(t, 1, read())
	assert.Equal(t, 100, read(), "a batch after one small request is read whole")
	// The buffer is given back at the read after the keepQuiet-th drain.
	for range keepQuiet {
		assert.Equal(t, 1, read())
		assert.Equal(t, defaultBufSize, len(r.buf), "kept until keepQuiet small requests in a row")
	}
	assert.Equal(t, 1, read())
	assert.Equal(t, idleBufSize, len(r.buf), "given back after keepQuiet small requests")
	assert.Nil(t, r.work)
}

// TestReaderGrowsWithInput checks that a request announcing a large data
// block does not make the Reader allocate it before the data arrives.
func TestReaderGrowsWithInput(t *testing.T) {
	in := "set k 0 0 100000000\r\n" + strings.Repeat("v", 100)
	r := NewReader(strings.NewReader(in), protocol.Limits{})
	var req Request
	assert.ErrorIs(t, r.ReadRequest(&req), io.ErrUnexpectedEOF)
	assert.LessOrEqual(t, cap(r.buf), 2*defaultBufSize)
}

// TestReaderDiscardsWithoutBuffering checks that the data block of a
// too-large request is skipped through a small buffer.
func TestReaderDiscardsWithoutBuffering(t *testing.T) {
	in := "set k 0 0 10000000\r\n" + strings.Repeat("v", 10000000) + "\r\nget a\r\n"
	r := NewReader(strings.NewReader(in), protocol.Limits{MaxBulk: 1000})
	var req Request
	assert.ErrorIs(t, r.ReadRequest(&req), protocol.ErrTooLarge)
	assert.Equal(t, 10000002, req.Discard)
	require.NoError(t, r.ReadRequest(&req))
	assert.Equal(t, "a", string(req.Keys[0]))
	assert.Equal(t, defaultBufSize, cap(r.buf))
}

// TestWriterDropsLargeBuffer checks that Flush drops a grown buffer.
func TestWriterDropsLargeBuffer(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.WriteClientError(strings.Repeat("x", 200<<10))
	require.NoError(t, w.Flush())
	assert.Nil(t, w.buf)
	w.WriteResponse(RespStored)
	require.NoError(t, w.Flush())
	assert.LessOrEqual(t, cap(w.buf), maxIdleWriteBuf)
}
