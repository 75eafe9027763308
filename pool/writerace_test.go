package pool_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/pool"
)

// reusable is a request its owner reuses the moment Done returns, as the
// Request doc allows: Done scribbles over Data and flips NoReply, the way a
// caller recycling its Requests would. If the pool still read either after
// calling Done, -race reports it; if it called Done again (the writer
// seeing NoReply now set), calls counts it.
type reusable struct {
	req   pool.Request
	calls atomic.Int32
	res   chan result
}

func newReusable(data []byte) *reusable {
	r := &reusable{res: make(chan result, 2)}
	r.req.Data = data
	r.req.Done = func(reply []byte, err error) {
		r.calls.Add(1)
		r.res <- result{string(reply), err}
		r.req.NoReply = !r.req.NoReply // reused: now (or no longer) a NoReply request
		clear(r.req.Data)              // and the buffer refilled
	}
	return r
}

// bigLine returns a request line of n bytes, larger than the pool copies
// into its write buffer, so that it is written with writev straight from
// the caller's slice.
func bigLine(tag string, n int) []byte {
	b := bytes.Repeat([]byte{'x'}, n)
	copy(b, tag+" ")
	b[n-2], b[n-1] = '\r', '\n'
	return b
}

// TestKillDuringWrite: requests handed to the writer and failed while it
// is still writing them (by Close, or by Timeout) are completed once, and
// not before the writer is done with them. The server never reads, so the
// writer is stuck in its writev when the connection is killed.
func TestKillDuringWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault run of a second or more; run without -short")
	}
	for _, kill := range []string{"close", "timeout"} {
		t.Run(kill, func(t *testing.T) {
			release := make(chan struct{})
			f := startFake(t, func(int, net.Conn) { <-release }) // never reads
			t.Cleanup(func() { close(release) })
			// The dial waits until every request is queued, so that the
			// writer takes them in one batch: a dial finishing first (as
			// one did on a loaded machine) lets the writer take the first
			// few, and the rest wait behind its stuck write.
			queued := make(chan struct{})
			opts := pool.Options{Framer: lineFramer, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				select {
				case <-queued:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
			if kill == "timeout" {
				// Long enough for the check below to see every request
				// handed off before the timeout fires, even on a loaded
				// machine (200 ms was not, once, under CI).
				opts.Timeout = time.Second
			}
			p, err := pool.New(one(f.addr()), opts)
			require.NoError(t, err)
			defer p.Close()

			// 8 × 4 MiB, more than the socket buffers hold, between small
			// requests, the last of them NoReply: one batch, written with
			// writev while the connection dials.
			const n = 17
			var rs []*reusable
			for i := range n {
				data := []byte("small" + strconv.Itoa(i) + "\r\n")
				if i%2 == 1 {
					data = bigLine("big"+strconv.Itoa(i), 4<<20)
				}
				rs = append(rs, newReusable(data))
			}
			rs[n-1].req.NoReply = true
			for _, r := range rs {
				p.Do(&r.req)
			}
			close(queued)
			// Every request handed off: the writer is in its write.
			require.Eventually(t, func() bool {
				st := p.Stats()
				return st.OutQueue == n-1 && st.InQueue == 0
			}, waitFor, time.Millisecond)
			want := pool.ErrTimedOut
			if kill == "close" {
				time.Sleep(20 * time.Millisecond)
				require.NoError(t, p.Close())
				want = pool.ErrClosed
			}
			for i, r := range rs {
				got := await(t, r.res)
				assert.ErrorIs(t, got.err, want, "request %d", i)
			}
			require.NoError(t, p.Close()) // the writer has exited: no late Done
			for i, r := range rs {
				assert.Equal(t, int32(1), r.calls.Load(), "Done calls, request %d", i)
			}
		})
	}
}

// TestEarlyReplyDuringWrite: a server may answer a request before it has
// read all of it (memcached does so for an item too large to store, then
// swallows the rest). The reply must not be delivered while the writer is
// still sending the request from the caller's slice; it is delivered, once
// and intact, when the write is done.
func TestEarlyReplyDuringWrite(t *testing.T) {
	const size = 32 << 20
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReaderSize(c, 64<<10)
		for {
			head, err := r.ReadSlice(' ')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte("+early " + string(head) + "\r\n")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the writer is still writing
			// The rest of the request, which must be what was sent.
			var line []byte
			intact := true
			for err = bufio.ErrBufferFull; err == bufio.ErrBufferFull; {
				line, err = r.ReadSlice('\n')
				intact = intact && bytes.Count(line, []byte{'x'}) >= len(line)-2
			}
			if err != nil {
				return
			}
			if !intact {
				_, _ = c.Write([]byte("-corrupted request\r\n"))
			}
		}
	})
	p := newPool(t, one(f.addr()), pool.Options{Framer: lineFramer})
	for i := range 3 {
		r := newReusable(bigLine("big"+strconv.Itoa(i), size))
		p.Do(&r.req)
		got := await(t, r.res)
		require.NoError(t, got.err)
		assert.Equal(t, "+early big"+strconv.Itoa(i)+" \r\n", got.reply)
		// The next request goes out on the same connection, whole.
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		reply, err := p.Call(ctx, []byte("next"+strconv.Itoa(i)+" \r\n"))
		cancel()
		require.NoError(t, err)
		assert.Equal(t, "+early next"+strconv.Itoa(i)+" \r\n", string(reply))
		assert.Equal(t, int32(1), r.calls.Load(), "Done calls")
	}
	assert.Equal(t, int32(1), f.accepts.Load(), "one connection throughout")
}

// TestReuseStress: goroutines reuse their Requests the moment Done returns
// (mixing large and small, NoReply and not) while connections are killed
// under the writer by timeouts, server closes and finally Close. Every
// request is completed exactly once, with the reply to what was sent.
func TestReuseStress(t *testing.T) {
	var lines atomic.Int64
	f := startFake(t, func(_ int, c net.Conn) {
		r := bufio.NewReaderSize(c, 8<<10)
		w := bufio.NewWriter(c)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if line[0] != 'n' { // "nr…": NoReply
				_ = w.WriteByte('+')
				_, _ = w.Write(line[:min(len(line)-2, 40)])
				_, _ = w.WriteString("\r\n")
			}
			if lines.Add(1)%997 == 0 {
				time.Sleep(60 * time.Millisecond) // past Timeout
			}
			if r.Buffered() == 0 && w.Flush() != nil {
				return
			}
		}
	})
	p, err := pool.New(one(f.addr()), pool.Options{Framer: lineFramer, Conns: 2, Timeout: 30 * time.Millisecond})
	require.NoError(t, err)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Value
	fail := func(format string, args ...any) { bad.CompareAndSwap(nil, fmt.Sprintf(format, args...)) }
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 3000)
			var pending atomic.Bool
			var req pool.Request
			res := make(chan result, 1)
			req.Done = func(reply []byte, err error) {
				if !pending.CompareAndSwap(true, false) {
					fail("Done called twice")
					return
				}
				res <- result{string(reply), err}
			}
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				// Reuse req and buf as soon as the previous Done returned.
				size := 30
				if j%3 != 0 {
					size = 1200 + j%1500 // written from buf by writev
				}
				req.NoReply = j%4 == 0
				prefix := "g"
				if req.NoReply {
					prefix = "nr"
				}
				id := prefix + strconv.Itoa(g) + "-" + strconv.Itoa(j) + " "
				for k := range buf[:size] {
					buf[k] = 'a' + byte(j%26)
				}
				copy(buf, id)
				buf[size-2], buf[size-1] = '\r', '\n'
				req.Data = buf[:size]
				pending.Store(true)
				p.Do(&req)
				var r result
				select {
				case r = <-res:
				case <-time.After(waitFor):
					fail("request not completed")
					return
				}
				switch {
				case r.err != nil:
				case req.NoReply:
					if r.reply != "" {
						fail("NoReply request got %q", r.reply)
					}
				default:
					line := string(req.Data[:size-2])
					if want := "+" + line[:min(len(line), 40)] + "\r\n"; r.reply != want {
						fail("reply %q, want %q", r.reply, want)
					}
				}
			}
		}()
	}
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(40 * time.Millisecond)
		f.closeConns()
	}
	require.NoError(t, p.Close())
	close(stop)
	wg.Wait()
	if s := bad.Load(); s != nil {
		t.Fatal(s)
	}
}
