package memconn_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walnutproxy/walnut/internal/memconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pipe(t *testing.T) (*memconn.Conn, *memconn.Conn) {
	t.Helper()
	a, b := memconn.Pipe(memconn.Addr("a"), memconn.Addr("b"))
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

// TestWriteNeverWaits writes 64 MiB, then 20,000 small writes, with no
// reader: net.Pipe would block on the first; then the other side reads
// every byte, in order.
func TestWriteNeverWaits(t *testing.T) {
	a, b := pipe(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	done := make(chan error, 1)
	go func() {
		if _, err := a.Write(big); err != nil {
			done <- err
			return
		}
		for i := range 20000 {
			if _, err := a.Write([]byte{byte(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- a.Close()
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("writes waited for a reader")
	}
	got, err := io.ReadAll(b) // the data, then io.EOF after a's Close
	require.NoError(t, err)
	require.Len(t, got, len(big)+20000)
	assert.True(t, bytes.Equal(big, got[:len(big)]))
	for i, c := range got[len(big):] {
		if c != byte(i) {
			t.Fatalf("byte %d of the small writes is %d", i, c)
		}
	}
}

func TestBothWays(t *testing.T) {
	a, b := pipe(t)
	_, err := a.Write([]byte("ping"))
	require.NoError(t, err)
	_, err = b.Write([]byte("pong"))
	require.NoError(t, err)
	buf := make([]byte, 10)
	n, err := b.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf[:n]))
	n, err = a.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "pong", string(buf[:n]))
	n, err = a.Read(nil)
	assert.Zero(t, n)
	assert.NoError(t, err)
	assert.Equal(t, memconn.Addr("a"), a.LocalAddr())
	assert.Equal(t, memconn.Addr("b"), a.RemoteAddr())
	assert.Equal(t, "memconn", a.LocalAddr().Network())
}

// TestReadWakesOnWrite: a Read waiting for data returns the bytes of a
// later Write.
func TestReadWakesOnWrite(t *testing.T) {
	a, b := pipe(t)
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 16)
		n, _ := b.Read(buf)
		got <- string(buf[:n])
	}()
	time.Sleep(20 * time.Millisecond)
	_, err := a.Write([]byte("late"))
	require.NoError(t, err)
	assert.Equal(t, "late", <-got)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestReadDeadline(t *testing.T) {
	a, b := pipe(t)
	// A deadline in the past fails a Read at once.
	require.NoError(t, b.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err := b.Read(make([]byte, 1))
	assert.True(t, isTimeout(err), "%v", err)
	// A future deadline interrupts a waiting Read.
	require.NoError(t, b.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	start := time.Now()
	_, err = b.Read(make([]byte, 1))
	assert.True(t, isTimeout(err), "%v", err)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
	// Moving the deadline while a Read waits: it follows the new one.
	require.NoError(t, b.SetReadDeadline(time.Time{}))
	errc := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, b.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	select {
	case err := <-errc:
		assert.True(t, isTimeout(err), "%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Read ignored a deadline set after it started")
	}
	// Cleared, data flows again; data already there is read despite nothing else.
	require.NoError(t, b.SetReadDeadline(time.Time{}))
	_, err = a.Write([]byte("x"))
	require.NoError(t, err)
	n, err := b.Read(make([]byte, 1))
	assert.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestWriteDeadline(t *testing.T) {
	a, b := pipe(t)
	require.NoError(t, a.SetWriteDeadline(time.Now().Add(-time.Second)))
	_, err := a.Write([]byte("x"))
	assert.True(t, isTimeout(err), "%v", err)
	require.NoError(t, a.SetDeadline(time.Now().Add(time.Hour)))
	_, err = a.Write([]byte("y"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	n, err := b.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "y", string(buf[:n]))
}

// TestClose: the other side reads what was written before Close, then
// io.EOF; its writes fail with EPIPE; the closed side's calls fail with
// net.ErrClosed, including a Read waiting when Close comes.
func TestClose(t *testing.T) {
	a, b := pipe(t)
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		errc <- err
	}()
	_, err := a.Write([]byte("last words"))
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, a.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a waiting Read")
	}
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, "last words", string(got))
	_, err = b.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EPIPE)
	_, err = a.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = a.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, a.Close(), net.ErrClosed)
	assert.ErrorIs(t, a.SetDeadline(time.Now()), net.ErrClosed)
}

func TestCloseWrite(t *testing.T) {
	a, b := pipe(t)
	_, err := a.Write([]byte("req"))
	require.NoError(t, err)
	require.NoError(t, a.CloseWrite())
	_, err = a.Write([]byte("more"))
	assert.ErrorIs(t, err, net.ErrClosed)
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, "req", string(got))
	// a still reads.
	_, err = b.Write([]byte("reply"))
	require.NoError(t, err)
	require.NoError(t, b.Close())
	got, err = io.ReadAll(a)
	require.NoError(t, err)
	assert.Equal(t, "reply", string(got))
}

// TestConcurrent has writers and a reader on each side at once (run with
// -race): every byte arrives.
func TestConcurrent(t *testing.T) {
	a, b := pipe(t)
	const n, chunk = 2000, 100
	var wg sync.WaitGroup
	for _, pair := range [][2]*memconn.Conn{{a, b}, {b, a}} {
		w, r := pair[0], pair[1]
		wg.Add(2)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{'z'}, chunk)
			for range n {
				if _, err := w.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
			_ = w.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			got, err := io.ReadAll(r)
			assert.NoError(t, err)
			assert.Len(t, got, n*chunk)
		}()
	}
	wg.Wait()
}
