package memcache_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// oneByteReader returns a reader that yields b one byte per Read.
func oneByteReader(b []byte) io.Reader {
	return iotest.OneByteReader(bytes.NewReader(b))
}

// chunkReader returns its chunks one per Read, then io.EOF.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// outcome describes what a Reader returned: the command of a request, or
// the Reply of an error, marked "!" if the stream is out of sync.
func outcome(req *memcache.Request, err error) string {
	var pe *protocol.Error
	switch {
	case err == nil:
		return req.Command.String() + " " + strings.Join(view(req).Keys, ",")
	case errors.As(err, &pe) && len(req.Raw) > 0:
		return pe.Reply
	case errors.As(err, &pe):
		return "!" + pe.Reply
	}
	return err.Error()
}

func TestReaderAllRequests(t *testing.T) {
	var stream []byte
	for _, tt := range validRequests {
		stream = append(stream, tt.give...)
	}
	readers := map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": oneByteReader(stream),
		"halves":   iotest.HalfReader(bytes.NewReader(stream)),
	}
	for name, rd := range readers {
		t.Run(name, func(t *testing.T) {
			r := memcache.NewReader(rd, protocol.Limits{})
			var req memcache.Request
			for _, tt := range validRequests {
				require.NoError(t, r.ReadRequest(&req))
				assert.Equal(t, tt.want, view(&req))
				assert.Equal(t, tt.give, string(req.Raw))
			}
			assert.ErrorIs(t, r.ReadRequest(&req), io.EOF)
			assert.ErrorIs(t, r.ReadRequest(&req), io.EOF, "sticky")
		})
	}
}

// TestReaderResync checks that the Reader goes on after the errors
// memcached recovers from, split at every byte boundary.
func TestReaderResync(t *testing.T) {
	in := "get a\r\nfoo\r\nset k 0 0 abc\r\nhello\r\nset k 0 0 1\r\nxyz\r\n" +
		"set big 0 0 20 noreply\r\n01234567890123456789\r\nget " + key251 + "\r\nget b c\r\n"
	want := []string{
		"get a", "ERROR", "CLIENT_ERROR bad command line format", "ERROR",
		"CLIENT_ERROR bad data chunk", "ERROR", "SERVER_ERROR object too large for cache",
		"CLIENT_ERROR bad command line format", "get b,c", "EOF",
	}
	r := memcache.NewReader(oneByteReader([]byte(in)), protocol.Limits{MaxBulk: 10})
	var got []string
	var req memcache.Request
	for {
		err := r.ReadRequest(&req)
		got = append(got, outcome(&req, err))
		if err != nil && !errors.Is(err, protocol.ErrProtocol) {
			break
		}
	}
	assert.Equal(t, want, got)
}

func TestReaderOutOfSync(t *testing.T) {
	r := memcache.NewReader(strings.NewReader("get a\r\nset "+strings.Repeat("x", 100)+"\r\nget b\r\n"), protocol.Limits{MaxLine: 64})
	var req memcache.Request
	require.NoError(t, r.ReadRequest(&req))
	for range 2 {
		err := r.ReadRequest(&req)
		assert.Equal(t, "!CLIENT_ERROR line too long", outcome(&req, err))
		assert.ErrorIs(t, err, protocol.ErrTooLarge)
	}
}

func TestReaderEOF(t *testing.T) {
	tests := []struct {
		give string
		lim  protocol.Limits
		want []string
	}{
		{"", protocol.Limits{}, []string{"EOF"}},
		{"get a", protocol.Limits{}, []string{"unexpected EOF"}},
		{"get a\r\n", protocol.Limits{}, []string{"get a", "EOF"}},
		{"get a\r\nset k 0 0 5\r\nab", protocol.Limits{}, []string{"get a", "unexpected EOF"}},
		{"set k 0 0 5\r\nab", protocol.Limits{MaxBulk: 1}, []string{"SERVER_ERROR object too large for cache", "unexpected EOF"}},
		{"set k 0 0 5\r\nabcde\r\n", protocol.Limits{MaxBulk: 1}, []string{"SERVER_ERROR object too large for cache", "EOF"}},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			for name, rd := range map[string]io.Reader{"whole": strings.NewReader(tt.give), "one byte": oneByteReader([]byte(tt.give))} {
				r := memcache.NewReader(rd, tt.lim)
				var got []string
				var req memcache.Request
				for range tt.want {
					got = append(got, outcome(&req, r.ReadRequest(&req)))
				}
				assert.Equal(t, tt.want, got, name)
			}
		})
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := memcache.NewReader(io.MultiReader(strings.NewReader("get a\r\nget"), iotest.ErrReader(boom)), protocol.Limits{})
	var req memcache.Request
	require.NoError(t, r.ReadRequest(&req))
	assert.ErrorIs(t, r.ReadRequest(&req), boom)
	assert.ErrorIs(t, r.ReadRequest(&req), boom, "sticky")

	r.Reset(strings.NewReader("get b\r\n"))
	require.NoError(t, r.ReadRequest(&req))
	assert.Equal(t, []string{"b"}, view(&req).Keys)
}

// badReader returns an impossible count.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

// emptyReader never makes progress.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderMisbehavingReader(t *testing.T) {
	var req memcache.Request
	assert.Error(t, memcache.NewReader(badReader{}, protocol.Limits{}).ReadRequest(&req))
	assert.ErrorIs(t, memcache.NewReader(emptyReader{}, protocol.Limits{}).ReadRequest(&req), io.ErrNoProgress)
}

func TestReaderReadRequests(t *testing.T) {
	rd := &chunkReader{chunks: []string{
		"get a\r\nget b\r\nset k 0 0 1\r\nx\r\nget c",
		"\r\nfoo\r\nget d\r\n",
		"set k 0 0 1\r\nxyz\r\nget e\r\n",
	}}
	r := memcache.NewReader(rd, protocol.Limits{})
	var batches [][]string
	reqs := make([]memcache.Request, 0, 2)
	for {
		var err error
		reqs, err = r.ReadRequests(reqs)
		var batch []string
		for i := range reqs {
			if i == len(reqs)-1 && err != nil {
				batch = append(batch, outcome(&reqs[i], err))
			} else {
				batch = append(batch, outcome(&reqs[i], nil))
			}
		}
		if len(reqs) == 0 {
			batch = append(batch, outcome(nil, err))
		}
		batches = append(batches, batch)
		if err != nil && !errors.Is(err, protocol.ErrProtocol) {
			break
		}
	}
	assert.Equal(t, [][]string{
		{"get a", "get b", "set k"},
		{"get c"},
		{"ERROR"},
		{"get d"},
		{"CLIENT_ERROR bad data chunk"},
		{"ERROR"},
		{"get e"},
		{"EOF"},
	}, batches)
}

func TestReaderReadResponse(t *testing.T) {
	var stream []byte
	for _, tt := range validResponses {
		stream = append(stream, tt.give...)
	}
	for name, rd := range map[string]io.Reader{"whole": bytes.NewReader(stream), "one byte": oneByteReader(stream)} {
		t.Run(name, func(t *testing.T) {
			r := memcache.NewReader(rd, protocol.Limits{})
			for _, tt := range validResponses {
				resp, err := r.ReadResponse(tt.cmd)
				require.NoError(t, err)
				assert.Equal(t, tt.give, string(resp))
			}
			_, err := r.ReadResponse(memcache.Get)
			assert.ErrorIs(t, err, io.EOF)
		})
	}

	r := memcache.NewReader(strings.NewReader("VALUE k 0 5\r\nab"), protocol.Limits{})
	_, err := r.ReadResponse(memcache.Get)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	r = memcache.NewReader(strings.NewReader("WHAT\r\n"), protocol.Limits{})
	_, err = r.ReadResponse(memcache.Get)
	assert.ErrorIs(t, err, protocol.ErrProtocol)
}

// longGet returns a get line of about size bytes and its keys.
func longGet(cmd string, size int) (line []byte, keys []string) {
	line = append(line, cmd...)
	for i := 0; len(line) < size; i++ {
		k := "key:" + strconv.Itoa(i) + ":\x01\x7f"
		keys = append(keys, k)
		line = append(line, ' ')
		line = append(line, k...)
	}
	return append(line, "\r\n"...), keys
}

// TestReaderLongGet: get, gets, gat and gats lines of any length up to
// MaxRequest are read, however they arrive; longer ones, and lines of
// other commands over MaxLine, are refused.
func TestReaderLongGet(t *testing.T) {
	for _, cmd := range []string{"get", "gets", "gat 10", "gats 0", "   get"} {
		line, keys := longGet(cmd, 300<<10)
		stream := append(append([]byte{}, line...), "get tail\r\n"...)
		for _, chunk := range []int{1, 1000, 64 << 10} {
			r := memcache.NewReader(iotest.HalfReader(&chunked{b: stream, n: chunk}), protocol.Limits{MaxLine: 1024, MaxRequest: len(line)})
			var req memcache.Request
			require.NoError(t, r.ReadRequest(&req), "%s in chunks of %d", cmd, chunk)
			require.Len(t, req.Keys, len(keys))
			for i, k := range keys {
				require.Equal(t, k, string(req.Keys[i]))
			}
			require.NoError(t, r.ReadRequest(&req))
			assert.Equal(t, "get tail\r\n", string(req.Raw))
		}
		// One byte over MaxRequest.
		r := memcache.NewReader(&chunked{b: stream, n: 4096}, protocol.Limits{MaxLine: 1024, MaxRequest: len(line) - 1})
		var req memcache.Request
		err := r.ReadRequest(&req)
		assert.Equal(t, "!CLIENT_ERROR line too long", outcome(&req, err), cmd)
		assert.ErrorIs(t, err, protocol.ErrTooLarge)
	}
	// Other commands stay bounded by MaxLine.
	r := memcache.NewReader(&chunked{b: []byte("delete " + strings.Repeat("k", 2000) + "\r\n"), n: 100}, protocol.Limits{MaxLine: 1024})
	var req memcache.Request
	assert.Equal(t, "!CLIENT_ERROR line too long", outcome(&req, r.ReadRequest(&req)))
}

// chunked yields b at most n bytes per Read.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// BenchmarkReadLongGet reads a 16 MiB get line arriving 64 KiB a read: the
// line end is searched for once, not from the line's start after every
// read.
func BenchmarkReadLongGet(b *testing.B) {
	line, _ := longGet("get", 16<<20)
	b.SetBytes(int64(len(line)))
	var req memcache.Request
	for b.Loop() {
		r := memcache.NewReader(&chunked{b: line, n: 64 << 10}, protocol.Limits{MaxArgs: 4 << 20})
		if err := r.ReadRequest(&req); err != nil {
			b.Fatal(err)
		}
	}
}
