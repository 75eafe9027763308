package resp_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// strs returns args as strings, for readable comparisons.
func strs(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

// validCommands are complete commands and what redis-server parses them
// into. Each is also checked against a real redis-server in redis_test.go.
var validCommands = []struct {
	give   string
	want   []string
	inline bool
}{
	{give: "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", want: []string{"SET", "key", "value"}},
	{give: "*1\r\n$4\r\nPING\r\n", want: []string{"PING"}},
	{give: "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", want: []string{"ECHO", ""}},
	{give: "*2\r\n$4\r\nECHO\r\n$6\r\na\r\nb\x00c\r\n", want: []string{"ECHO", "a\r\nb\x00c"}},
	{give: "*2\r\n$4\r\nECHO\r\n$12\r\n123456789012\r\n", want: []string{"ECHO", "123456789012"}},
	{give: "*2\r\n$4\r\nECHO\r\n$1\r\n\xff\r\n", want: []string{"ECHO", "\xff"}},
	// redis-server skips the two bytes after a bulk's data unchecked, and
	// the byte after a header's '\r'.
	{give: "*1\r\n$4\r\nPINGxx", want: []string{"PING"}},
	{give: "*1\rx$4\rxPING\r\n", want: []string{"PING"}},
	// Anything not starting with '*' is inline.
	{give: "PING\r\n", want: []string{"PING"}, inline: true},
	{give: "PING\n", want: []string{"PING"}, inline: true},
	{give: "PING\r\r\n", want: []string{"PING"}, inline: true},
	{give: "  SET   a\tb  \r\n", want: []string{"SET", "a", "b"}, inline: true},
	{give: "ECHO a\rb\r\n", want: []string{"ECHO", "a", "b"}, inline: true},
	{give: "ECHO a\vb\r\n", want: []string{"ECHO", "a\vb"}, inline: true},
	{give: "\vECHO\fx\r\n", want: []string{"ECHO\fx"}, inline: true},
	{give: `ECHO "a\x41\n"` + "\r\n", want: []string{"ECHO", "aA\n"}, inline: true},
	{give: `ECHO "\x4g"` + "\r\n", want: []string{"ECHO", "x4g"}, inline: true},
	{give: `ECHO "\r\t\b\a\\\q"` + "\r\n", want: []string{"ECHO", "\r\t\b\a\\q"}, inline: true},
	{give: `ECHO "a\"b"` + "\r\n", want: []string{"ECHO", `a"b`}, inline: true},
	{give: `ECHO 'a\'b'` + "\r\n", want: []string{"ECHO", "a'b"}, inline: true},
	{give: `ECHO '\x41'` + "\r\n", want: []string{"ECHO", `\x41`}, inline: true},
	{give: `ECHO x"y z"` + "\r\n", want: []string{"ECHO", "xy z"}, inline: true},
	{give: `ECHO ""` + "\r\n", want: []string{"ECHO", ""}, inline: true},
	{give: `ECHO "a"` + "\v" + `b` + "\r\n", want: []string{"ECHO", "a", "b"}, inline: true},
	{give: `SET "k 1" 'v 2' plain` + "\n", want: []string{"SET", "k 1", "v 2", "plain"}, inline: true},
	{give: "$4\r\n", want: []string{"$4"}, inline: true},
}

func TestParseCommand(t *testing.T) {
	for _, tt := range validCommands {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			b := []byte(tt.give)
			var cmd resp.Command
			n, err := resp.ParseCommand(b, protocol.Limits{}, &cmd)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			assert.Equal(t, tt.want, strs(cmd.Args))
			assert.Equal(t, tt.give, string(cmd.Raw))
			assert.Equal(t, tt.inline, cmd.Inline)

			for i := range len(b) {
				n, err := resp.ParseCommand(b[:i], protocol.Limits{}, &cmd)
				require.NoError(t, err, "prefix %q", b[:i])
				require.Zero(t, n, "prefix %q", b[:i])
			}
		})
	}
}

func TestParseCommandAliasesInput(t *testing.T) {
	b := []byte("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING a\r\n")
	var cmd resp.Command
	n, err := resp.ParseCommand(b, protocol.Limits{}, &cmd)
	require.NoError(t, err)
	b[17] = 'K'
	assert.Equal(t, "Key", string(cmd.Args[1]))
	assert.Equal(t, 3, cap(cmd.Args[1]), "no spare capacity into the input")

	_, err = resp.ParseCommand(b[n:], protocol.Limits{}, &cmd)
	require.NoError(t, err)
	b[n+5] = 'b'
	assert.Equal(t, []string{"PING", "b"}, strs(cmd.Args))
}

// TestParseCommandSkips checks input redis-server reads past without a
// command: ParseCommand consumes it and returns no Args.
func TestParseCommandSkips(t *testing.T) {
	tests := []string{"\r\n", "\n", "   \t\r\n", "\v\f\n", "*0\r\n", "*-1\r\n", "*-5\r\n", "*-9223372036854775808\r\n", "*0\rx"}
	for _, give := range tests {
		t.Run(strconv.Quote(give), func(t *testing.T) {
			b := []byte(give + "PING\r\n")
			cmd := resp.Command{Args: [][]byte{[]byte("stale")}}
			n, err := resp.ParseCommand(b, protocol.Limits{}, &cmd)
			require.NoError(t, err)
			assert.Equal(t, len(give), n)
			assert.Empty(t, cmd.Args)
			assert.Equal(t, give, string(cmd.Raw))

			n2, err := resp.ParseCommand(b[n:], protocol.Limits{}, &cmd)
			require.NoError(t, err)
			assert.Equal(t, 6, n2)
			assert.Equal(t, []string{"PING"}, strs(cmd.Args))
		})
	}
}

// malformedCommands are inputs redis-server rejects, with its exact reply
// (checked against a real redis-server in redis_test.go).
var malformedCommands = []struct {
	give     string
	want     string
	tooLarge bool
}{
	{give: "*abc\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*01\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*-0\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*+1\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "* 1\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*1 \r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*1\n$4\r\nPING\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*" + strings.Repeat("1", 30) + "\r\n", want: "ERR Protocol error: invalid multibulk length"},
	{give: "*2147483648\r\n", want: "ERR Protocol error: invalid multibulk length", tooLarge: true},
	{give: "*1\r\n$-1\r\n", want: "ERR Protocol error: invalid bulk length"},
	{give: "*1\r\n$abc\r\n", want: "ERR Protocol error: invalid bulk length"},
	{give: "*1\r\n$01\r\n", want: "ERR Protocol error: invalid bulk length"},
	{give: "*1\r\n$+4\r\n", want: "ERR Protocol error: invalid bulk length"},
	{give: "*1\r\n$\r\n", want: "ERR Protocol error: invalid bulk length"},
	{give: "*1\r\n$" + strings.Repeat("1", 30) + "\r\n", want: "ERR Protocol error: invalid bulk length"},
	{give: "*1\r\n$536870913\r\n", want: "ERR Protocol error: invalid bulk length", tooLarge: true},
	{give: "*1\r\nx4\r\n", want: "ERR Protocol error: expected '$', got 'x'"},
	{give: "*1\r\n:4\r\n", want: "ERR Protocol error: expected '$', got ':'"},
	{give: "*1\r\n\r\n", want: "ERR Protocol error: expected '$', got ' '"},
	{give: "*1\r\n\n$4\r\nPING\r\n", want: "ERR Protocol error: expected '$', got ' '"},
	{give: "*1\r\n\xffabc\r\n", want: "ERR Protocol error: expected '$', got '\xff'"},
	{give: "*3\r\n$4\r\nECHO\r\n$1\r\na\r\n*1\r\n", want: "ERR Protocol error: expected '$', got '*'"},
	{give: `ECHO "abc"d` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: `ECHO "abc` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: `ECHO "a""b"` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: `ECHO 'a'b` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: `ECHO 'a` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: `ECHO "a\"` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: `ECHO "a\` + "\r\n", want: "ERR Protocol error: unbalanced quotes in request"},
	{give: "*1\r\n" + strings.Repeat("1", 70000), want: "ERR Protocol error: too big bulk count string", tooLarge: true},
	{give: "*" + strings.Repeat("1", 70000), want: "ERR Protocol error: too big mbulk count string", tooLarge: true},
	{give: strings.Repeat("PING", 20000), want: "ERR Protocol error: too big inline request", tooLarge: true},
	// redis-server searches for line ends with strchr, which stops at a
	// NUL: the line never ends, and at 64 KiB is too big.
	{give: "*1\r\n\x00abc\r\n" + strings.Repeat("x", 70000), want: "ERR Protocol error: too big bulk count string", tooLarge: true},
	{give: "*\x001\r\n" + strings.Repeat("x", 70000), want: "ERR Protocol error: too big mbulk count string", tooLarge: true},
	{give: "ECHO a\x00b\n" + strings.Repeat("x", 70000), want: "ERR Protocol error: too big inline request", tooLarge: true},
}

// name shortens a test input to a readable subtest name.
func name(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "…" + strconv.Itoa(len(s))
	}
	return strconv.Quote(s)
}

func TestParseCommandMalformed(t *testing.T) {
	for _, tt := range malformedCommands {
		t.Run(name(tt.give), func(t *testing.T) {
			var cmd resp.Command
			n, err := resp.ParseCommand([]byte(tt.give), protocol.Limits{}, &cmd)
			assert.Zero(t, n)
			var pe *protocol.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.want, pe.Reply)
			assert.Equal(t, protocol.Redis, pe.Kind)
			assert.Equal(t, tt.tooLarge, pe.TooLarge)
			assert.ErrorIs(t, err, protocol.ErrProtocol)
			assert.Equal(t, tt.tooLarge, errors.Is(err, protocol.ErrTooLarge))

			// The Reader reports the same, at once and again.
			r := resp.NewReader(strings.NewReader(tt.give), protocol.Limits{})
			for range 2 {
				err = r.ReadCommand(&cmd)
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, tt.want, pe.Reply)
			}
		})
	}
}

// TestParseCommandWaits checks inputs redis-server keeps waiting on.
func TestParseCommandWaits(t *testing.T) {
	tests := []string{
		"*1\r\n\x00abc\r\n", "*\x001\r\n", "*1\r\n$\x004\r\n", "ECHO a\x00b\n", "\x00foo\nPING\n",
		"*1\n", "*1\r\n$4\n", "*1\r\n$4\r\nPING\r", "*1\r\n$4\r\nPING", "*1\r\n\r",
		"*2147483647\r\n", "*1\r\n$536870912\r\n", "*3\r\n$3\r\nSET\r\n",
	}
	for _, give := range tests {
		t.Run(name(give), func(t *testing.T) {
			var cmd resp.Command
			n, err := resp.ParseCommand([]byte(give), protocol.Limits{MaxArgs: 1 << 31}, &cmd)
			require.NoError(t, err)
			assert.Zero(t, n)
		})
	}
}

func TestParseCommandLimits(t *testing.T) {
	tests := []struct {
		give string
		lim  protocol.Limits
		want string
	}{
		{give: "*3\r\n", lim: protocol.Limits{MaxArgs: 2}, want: "ERR Protocol error: invalid multibulk length"},
		{give: "*1048577\r\n", lim: protocol.Limits{}, want: "ERR Protocol error: invalid multibulk length"},
		{give: "*1\r\n$6\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: invalid bulk length"},
		{give: "*1\r\n$123456\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: invalid bulk length"},
		{give: "*1\r\n$12345678901\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: invalid bulk length"},
		{give: "*10000000\r\n", lim: protocol.Limits{MaxLine: 8}, want: "ERR Protocol error: too big mbulk count string"},
		{give: "*1\r\n$10000000\r\n", lim: protocol.Limits{MaxLine: 8}, want: "ERR Protocol error: too big bulk count string"},
		{give: "ECHO 123456\r\n", lim: protocol.Limits{MaxLine: 8}, want: "ERR Protocol error: too big inline request"},
		{give: "ECHO a b\r\n", lim: protocol.Limits{MaxArgs: 2}, want: "ERR Protocol error: too big inline request"},
		{give: "ECHO abcdef\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: too big inline request"},
		{give: `ECHO "abcdef"` + "\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: too big inline request"},
	}
	for _, tt := range tests {
		t.Run(name(tt.give), func(t *testing.T) {
			var cmd resp.Command
			n, err := resp.ParseCommand([]byte(tt.give), tt.lim, &cmd)
			assert.Zero(t, n)
			var pe *protocol.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.want, pe.Reply)
			assert.True(t, pe.TooLarge)
			assert.ErrorIs(t, err, protocol.ErrTooLarge)
		})
	}

	t.Run("exactly at the limits", func(t *testing.T) {
		var cmd resp.Command
		lim := protocol.Limits{MaxArgs: 2, MaxBulk: 5, MaxLine: 5}
		b := []byte("*2\r\n$5\r\nabcde\r\n$0\r\n\r\nECHO\n123\r\n")
		n, err := resp.ParseCommand(b, lim, &cmd)
		require.NoError(t, err)
		assert.Equal(t, []string{"abcde", ""}, strs(cmd.Args))
		n2, err := resp.ParseCommand(b[n:], lim, &cmd)
		require.NoError(t, err)
		assert.Equal(t, []string{"ECHO"}, strs(cmd.Args))
		_, err = resp.ParseCommand(b[n+n2:], lim, &cmd)
		require.NoError(t, err)
		assert.Equal(t, []string{"123"}, strs(cmd.Args))
	})
}

// TestParseCommandHugeCountsAllocateNothing checks that counts and lengths
// alone allocate nothing, however large.
func TestParseCommandHugeCountsAllocateNothing(t *testing.T) {
	lim := protocol.Limits{MaxArgs: 1 << 30, MaxBulk: 1 << 30}
	tests := []string{"*999999999\r\n", "*1\r\n$999999999\r\n", "*999999999\r\n$3\r\nGET\r\n$999999999\r\n"}
	for _, give := range tests {
		t.Run(name(give), func(t *testing.T) {
			b := []byte(give)
			var cmd resp.Command
			allocs := testing.AllocsPerRun(100, func() {
				cmd = resp.Command{}
				n, err := resp.ParseCommand(b, lim, &cmd)
				if n != 0 || err != nil {
					t.Fatalf("ParseCommand = %d, %v", n, err)
				}
			})
			assert.LessOrEqual(t, allocs, 1.0) // at most Args for the "GET" present
		})
	}

	t.Run("Reader", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := resp.NewReader(strings.NewReader("*1\r\n$999999999\r\nabc"), lim)
		var cmd resp.Command
		assert.ErrorIs(t, r.ReadCommand(&cmd), io.ErrUnexpectedEOF)
		runtime.ReadMemStats(&after)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
		assert.LessOrEqual(t, resp.ReaderBufferSizeForTest(r), resp.DefaultReaderSize, "no growth toward the claim")
	})
}

// pipeline is every valid command, then a second copy of each with skipped
// input in front, as one stream.
func pipeline() (stream []byte, want [][]string) {
	for _, tt := range validCommands {
		stream = append(stream, tt.give...)
		want = append(want, tt.want)
	}
	for i, tt := range validCommands {
		stream = append(stream, []string{"\r\n", "*0\r\n", "*-1\r\n", "  \n"}[i%4]...)
		stream = append(stream, tt.give...)
		want = append(want, tt.want)
	}
	big := strings.Repeat("v", 100000)
	stream = resp.AppendCommandString(stream, "SET", "big", big)
	want = append(want, []string{"SET", "big", big})
	return stream, want
}

func TestReaderReadCommand(t *testing.T) {
	stream, want := pipeline()
	readers := []struct {
		name string
		rd   func() io.Reader
	}{
		{name: "whole", rd: func() io.Reader { return bytes.NewReader(stream) }},
		{name: "one byte at a time", rd: func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{name: "half reads", rd: func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
		{name: "data with EOF", rd: func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
	}
	for _, rt := range readers {
		for _, size := range []int{16, 100, 1000, resp.DefaultReaderSize} {
			t.Run(rt.name+"/"+strconv.Itoa(size), func(t *testing.T) {
				r := resp.NewReaderSize(rt.rd(), protocol.Limits{}, size)
				var cmd resp.Command
				var got [][]string
				for {
					err := r.ReadCommand(&cmd)
					if errors.Is(err, io.EOF) {
						break
					}
					require.NoError(t, err)
					got = append(got, strs(cmd.Args))
				}
				assert.Equal(t, want, got)
				assert.Zero(t, r.Buffered())
			})
		}
	}
}

// TestReaderSplitEverywhere feeds each command in two reads, split at
// every byte.
func TestReaderSplitEverywhere(t *testing.T) {
	for _, tt := range validCommands {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			b := []byte(tt.give)
			for i := range len(b) + 1 {
				r := resp.NewReaderSize(io.MultiReader(bytes.NewReader(b[:i]), bytes.NewReader(b[i:])), protocol.Limits{}, 16)
				var cmd resp.Command
				require.NoError(t, r.ReadCommand(&cmd), "split at %d", i)
				assert.Equal(t, tt.want, strs(cmd.Args), "split at %d", i)
				assert.Equal(t, tt.give, string(cmd.Raw), "split at %d", i)
				assert.ErrorIs(t, r.ReadCommand(&cmd), io.EOF)
			}
		})
	}
}

func TestReaderReadCommands(t *testing.T) {
	stream, want := pipeline()
	r := resp.NewReaderSize(iotest.HalfReader(bytes.NewReader(stream)), protocol.Limits{}, 64)
	var cmds []resp.Command
	var got [][]string
	batches := 0
	for {
		var err error
		cmds, err = r.ReadCommands(cmds)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NotEmpty(t, cmds)
		batches++
		for _, c := range cmds {
			var again resp.Command
			n, err := resp.ParseCommand(c.Raw, protocol.Limits{}, &again)
			require.NoError(t, err)
			assert.Equal(t, len(c.Raw), n)
			assert.Equal(t, strs(c.Args), strs(again.Args))
			got = append(got, strs(c.Args))
		}
	}
	assert.Equal(t, want, got)
	assert.Less(t, batches, len(want), "some batches hold several commands")

	t.Run("whole buffer", func(t *testing.T) {
		b := []byte("*1\r\n$4\r\nPING\r\n\r\nGET a\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*1\r\n$4\r\nPI")
		r := resp.NewReader(bytes.NewReader(b), protocol.Limits{})
		cmds, err := r.ReadCommands(nil)
		require.NoError(t, err)
		require.Len(t, cmds, 3)
		assert.Equal(t, []string{"PING"}, strs(cmds[0].Args))
		assert.Equal(t, []string{"GET", "a"}, strs(cmds[1].Args))
		assert.Equal(t, []string{"GET", "b"}, strs(cmds[2].Args))
		_, err = r.ReadCommands(cmds)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})

	t.Run("malformed after complete", func(t *testing.T) {
		b := []byte("PING\r\nPING\r\n*x\r\n")
		r := resp.NewReader(bytes.NewReader(b), protocol.Limits{})
		cmds, err := r.ReadCommands(nil)
		require.NoError(t, err)
		assert.Len(t, cmds, 2)
		cmds, err = r.ReadCommands(cmds)
		var pe *protocol.Error
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "ERR Protocol error: invalid multibulk length", pe.Reply)
		assert.Empty(t, cmds)
	})
}

// loopReader replays one frame forever, so benchmarks and allocation tests
// read from a Reader in constant memory.
type loopReader struct {
	frame []byte
	off   int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.frame[l.off:])
		n += c
		l.off = (l.off + c) % len(l.frame)
	}
	return n, nil
}

func TestReaderShrinks(t *testing.T) {
	big := strings.Repeat("x", 10000)
	var stream []byte
	stream = resp.AppendCommandString(stream, "SET", "k", big)
	stream = resp.AppendCommandString(stream, "GET", "k")
	stream = resp.AppendCommandString(stream, "GET", "k")
	r := resp.NewReaderSize(iotest.HalfReader(bytes.NewReader(stream)), protocol.Limits{}, 64)
	var cmd resp.Command
	require.NoError(t, r.ReadCommand(&cmd))
	assert.Equal(t, big, string(cmd.Args[2]))
	assert.GreaterOrEqual(t, resp.ReaderBufferSizeForTest(r), 10000)
	assert.LessOrEqual(t, resp.ReaderBufferSizeForTest(r), 2*len(stream), "grows geometrically, bounded by the frame")
	require.NoError(t, r.ReadCommand(&cmd))
	assert.Equal(t, []string{"GET", "k"}, strs(cmd.Args))
	assert.Equal(t, 64, resp.ReaderBufferSizeForTest(r), "back to the initial buffer")
	require.NoError(t, r.ReadCommand(&cmd))
	assert.ErrorIs(t, r.ReadCommand(&cmd), io.EOF)
}

func TestReaderReset(t *testing.T) {
	r := resp.NewReader(strings.NewReader("*x\r\n"), protocol.Limits{})
	var cmd resp.Command
	require.Error(t, r.ReadCommand(&cmd))
	r.Reset(strings.NewReader("PING\r\n"))
	require.NoError(t, r.ReadCommand(&cmd))
	assert.Equal(t, []string{"PING"}, strs(cmd.Args))
	assert.ErrorIs(t, r.ReadCommand(&cmd), io.EOF)
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("error once, after the data", func(t *testing.T) {
		r := resp.NewReader(iotest.TimeoutReader(strings.NewReader("PING\r\nPI")), protocol.Limits{})
		var cmd resp.Command
		require.NoError(t, r.ReadCommand(&cmd))
		assert.ErrorIs(t, r.ReadCommand(&cmd), iotest.ErrTimeout)
		assert.ErrorIs(t, r.ReadCommand(&cmd), io.ErrUnexpectedEOF)
	})
	t.Run("error with data", func(t *testing.T) {
		r := resp.NewReader(iotest.ErrReader(boom), protocol.Limits{})
		var cmd resp.Command
		assert.ErrorIs(t, r.ReadCommand(&cmd), boom)
	})
	t.Run("no progress", func(t *testing.T) {
		r := resp.NewReader(emptyReader{}, protocol.Limits{})
		var cmd resp.Command
		assert.ErrorIs(t, r.ReadCommand(&cmd), io.ErrNoProgress)
	})
	t.Run("invalid count", func(t *testing.T) {
		r := resp.NewReader(badReader{}, protocol.Limits{})
		var cmd resp.Command
		assert.Error(t, r.ReadCommand(&cmd))
	})
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestCommandAllocs(t *testing.T) {
	mget := []string{"MGET"}
	for i := range 10 {
		mget = append(mget, "key:"+strconv.Itoa(i))
	}
	tests := []struct {
		name string
		give []byte
	}{
		{name: "SET", give: resp.AppendCommandString(nil, "SET", "key", "value")},
		{name: "GET", give: resp.AppendCommandString(nil, "GET", "key")},
		{name: "MGET-10", give: resp.AppendCommandString(nil, mget...)},
		{name: "inline", give: []byte("GET key\r\n")},
		{name: "inline quoted", give: []byte(`SET "a key" 'a value'` + "\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cmd resp.Command
			_, err := resp.ParseCommand(tt.give, protocol.Limits{}, &cmd)
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(1000, func() {
				if n, err := resp.ParseCommand(tt.give, protocol.Limits{}, &cmd); n != len(tt.give) || err != nil {
					t.Fatalf("ParseCommand = %d, %v", n, err)
				}
			})
			assert.Zero(t, allocs, "ParseCommand")

			r := resp.NewReader(&loopReader{frame: tt.give}, protocol.Limits{})
			require.NoError(t, r.ReadCommand(&cmd))
			allocs = testing.AllocsPerRun(1000, func() {
				if err := r.ReadCommand(&cmd); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "Reader.ReadCommand")

			cmds := make([]resp.Command, 0, 4096)
			for range 10 {
				cmds, err = r.ReadCommands(cmds)
				require.NoError(t, err)
			}
			allocs = testing.AllocsPerRun(100, func() {
				var err error
				if cmds, err = r.ReadCommands(cmds); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "Reader.ReadCommands")
		})
	}
}
