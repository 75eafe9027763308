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
	assert.Equal(t, defaultBufSize, cap(r.buf))
	assert.ErrorIs(t, r.ReadRequest(&req), io.EOF)

	r.buf = make([]byte, 1<<20)
	r.Reset(strings.NewReader(""))
	assert.Nil(t, r.buf, "Reset drops a large buffer")
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
