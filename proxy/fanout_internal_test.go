package proxy

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/shard"
)

func TestParseCursor(t *testing.T) {
	tests := []struct {
		give string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"", 0, true}, // strtoul: no digits, nothing left over
		{"00", 0, true},
		{"42", 42, true},
		{"+42", 42, true},
		{"-0", 0, true},
		{"-1", 1<<64 - 1, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"000000000000000000000000001", 1, true},
		{"+", 0, false},
		{"-", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1x", 0, false},
		{"0x10", 0, false},
		{"++1", 0, false},
		{"1_000", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseCursor([]byte(tt.give))
		assert.Equal(t, tt.ok, ok, "%q", tt.give)
		assert.Equal(t, tt.want, got, "%q", tt.give)
	}
}

func TestCursorEncoding(t *testing.T) {
	for _, tt := range []struct {
		srv int
		cur uint64
	}{{0, 0}, {0, 1}, {1, 0}, {2, 12345}, {scanMaxServers - 1, scanServerMask}} {
		enc := encodeCursor(tt.srv, tt.cur)
		assert.Less(t, enc, uint64(1)<<63, "below 2^63")
		srv, cur, ok := decodeCursor(strconv.AppendUint(nil, enc, 10), scanMaxServers)
		require.True(t, ok)
		assert.Equal(t, tt.srv, srv)
		assert.Equal(t, tt.cur, cur)
	}
	_, _, ok := decodeCursor([]byte(strconv.FormatUint(encodeCursor(3, 7), 10)), 3)
	assert.False(t, ok, "server 3 of 3")
	_, _, ok = decodeCursor([]byte("-1"), scanMaxServers)
	assert.False(t, ok)
	assert.Equal(t, uint64(0), encodeCursor(0, 0), "cursor 0 starts at server 0")
}

// testSession returns a session of a Redis server over n servers that are
// never dialled, for merging replies by hand.
func testSession(t testing.TB, n int) *session {
	t.Helper()
	cfg := Config{Name: "t", Protocol: protocol.Redis}
	for i := range n {
		cfg.Servers = append(cfg.Servers, shard.Server{Addr: "127.0.0.1:" + strconv.Itoa(1+i), Weight: 1, Name: "s" + strconv.Itoa(i)})
	}
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return newSession(s, nil)
}

// merge merges replies (one per server, in ring order) with m.
func (c *session) mergeForTest(m fanMerge, key0, nkeys int32, replies ...string) string {
	c.calls = c.calls[:0]
	for i, r := range replies {
		srv := i % len(c.g.backends)
		if m == mergeRandom {
			srv = i % max(len(replies)/2, 1) // RANDOMKEY replies, then DBSIZE, server by server
		}
		c.calls = append(c.calls, &call{cc: c, reply: []byte(r), server: srv})
	}
	return string(c.appendFanReply(nil, &slot{kind: slotFan, fan: m, ncall: int32(len(replies)), key0: key0, nkeys: nkeys}))
}

func TestFanMerges(t *testing.T) {
	c := testSession(t, 3)
	tests := []struct {
		name    string
		m       fanMerge
		key0    int32
		nkeys   int32
		replies []string
		want    string
	}{
		{"ok", mergeOK, 0, 0, []string{"+OK\r\n", "+OK\r\n", "+OK\r\n"}, "+OK\r\n"},
		{"ok with error", mergeOK, 0, 0, []string{"+OK\r\n", "-ERR syntax error\r\n", "-ERR other\r\n"}, "-ERR syntax error\r\n"},
		{"ok not ok", mergeOK, 0, 0, []string{"+OK\r\n", ":1\r\n"}, "-ERR Invalid argument\r\n"},
		{"same", mergeSame, 0, 0, []string{"$3\r\nabc\r\n", "$3\r\nabc\r\n"}, "$3\r\nabc\r\n"},
		{"same differs", mergeSame, 0, 0, []string{"$3\r\nabc\r\n", "$3\r\nabd\r\n"}, "-ERR Invalid argument\r\n"},
		{"sum", mergeSum, 0, 0, []string{":1\r\n", ":20\r\n", ":300\r\n"}, ":321\r\n"},
		{"sum not int", mergeSum, 0, 0, []string{":1\r\n", "$1\r\n2\r\n"}, "-ERR Invalid argument\r\n"},
		{"sum trailing", mergeSum, 0, 0, []string{":1\r\n:2\r\n"}, "-ERR Invalid argument\r\n"},
		{"union", mergeUnion, 0, 0, []string{"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*0\r\n", "*2\r\n$1\r\nc\r\n$1\r\na\r\n"}, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"union nil element", mergeUnion, 0, 0, []string{"*1\r\n$-1\r\n"}, "-ERR Invalid argument\r\n"},
		{"union short", mergeUnion, 0, 0, []string{"*2\r\n$1\r\na\r\n"}, "-ERR Invalid argument\r\n"},
		{"and", mergeAnd, 0, 0, []string{"*3\r\n:1\r\n:1\r\n:0\r\n", "*3\r\n:1\r\n:0\r\n:0\r\n"}, "*3\r\n:1\r\n:0\r\n:0\r\n"},
		{"and lengths differ", mergeAnd, 0, 0, []string{"*1\r\n:1\r\n", "*2\r\n:1\r\n:1\r\n"}, "-ERR Invalid argument\r\n"},
		{"and not 0/1", mergeAnd, 0, 0, []string{"*1\r\n:2\r\n"}, "-ERR Invalid argument\r\n"},
		{"scan middle", mergeScan, 1, 2, []string{"*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n"}, "*2\r\n" + bulk(strconv.FormatUint(1<<48|17, 10)) + "*1\r\n$1\r\nk\r\n"},
		{"scan next server", mergeScan, 1, 2, []string{"*2\r\n$1\r\n0\r\n*0\r\n"}, "*2\r\n" + bulk(strconv.FormatUint(2<<48, 10)) + "*0\r\n"},
		{"scan last server", mergeScan, 2, -1, []string{"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"}, "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"},
		{"scan cursor too large", mergeScan, 0, 1, []string{"*2\r\n$15\r\n281474976710656\r\n*0\r\n"}, "-ERR Invalid argument\r\n"},
		{"scan not an array", mergeScan, 0, 1, []string{"+OK\r\n"}, "-ERR Invalid argument\r\n"},
		{"random one key", mergeRandom, 0, 0, []string{"$-1\r\n", "$1\r\nk\r\n", ":0\r\n", ":5\r\n"}, "$1\r\nk\r\n"},
		{"random none", mergeRandom, 0, 0, []string{"$-1\r\n", "$-1\r\n", ":0\r\n", ":0\r\n"}, "$-1\r\n"},
		{"random bad size", mergeRandom, 0, 0, []string{"$1\r\nk\r\n", "+x\r\n"}, "-ERR Invalid argument\r\n"},
		{"info keyspace", mergeInfo, infoKeyspace, 0, []string{
			bulk("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=1000\r\ndb2:keys=1,expires=0,avg_ttl=0\r\n"),
			bulk("# Keyspace\r\ndb0:keys=5,expires=3,avg_ttl=2000,subexpiry=2\r\n"),
			bulk("# Keyspace\r\n"),
		}, bulk("# Keyspace\r\ndb0:keys=8,expires=4,avg_ttl=1750,subexpiry=2\r\ndb2:keys=1,expires=0,avg_ttl=0\r\n")},
		{"info keyspace bad line", mergeInfo, infoKeyspace, 0, []string{bulk("# Keyspace\r\ndb0:keys=x\r\n")}, "-ERR Invalid argument\r\n"},
		{"info none", mergeInfo, 0, 0, nil, "$0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, c.mergeForTest(tt.m, tt.key0, tt.nkeys, tt.replies...))
		})
	}
}

func bulk(s string) string { return string(resp.AppendBulkString(nil, s)) }

func TestScriptSubcommandRefusals(t *testing.T) {
	got := map[string]string{}
	for _, s := range append(append([]scriptSub(nil), scriptSubs...), functionSubs...) {
		if s.refusal != "" {
			got[s.full] = s.refusal
		}
	}
	assert.Equal(t, map[string]string{
		"script|kill":    "ERR SCRIPT KILL is not supported through a sharding proxy: " + refuseScriptKill,
		"script|debug":   "ERR SCRIPT DEBUG is not supported through a sharding proxy: " + refuseScriptDebug,
		"function|kill":  "ERR FUNCTION KILL is not supported through a sharding proxy: " + refuseScriptKill,
		"function|stats": "ERR FUNCTION STATS is not supported through a sharding proxy: " + refuseServerAdmin,
	}, got)
}

func TestBuildRefusals(t *testing.T) {
	m, err := buildRefusals(nil)
	require.NoError(t, err)
	assert.Nil(t, m)
	m, err = buildRefusals([]string{"FlushAll", "script FLUSH", "function|delete", "memory", " keys "})
	require.NoError(t, err)
	assert.Equal(t, "ERR FLUSHALL is refused by this pool's configuration (redis_refuse_commands)", m["flushall"])
	assert.Equal(t, "ERR SCRIPT FLUSH is refused by this pool's configuration (redis_refuse_commands)", m["script|flush"])
	assert.Contains(t, m, "function|delete")
	assert.Contains(t, m, "memory")
	assert.Contains(t, m, "memory|usage", "a container refuses its subcommands")
	assert.Contains(t, m, "memory|stats")
	assert.Contains(t, m, "keys")
	assert.NotContains(t, m, "script")
	for _, bad := range []string{"nosuch", "", "script|nosuch", "get|x", "client|nosuch", "a b c", "client||kill"} {
		_, err := buildRefusals([]string{bad})
		assert.Error(t, err, "%q", bad)
	}
}

// FuzzFanMerge merges arbitrary server replies with every fan-out merge:
// the result must be one whole RESP reply, never a panic. Each reply is one
// whole RESP reply, as the pool's framing guarantees; its contents are
// arbitrary.
func FuzzFanMerge(f *testing.F) {
	f.Add(uint8(mergeScan), []byte("*2\r\n$1\r\n5\r\n*1\r\n$1\r\nk\r\n"), []byte{}, []byte{})
	f.Add(uint8(mergeUnion), []byte("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), []byte("*1\r\n$1\r\na\r\n"), []byte("*0\r\n"))
	f.Add(uint8(mergeAnd), []byte("*2\r\n:1\r\n:0\r\n"), []byte("*2\r\n:1\r\n:1\r\n"), []byte("*2\r\n:1\r\n:1\r\n"))
	f.Add(uint8(mergeInfo), []byte(bulk("# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n")), []byte(bulk("# Keyspace\r\ndb1:keys=2\r\n")), []byte(bulk("")))
	f.Add(uint8(mergeRandom), []byte("$1\r\nk\r\n"), []byte(":3\r\n"), []byte{})
	f.Add(uint8(mergeSum), []byte(":1\r\n"), []byte(":-2\r\n"), []byte(":9223372036854775807\r\n"))
	f.Add(uint8(mergeOK), []byte("+OK\r\n"), []byte("-ERR x\r\n"), []byte("+OK\r\n"))
	f.Add(uint8(mergeSame), []byte("$1\r\nx\r\n"), []byte("$1\r\nx\r\n"), []byte("$1\r\nx\r\n"))
	c := testSession(f, 3)
	f.Fuzz(func(t *testing.T, m uint8, a, b, d []byte) {
		merge := fanMerge(1 + m%uint8(mergeInfo))
		replies := []string{string(a), string(b), string(d)}
		var key0, nkeys int32
		switch merge {
		case mergeScan:
			replies = replies[:1]
			key0, nkeys = int32(m%3), int32(m%3)+1
			if nkeys == 3 {
				nkeys = -1
			}
		case mergeRandom:
			replies = replies[:2]
		case mergeInfo:
			key0 = infoAll
			nkeys = int32(m & 1)
		}
		for _, r := range replies {
			if n, err := resp.FrameReply([]byte(r), protocol.Limits{}); err != nil || n != len(r) {
				return
			}
		}
		out := c.mergeForTest(merge, key0, nkeys, replies...)
		n, err := resp.FrameReply([]byte(out), protocol.Limits{})
		if err != nil || n != len(out) {
			t.Fatalf("merge %d of %q: %q is not one RESP reply", merge, replies, out)
		}
		if merge == mergeScan && !strings.HasPrefix(out, "-") {
			var v resp.Value
			_, err := resp.ParseReply([]byte(out), protocol.Limits{}, &v)
			require.NoError(t, err)
			cur, ok := parseCursor(v.Elems[0].Str)
			require.True(t, ok)
			require.Less(t, cur, uint64(1)<<63)
		}
	})
}

// FuzzScanCursor checks parseCursor against strconv, and that a decoded
// cursor encodes back to the same number.
func FuzzScanCursor(f *testing.F) {
	for _, s := range []string{"0", "", "-1", "+5", "18446744073709551615", "281474976710656", "1x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseCursor(b)
		digits, neg := b, false
		if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
			digits, neg = b[1:], b[0] == '-'
		}
		want, err := strconv.ParseUint(string(digits), 10, 64)
		wantOK := err == nil && !strings.ContainsAny(string(digits), "+-_")
		if len(b) == 0 {
			want, wantOK = 0, true
		}
		if neg {
			want = -want
		}
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("parseCursor(%q) = %d, %v; want %d, %v", b, got, ok, want, wantOK)
		}
		if srv, cur, ok := decodeCursor(b, scanMaxServers); ok {
			require.Equal(t, got, encodeCursor(srv, cur))
		}
	})
}
