package resp_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{name: "ArrayHeader 0", give: resp.AppendArrayHeader(nil, 0), want: "*0\r\n"},
		{name: "ArrayHeader 12", give: resp.AppendArrayHeader(nil, 12), want: "*12\r\n"},
		{name: "Bulk", give: resp.AppendBulk(nil, []byte("a\r\nb")), want: "$4\r\na\r\nb\r\n"},
		{name: "Bulk nil", give: resp.AppendBulk(nil, nil), want: "$0\r\n\r\n"},
		{name: "BulkString", give: resp.AppendBulkString(nil, "hello"), want: "$5\r\nhello\r\n"},
		{name: "NullBulk", give: resp.AppendNullBulk(nil), want: "$-1\r\n"},
		{name: "NullArray", give: resp.AppendNullArray(nil), want: "*-1\r\n"},
		{name: "Int 0", give: resp.AppendInt(nil, 0), want: ":0\r\n"},
		{name: "Int min", give: resp.AppendInt(nil, -9223372036854775808), want: ":-9223372036854775808\r\n"},
		{name: "Simple", give: resp.AppendSimple(nil, "OK"), want: "+OK\r\n"},
		{name: "Simple with CRLF", give: resp.AppendSimple(nil, "a\r\nb"), want: "+a  b\r\n"},
		{name: "Error", give: resp.AppendError(nil, "ERR unknown command"), want: "-ERR unknown command\r\n"},
		{name: "Error with LF", give: resp.AppendError(nil, "ERR a\nb"), want: "-ERR a b\r\n"},
		{name: "Command", give: resp.AppendCommand(nil, []byte("GET"), []byte("k")), want: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"},
		{name: "Command empty", give: resp.AppendCommand(nil), want: "*0\r\n"},
		{name: "CommandString", give: resp.AppendCommandString(nil, "SET", "k", ""), want: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"},
		{name: "appends", give: resp.AppendInt([]byte("+OK\r\n"), 1), want: "+OK\r\n:1\r\n"},
		{name: "Value unknown type", give: resp.AppendValue(nil, resp.Value{Type: 'x'}), want: "$-1\r\n"},
		{name: "Value odd map", give: resp.AppendValue(nil, resp.Value{Type: '%', Elems: []resp.Value{{Type: ':', Int: 1}}}), want: "%0\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(tt.give))
		})
	}
}

func TestAppendCommandRoundTrip(t *testing.T) {
	tests := [][]string{
		{"PING"},
		{"SET", "key", "value"},
		{"SET", "k", "a\r\nb\x00\xff"},
		{"SET", "", ""},
		{"MSET", "a", strings.Repeat("x", 100000), "b", "y"},
	}
	for _, give := range tests {
		t.Run(name(strings.Join(give, " ")), func(t *testing.T) {
			b := resp.AppendCommandString(nil, give...)
			var cmd resp.Command
			n, err := resp.ParseCommand(b, protocol.Limits{}, &cmd)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			assert.Equal(t, give, strs(cmd.Args))
			assert.Equal(t, b, resp.AppendCommand(nil, cmd.Args...))
		})
	}
}

// collector is an io.Writer that records each write.
type collector struct {
	writes [][]byte
	fail   int // fail the write with this index (1-based); 0: never
	short  bool
}

var errWrite = errors.New("write failed")

func (c *collector) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	if len(c.writes) == c.fail {
		if c.short {
			return len(p) / 2, nil
		}
		return 0, errWrite
	}
	return len(p), nil
}

func (c *collector) bytes() []byte { return bytes.Join(c.writes, nil) }

// TestWriterMatchesAppend checks each Writer method writes what its Append
// function appends, through buffers of several sizes.
func TestWriterMatchesAppend(t *testing.T) {
	big := []byte(strings.Repeat("z", 1000))
	var want []byte
	want = resp.AppendArrayHeader(want, 3)
	want = resp.AppendBulk(want, []byte("bulk"))
	want = resp.AppendBulkString(want, "str")
	want = resp.AppendBulk(want, big)
	want = resp.AppendNullBulk(want)
	want = resp.AppendNullArray(want)
	want = resp.AppendInt(want, -42)
	want = resp.AppendSimple(want, "OK")
	want = resp.AppendError(want, "ERR x")
	want = resp.AppendCommand(want, []byte("GET"), big)
	want = resp.AppendCommandString(want, "SET", "k", "v")
	want = append(want, "raw\r\n"...)
	want = append(want, big...)
	want = resp.AppendValue(want, resp.Value{Type: '%', Elems: []resp.Value{{Type: '+', Str: []byte("k")}, {Type: '#', Int: 1}}})

	for _, size := range []int{1, 16, 100, 4096} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c := &collector{}
			w := resp.NewWriterSize(c, size)
			w.WriteArrayHeader(3)
			w.WriteBulk([]byte("bulk"))
			w.WriteBulkString("str")
			w.WriteBulk(big)
			w.WriteNullBulk()
			w.WriteNullArray()
			w.WriteInt(-42)
			w.WriteSimple("OK")
			w.WriteError("ERR x")
			w.WriteCommand([]byte("GET"), big)
			w.WriteCommandString("SET", "k", "v")
			n, err := w.Write([]byte("raw\r\n"))
			require.NoError(t, err)
			assert.Equal(t, 5, n)
			n, err = w.Write(big)
			require.NoError(t, err)
			assert.Equal(t, len(big), n)
			w.WriteValue(resp.Value{Type: '%', Elems: []resp.Value{{Type: '+', Str: []byte("k")}, {Type: '#', Int: 1}}})
			require.NoError(t, w.Flush())
			assert.Zero(t, w.Buffered())
			assert.Equal(t, string(want), string(c.bytes()))
			assert.LessOrEqual(t, resp.WriterBufferCapForTest(w), 2*max(size, 16), "large payloads bypass the buffer")
		})
	}
}

func TestWriterBuffers(t *testing.T) {
	c := &collector{}
	w := resp.NewWriter(c)
	w.WriteSimple("OK")
	w.WriteInt(1)
	assert.Equal(t, 9, w.Buffered())
	assert.Empty(t, c.writes, "nothing written before Flush")
	require.NoError(t, w.Flush())
	assert.Len(t, c.writes, 1, "one write per batch")
	require.NoError(t, w.Flush())
	assert.Len(t, c.writes, 1, "an empty Flush writes nothing")
}

func TestWriterDropsGrownBuffer(t *testing.T) {
	w := resp.NewWriterSize(io.Discard, 16)
	elems := make([]resp.Value, 100)
	for i := range elems {
		elems[i] = resp.Value{Type: '+', Str: []byte("0123456789")}
	}
	w.WriteValue(resp.Value{Type: '*', Elems: elems}) // one append, far past the size
	require.NoError(t, w.Flush())
	assert.LessOrEqual(t, resp.WriterBufferCapForTest(w), 32)
}

func TestWriterStickyError(t *testing.T) {
	for _, short := range []bool{false, true} {
		t.Run("short="+strconv.FormatBool(short), func(t *testing.T) {
			c := &collector{fail: 1, short: short}
			w := resp.NewWriterSize(c, 16)
			w.WriteBulkString("0123456789abcdef") // fills the buffer: written, fails
			wantErr := errWrite
			if short {
				wantErr = io.ErrShortWrite
			}
			writes := len(c.writes)
			w.WriteSimple("OK")
			w.WriteBulk(bytes.Repeat([]byte("x"), 100))
			n, err := w.Write([]byte("raw"))
			assert.Zero(t, n)
			assert.ErrorIs(t, err, wantErr)
			assert.ErrorIs(t, w.Flush(), wantErr)
			assert.ErrorIs(t, w.Flush(), wantErr)
			assert.Len(t, c.writes, writes, "nothing written after the failure")

			c2 := &collector{}
			w.Reset(c2)
			w.WriteSimple("OK")
			require.NoError(t, w.Flush())
			assert.Equal(t, "+OK\r\n", string(c2.bytes()))
		})
	}
	t.Run("fails on the large payload", func(t *testing.T) {
		c := &collector{fail: 2}
		w := resp.NewWriterSize(c, 16)
		w.WriteBulk(bytes.Repeat([]byte("x"), 100)) // header, then payload fails
		w.WriteInt(1)
		assert.ErrorIs(t, w.Flush(), errWrite)
		assert.Len(t, c.writes, 2)
	})
}

// TestWriterReaderRoundTrip writes commands and replies with a Writer and
// reads them back with a Reader.
func TestWriterReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := resp.NewWriterSize(&buf, 64)
	var want [][]string
	for i := range 500 {
		args := []string{"SET", "key:" + strconv.Itoa(i), strings.Repeat("v", i*7)}
		w.WriteCommandString(args...)
		want = append(want, args)
	}
	require.NoError(t, w.Flush())
	r := resp.NewReaderSize(&buf, protocol.Limits{}, 64)
	var cmds []resp.Command
	var got [][]string
	for {
		var err error
		cmds, err = r.ReadCommands(cmds)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		for _, c := range cmds {
			got = append(got, strs(c.Args))
		}
	}
	assert.Equal(t, want, got)

	buf.Reset()
	w.WriteArrayHeader(3)
	w.WriteInt(7)
	w.WriteNullBulk()
	w.WriteArrayHeader(2)
	w.WriteSimple("OK")
	w.WriteError("ERR boom")
	w.WriteNullArray()
	require.NoError(t, w.Flush())
	r.Reset(&buf)
	var v resp.Value
	require.NoError(t, r.ReadReply(&v))
	assert.Equal(t, `*[:7, $nil, *[+"OK", -"ERR boom"]]`, show(v))
	require.NoError(t, r.ReadReply(&v))
	assert.Equal(t, "*nil", show(v))
	assert.ErrorIs(t, r.ReadReply(&v), io.EOF)
}

func TestAppendAllocs(t *testing.T) {
	dst := make([]byte, 0, 1024)
	args := [][]byte{[]byte("SET"), []byte("key"), []byte("value")}
	allocs := testing.AllocsPerRun(100, func() {
		dst = resp.AppendCommand(dst[:0], args...)
	})
	assert.Zero(t, allocs)

	w := resp.NewWriter(io.Discard)
	allocs = testing.AllocsPerRun(100, func() {
		w.WriteCommand(args...)
		w.WriteBulkString("value")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
