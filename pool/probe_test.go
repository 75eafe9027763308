package pool_test

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/pool"
)

// ejectThenProbe starts a server whose first connection closes after one
// request, ejecting it (FailureLimit 1), and whose later connections, the
// probes, are handled by probe after it has read the probe request. It
// returns the pool and a channel of OnChange events.
func ejectThenProbe(t *testing.T, framer pool.Framer, logs *logBuffer, probe func(c net.Conn)) (*pool.Pool, *fake, <-chan bool) {
	t.Helper()
	f := startFake(t, func(n int, c net.Conn) {
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil || n == 1 {
			return
		}
		probe(c)
	})
	events := make(chan bool, 10)
	p := newPool(t, one(f.addr()), pool.Options{
		Framer: framer, AutoEject: true, FailureLimit: 1,
		RetryTimeout: 20 * time.Millisecond, Probe: []byte("PING\r\n"),
		OnChange: func(ejected bool) { events <- ejected },
		Logger:   newLogger(logs),
	})
	_, err := p.Call(t.Context(), []byte("x\r\n"))
	require.ErrorIs(t, err, pool.ErrEOF)
	require.True(t, <-events)
	return p, f, events
}

// TestProbeReplyTooLong: the probe's read buffer is bounded. A reply that
// never ends, or a Framer hint beyond the bound, fails the probe instead of
// growing the buffer without limit.
func TestProbeReplyTooLong(t *testing.T) {
	t.Run("endless", func(t *testing.T) {
		var logs logBuffer
		chunk := bytes.Repeat([]byte{'x'}, 1<<20)
		p, _, events := ejectThenProbe(t, lineFramer, &logs, func(c net.Conn) {
			for { // a line that never ends
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		})
		require.Eventually(t, func() bool { return logs.count("probe reply too long") >= 2 }, waitFor, time.Millisecond)
		assert.True(t, p.Ejected())
		assert.Empty(t, events)
		assert.GreaterOrEqual(t, p.Stats().ServerErr, int64(2), "each failed probe counts")
	})
	t.Run("hint", func(t *testing.T) {
		var logs logBuffer
		p, _, events := ejectThenProbe(t, respFramer, &logs, func(c net.Conn) {
			// The header of a 1 GiB bulk string, and then nothing.
			if _, err := c.Write([]byte("$" + strconv.Itoa(1<<30) + "\r\n")); err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 1))
		})
		require.Eventually(t, func() bool { return logs.count("probe reply too long") >= 2 }, waitFor, time.Millisecond)
		assert.True(t, p.Ejected())
		assert.Empty(t, events)
	})
}

// TestProbeReplyHint: a probe reply larger than the initial buffer, sent
// in pieces, is read to the Framer's size hint: the Framer is not
// called again for every piece.
func TestProbeReplyHint(t *testing.T) {
	var calls atomic.Int32
	framer := func(b []byte, req *pool.Request) (int, error) {
		calls.Add(1)
		return respFramer(b, req)
	}
	const size, piece = 1 << 20, 16 << 10
	reply := []byte(bulk(string(bytes.Repeat([]byte{'p'}, size))))
	var logs logBuffer
	p, _, events := ejectThenProbe(t, framer, &logs, func(c net.Conn) {
		for b := reply; len(b) > 0; b = b[min(len(b), piece):] {
			if _, err := c.Write(b[:min(len(b), piece)]); err != nil {
				return
			}
			time.Sleep(time.Millisecond) // one read each
		}
		_, _ = c.Read(make([]byte, 1))
	})
	calls.Store(0) // the probe is the next to frame anything
	select {
	case ejected := <-events:
		assert.False(t, ejected)
	case <-time.After(waitFor):
		t.Fatalf("not reinstated; log:\n%s", logs.String())
	}
	assert.False(t, p.Ejected())
	assert.LessOrEqual(t, calls.Load(), int32(4), "framer calls for a %d-byte reply in %d-byte pieces", len(reply), piece)
}
