package memcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// validResponses are complete responses to a request of cmd.
var validResponses = []struct {
	cmd  memcache.Command
	give string
}{
	{memcache.Get, "END\r\n"},
	{memcache.Get, "VALUE k 0 1\r\nx\r\nEND\r\n"},
	{memcache.Get, "VALUE k 4294967295 0\r\n\r\nEND\r\n"},
	{memcache.Get, "VALUE k 1 4\r\na\r\nb\r\nVALUE \xc3\xa9 2 3\r\nEND\r\nEND\r\n"},
	{memcache.Gets, "VALUE k 0 1 18446744073709551615\r\nx\r\nEND\r\n"},
	{memcache.Gat, "VALUE k 0 1\r\nx\r\nEND\r\n"},
	{memcache.Gats, "VALUE k 0 1 7\r\nx\r\nEND\r\n"},
	{memcache.Get, "SERVER_ERROR out of memory writing get response\r\n"},
	{memcache.Get, "VALUE k 0 1\r\nx\r\nSERVER_ERROR out of memory\r\n"},
	{memcache.Get, "CLIENT_ERROR bad command line format\r\n"},
	{memcache.Get, "ERROR\r\n"},
	{memcache.Set, "STORED\r\n"},
	{memcache.Add, "NOT_STORED\r\n"},
	{memcache.Cas, "EXISTS\r\n"},
	{memcache.Cas, "NOT_FOUND\r\n"},
	{memcache.Replace, "NOT_STORED\r\n"},
	{memcache.Append, "STORED\r\n"},
	{memcache.Prepend, "STORED\r\n"},
	{memcache.Set, "SERVER_ERROR object too large for cache\r\n"},
	{memcache.Set, "CLIENT_ERROR bad data chunk\r\n"},
	{memcache.Delete, "DELETED\r\n"},
	{memcache.Delete, "NOT_FOUND\r\n"},
	{memcache.Touch, "TOUCHED\r\n"},
	{memcache.Touch, "NOT_FOUND\r\n"},
	{memcache.Incr, "0\r\n"},
	{memcache.Decr, "18446744073709551615\r\n"},
	{memcache.Incr, "NOT_FOUND\r\n"},
	{memcache.Incr, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
	{memcache.Version, "VERSION 1.6.18\r\n"},
	{memcache.Verbosity, "OK\r\n"},
	{memcache.FlushAll, "OK\r\n"},
	{memcache.FlushAll, "CLIENT_ERROR flush_all not allowed\r\n"},
	{memcache.Stats, "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n"},
	{memcache.Stats, "END\r\n"},
	{memcache.Stats, "RESET\r\n"},
	{memcache.Stats, "OK\r\n"},
	{memcache.Stats, "ITEM k [1 b; 0 s]\r\nEND\r\n"},
	{memcache.MetaNoop, "MN\r\n"},
	{memcache.MetaGet, "VA 2 f0 t-1\r\nhi\r\n"},
	{memcache.MetaGet, "VA 0\r\n\r\n"},
	{memcache.MetaGet, "HD\r\n"},
	{memcache.MetaGet, "EN\r\n"},
	{memcache.MetaSet, "HD c5\r\n"},
	{memcache.MetaSet, "NS\r\n"},
	{memcache.MetaSet, "EX\r\n"},
	{memcache.MetaSet, "NF\r\n"},
	{memcache.MetaSet, "CLIENT_ERROR bad data chunk\r\n"},
	{memcache.MetaDelete, "HD\r\n"},
	{memcache.MetaDelete, "NF\r\n"},
	{memcache.MetaDelete, "EX\r\n"},
	{memcache.MetaArithmetic, "VA 1 t-1\r\n5\r\n"},
	{memcache.MetaArithmetic, "HD c7\r\n"},
	{memcache.MetaArithmetic, "NF\r\n"},
	{memcache.MetaArithmetic, "NS\r\n"},
	{memcache.MetaArithmetic, "EX\r\n"},
	{memcache.MetaDebug, "ME k exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n"},
	{memcache.MetaDebug, "EN\r\n"},
	{memcache.MetaGet, "CLIENT_ERROR duplicate flag\r\n"},
	{memcache.Unknown, "ERROR\r\n"},
}

func TestFrameResponse(t *testing.T) {
	for _, tt := range validResponses {
		t.Run(tt.cmd.String()+"/"+strconv.Quote(tt.give), func(t *testing.T) {
			b := []byte(tt.give)
			n, err := memcache.FrameResponse(b, tt.cmd, protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, len(b), n)

			n, err = memcache.FrameResponse(append(b, "STORED\r\n"...), tt.cmd, protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, len(tt.give), n, "followed by the next response")

			for i := 0; i < len(tt.give); i++ {
				n, err := memcache.FrameResponse([]byte(tt.give[:i]), tt.cmd, protocol.Limits{})
				require.NoError(t, err, "prefix %q", tt.give[:i])
				require.Zero(t, n, "prefix %q", tt.give[:i])
			}
		})
	}
}

func TestFrameResponseInvalid(t *testing.T) {
	tests := []struct {
		cmd      memcache.Command
		give     string
		lim      protocol.Limits
		reply    string
		tooLarge bool
	}{
		{cmd: memcache.Get, give: "STORED\r\n"},
		{cmd: memcache.Get, give: "END\n"},
		{cmd: memcache.Get, give: "\r\n"},
		{cmd: memcache.Get, give: "END \r\n"},
		{cmd: memcache.Get, give: "VALUE k 0\r\n"},
		{cmd: memcache.Get, give: "VALUE k 0 1 2 3\r\n"},
		{cmd: memcache.Get, give: "VALUE k x 1\r\n"},
		{cmd: memcache.Get, give: "VALUE k 4294967296 1\r\n"},
		{cmd: memcache.Get, give: "VALUE k 0 -1\r\n"},
		{cmd: memcache.Get, give: "VALUE k 0 1 x\r\n"},
		{cmd: memcache.Get, give: "VALUE " + key251 + " 0 1\r\n"},
		{cmd: memcache.Get, give: "VALUE k 0 1\r\nxy\r\n"},
		{cmd: memcache.Get, give: "VALUE k 0 1\r\nx\r\nSTORED\r\n"},
		{cmd: memcache.Get, give: "value k 0 1\r\nx\r\nEND\r\n"},
		{cmd: memcache.Get, give: " VALUE k 0 1\r\nx\r\nEND\r\n"},
		{cmd: memcache.Gets, give: "ERROR\r\r\n"}, // fuzz regression: CR inside the line
		{cmd: memcache.Set, give: "END\r\n"},
		{cmd: memcache.Set, give: "STORED \r\n"},
		{cmd: memcache.Set, give: "stored\r\n"},
		{cmd: memcache.Set, give: "DELETED\r\n"},
		{cmd: memcache.Delete, give: "STORED\r\n"},
		{cmd: memcache.Touch, give: "DELETED\r\n"},
		{cmd: memcache.Incr, give: "-1\r\n"},
		{cmd: memcache.Incr, give: "18446744073709551616\r\n"},
		{cmd: memcache.Incr, give: "1 2\r\n"},
		{cmd: memcache.Version, give: "VERSION\r\n"},
		{cmd: memcache.Version, give: "OK\r\n"},
		{cmd: memcache.FlushAll, give: "STORED\r\n"},
		{cmd: memcache.Stats, give: "STAT a b\r\n\r\n"},
		{cmd: memcache.Stats, give: "STAT a b\r\nERROR\r\n"},
		{cmd: memcache.MetaGet, give: "STORED\r\n"},
		{cmd: memcache.MetaGet, give: "VA x\r\n"},
		{cmd: memcache.MetaGet, give: "VA 1\r\nxy\r\n"},
		// A meta reply that does not answer the command: with quiet
		// requests, the reply to a later one.
		{cmd: memcache.MetaGet, give: "MN\r\n"},
		{cmd: memcache.MetaGet, give: "NF\r\n"},
		{cmd: memcache.MetaGet, give: "ME k exp=-1\r\n"},
		{cmd: memcache.MetaSet, give: "VA 1\r\nx\r\n"},
		{cmd: memcache.MetaSet, give: "EN\r\n"},
		{cmd: memcache.MetaSet, give: "MN\r\n"},
		{cmd: memcache.MetaDelete, give: "NS\r\n"},
		{cmd: memcache.MetaDelete, give: "VA 1\r\nx\r\n"},
		{cmd: memcache.MetaDelete, give: "EN\r\n"},
		{cmd: memcache.MetaArithmetic, give: "EN\r\n"},
		{cmd: memcache.MetaArithmetic, give: "MN\r\n"},
		{cmd: memcache.MetaNoop, give: "HD\r\n"},
		{cmd: memcache.MetaNoop, give: "EN\r\n"},
		{cmd: memcache.MetaDebug, give: "HD\r\n"},
		{cmd: memcache.MetaDebug, give: "MN\r\n"},
		{cmd: memcache.MetaDebug, give: "VA 1\r\nx\r\n"},
		{cmd: memcache.Get, give: "HD\r\n"},
		{cmd: memcache.Set, give: "HD\r\n"},
		{cmd: memcache.Quit, give: "x"},
		{cmd: memcache.Unknown, give: "STORED\r\n"},
		{cmd: memcache.Command(200), give: "STORED\r\n"},
		{cmd: memcache.Get, give: "VALUE k 0 11\r\n", lim: protocol.Limits{MaxBulk: 10}, reply: "SERVER_ERROR object too large for cache", tooLarge: true},
		{cmd: memcache.MetaGet, give: "VA 11\r\n", lim: protocol.Limits{MaxBulk: 10}, reply: "SERVER_ERROR object too large for cache", tooLarge: true},
		{cmd: memcache.Get, give: "VALUE k 0 1\r\nx\r\nVALUE k 0 1\r\n", lim: protocol.Limits{MaxArgs: 1}, tooLarge: true},
		{cmd: memcache.Stats, give: "STAT a 1\r\nSTAT b 2\r\n", lim: protocol.Limits{MaxArgs: 1}, tooLarge: true},
		{cmd: memcache.Set, give: "STORED", lim: protocol.Limits{MaxLine: 6}, tooLarge: true},
		{cmd: memcache.Set, give: "STORED\r\n", lim: protocol.Limits{MaxLine: 7}, tooLarge: true},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.String()+"/"+strconv.Quote(tt.give), func(t *testing.T) {
			n, err := memcache.FrameResponse([]byte(tt.give), tt.cmd, tt.lim)
			assert.Zero(t, n)
			var pe *protocol.Error
			require.True(t, errors.As(err, &pe), "error %v", err)
			want := tt.reply
			if want == "" {
				want = "SERVER_ERROR Invalid argument"
			}
			assert.Equal(t, want, pe.Reply)
			assert.Equal(t, tt.tooLarge, pe.TooLarge)
		})
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		give string
		want memcache.Value
	}{
		{"VALUE k 5 3\r\nabc\r\nEND\r\n", memcache.Value{Key: []byte("k"), Flags: 5, Bytes: 3, Data: []byte("abc"), Raw: []byte("VALUE k 5 3\r\nabc\r\n")}},
		{"VALUE k 0 0 9\r\n\r\n", memcache.Value{Key: []byte("k"), Cas: 9, HasCas: true, Data: []byte{}, Raw: []byte("VALUE k 0 0 9\r\n\r\n")}},
		{"VALUE \xff 0 2\r\n\r\n\r\n", memcache.Value{Key: []byte("\xff"), Bytes: 2, Data: []byte("\r\n"), Raw: []byte("VALUE \xff 0 2\r\n\r\n\r\n")}},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var v memcache.Value
			n, err := memcache.ParseValue([]byte(tt.give), protocol.Limits{}, &v)
			require.NoError(t, err)
			assert.Equal(t, len(tt.want.Raw), n)
			assert.Equal(t, tt.want, v)
			for i := 0; i < len(tt.want.Raw); i++ {
				n, err := memcache.ParseValue([]byte(tt.give[:i]), protocol.Limits{}, &v)
				require.NoError(t, err)
				require.Zero(t, n)
			}
		})
	}
	for _, give := range []string{"END\r\n", "VALUE k\r\n", "VALUE k 0 1\r\nxx\r\n", "STORED\r\n", " VALUE k 0 1\r\nx\r\n", "VALUE k 0 1\r\nx\nEND\r\n"} {
		t.Run(strconv.Quote(give), func(t *testing.T) {
			var v memcache.Value
			n, err := memcache.ParseValue([]byte(give), protocol.Limits{}, &v)
			assert.Zero(t, n)
			assert.ErrorIs(t, err, protocol.ErrProtocol)
		})
	}
}

// TestMergeValues shows the multi-get merge: VALUE blocks of several
// framed fragments, concatenated under one END.
func TestMergeValues(t *testing.T) {
	fragments := []string{
		"VALUE a 0 1\r\n1\r\nVALUE c 0 1\r\n3\r\nEND\r\n",
		"END\r\n",
		"VALUE b 0 1\r\n2\r\nEND\r\n",
	}
	var merged []byte
	for _, f := range fragments {
		b := []byte(f)
		n, err := memcache.FrameResponse(b, memcache.Get, protocol.Limits{})
		require.NoError(t, err)
		require.Equal(t, len(b), n)
		for memcache.ClassifyResponse(b) == memcache.RespValue {
			var v memcache.Value
			n, err := memcache.ParseValue(b, protocol.Limits{}, &v)
			require.NoError(t, err)
			merged = append(merged, v.Raw...)
			b = b[n:]
		}
		require.Equal(t, memcache.RespEnd, memcache.ClassifyResponse(b))
	}
	merged = memcache.AppendEnd(merged)
	assert.Equal(t, "VALUE a 0 1\r\n1\r\nVALUE c 0 1\r\n3\r\nVALUE b 0 1\r\n2\r\nEND\r\n", string(merged))
}

func TestClassifyResponse(t *testing.T) {
	tests := []struct {
		give string
		want memcache.Response
	}{
		{"VALUE k 0 1\r\nx\r\nEND\r\n", memcache.RespValue},
		{"VALUE\r\n", memcache.RespInvalid},
		{"END\r\n", memcache.RespEnd},
		{"END", memcache.RespEnd},
		{"END x\r\n", memcache.RespInvalid},
		{"STORED\r\n", memcache.RespStored},
		{"NOT_STORED\r\n", memcache.RespNotStored},
		{"EXISTS\r\n", memcache.RespExists},
		{"NOT_FOUND\r\n", memcache.RespNotFound},
		{"DELETED\r\n", memcache.RespDeleted},
		{"TOUCHED\r\n", memcache.RespTouched},
		{"42\r\n", memcache.RespNumber},
		{"4 2\r\n", memcache.RespInvalid},
		{"VERSION 1.6.18\r\n", memcache.RespVersion},
		{"OK\r\n", memcache.RespOK},
		{"RESET\r\n", memcache.RespReset},
		{"STAT pid 1\r\n", memcache.RespStat},
		{"VA 2 f0\r\nhi\r\n", memcache.RespMeta},
		{"HD\r\n", memcache.RespMeta},
		{"MN\r\n", memcache.RespMeta},
		{"ERROR\r\n", memcache.RespError},
		{"CLIENT_ERROR bad data chunk\r\n", memcache.RespClientError},
		{"SERVER_ERROR out of memory\r\n", memcache.RespServerError},
		{"", memcache.RespInvalid},
		{"\r\n", memcache.RespInvalid},
		{"stored\r\n", memcache.RespInvalid},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			got := memcache.ClassifyResponse([]byte(tt.give))
			assert.Equal(t, tt.want, got)
			assert.Equal(t, strings.HasSuffix(got.String(), "ERROR"), got.IsError())
		})
	}
	assert.Equal(t, "invalid", memcache.Response(200).String())
	assert.Equal(t, "NOT_FOUND", memcache.RespNotFound.String())
}

func TestFrameResponseHint(t *testing.T) {
	valueLine := "VALUE k 0 1000000\r\n"
	tests := []struct {
		cmd  memcache.Command
		give string
		want int // the hint, or the length of a complete response
	}{
		{memcache.Get, valueLine, -len(valueLine) - 1000002 - len("END\r\n")},
		{memcache.Get, valueLine + "abc", -len(valueLine) - 1000002 - len("END\r\n")},
		{memcache.Gets, "VALUE k 0 3 9\r\nabc\r", -len("VALUE k 0 3 9\r\nabc\r\nEND\r\n")},
		{memcache.Get, "VALUE a 0 1\r\nx\r\nVALUE b 0 10\r\n", -len("VALUE a 0 1\r\nx\r\nVALUE b 0 10\r\n") - 12 - 5},
		{memcache.MetaGet, "VA 1000 f0\r\n", -len("VA 1000 f0\r\n") - 1002},
		{memcache.MetaArithmetic, "VA 2\r\n4", -len("VA 2\r\n42\r\n")},
		// No estimate: an incomplete line.
		{memcache.Get, "", 0},
		{memcache.Get, "VALUE k 0 1000000", 0},
		{memcache.Get, "VALUE k 0 1\r\nx\r\n", 0},
		{memcache.Set, "STORED", 0},
		{memcache.Stats, "STAT pid 1\r\n", 0},
		// Complete.
		{memcache.Get, "VALUE k 0 1\r\nx\r\nEND\r\n", len("VALUE k 0 1\r\nx\r\nEND\r\n")},
		{memcache.MetaGet, "VA 1\r\nx\r\n", len("VA 1\r\nx\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.String()+"/"+strconv.Quote(tt.give), func(t *testing.T) {
			n, err := memcache.FrameResponseHint([]byte(tt.give), tt.cmd, protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			n, err = memcache.FrameResponse([]byte(tt.give), tt.cmd, protocol.Limits{})
			require.NoError(t, err)
			assert.Equal(t, max(tt.want, 0), n)
		})
	}

	// The hint for any prefix of a valid response never exceeds its
	// length.
	rng := rand.New(rand.NewPCG(7, 8))
	hinted := 0
	for range 500 {
		var frame []byte
		cmd := memcache.Get
		if rng.IntN(4) == 0 {
			cmd = memcache.MetaGet
			data := bytes.Repeat([]byte("v"), rng.IntN(70000))
			frame = append(fmt.Appendf(nil, "VA %d f1 t-1\r\n", len(data)), data...)
			frame = append(frame, "\r\n"...)
		} else {
			for range rng.IntN(4) {
				data := bytes.Repeat([]byte("d"), rng.IntN([]int{10, 1000, 100000}[rng.IntN(3)]))
				if rng.IntN(2) == 0 {
					frame = memcache.AppendValueCas(frame, []byte("key"), 0, data, rng.Uint64())
				} else {
					frame = memcache.AppendValue(frame, []byte("key"), 1, data)
				}
			}
			frame = memcache.AppendEnd(frame)
		}
		n, err := memcache.FrameResponse(frame, cmd, protocol.Limits{})
		require.NoError(t, err)
		require.Equal(t, len(frame), n)
		for range 20 {
			k := rng.IntN(len(frame))
			h, err := memcache.FrameResponseHint(frame[:k], cmd, protocol.Limits{})
			require.NoError(t, err)
			require.LessOrEqual(t, h, 0, "prefix of %d bytes of %.80q", k, frame)
			require.LessOrEqual(t, -h, len(frame), "prefix of %d bytes of %.80q", k, frame)
			if h < 0 {
				require.Greater(t, -h, k)
				hinted++
			}
		}
	}
	assert.Greater(t, hinted, 1000, "prefixes with a hint")
}
