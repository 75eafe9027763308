package resp_test

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// chunks is an io.Reader that returns one of its strings per Read (split
// if p is smaller), as a connection returns what each write sent.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	if (*c)[0] = (*c)[0][n:]; (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestReaderIdleBuffer checks that a Reader reads into its 512-byte
// buffer while commands fit, takes one of its full size for a larger
// batch, keeps it while batches keep coming, so that they are not cut at
// 512 bytes, and goes back to 512 bytes after 4 small commands in a row.
func TestReaderIdleBuffer(t *testing.T) {
	get := "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n" // 22 bytes
	batch := strings.Repeat(get, 100)
	in := chunks{get, batch, batch, get, batch, get, get, get, get, get}
	r := resp.NewReader(&in, protocol.Limits{})
	var cmds []resp.Command
	read := func() int {
		var err error
		cmds, err = r.ReadCommands(cmds)
		require.NoError(t, err)
		return len(cmds)
	}
	assert.Equal(t, 1, read())
	assert.Equal(t, 512, resp.ReaderBufferSizeForTest(r))
	// The first batch after idling is what the idle buffer holds; the rest
	// is read into the larger buffer.
	n := read()
	assert.Equal(t, 512/len(get), n)
	n += read()
	assert.Equal(t, 100, n)
	assert.Equal(t, resp.DefaultReaderSize, resp.ReaderBufferSizeForTest(r))
	assert.Equal(t, 100, read(), "a batch arriving after a batch is read whole")
	assert.Equal(t, resp.DefaultReaderSize, resp.ReaderBufferSizeForTest(r), "kept while batches come")
	assert.Equal(t, 1, read())
	assert.Equal(t, 100, read(), "a batch after one small command is read whole")
	// The buffer is given back at the read after the fourth drain.
	for range 4 {
		assert.Equal(t, 1, read())
		assert.Equal(t, resp.DefaultReaderSize, resp.ReaderBufferSizeForTest(r), "kept until 4 small commands in a row")
	}
	assert.Equal(t, 1, read())
	assert.Equal(t, 512, resp.ReaderBufferSizeForTest(r), "given back after 4 small commands in a row")
	_, err := r.ReadCommands(cmds)
	assert.ErrorIs(t, err, io.EOF)
}
