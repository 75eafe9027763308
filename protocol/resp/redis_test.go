package resp_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// These tests run against a real redis-server (7.0.15 in CI). They encode
// requests with this package, send them over a plain TCP connection and
// frame and parse every reply with it, and check that malformed requests
// get the same answers from redis-server as from ParseCommand.

const redisIOTimeout = 10 * time.Second

// redisAddr starts a redis-server for t, with DEBUG enabled for DEBUG
// PROTOCOL, and returns its address.
func redisAddr(t *testing.T) string {
	t.Helper()
	s := testserver.StartRedis(t, testserver.RedisOptions{Args: []string{"--enable-debug-command", "yes"}})
	return s.Addr
}

// redisConn is a client built from this package only.
type redisConn struct {
	t *testing.T
	c net.Conn
	r *resp.Reader
	w *resp.Writer
}

func dial(t *testing.T, addr string) *redisConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, redisIOTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &redisConn{t: t, c: c, r: resp.NewReader(c, protocol.Limits{}), w: resp.NewWriter(c)}
}

// do sends one command and returns its reply, after checking that
// FrameReply and ParseReply agree on its bytes.
func (c *redisConn) do(args ...string) resp.Value {
	c.t.Helper()
	require.NoError(c.t, c.c.SetDeadline(time.Now().Add(redisIOTimeout)))
	c.w.WriteCommandString(args...)
	require.NoError(c.t, c.w.Flush())
	return c.read()
}

// read reads one reply, as raw bytes, then frames and parses a copy.
func (c *redisConn) read() resp.Value {
	c.t.Helper()
	raw, err := c.r.ReadRawReply()
	require.NoError(c.t, err)
	raw = bytes.Clone(raw)
	n, err := resp.FrameReply(raw, protocol.Limits{})
	require.NoError(c.t, err)
	require.Equal(c.t, len(raw), n)
	var v resp.Value
	n, err = resp.ParseReply(raw, protocol.Limits{}, &v)
	require.NoError(c.t, err)
	require.Equal(c.t, len(raw), n)
	return v
}

func TestRedisReplies(t *testing.T) {
	c := dial(t, redisAddr(t))
	require.Equal(t, `+"OK"`, show(c.do("SET", "k", "v")))
	require.Equal(t, ":3", show(c.do("RPUSH", "list", "a", "", "c\r\n")))

	tests := []struct {
		give []string
		want string
	}{
		{give: []string{"PING"}, want: `+"PONG"`},
		{give: []string{"NOPE", "x"}, want: `-"ERR unknown command 'NOPE', with args beginning with: 'x' "`},
		{give: []string{"INCR", "counter"}, want: ":1"},
		{give: []string{"INCRBY", "counter", "-9223372036854775807"}, want: ":-9223372036854775806"},
		{give: []string{"GET", "k"}, want: `$"v"`},
		{give: []string{"GET", "missing"}, want: "$nil"},
		{give: []string{"LRANGE", "list", "0", "-1"}, want: `*[$"a", $"", $"c\r\n"]`},
		{give: []string{"LRANGE", "missing", "0", "-1"}, want: "*[]"},
		{give: []string{"MGET", "k", "missing", "k"}, want: `*[$"v", $nil, $"v"]`},
		{give: []string{"EVAL", `return {1, {2, {3, {"x", {}}}}, "y"}`, "0"}, want: `*[:1, *[:2, *[:3, *[$"x", *[]]]], $"y"]`},
		{give: []string{"EVAL", `return redis.error_reply("MY err")`, "0"}, want: `-"MY err"`},
		{give: []string{"EVAL", `return redis.status_reply("FINE")`, "0"}, want: `+"FINE"`},
		{give: []string{"EVAL", `return {1, redis.error_reply("E1"), redis.status_reply("S")}`, "0"}, want: `*[:1, -"ERR E1", +"S"]`},
		{give: []string{"BLPOP", "emptylist", "0.01"}, want: "*nil"},
		{give: []string{"HELLO", "4"}, want: `-"NOPROTO unsupported protocol version"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			c.t = t
			v := c.do(tt.give...)
			assert.Equal(t, tt.want, show(v))
			assert.Equal(t, strings.HasPrefix(tt.want, "-"), v.IsError())
			assert.Equal(t, strings.HasSuffix(tt.want, "nil"), v.IsNil())
		})
	}

	t.Run("COMMAND INFO", func(t *testing.T) {
		c.t = t
		v := c.do("COMMAND", "INFO", "get", "set")
		require.Equal(t, resp.TypeArray, v.Type)
		require.Len(t, v.Elems, 2)
		assert.Equal(t, `$"get"`, show(v.Elems[0].Elems[0]))
		depth := 0
		var walk func(v resp.Value, d int)
		walk = func(v resp.Value, d int) {
			depth = max(depth, d)
			for _, e := range v.Elems {
				walk(e, d+1)
			}
		}
		walk(v, 1)
		assert.GreaterOrEqual(t, depth, 4, "COMMAND INFO nests arrays")
	})

	t.Run("16 MB value", func(t *testing.T) {
		c.t = t
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i * 7)
		}
		require.NoError(t, c.c.SetDeadline(time.Now().Add(redisIOTimeout)))
		c.w.WriteCommand([]byte("SET"), []byte("big"), big)
		require.NoError(t, c.w.Flush())
		assert.Equal(t, `+"OK"`, show(c.read()))
		v := c.do("GET", "big")
		require.Equal(t, resp.TypeBulk, v.Type)
		assert.True(t, bytes.Equal(big, v.Str), "16 MB value comes back intact")
		assert.Equal(t, `+"PONG"`, show(c.do("PING")), "the Reader is still in step")
	})
}

func TestRedisPipeline(t *testing.T) {
	c := dial(t, redisAddr(t))
	require.NoError(t, c.c.SetDeadline(time.Now().Add(redisIOTimeout)))
	const n = 2000
	for i := range n {
		c.w.WriteCommandString("SET", "key:"+strconv.Itoa(i), strings.Repeat("v", i%300))
		c.w.WriteCommandString("GET", "key:"+strconv.Itoa(i))
	}
	c.w.WriteCommandString("MGET", "key:1", "key:2", "nokey")
	require.NoError(t, c.w.Flush())
	var v resp.Value
	for i := range n {
		require.NoError(t, c.r.ReadReply(&v))
		require.Equal(t, `+"OK"`, show(v))
		require.NoError(t, c.r.ReadReply(&v))
		require.Equal(t, strings.Repeat("v", i%300), string(v.Str))
	}
	require.NoError(t, c.r.ReadReply(&v))
	assert.Equal(t, `*[$"v", $"vv", $nil]`, show(v))
}

func TestRedisRESP3(t *testing.T) {
	c := dial(t, redisAddr(t))
	hello := c.do("HELLO", "3")
	require.Equal(t, resp.TypeMap, hello.Type)
	assert.Equal(t, `$"server"`, show(hello.Elems[0]))

	tests := []struct {
		give string
		want []string // replies, in order
	}{
		{give: "string", want: []string{`$"Hello World"`}},
		{give: "integer", want: []string{":12345"}},
		{give: "double", want: []string{`,"3.141"`}},
		{give: "bignum", want: []string{`("1234567999999999999999999999999999999"`}},
		{give: "null", want: []string{"_"}},
		{give: "array", want: []string{"*[:0, :1, :2]"}},
		{give: "set", want: []string{"~[:0, :1, :2]"}},
		{give: "map", want: []string{"%[:0, #f, :1, #t, :2, #f]"}},
		{give: "attrib", want: []string{`|[$"key-popularity", *[$"key:123", :90]] $"Some real reply following the attribute"`}},
		{give: "push", want: []string{`>[$"server-cpu-usage", :42]`, `$"Some real reply following the push reply"`}},
		{give: "verbatim", want: []string{`="txt:This is a verbatim\nstring"`}},
		{give: "true", want: []string{"#t"}},
		{give: "false", want: []string{"#f"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			c.t = t
			got := []string{show(c.do("DEBUG", "PROTOCOL", tt.give))}
			for len(got) < len(tt.want) {
				got = append(got, show(c.read()))
			}
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("replies to commands", func(t *testing.T) {
		c.t = t
		assert.Equal(t, ":1", show(c.do("HSET", "h", "f", "v")))
		assert.Equal(t, `%[$"f", $"v"]`, show(c.do("HGETALL", "h")))
		assert.Equal(t, "_", show(c.do("GET", "missing")))
		assert.Equal(t, ":1", show(c.do("ZADD", "z", "1.5", "m")))
		assert.Equal(t, `,"1.5"`, show(c.do("ZSCORE", "z", "m")))
		assert.Equal(t, ":1", show(c.do("SADD", "s", "m")))
		assert.Equal(t, `~[$"m"]`, show(c.do("SMEMBERS", "s")))
		info := c.do("INFO", "server")
		assert.Equal(t, resp.TypeVerbatim, info.Type)
		assert.Contains(t, string(info.Str), "redis_version:")
	})

	t.Run("push messages", func(t *testing.T) {
		c.t = t
		assert.Equal(t, `>[$"subscribe", $"ch", :1]`, show(c.do("SUBSCRIBE", "ch")))
		pub := dial(t, c.c.RemoteAddr().String())
		assert.Equal(t, ":1", show(pub.do("PUBLISH", "ch", "hi")))
		require.NoError(t, c.c.SetDeadline(time.Now().Add(redisIOTimeout)))
		assert.Equal(t, `>[$"message", $"ch", $"hi"]`, show(c.read()))
	})
}

// pong is a PING and redis-server's answer to it: sent after a request,
// it marks the end of the request's replies.
const ping, pong = "*1\r\n$4\r\nPING\r\n", "+PONG\r\n"

// exchange sends raw on a new connection to redis-server and returns what
// comes back until the server closes the connection (closed is then
// true), what came back ends in +PONG, or wait passes.
func exchange(t *testing.T, addr string, raw []byte, wait time.Duration) (reply []byte, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, redisIOTimeout)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(wait)))
	// The server may close before taking every byte; what it answered
	// still arrives, so a write error is not a failure.
	_, _ = c.Write(raw)
	var buf []byte
	chunk := make([]byte, 64<<10)
	for !bytes.HasSuffix(buf, []byte(pong)) {
		n, err := c.Read(chunk)
		buf = append(buf, chunk[:n]...)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return buf, false
		case err != nil:
			return buf, true // io.EOF, or a reset after the reply
		}
	}
	return buf, false
}

func TestRedisMalformedCommands(t *testing.T) {
	addr := redisAddr(t)
	for _, tt := range malformedCommands {
		t.Run(name(tt.give), func(t *testing.T) {
			t.Parallel()
			got, closed := exchange(t, addr, []byte(tt.give), redisIOTimeout)
			assert.Equal(t, "-"+tt.want+"\r\n", string(got))
			assert.True(t, closed, "redis-server closes the connection")
		})
	}
}

// TestRedisWaits checks that redis-server, too, keeps waiting for the
// inputs ParseCommand reports incomplete.
func TestRedisWaits(t *testing.T) {
	addr := redisAddr(t)
	tests := []string{
		"*1\r\n\x00abc\r\n", "*\x001\r\n", "*1\r\n$\x004\r\n", "ECHO a\x00b\n", "\x00foo\nPING\n",
		"*1\n", "*1\r\n$4\n", "*1\r\n$4\r\nPING\r", "*1\r\n$4\r\nPING", "*1\r\n\r",
		"*2147483647\r\n", "*3\r\n$3\r\nSET\r\n",
	}
	for _, give := range tests {
		t.Run(name(give), func(t *testing.T) {
			t.Parallel()
			var cmd resp.Command
			n, err := resp.ParseCommand([]byte(give), protocol.Limits{MaxArgs: 1 << 31}, &cmd)
			require.NoError(t, err)
			require.Zero(t, n)
			got, closed := exchange(t, addr, []byte(give), 300*time.Millisecond)
			assert.Empty(t, got)
			assert.False(t, closed)
		})
	}
}

// TestRedisValidCommands sends each command as received and as this
// package re-encodes its parse; redis-server must answer both alike.
func TestRedisValidCommands(t *testing.T) {
	addr := redisAddr(t)
	for _, tt := range validCommands {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var cmd resp.Command
			_, err := resp.ParseCommand([]byte(tt.give), protocol.Limits{}, &cmd)
			require.NoError(t, err)
			want, _ := exchange(t, addr, append(resp.AppendCommand(nil, cmd.Args...), ping...), redisIOTimeout)
			got, _ := exchange(t, addr, append([]byte(tt.give), ping...), redisIOTimeout)
			require.True(t, bytes.HasSuffix(want, []byte(pong)))
			assert.Equal(t, string(want), string(got))
		})
	}
}

// TestRedisInlineDifferential checks ParseCommand's inline splitting
// against redis-server's sdssplitargs on random lines: EVAL returns ARGV,
// so the reply shows exactly how the server split the line.
func TestRedisInlineDifferential(t *testing.T) {
	addr := redisAddr(t)
	rng := rand.New(rand.NewPCG(7, 11))
	const alphabet = `ab  "'\\x4fgntr` + "\t\v\f\r"
	for i := range 400 {
		line := make([]byte, rng.IntN(16))
		for j := range line {
			line[j] = alphabet[rng.IntN(len(alphabet))]
		}
		raw := []byte(`EVAL "return ARGV" 0 ` + string(line) + "\r\n")
		t.Run(strconv.Itoa(i)+"/"+strconv.Quote(string(line)), func(t *testing.T) {
			var cmd resp.Command
			n, err := resp.ParseCommand(raw, protocol.Limits{}, &cmd)
			got, closed := exchange(t, addr, append(raw, ping...), redisIOTimeout)
			var pe *protocol.Error
			if errors.As(err, &pe) {
				assert.Equal(t, "-"+pe.Reply+"\r\n", string(got))
				assert.True(t, closed)
				return
			}
			require.NoError(t, err)
			require.Equal(t, len(raw), n)
			require.GreaterOrEqual(t, len(cmd.Args), 3)
			want := resp.AppendArrayHeader(nil, len(cmd.Args)-3)
			for _, a := range cmd.Args[3:] {
				want = resp.AppendBulk(want, a)
			}
			assert.Equal(t, string(want)+pong, string(got))
		})
	}
}
