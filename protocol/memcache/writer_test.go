package memcache_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol/memcache"
)

// countingWriter records each Write.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestWriter(t *testing.T) {
	var out countingWriter
	w := memcache.NewWriter(&out)
	w.WriteRequest(&memcache.Request{Command: memcache.Get, Keys: [][]byte{[]byte("a"), []byte("b")}})
	w.WriteValue(&memcache.Value{Key: []byte("a"), Flags: 1, Data: []byte("x")})
	w.WriteValue(&memcache.Value{Key: []byte("b"), Data: []byte("yy"), Cas: 5, HasCas: true})
	w.WriteResponse(memcache.RespEnd)
	w.WriteClientError("bad data chunk")
	w.WriteServerError("out of memory")
	n, err := w.Write([]byte("STORED\r\n"))
	require.NoError(t, err)
	assert.Equal(t, 8, n)
	assert.Zero(t, out.writes, "nothing is written before Flush")
	assert.Equal(t, 114, w.Buffered())

	require.NoError(t, w.Flush())
	assert.Equal(t, 1, out.writes)
	assert.Zero(t, w.Buffered())
	assert.Equal(t, "get a b\r\nVALUE a 1 1\r\nx\r\nVALUE b 0 2 5\r\nyy\r\nEND\r\n"+
		"CLIENT_ERROR bad data chunk\r\nSERVER_ERROR out of memory\r\nSTORED\r\n", out.String())
	require.NoError(t, w.Flush())
	assert.Equal(t, 1, out.writes, "an empty Flush writes nothing")
}

func TestWriterLarge(t *testing.T) {
	var out countingWriter
	w := memcache.NewWriter(&out)
	w.WriteResponse(memcache.RespStored)
	big := bytes.Repeat([]byte("v"), 1<<20)
	n, err := w.Write(big)
	require.NoError(t, err)
	assert.Equal(t, len(big), n)
	assert.Equal(t, 2, out.writes, "buffer flushed, then the large slice written through")
	assert.Zero(t, w.Buffered())

	// Buffered output is written once it reaches 64 KiB.
	out.Reset()
	out.writes = 0
	for range 1000 {
		w.WriteValue(&memcache.Value{Key: []byte("k"), Data: bytes.Repeat([]byte("x"), 100)})
	}
	assert.Equal(t, 1, out.writes)
	require.NoError(t, w.Flush())
	assert.Equal(t, 2, out.writes)
	assert.Equal(t, 1000*len("VALUE k 0 100\r\n\r\n")+100*1000, out.Len())
}

// failWriter fails every write.
type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// shortWriter writes half of what it is given.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriterStickyError(t *testing.T) {
	boom := errors.New("boom")
	w := memcache.NewWriter(failWriter{boom})
	w.WriteResponse(memcache.RespStored)
	assert.ErrorIs(t, w.Flush(), boom)
	w.WriteResponse(memcache.RespStored)
	assert.Zero(t, w.Buffered(), "nothing is buffered after an error")
	_, err := w.Write([]byte("x"))
	assert.ErrorIs(t, err, boom)
	assert.ErrorIs(t, w.Flush(), boom)

	var out bytes.Buffer
	w.Reset(&out)
	w.WriteResponse(memcache.RespDeleted)
	require.NoError(t, w.Flush())
	assert.Equal(t, "DELETED\r\n", out.String())

	w = memcache.NewWriter(shortWriter{})
	w.WriteResponse(memcache.RespStored)
	assert.ErrorIs(t, w.Flush(), io.ErrShortWrite)
	w = memcache.NewWriter(shortWriter{})
	_, err = w.Write(make([]byte, 1<<20))
	assert.ErrorIs(t, err, io.ErrShortWrite)
}
