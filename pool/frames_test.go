package pool

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// chunks is a reader that returns its data at most chunk bytes a read, as
// a socket under load does.
type chunks struct {
	data  []byte
	chunk int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data[:min(len(c.data), c.chunk)])
	c.data = c.data[n:]
	return n, nil
}

// readReplies reads replies replies from rd through a replyBuf as the
// reader goroutine does (fill, frame what is ready, make room) and returns
// the number of framer calls and the largest buffer used, and, with keep,
// copies of the replies.
func readReplies(tb testing.TB, b *replyBuf, rd io.Reader, framer Framer, replies int, keep bool) (got [][]byte, calls, maxBuf int) {
	tb.Helper()
	counting := func(p []byte, req *Request) (int, error) { calls++; return framer(p, req) }
	b.room()
	framed := 0
	for framed < replies {
		if _, err := b.fill(rd); err != nil {
			tb.Fatalf("after %d replies: %v", framed, err)
		}
		for framed < replies && b.ready() {
			m, err := b.next(counting, &Request{})
			require.NoError(tb, err)
			if m == 0 {
				break
			}
			framed++
			if keep {
				got = append(got, bytes.Clone(b.buf[b.r-m:b.r]))
			}
		}
		maxBuf = max(maxBuf, len(b.buf))
		if framed < replies {
			b.room()
		}
	}
	return got, calls, maxBuf
}

func respFrame(p []byte, _ *Request) (int, error) { return resp.FrameReply(p, protocol.Limits{}) }
func respHint(p []byte, _ *Request) (int, error)  { return resp.FrameReplyHint(p, protocol.Limits{}) }

// TestReplyBufPipelined: replies cut at arbitrary read boundaries come out
// whole and in order.
func TestReplyBufPipelined(t *testing.T) {
	var all []byte
	var want []string
	for i := range 200 {
		r := resp.AppendBulk(nil, bytes.Repeat([]byte{'a' + byte(i%26)}, i*37))
		all = append(all, r...)
		want = append(want, string(r))
	}
	for _, chunk := range []int{1, 7, 1000, 1 << 20} {
		var b replyBuf
		got, _, _ := readReplies(t, &b, &chunks{data: all, chunk: chunk}, respHint, len(want), true)
		require.Len(t, got, len(want))
		for i := range got {
			require.Equal(t, want[i], string(got[i]), "chunk %d reply %d", chunk, i)
		}
	}
}

// TestReplyBufHint: with a size hint a 1 MiB reply is framed twice and the
// buffer grown once; without, it is framed after every read and the
// buffer doubles.
func TestReplyBufHint(t *testing.T) {
	reply := resp.AppendBulk(nil, make([]byte, 1<<20))
	var b replyBuf
	_, calls, maxBuf := readReplies(t, &b, &chunks{data: reply, chunk: 16 << 10}, respHint, 1, false)
	assert.Equal(t, 2, calls)
	assert.Equal(t, len(reply), maxBuf)

	b = replyBuf{}
	_, calls, maxBuf = readReplies(t, &b, &chunks{data: reply, chunk: 16 << 10}, respFrame, 1, false)
	assert.Greater(t, calls, 60)
	assert.Equal(t, 2<<20, maxBuf)
}

// TestReplyBufReadAhead: a hint far beyond the bytes received grows the
// full buffer by at most maxReadAhead at once; once a thirty-second of a
// large reply is in, the buffer grows to the reply's length; and an empty
// oversized buffer is dropped.
func TestReplyBufReadAhead(t *testing.T) {
	header := []byte("$268435456\r\n") // announces 256 MiB
	var b replyBuf
	b.room()
	src := &chunks{data: append(header, make([]byte, 64<<20)...), chunk: 1 << 30}
	_, err := b.fill(src)
	require.NoError(t, err)
	m, err := b.next(respHint, &Request{})
	require.NoError(t, err)
	require.Zero(t, m)
	b.room()
	assert.Equal(t, readBufSize+maxReadAhead, len(b.buf), "the full buffer grows by the read-ahead")
	_, err = b.fill(src)
	require.NoError(t, err)
	b.room()
	assert.Equal(t, 2*(readBufSize+maxReadAhead), len(b.buf), "less than 1/32 in: it doubles")
	for range 8 {
		if len(b.buf) == len(header)+256<<20+2 {
			break
		}
		_, err = b.fill(src)
		require.NoError(t, err)
		b.room()
	}
	assert.Equal(t, len(header)+256<<20+2, len(b.buf), "1/32 in: the reply's length at once")

	b.r = b.w // everything handed out
	b.room()
	assert.Equal(t, readBufSize, len(b.buf))
}

// TestReplyBufEstimate: an array of large strings is read into one buffer
// sized by the estimate (up to maxEstimate times the known need) instead
// of one per element; the reply comes out whole either way. (Buffers of
// 8 MiB or more are counted: the read-ahead's are smaller.)
func TestReplyBufEstimate(t *testing.T) {
	const size = 8 << 20 // more than the read-ahead: grown to by Exact
	val := bytes.Repeat([]byte("v"), size)
	var arr []byte
	arr = append(arr, "*3\r\n"...)
	for range 3 {
		arr = append(arr, "$8388608\r\n"...)
		arr = append(arr, val...)
		arr = append(arr, "\r\n"...)
	}
	for _, tc := range []struct {
		name     string
		estimate func([]byte, *Request) int
		grows    int
	}{
		{"without", nil, 3},
		{"with", func(b []byte, _ *Request) int { return resp.EstimateArray(b, protocol.Limits{}) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := replyBuf{estimate: tc.estimate}
			b.room()
			src := &chunks{data: arr, chunk: 1 << 20}
			grows, prev := 0, len(b.buf)
			for {
				_, err := b.fill(src)
				require.NoError(t, err)
				m, err := b.next(respHint, &Request{})
				require.NoError(t, err)
				if m > 0 {
					require.Equal(t, arr, b.buf[b.r-m:b.r])
					break
				}
				b.room()
				if len(b.buf) != prev && len(b.buf) >= size {
					grows++
				}
				prev = len(b.buf)
			}
			assert.Equal(t, tc.grows, grows, "buffers of a megabyte or more allocated for the reply")
		})
	}
}

// BenchmarkReplyBuf frames one reply with a 1 MiB value delivered in 16 KiB
// reads through the pool's framing loop, with each codec's framer without
// and with its size hint (framed after every read and the buffer doubled,
// against framed twice and the buffer grown once).
func BenchmarkReplyBuf(b *testing.B) {
	bulk := resp.AppendBulk(nil, make([]byte, 1<<20))
	value := memcache.AppendEnd(memcache.AppendValue(nil, []byte("k"), 0, make([]byte, 1<<20)))
	mcFrame := func(p []byte, _ *Request) (int, error) {
		return memcache.FrameResponse(p, memcache.Get, protocol.Limits{})
	}
	mcHint := func(p []byte, _ *Request) (int, error) {
		return memcache.FrameResponseHint(p, memcache.Get, protocol.Limits{})
	}
	for _, bc := range []struct {
		name   string
		reply  []byte
		framer Framer
	}{
		{"resp-1MiB-bulk/no-hint", bulk, respFrame},
		{"resp-1MiB-bulk/hint", bulk, respHint},
		{"memcache-1MiB-value/no-hint", value, mcFrame},
		{"memcache-1MiB-value/hint", value, mcHint},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.reply)))
			calls := 0
			for b.Loop() {
				var rb replyBuf
				_, calls, _ = readReplies(b, &rb, &chunks{data: bc.reply, chunk: 16 << 10}, bc.framer, 1, false)
			}
			b.ReportMetric(float64(calls), "frames/op")
		})
	}
}
