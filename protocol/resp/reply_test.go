package resp_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// show renders v compactly, so tests compare trees as strings:
// +"OK", :1, $"a", $nil, *[:1, $"b"], %[+"k", :1], |[+"a", +"b"] :1.
func show(v resp.Value) string {
	var sb strings.Builder
	writeShow(&sb, v)
	return sb.String()
}

func writeShow(sb *strings.Builder, v resp.Value) {
	if len(v.Attrs) > 0 {
		sb.WriteByte('|')
		writeShowElems(sb, v.Attrs)
		sb.WriteByte(' ')
	}
	sb.WriteByte(v.Type)
	switch v.Type {
	case resp.TypeSimple, resp.TypeError, resp.TypeDouble, resp.TypeBigInt:
		sb.WriteString(strconv.Quote(string(v.Str)))
	case resp.TypeInt:
		sb.WriteString(strconv.FormatInt(v.Int, 10))
	case resp.TypeBool:
		sb.WriteString(map[bool]string{true: "t", false: "f"}[v.Int != 0])
	case resp.TypeBulk, resp.TypeBlobError, resp.TypeVerbatim:
		if v.Null {
			sb.WriteString("nil")
		} else {
			sb.WriteString(strconv.Quote(string(v.Str)))
		}
	case resp.TypeArray, resp.TypeMap, resp.TypeSet, resp.TypePush:
		if v.Null {
			sb.WriteString("nil")
		} else {
			writeShowElems(sb, v.Elems)
		}
	}
}

func writeShowElems(sb *strings.Builder, vs []resp.Value) {
	sb.WriteByte('[')
	for i, e := range vs {
		if i > 0 {
			sb.WriteString(", ")
		}
		writeShow(sb, e)
	}
	sb.WriteByte(']')
}

// validReplies are complete replies of every type. canon is what
// AppendValue writes for the parsed value, if it differs from give.
var validReplies = []struct {
	give  string
	want  string
	canon string
}{
	{give: "+OK\r\n", want: `+"OK"`},
	{give: "+\r\n", want: `+""`},
	{give: "+a\rb\r\n", want: `+"a\rb"`, canon: "+a b\r\n"},
	{give: "-ERR unknown command 'x'\r\n", want: `-"ERR unknown command 'x'"`},
	{give: ":0\r\n", want: ":0"},
	{give: ":-1\r\n", want: ":-1"},
	{give: ":007\r\n", want: ":7", canon: ":7\r\n"},
	{give: ":-0\r\n", want: ":0", canon: ":0\r\n"},
	{give: ":9223372036854775807\r\n", want: ":9223372036854775807"},
	{give: ":-9223372036854775808\r\n", want: ":-9223372036854775808"},
	{give: "$5\r\nhello\r\n", want: `$"hello"`},
	{give: "$0\r\n\r\n", want: `$""`},
	{give: "$-1\r\n", want: "$nil"},
	{give: "$4\r\na\r\nb\r\n", want: `$"a\r\nb"`},
	{give: "*0\r\n", want: "*[]"},
	{give: "*-1\r\n", want: "*nil"},
	{give: "*2\r\n$1\r\na\r\n:1\r\n", want: `*[$"a", :1]`},
	{give: "*3\r\n$-1\r\n*-1\r\n+x\r\n", want: `*[$nil, *nil, +"x"]`},
	{give: "*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n*0\r\n", want: "*[*[:1, :2], *[*[]]]"},
	{give: "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:6\r\n", want: "*[*[*[*[*[*[:6]]]]]]"},
	{give: "_\r\n", want: "_"},
	{give: ",3.14\r\n", want: `,"3.14"`},
	{give: ",-inf\r\n", want: `,"-inf"`},
	{give: "#t\r\n", want: "#t"},
	{give: "#f\r\n", want: "#f"},
	{give: "!10\r\nSYNTAX err\r\n", want: `!"SYNTAX err"`},
	{give: "=15\r\ntxt:Some string\r\n", want: `="txt:Some string"`},
	{give: "(3492890328409238509324850943850943825024385\r\n", want: `("3492890328409238509324850943850943825024385"`},
	{give: "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", want: `%[+"a", :1, +"b", :2]`},
	{give: "%0\r\n", want: "%[]"},
	{give: "~2\r\n+a\r\n+b\r\n", want: `~[+"a", +"b"]`},
	{give: ">3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n", want: `>[+"message", +"ch", $"hi"]`},
	{give: "|1\r\n+key\r\n+val\r\n:5\r\n", want: `|[+"key", +"val"] :5`},
	{give: "|0\r\n+x\r\n", want: `+"x"`, canon: "+x\r\n"},
	{give: "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", want: `*[|[+"a", +"b"] :1, :2]`},
	{give: "|1\r\n|1\r\n+x\r\n+y\r\n+k\r\n+v\r\n*1\r\n|1\r\n+a\r\n*0\r\n:1\r\n", want: `|[|[+"x", +"y"] +"k", +"v"] *[|[+"a", *[]] :1]`},
	{give: "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", want: `$"Hello word"`, canon: "$10\r\nHello word\r\n"},
	{give: "$?\r\n;0\r\n", want: `$""`, canon: "$0\r\n\r\n"},
	{give: "*?\r\n:1\r\n:2\r\n.\r\n", want: "*[:1, :2]", canon: "*2\r\n:1\r\n:2\r\n"},
	{give: "%?\r\n+a\r\n:1\r\n.\r\n", want: `%[+"a", :1]`, canon: "%1\r\n+a\r\n:1\r\n"},
	{give: "~?\r\n.\r\n", want: "~[]", canon: "~0\r\n"},
	{
		give:  "*?\r\n*?\r\n:1\r\n.\r\n$?\r\n;1\r\na\r\n;0\r\n|1\r\n+k\r\n+v\r\n*2\r\n*?\r\n.\r\n:2\r\n.\r\n",
		want:  `*[*[:1], $"a", |[+"k", +"v"] *[*[], :2]]`,
		canon: "*3\r\n*1\r\n:1\r\n$1\r\na\r\n|1\r\n+k\r\n+v\r\n*2\r\n*0\r\n:2\r\n",
	},
}

func TestFrameReply(t *testing.T) {
	for _, tt := range validReplies {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			b := []byte(tt.give + "+NEXT\r\n")
			n, err := resp.FrameReply(b, protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, len(tt.give), n)
			for i := range len(tt.give) {
				n, err := resp.FrameReply(b[:i], protocol.Limits{})
				require.NoError(t, err, "prefix %q", b[:i])
				require.Zero(t, n, "prefix %q", b[:i])
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	for _, tt := range validReplies {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			b := []byte(tt.give + "+NEXT\r\n")
			var v resp.Value
			n, err := resp.ParseReply(b, protocol.Limits{}, &v)
			require.NoError(t, err)
			assert.Equal(t, len(tt.give), n)
			assert.Equal(t, tt.want, show(v))
			canon := tt.canon
			if canon == "" {
				canon = tt.give
			}
			assert.Equal(t, canon, string(resp.AppendValue(nil, v)))
			for i := range len(tt.give) {
				n, err := resp.ParseReply(b[:i], protocol.Limits{}, &v)
				require.NoError(t, err, "prefix %q", b[:i])
				require.Zero(t, n, "prefix %q", b[:i])
			}
		})
	}
}

func TestValueHelpers(t *testing.T) {
	tests := []struct {
		give    string
		isError bool
		isNil   bool
	}{
		{give: "+OK\r\n"},
		{give: "-ERR x\r\n", isError: true},
		{give: "!1\r\nx\r\n", isError: true},
		{give: "$-1\r\n", isNil: true},
		{give: "*-1\r\n", isNil: true},
		{give: "_\r\n", isNil: true},
		{give: "$0\r\n\r\n"},
		{give: "*0\r\n"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var v resp.Value
			_, err := resp.ParseReply([]byte(tt.give), protocol.Limits{}, &v)
			require.NoError(t, err)
			assert.Equal(t, tt.isError, v.IsError())
			assert.Equal(t, tt.isNil, v.IsNil())
		})
	}
}

func TestReplyMalformed(t *testing.T) {
	tests := []struct {
		give     string
		lim      protocol.Limits
		want     string
		tooLarge bool
	}{
		{give: "x\r\n", want: "ERR Protocol error: unexpected reply type 'x'"},
		{give: "\r\n", want: "ERR Protocol error: unexpected reply type ' '"},
		{give: "*1\r\n?\r\n", want: "ERR Protocol error: unexpected reply type '?'"},
		{give: "+OK\n", want: "ERR Protocol error: missing CRLF"},
		{give: "+\n", want: "ERR Protocol error: missing CRLF"},
		{give: "$3\r\nabcde", want: "ERR Protocol error: missing CRLF"},
		{give: "$3\r\nabc\n\r", want: "ERR Protocol error: missing CRLF"},
		{give: "$abc\r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: "$-2\r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: "!-1\r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: "$\r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: "$1 \r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: "$10\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: invalid bulk length", tooLarge: true},
		{give: "$?\r\n;4\r\nabcd\r\n;4\r\nabcd\r\n", lim: protocol.Limits{MaxBulk: 5}, want: "ERR Protocol error: invalid bulk length", tooLarge: true},
		{give: "$?\r\n;?\r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: "$?\r\n+x\r\n", want: "ERR Protocol error: unexpected reply type '+'"},
		{give: "!?\r\n", want: "ERR Protocol error: invalid bulk length"},
		{give: ":abc\r\n", want: "ERR Protocol error: invalid integer"},
		{give: ":\r\n", want: "ERR Protocol error: invalid integer"},
		{give: ":9223372036854775808\r\n", want: "ERR Protocol error: invalid integer"},
		{give: ":-9223372036854775809\r\n", want: "ERR Protocol error: invalid integer"},
		{give: ":12345678901234567890\r\n", want: "ERR Protocol error: invalid integer"},
		{give: "#x\r\n", want: "ERR Protocol error: invalid boolean"},
		{give: "#\r\n", want: "ERR Protocol error: invalid boolean"},
		{give: "_x\r\n", want: "ERR Protocol error: invalid null"},
		{give: "*abc\r\n", want: "ERR Protocol error: invalid multibulk length"},
		{give: "*-2\r\n", want: "ERR Protocol error: invalid multibulk length"},
		{give: "%-1\r\n", want: "ERR Protocol error: invalid multibulk length"},
		{give: ">?\r\n", want: "ERR Protocol error: invalid multibulk length"},
		{give: "|?\r\n", want: "ERR Protocol error: invalid multibulk length"},
		{give: "*2147483648\r\n", want: "ERR Protocol error: invalid multibulk length", tooLarge: true},
		{give: "%1073741824\r\n", want: "ERR Protocol error: invalid multibulk length", tooLarge: true},
		{give: ".\r\n", want: "ERR Protocol error: unexpected reply type '.'"},
		{give: "*1\r\n.\r\n", want: "ERR Protocol error: unexpected reply type '.'"},
		{give: ";3\r\nabc\r\n", want: "ERR Protocol error: unexpected reply type ';'"},
		{give: "*?\r\n|1\r\n+a\r\n+b\r\n.\r\n", want: "ERR Protocol error: unexpected reply type '.'"},
		{give: "%?\r\n+k\r\n.\r\n", want: "ERR Protocol error: unexpected reply type '.'"},
		{give: "%?\r\n+k\r\n+v\r\n+k2\r\n.\r\n", want: "ERR Protocol error: unexpected reply type '.'"},
		{give: "|1\r\n+a\r\n+b\r\n|1\r\n", want: "ERR Protocol error: unexpected reply type '|'"},
		{give: "|0\r\n|0\r\n", want: "ERR Protocol error: unexpected reply type '|'"},
		{give: "+" + strings.Repeat("x", 10), lim: protocol.Limits{MaxLine: 8}, want: "ERR Protocol error: too big reply line", tooLarge: true},
		{give: "*1\r\n:" + strings.Repeat("1", 10), lim: protocol.Limits{MaxLine: 8}, want: "ERR Protocol error: too big reply line", tooLarge: true},
		{give: "*1\r\n*1\r\n*1\r\n:1\r\n", lim: protocol.Limits{MaxDepth: 2}, want: "ERR Protocol error: too deep nesting", tooLarge: true},
		{give: "*1\r\n*1\r\n*0\r\n", lim: protocol.Limits{MaxDepth: 2}, want: "ERR Protocol error: too deep nesting", tooLarge: true},
		{give: "*1\r\n|1\r\n", lim: protocol.Limits{MaxDepth: 1}, want: "ERR Protocol error: too deep nesting", tooLarge: true},
		{give: strings.Repeat("*1\r\n", 65), want: "ERR Protocol error: too deep nesting", tooLarge: true},
	}
	for _, tt := range tests {
		t.Run(name(tt.give), func(t *testing.T) {
			b := []byte(tt.give)
			check := func(what string, n int, err error) {
				t.Helper()
				assert.Zero(t, n, what)
				var pe *protocol.Error
				require.ErrorAs(t, err, &pe, what)
				assert.Equal(t, tt.want, pe.Reply, what)
				assert.Equal(t, tt.tooLarge, pe.TooLarge, what)
			}
			n, err := resp.FrameReply(b, tt.lim)
			check("FrameReply", n, err)
			var v resp.Value
			n, err = resp.ParseReply(b, tt.lim, &v)
			check("ParseReply", n, err)
			r := resp.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), tt.lim, 16)
			check("ReadReply", 0, r.ReadReply(&v))
			r = resp.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), tt.lim, 16)
			raw, err := r.ReadRawReply()
			check("ReadRawReply", len(raw), err)
		})
	}
}

func TestReplyDepthLimit(t *testing.T) {
	nested := func(depth int) []byte {
		return []byte(strings.Repeat("*1\r\n", depth) + ":1\r\n")
	}
	for _, depth := range []int{1, 2, 16, 17, 64} {
		t.Run(strconv.Itoa(depth), func(t *testing.T) {
			b := nested(depth)
			lim := protocol.Limits{MaxDepth: depth}
			n, err := resp.FrameReply(b, lim)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			var v resp.Value
			n, err = resp.ParseReply(b, lim, &v)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			got := 0
			for e := v; e.Type == resp.TypeArray; e = e.Elems[0] {
				got++
			}
			assert.Equal(t, depth, got)

			_, err = resp.FrameReply(nested(depth+1), lim)
			assert.ErrorIs(t, err, protocol.ErrTooLarge)
		})
	}
}

// TestReplyHugeCountsAllocateNothing checks that claimed counts and
// lengths cost nothing until their bytes arrive.
func TestReplyHugeCountsAllocateNothing(t *testing.T) {
	lim := protocol.Limits{MaxBulk: 1 << 30}
	for _, give := range []string{"*999999999\r\n", "$999999999\r\n", "*2\r\n%999999999\r\n$999999999\r\n", "*1073741823\r\n:1\r\n"} {
		t.Run(name(give), func(t *testing.T) {
			b := []byte(give)
			var v resp.Value
			allocs := testing.AllocsPerRun(100, func() {
				n, err := resp.FrameReply(b, lim)
				if n != 0 || err != nil {
					t.Fatalf("FrameReply = %d, %v", n, err)
				}
				n, err = resp.ParseReply(b, lim, &v)
				if n != 0 || err != nil {
					t.Fatalf("ParseReply = %d, %v", n, err)
				}
			})
			assert.Zero(t, allocs)
			r := resp.NewReader(strings.NewReader(give), lim)
			assert.ErrorIs(t, r.ReadReply(&v), io.ErrUnexpectedEOF)
			assert.LessOrEqual(t, resp.ReaderBufferSizeForTest(r), resp.DefaultReaderSize, "no growth toward the claim")
		})
	}
}

func TestReaderReplies(t *testing.T) {
	var stream []byte
	for _, tt := range validReplies {
		stream = append(stream, tt.give...)
	}
	big := strings.Repeat("b", 100000)
	stream = resp.AppendBulkString(stream, big)
	readers := []struct {
		name string
		rd   func() io.Reader
	}{
		{name: "whole", rd: func() io.Reader { return bytes.NewReader(stream) }},
		{name: "one byte at a time", rd: func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{name: "data with EOF", rd: func() io.Reader { return iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(stream))) }},
	}
	for _, rt := range readers {
		t.Run(rt.name, func(t *testing.T) {
			r := resp.NewReaderSize(rt.rd(), protocol.Limits{}, 16)
			raw := resp.NewReaderSize(rt.rd(), protocol.Limits{}, 16)
			var v resp.Value
			for _, tt := range validReplies {
				require.NoError(t, r.ReadReply(&v))
				assert.Equal(t, tt.want, show(v))
				b, err := raw.ReadRawReply()
				require.NoError(t, err)
				assert.Equal(t, tt.give, string(b))
			}
			require.NoError(t, r.ReadReply(&v))
			assert.Equal(t, big, string(v.Str))
			b, err := raw.ReadRawReply()
			require.NoError(t, err)
			assert.Len(t, b, len(big)+len("$100000\r\n\r\n"))
			assert.ErrorIs(t, r.ReadReply(&v), io.EOF)
			_, err = raw.ReadRawReply()
			assert.ErrorIs(t, err, io.EOF)
		})
	}
}

// TestReaderLongReplyLinear checks that a reply arriving in many reads is
// not re-framed from its start on every read.
func TestReaderLongReplyLinear(t *testing.T) {
	const n = 200000
	b := resp.AppendArrayHeader(nil, n)
	for i := range n {
		b = resp.AppendInt(b, int64(i))
	}
	counter := &countingReader{r: iotest.HalfReader(bytes.NewReader(b))}
	r := resp.NewReaderSize(counter, protocol.Limits{}, 64)
	var v resp.Value
	require.NoError(t, r.ReadReply(&v))
	require.Len(t, v.Elems, n)
	assert.Equal(t, int64(n-1), v.Elems[n-1].Int)
	assert.Greater(t, counter.reads, 20, "the reply arrived in many reads")
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestReaderReusesReplyMemory(t *testing.T) {
	array := func(n int) []byte {
		b := resp.AppendArrayHeader(nil, n)
		for i := range n {
			b = resp.AppendInt(b, int64(i))
		}
		return b
	}
	var stream []byte
	for _, n := range []int{100, 50, 100000, 10} {
		stream = append(stream, array(n)...)
	}
	r := resp.NewReaderSize(bytes.NewReader(stream), protocol.Limits{}, 64)
	var v resp.Value
	require.NoError(t, r.ReadReply(&v))
	first := &v.Elems[0]
	require.NoError(t, r.ReadReply(&v))
	assert.Same(t, first, &v.Elems[0], "reused")

	require.NoError(t, r.ReadReply(&v))
	assert.Len(t, v.Elems, 100000)
	big := &v.Elems[0]
	require.NoError(t, r.ReadReply(&v))
	assert.NotSame(t, big, &v.Elems[0], "a much larger arena is dropped")
	assert.Equal(t, "*[:0, :1, :2, :3, :4, :5, :6, :7, :8, :9]", show(v))
	assert.Equal(t, 64, resp.ReaderBufferSizeForTest(r))
}

// randValue returns a random reply tree of at most depth levels.
func randValue(rng *rand.Rand, depth int) resp.Value {
	text := func() []byte { // no CR or LF
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = "abc xyz:-_09\x00\xff\t"[rng.IntN(15)]
		}
		return b
	}
	data := func() []byte {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	kinds := "+-:$$_,#!=(*%~>"
	if depth == 0 {
		kinds = "+-:$$_,#!=("
	}
	var v resp.Value
	switch k := kinds[rng.IntN(len(kinds))]; k {
	case '+', '-':
		v = resp.Value{Type: k, Str: text()}
	case ':':
		v = resp.Value{Type: k, Int: rng.Int64() - rng.Int64()}
	case '$':
		v = resp.Value{Type: k, Str: data(), Null: rng.IntN(5) == 0}
	case '_':
		v = resp.Value{Type: k, Null: true}
	case ',':
		v = resp.Value{Type: k, Str: []byte(strconv.FormatFloat(rng.NormFloat64(), 'g', -1, 64))}
	case '#':
		v = resp.Value{Type: k, Int: int64(rng.IntN(2))}
	case '!', '=':
		v = resp.Value{Type: k, Str: data()}
	case '(':
		v = resp.Value{Type: k, Str: []byte(strconv.FormatUint(rng.Uint64(), 10) + "123456789012345678901234567890")}
	case '*', '~', '>', '%':
		n := rng.IntN(6)
		if k == '%' {
			n *= 2
		}
		if k == '*' && rng.IntN(8) == 0 {
			v = resp.Value{Type: k, Null: true}
			break
		}
		v = resp.Value{Type: k, Elems: make([]resp.Value, n)}
		for i := range v.Elems {
			v.Elems[i] = randValue(rng, depth-1)
		}
	}
	if depth > 0 && rng.IntN(10) == 0 {
		v.Attrs = []resp.Value{randValue(rng, 0), randValue(rng, depth-1)}
	}
	return v
}

// TestRandomReplies encodes random reply trees, then frames and parses
// them back, from a buffer and through a Reader fed in small reads.
func TestRandomReplies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var want []string
	for range 2000 {
		v := randValue(rng, 1+rng.IntN(6))
		stream = resp.AppendValue(stream, v)
		want = append(want, show(v))
	}

	rest := stream
	var v resp.Value
	for i, w := range want {
		n, err := resp.FrameReply(rest, protocol.Limits{})
		require.NoError(t, err, "reply %d", i)
		n2, err := resp.ParseReply(rest, protocol.Limits{}, &v)
		require.NoError(t, err, "reply %d", i)
		require.Equal(t, n, n2, "reply %d", i)
		require.Equal(t, w, show(v), "reply %d", i)
		rest = rest[n:]
	}
	assert.Empty(t, rest)

	r := resp.NewReaderSize(iotest.HalfReader(bytes.NewReader(stream)), protocol.Limits{}, 32)
	for i, w := range want {
		require.NoError(t, r.ReadReply(&v), "reply %d", i)
		require.Equal(t, w, show(v), "reply %d", i)
	}
	assert.ErrorIs(t, r.ReadReply(&v), io.EOF)
}

func TestReplyAllocs(t *testing.T) {
	array := resp.AppendArrayHeader(nil, 100)
	for i := range 100 {
		array = resp.AppendBulkString(array, "value:"+strconv.Itoa(i))
	}
	tests := []struct {
		name string
		give []byte
	}{
		{name: "OK", give: []byte("+OK\r\n")},
		{name: "bulk", give: []byte("$5\r\nvalue\r\n")},
		{name: "array of 100 bulks", give: array},
		{name: "nested 15", give: []byte(strings.Repeat("*2\r\n:1\r\n", 14) + "*1\r\n_\r\n")},
		{name: "RESP3", give: []byte("|1\r\n+a\r\n+b\r\n%1\r\n~1\r\n#t\r\n>1\r\n,1.5\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if n, err := resp.FrameReply(tt.give, protocol.Limits{}); n != len(tt.give) || err != nil {
					t.Fatalf("FrameReply = %d, %v", n, err)
				}
			})
			assert.Zero(t, allocs, "FrameReply")

			var v resp.Value
			allocs = testing.AllocsPerRun(100, func() {
				if n, err := resp.ParseReply(tt.give, protocol.Limits{}, &v); n != len(tt.give) || err != nil {
					t.Fatalf("ParseReply = %d, %v", n, err)
				}
			})
			assert.LessOrEqual(t, allocs, 1.0, "ParseReply: one allocation for all the elements")

			r := resp.NewReader(&loopReader{frame: tt.give}, protocol.Limits{})
			allocs = testing.AllocsPerRun(100, func() {
				if _, err := r.ReadRawReply(); err != nil {
					t.Fatal(err)
				}
				if err := r.ReadReply(&v); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "Reader")
		})
	}
}

func TestReaderReplyErrorIsSticky(t *testing.T) {
	r := resp.NewReader(strings.NewReader("+OK\r\nx\r\n"), protocol.Limits{})
	var v resp.Value
	require.NoError(t, r.ReadReply(&v))
	for range 2 {
		err := r.ReadReply(&v)
		var pe *protocol.Error
		require.True(t, errors.As(err, &pe))
		assert.Equal(t, "ERR Protocol error: unexpected reply type 'x'", pe.Reply)
	}
}

// TestStreamedMapParity is a regression test: a streamed RESP3 map
// ("%?") ended by "." after a key without its value was accepted as a map
// of one element. Every map, streamed or counted, holds key/value pairs.
func TestStreamedMapParity(t *testing.T) {
	bad := []string{
		"%?\r\n+k\r\n.\r\n",
		"%?\r\n+k\r\n+v\r\n+k2\r\n.\r\n",
		"%?\r\n+k\r\n%?\r\n+a\r\n.\r\n.\r\n",        // the inner map
		"*?\r\n%?\r\n:1\r\n.\r\n.\r\n",              // a map in a streamed array
		"%?\r\n|1\r\n+a\r\n+b\r\n+k\r\n.\r\n",       // attribute entries are not map elements
		"%?\r\n+k\r\n|1\r\n+a\r\n+b\r\n.\r\n",       // nor is an attribute without its reply
		"%?\r\n$?\r\n;1\r\nk\r\n;0\r\n.\r\n",        // a streamed key alone
		"%?\r\n+k\r\n*?\r\n:1\r\n.\r\n+k2\r\n.\r\n", // a second key alone
		"%1\r\n+k\r\n%?\r\n+a\r\n+b\r\n+c\r\n.\r\n", // inside a counted map
	}
	for _, give := range bad {
		t.Run(name(give), func(t *testing.T) {
			b := []byte(give)
			n, err := resp.FrameReply(b, protocol.Limits{})
			assert.Zero(t, n)
			assert.ErrorIs(t, err, protocol.ErrProtocol, "FrameReply")
			var v resp.Value
			n, err = resp.ParseReply(b, protocol.Limits{}, &v)
			assert.Zero(t, n)
			assert.ErrorIs(t, err, protocol.ErrProtocol, "ParseReply")
			r := resp.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), protocol.Limits{}, 16)
			assert.ErrorIs(t, r.ReadReply(&v), protocol.ErrProtocol, "ReadReply")
			r = resp.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), protocol.Limits{}, 16)
			_, err = r.ReadRawReply()
			assert.ErrorIs(t, err, protocol.ErrProtocol, "ReadRawReply")
		})
	}
	good := []struct{ give, want string }{
		{"%?\r\n.\r\n", "%[]"},
		{"%?\r\n+k\r\n+v\r\n.\r\n", `%[+"k", +"v"]`},
		{"%?\r\n+k\r\n*?\r\n.\r\n.\r\n", `%[+"k", *[]]`},
		{"%?\r\n+k\r\n|1\r\n+a\r\n+b\r\n:1\r\n.\r\n", `%[+"k", |[+"a", +"b"] :1]`},
		{"%?\r\n%?\r\n+a\r\n+b\r\n.\r\n~?\r\n:1\r\n.\r\n.\r\n", `%[%[+"a", +"b"], ~[:1]]`},
		{"*?\r\n+k\r\n.\r\n", `*[+"k"]`}, // arrays and sets may be odd
		{"~?\r\n+k\r\n.\r\n", `~[+"k"]`},
	}
	for _, tt := range good {
		t.Run(name(tt.give), func(t *testing.T) {
			b := []byte(tt.give)
			n, err := resp.FrameReply(b, protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			var v resp.Value
			n, err = resp.ParseReply(b, protocol.Limits{}, &v)
			require.NoError(t, err)
			assert.Equal(t, len(b), n)
			assert.Equal(t, tt.want, show(v))
			checkPairs(t, v)
		})
	}
}

// checkPairs fails unless every map and every attribute in v holds an
// even number of values: keys and values in turn.
func checkPairs(t *testing.T, v resp.Value) {
	t.Helper()
	if len(v.Attrs)%2 != 0 {
		t.Fatalf("attribute of %d values in %s", len(v.Attrs), show(v))
	}
	if v.Type == resp.TypeMap && len(v.Elems)%2 != 0 {
		t.Fatalf("map of %d values: %s", len(v.Elems), show(v))
	}
	for _, e := range v.Attrs {
		checkPairs(t, e)
	}
	for _, e := range v.Elems {
		checkPairs(t, e)
	}
}

func TestFrameReplyHint(t *testing.T) {
	tests := []struct {
		give string
		want int // the hint, or the length of a complete reply
	}{
		{"$1000000\r\n", -len("$1000000\r\n") - 1000000 - 2},
		{"$1000000\r\nabc", -len("$1000000\r\n") - 1000000 - 2},
		{"$3\r\nabc\r", -len("$3\r\nabc\r\n")},
		{"*2\r\n:1\r\n$10\r\nabc", -len("*2\r\n:1\r\n$10\r\n") - 12},
		{"%1\r\n+k\r\n!5\r\nab", -len("%1\r\n+k\r\n!5\r\n") - 7},
		{"=9\r\ntxt:", -len("=9\r\n") - 11},
		{"$?\r\n;4\r\nab", -len("$?\r\n;4\r\n") - 6},
		{"|1\r\n+a\r\n$2\r\n", -len("|1\r\n+a\r\n$2\r\n") - 4},
		// No estimate: an incomplete line, or between elements.
		{"", 0},
		{"$100", 0},
		{"+OK", 0},
		{"*3\r\n", 0},
		{"*3\r\n$1\r\na\r\n", 0},
		{"$?\r\n", 0},
		// Complete.
		{"$3\r\nabc\r\n+x", len("$3\r\nabc\r\n")},
		{"*1\r\n$1\r\na\r\n", len("*1\r\n$1\r\na\r\n")},
	}
	for _, tt := range tests {
		t.Run(name(tt.give), func(t *testing.T) {
			n, err := resp.FrameReplyHint([]byte(tt.give), protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			n, err = resp.FrameReply([]byte(tt.give), protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, max(tt.want, 0), n)
		})
	}

	// The hint for any prefix of a valid reply never exceeds its length.
	rng := rand.New(rand.NewPCG(5, 6))
	hinted := 0
	for range 500 {
		v := randValue(rng, 1+rng.IntN(4))
		if rng.IntN(4) == 0 {
			v = resp.Value{Type: resp.TypeArray, Elems: []resp.Value{v, {Type: resp.TypeBulk, Str: bytes.Repeat([]byte("x"), rng.IntN(100000))}}}
		}
		frame := resp.AppendValue(nil, v)
		for range 20 {
			k := rng.IntN(len(frame))
			h, err := resp.FrameReplyHint(frame[:k], protocol.Limits{})
			require.NoError(t, err)
			require.LessOrEqual(t, h, 0, "prefix of %d bytes of %q", k, frame)
			require.LessOrEqual(t, -h, len(frame), "prefix of %d bytes of %q", k, frame)
			if h < 0 {
				require.Greater(t, -h, k)
				hinted++
			}
		}
	}
	assert.Greater(t, hinted, 1000, "prefixes with a hint")
}
