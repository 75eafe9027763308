package memcache_test

import (
	"errors"
	"io"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// againReader is a non-blocking source: it hands out its input in chunks,
// answering syscall.EAGAIN after each, until more is "sent" (ready).
type againReader struct {
	chunks [][]byte
	ready  bool
}

func (r *againReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	if !r.ready {
		return 0, syscall.EAGAIN
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
		r.ready = false
	}
	return n, nil
}

// TestReaderNonBlocking splits a pipeline at every byte and checks that
// EAGAIN from the source is returned, not kept: the Reader resumes and
// returns the same requests as from a blocking source.
func TestReaderNonBlocking(t *testing.T) {
	in := "get a b\r\nset k 0 0 10\r\n0123456789\r\ndelete k noreply\r\nversion\r\n"
	want := []string{"get a b\r\n", "set k 0 0 10\r\n0123456789\r\n", "delete k noreply\r\n", "version\r\n"}
	for cut := 1; cut < len(in); cut++ {
		src := &againReader{chunks: [][]byte{[]byte(in[:cut]), []byte(in[cut:])}}
		rd := memcache.NewReader(src, protocol.Limits{})
		var got []string
		var reqs []memcache.Request
		agains := 0
		for len(got) < len(want) {
			var err error
			reqs, err = rd.ReadRequests(reqs)
			if errors.Is(err, syscall.EAGAIN) {
				agains++
				require.Less(t, agains, 10, "cut %d: no progress", cut)
				src.ready = true
				continue
			}
			require.NoError(t, err, "cut %d", cut)
			for _, r := range reqs {
				got = append(got, string(r.Raw))
			}
		}
		require.Equal(t, want, got, "cut %d", cut)
		_, err := rd.ReadRequests(reqs)
		require.ErrorIs(t, err, io.EOF, "cut %d", cut)
	}
}
