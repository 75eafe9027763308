package rawio_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/rawio"
)

// pair returns a wrapped client connection and the server's end of it.
func pair(t *testing.T) (*rawio.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	srv := <-accepted
	require.NotNil(t, srv)
	t.Cleanup(func() { nc.Close(); srv.Close() })
	c, ok := rawio.Wrap(nc).(*rawio.Conn)
	if !ok {
		t.Skip("raw system calls not used on this platform")
	}
	return c, srv
}

func TestReadWrite(t *testing.T) {
	c, srv := pair(t)
	// Large enough to fill the socket buffers, so Write must wait for
	// writability while the server reads.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(srv, int64(len(big))))
		got <- b
	}()
	n, err := c.Write(big)
	require.NoError(t, err)
	assert.Equal(t, len(big), n)
	assert.True(t, bytes.Equal(big, <-got), "bytes arrive intact")

	_, err = srv.Write([]byte("hello"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	n, err = c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))

	require.NoError(t, srv.Close())
	_, err = c.Read(buf)
	assert.ErrorIs(t, err, io.EOF)
}

func TestTryWriteDoesNotWait(t *testing.T) {
	c, srv := pair(t)
	big := bytes.Repeat([]byte("x"), 64<<20)
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		n, err = c.TryWrite(big) // the server reads nothing
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("TryWrite waited for the peer")
	}
	require.NoError(t, err)
	assert.Greater(t, n, 0)
	assert.Less(t, n, len(big), "a full socket takes only part")
	// The rest goes with Write once the server reads.
	go func() { _, _ = io.Copy(io.Discard, srv) }()
	m, err := c.Write(big[n:])
	require.NoError(t, err)
	assert.Equal(t, len(big)-n, m)
}

func TestDeadlinesAndClose(t *testing.T) {
	c, srv := pair(t)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := c.Read(make([]byte, 8))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetReadDeadline(time.Time{}))

	require.NoError(t, c.CloseWrite())
	b, err := io.ReadAll(srv)
	require.NoError(t, err, "the server sees EOF after CloseWrite")
	assert.Empty(t, b)

	require.NoError(t, c.Close())
	_, err = c.Read(make([]byte, 8))
	assert.True(t, errors.Is(err, net.ErrClosed), "read after Close: %v", err)
	_, err = c.Write([]byte("x"))
	assert.True(t, errors.Is(err, net.ErrClosed), "write after Close: %v", err)
}

func TestPeek(t *testing.T) {
	c, srv := pair(t)
	data, eof, err := c.Peek()
	require.NoError(t, err)
	assert.False(t, data || eof, "an idle open connection")

	_, err = srv.Write([]byte("x"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { data, _, _ = c.Peek(); return data }, 5*time.Second, time.Millisecond)
	buf := make([]byte, 4)
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]), "Peek consumed nothing")

	require.NoError(t, srv.Close())
	require.Eventually(t, func() bool { _, eof, _ = c.Peek(); return eof }, 5*time.Second, time.Millisecond)
}
