package resp_test

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// againReader is a non-blocking source: it hands out its input in chunks,
// answering syscall.EAGAIN after each, until more is "sent" (next).
type againReader struct {
	chunks [][]byte
	ready  bool // the current chunk may be read
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

// TestReaderNonBlocking splits a pipeline at every byte and checks that a
// Reader over a source that answers EAGAIN between the two parts returns
// the error, keeps the partial command, and resumes with the same
// commands as a blocking source gives.
func TestReaderNonBlocking(t *testing.T) {
	in := "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\nPING\r\n*1\r\n$4\r\nPING\r\n"
	want := []string{"GET key", "SET k 0123456789", "PING", "PING"}
	for cut := 1; cut < len(in); cut++ {
		src := &againReader{chunks: [][]byte{[]byte(in[:cut]), []byte(in[cut:])}}
		rd := resp.NewReaderSize(src, protocol.Limits{}, 16)
		var got []string
		var cmds []resp.Command
		agains := 0
		for len(got) < len(want) {
			var err error
			cmds, err = rd.ReadCommands(cmds)
			if errors.Is(err, syscall.EAGAIN) {
				agains++
				require.Less(t, agains, 10, "cut %d: no progress", cut)
				src.ready = true
				continue
			}
			require.NoError(t, err, "cut %d", cut)
			for _, c := range cmds {
				var parts []string
				for _, a := range c.Args {
					parts = append(parts, string(a))
				}
				got = append(got, strings.Join(parts, " "))
			}
		}
		require.Equal(t, want, got, "cut %d", cut)
		_, err := rd.ReadCommands(cmds)
		require.ErrorIs(t, err, io.EOF, "cut %d", cut)
	}
}
