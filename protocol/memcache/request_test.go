package memcache_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// reqView is the comparable content of a Request, without Raw.
type reqView struct {
	Command memcache.Command
	Keys    []string
	Flags   uint32
	Exptime int64
	Bytes   int
	Cas     uint64
	Delta   uint64
	Noreply bool
	Quiet   bool
	Data    string
}

func view(r *memcache.Request) reqView {
	v := reqView{Command: r.Command, Flags: r.Flags, Exptime: r.Exptime, Bytes: r.Bytes,
		Cas: r.Cas, Delta: r.Delta, Noreply: r.Noreply, Quiet: r.Quiet, Data: string(r.Data)}
	for _, k := range r.Keys {
		v.Keys = append(v.Keys, string(k))
	}
	return v
}

var (
	key250 = strings.Repeat("k", memcache.MaxKeyLen)
	key251 = strings.Repeat("k", memcache.MaxKeyLen+1)
)

// validRequests are well-formed requests, each with what ParseRequest
// must make of it.
var validRequests = []struct {
	give string
	want reqView
}{
	{"get k\r\n", reqView{Command: memcache.Get, Keys: []string{"k"}}},
	{"get k1 k2 k3\r\n", reqView{Command: memcache.Get, Keys: []string{"k1", "k2", "k3"}}},
	{"gets a b\r\n", reqView{Command: memcache.Gets, Keys: []string{"a", "b"}}},
	{"  get   a   b  \r\n", reqView{Command: memcache.Get, Keys: []string{"a", "b"}}},
	{"get k\n", reqView{Command: memcache.Get, Keys: []string{"k"}}},
	{"get k k\r\n", reqView{Command: memcache.Get, Keys: []string{"k", "k"}}},
	{"get \xc3\xa9t\xc3\xa9 \x80\xff\r\n", reqView{Command: memcache.Get, Keys: []string{"\xc3\xa9t\xc3\xa9", "\x80\xff"}}},
	{"get " + key250 + "\r\n", reqView{Command: memcache.Get, Keys: []string{key250}}},
	{"get {user:1}:name ~!@#$%^&*()_+=\r\n", reqView{Command: memcache.Get, Keys: []string{"{user:1}:name", "~!@#$%^&*()_+="}}},
	{"gat 10 a b\r\n", reqView{Command: memcache.Gat, Exptime: 10, Keys: []string{"a", "b"}}},
	{"gats -1 a\r\n", reqView{Command: memcache.Gats, Exptime: -1, Keys: []string{"a"}}},
	{"gat 10\r\n", reqView{Command: memcache.Gat, Exptime: 10}},
	{"set k 5 10 3\r\nabc\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Flags: 5, Exptime: 10, Bytes: 3, Data: "abc"}},
	{"set k 0 -1 0\r\n\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Exptime: -1}},
	{"set k 0 0 3 noreply\r\nabc\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Bytes: 3, Data: "abc", Noreply: true}},
	{"set k 0 0 3 junk\r\nabc\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Bytes: 3, Data: "abc"}},
	{"set k 4294967295 0 1\r\nx\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Flags: 4294967295, Bytes: 1, Data: "x"}},
	{"set k 0 -9223372036854775808 1\r\nx\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Exptime: -9223372036854775808, Bytes: 1, Data: "x"}},
	{"set k 007 0 1\r\nx\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Flags: 7, Bytes: 1, Data: "x"}},
	{"set k 0 0 2\r\n\r\n\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Bytes: 2, Data: "\r\n"}},
	{"set k 0 0 1\nx\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Bytes: 1, Data: "x"}},
	{" set  k  1  2  3 \r\nabc\r\n", reqView{Command: memcache.Set, Keys: []string{"k"}, Flags: 1, Exptime: 2, Bytes: 3, Data: "abc"}},
	{"add k 1 2 1\r\nx\r\n", reqView{Command: memcache.Add, Keys: []string{"k"}, Flags: 1, Exptime: 2, Bytes: 1, Data: "x"}},
	{"replace k 1 2 1\r\nx\r\n", reqView{Command: memcache.Replace, Keys: []string{"k"}, Flags: 1, Exptime: 2, Bytes: 1, Data: "x"}},
	{"append k 0 0 1 noreply\r\nx\r\n", reqView{Command: memcache.Append, Keys: []string{"k"}, Bytes: 1, Data: "x", Noreply: true}},
	{"prepend k 0 0 1\r\nx\r\n", reqView{Command: memcache.Prepend, Keys: []string{"k"}, Bytes: 1, Data: "x"}},
	{"cas k 1 2 3 99\r\nabc\r\n", reqView{Command: memcache.Cas, Keys: []string{"k"}, Flags: 1, Exptime: 2, Bytes: 3, Cas: 99, Data: "abc"}},
	{"cas k 0 0 1 18446744073709551615 noreply\r\nx\r\n", reqView{Command: memcache.Cas, Keys: []string{"k"}, Bytes: 1, Cas: 18446744073709551615, Data: "x", Noreply: true}},
	{"incr k 5\r\n", reqView{Command: memcache.Incr, Keys: []string{"k"}, Delta: 5}},
	{"decr k 18446744073709551615 noreply\r\n", reqView{Command: memcache.Decr, Keys: []string{"k"}, Delta: 18446744073709551615, Noreply: true}},
	{"incr k 5 junk\r\n", reqView{Command: memcache.Incr, Keys: []string{"k"}, Delta: 5}},
	{"touch k 10\r\n", reqView{Command: memcache.Touch, Keys: []string{"k"}, Exptime: 10}},
	{"touch k -1 noreply\r\n", reqView{Command: memcache.Touch, Keys: []string{"k"}, Exptime: -1, Noreply: true}},
	{"delete k\r\n", reqView{Command: memcache.Delete, Keys: []string{"k"}}},
	{"delete k 0\r\n", reqView{Command: memcache.Delete, Keys: []string{"k"}}},
	{"delete k noreply\r\n", reqView{Command: memcache.Delete, Keys: []string{"k"}, Noreply: true}},
	{"delete k 0 noreply\r\n", reqView{Command: memcache.Delete, Keys: []string{"k"}, Noreply: true}},
	// Keys with control bytes other than CR, LF and NUL, as memcached
	// takes them.
	{"get a\x01b \x7f a\tb \x1b[0m\r\n", reqView{Command: memcache.Get, Keys: []string{"a\x01b", "\x7f", "a\tb", "\x1b[0m"}}},
	{"set \x01\x7f 0 0 1\r\nx\r\n", reqView{Command: memcache.Set, Keys: []string{"\x01\x7f"}, Bytes: 1, Data: "x"}},
	{"delete \t\r\n", reqView{Command: memcache.Delete, Keys: []string{"\t"}}},
	{"version\r\n", reqView{Command: memcache.Version}},
	{"version foo\r\n", reqView{Command: memcache.Version}},
	{"quit\r\n", reqView{Command: memcache.Quit}},
	{"verbosity 1\r\n", reqView{Command: memcache.Verbosity, Delta: 1}},
	{"verbosity 1 noreply\r\n", reqView{Command: memcache.Verbosity, Delta: 1, Noreply: true}},
	{"flush_all\r\n", reqView{Command: memcache.FlushAll}},
	{"flush_all 10\r\n", reqView{Command: memcache.FlushAll, Exptime: 10}},
	{"flush_all -1\r\n", reqView{Command: memcache.FlushAll, Exptime: -1}},
	{"flush_all noreply\r\n", reqView{Command: memcache.FlushAll, Noreply: true}},
	{"flush_all 0 noreply\r\n", reqView{Command: memcache.FlushAll, Noreply: true}},
	{"flush_all 5 junk\r\n", reqView{Command: memcache.FlushAll, Exptime: 5}},
	{"stats\r\n", reqView{Command: memcache.Stats}},
	{"stats detail on\r\n", reqView{Command: memcache.Stats}},
	{"mn\r\n", reqView{Command: memcache.MetaNoop}},
	{"mg k v f t\r\n", reqView{Command: memcache.MetaGet, Keys: []string{"k"}}},
	{"md k q\r\n", reqView{Command: memcache.MetaDelete, Keys: []string{"k"}, Quiet: true}},
	{"ma k D5\r\n", reqView{Command: memcache.MetaArithmetic, Keys: []string{"k"}}},
	{"me k\r\n", reqView{Command: memcache.MetaDebug, Keys: []string{"k"}}},
	{"ms k 2 T10 F5\r\nhi\r\n", reqView{Command: memcache.MetaSet, Keys: []string{"k"}, Bytes: 2, Data: "hi"}},
	// The q flag: any flag token starting with 'q', after the key (and
	// the datalen of ms); me and mn have no q flag.
	{"mg k v q\r\n", reqView{Command: memcache.MetaGet, Keys: []string{"k"}, Quiet: true}},
	{"mg k  q  \r\n", reqView{Command: memcache.MetaGet, Keys: []string{"k"}, Quiet: true}},
	{"mg k qx\r\n", reqView{Command: memcache.MetaGet, Keys: []string{"k"}, Quiet: true}},
	{"mg k Oq kq\r\n", reqView{Command: memcache.MetaGet, Keys: []string{"k"}}},
	{"mg q v\r\n", reqView{Command: memcache.MetaGet, Keys: []string{"q"}}},
	{"ma q D1 q\r\n", reqView{Command: memcache.MetaArithmetic, Keys: []string{"q"}, Quiet: true}},
	{"ms k 2 q\r\nhi\r\n", reqView{Command: memcache.MetaSet, Keys: []string{"k"}, Bytes: 2, Data: "hi", Quiet: true}},
	{"ms k 2 a b c d e f g h i j k l m n o q\r\nhi\r\n", reqView{Command: memcache.MetaSet, Keys: []string{"k"}, Bytes: 2, Data: "hi", Quiet: true}},
	{"ms q 2\r\nhi\r\n", reqView{Command: memcache.MetaSet, Keys: []string{"q"}, Bytes: 2, Data: "hi"}},
	{"me k q\r\n", reqView{Command: memcache.MetaDebug, Keys: []string{"k"}}},
	{"mn q\r\n", reqView{Command: memcache.MetaNoop}},
	{"ms k 2 a b c d e f g h i j k l m n o p\r\nhi\r\n", reqView{Command: memcache.MetaSet, Keys: []string{"k"}, Bytes: 2, Data: "hi"}},
}

func TestParseRequest(t *testing.T) {
	for _, tt := range validRequests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var req memcache.Request
			n, err := memcache.ParseRequest([]byte(tt.give), protocol.Limits{}, &req)
			require.NoError(t, err)
			assert.Equal(t, len(tt.give), n)
			assert.Equal(t, tt.want, view(&req))
			assert.Equal(t, tt.give, string(req.Raw))
			assert.Zero(t, req.Discard)

			// Followed by more input, the request is still n bytes long.
			n, err = memcache.ParseRequest([]byte(tt.give+"get x\r\n"), protocol.Limits{}, &req)
			require.NoError(t, err)
			assert.Equal(t, len(tt.give), n)
			assert.Equal(t, tt.want, view(&req))
		})
	}
}

// TestParseRequestPrefixes checks that every strict prefix of a valid
// request is incomplete: a request split at any byte boundary.
func TestParseRequestPrefixes(t *testing.T) {
	for _, tt := range validRequests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var req memcache.Request
			for i := 0; i < len(tt.give); i++ {
				n, err := memcache.ParseRequest([]byte(tt.give[:i]), protocol.Limits{}, &req)
				require.NoError(t, err, "prefix %q", tt.give[:i])
				require.Zero(t, n, "prefix %q", tt.give[:i])
			}
		})
	}
}

// badRequests are inputs that ParseRequest rejects. n is the length it
// consumes; reply the error's Reply. mc, when set, is what memcached
// 1.6.18 answers instead (followed by the VERSION of a sentinel command):
// the cases where this package deliberately differs. The others are
// checked against a real memcached in TestMemcachedMalformed.
var badRequests = []struct {
	give     string
	reply    string
	n        int // -1: len(give)
	tooLarge bool
	noreply  bool
	cmd      memcache.Command
	discard  int
	lim      protocol.Limits
	mc       string // memcached's differing answer, "" if the same
}{
	{give: "\r\n", reply: "ERROR", n: -1},
	{give: "\n", reply: "ERROR", n: -1},
	{give: "   \r\n", reply: "ERROR", n: -1},
	{give: "GET k\r\n", reply: "ERROR", n: -1},
	{give: "get\r\n", reply: "ERROR", n: -1, cmd: memcache.Get},
	{give: "gets   \r\n", reply: "ERROR", n: -1, cmd: memcache.Gets},
	{give: "get\tk\r\n", reply: "ERROR", n: -1},
	{give: "foo bar\r\n", reply: "ERROR", n: -1},
	{give: "mx\r\n", reply: "ERROR", n: -1},
	{give: "x\r\n", reply: "ERROR", n: -1},
	{give: "bget k\r\n", reply: "ERROR", n: -1, mc: "END\r\n"},
	{give: "GET / HTTP/1.1\r\n", reply: "ERROR", n: 0},
	{give: "get " + key251 + "\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Get},
	{give: "get a " + key251 + " b\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Get},
	{give: "get a\x00b\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Get, mc: "END\r\n"},
	{give: "get a\rb\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Get, mc: "END\r\n"},
	{give: "set a\rb 0 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: len("set a\rb 0 0 1\r\n"), cmd: memcache.Set, mc: "STORED\r\n"},
	{give: "set k 0 0\r\n", reply: "ERROR", n: -1, cmd: memcache.Set},
	{give: "set k 0 0 1 noreply x\r\n", reply: "ERROR", n: -1, cmd: memcache.Set},
	{give: "set a\t0 0 1\r\n", reply: "ERROR", n: -1, cmd: memcache.Set},
	{give: "set k 0 0 abc\r\nhello\r\n", reply: "CLIENT_ERROR bad command line format", n: len("set k 0 0 abc\r\n"), cmd: memcache.Set},
	{give: "set k 0 0 abc noreply\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set, noreply: true},
	{give: "set k 0 0 noreply\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set, noreply: true},
	{give: "set k 0 0 -1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k 0 0 999999999999\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k 0 0 2147483646\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k x 0 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k -1 0 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k 0 x 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k 0 1.5 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k 0 99999999999999999999 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set},
	{give: "set k 4294967296 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: len("set k 4294967296 0 1\r\n"), cmd: memcache.Set, mc: "STORED\r\n"},
	{give: "set k +5 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: len("set k +5 0 1\r\n"), cmd: memcache.Set, mc: "STORED\r\n"},
	{give: "set " + key251 + " 0 0 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: len("set " + key251 + " 0 0 1\r\n"), cmd: memcache.Set},
	{give: "set " + key251 + " 0 0 1 noreply\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Set, noreply: true},
	{give: "set k 0 0 1\r\nxyz\r\n", reply: "CLIENT_ERROR bad data chunk", n: len("set k 0 0 1\r\nxyz"), cmd: memcache.Set},
	{give: "set k 0 0 1\r\nx\r\r\n", reply: "CLIENT_ERROR bad data chunk", n: len("set k 0 0 1\r\nx\r\r"), cmd: memcache.Set},
	{give: "set k 0 0 1 noreply\r\nxyz", reply: "CLIENT_ERROR bad data chunk", n: -1, cmd: memcache.Set, noreply: true},
	{give: "cas k 0 0 1\r\n", reply: "ERROR", n: -1, cmd: memcache.Cas},
	{give: "cas k 0 0 1 abc\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Cas},
	{give: "cas k 0 0 1 -1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Cas},
	{give: "cas k 0 0 1 18446744073709551616\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Cas},
	{give: "incr\r\n", reply: "ERROR", n: -1, cmd: memcache.Incr},
	{give: "incr k\r\n", reply: "ERROR", n: -1, cmd: memcache.Incr},
	{give: "incr k 1 2 3\r\n", reply: "ERROR", n: -1, cmd: memcache.Incr},
	{give: "incr k abc\r\n", reply: "CLIENT_ERROR invalid numeric delta argument", n: -1, cmd: memcache.Incr},
	{give: "decr k -1\r\n", reply: "CLIENT_ERROR invalid numeric delta argument", n: -1, cmd: memcache.Decr},
	{give: "incr k 18446744073709551616\r\n", reply: "CLIENT_ERROR invalid numeric delta argument", n: -1, cmd: memcache.Incr},
	{give: "incr k abc noreply\r\n", reply: "CLIENT_ERROR invalid numeric delta argument", n: -1, cmd: memcache.Incr, noreply: true},
	{give: "incr " + key251 + " 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Incr},
	{give: "touch k\r\n", reply: "ERROR", n: -1, cmd: memcache.Touch},
	{give: "touch k abc\r\n", reply: "CLIENT_ERROR invalid exptime argument", n: -1, cmd: memcache.Touch},
	{give: "touch " + key251 + " 1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Touch},
	{give: "delete\r\n", reply: "ERROR", n: -1, cmd: memcache.Delete},
	{give: "delete k x y z\r\n", reply: "ERROR", n: -1, cmd: memcache.Delete},
	{give: "delete k 5\r\n", reply: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", n: -1, cmd: memcache.Delete},
	{give: "delete k 0 0\r\n", reply: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", n: -1, cmd: memcache.Delete},
	{give: "delete k 5 noreply\r\n", reply: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", n: -1, cmd: memcache.Delete, noreply: true},
	{give: "delete " + key251 + "\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Delete},
	{give: "delete " + key251 + " noreply\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Delete, noreply: true},
	{give: "verbosity\r\n", reply: "ERROR", n: -1, cmd: memcache.Verbosity},
	{give: "verbosity 1 2 3\r\n", reply: "ERROR", n: -1, cmd: memcache.Verbosity},
	{give: "verbosity x\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Verbosity},
	{give: "verbosity x noreply\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Verbosity, noreply: true},
	{give: "flush_all x\r\n", reply: "CLIENT_ERROR invalid exptime argument", n: -1, cmd: memcache.FlushAll},
	{give: "flush_all 1 2 3\r\n", reply: "ERROR", n: -1, cmd: memcache.FlushAll},
	{give: "gat\r\n", reply: "ERROR", n: -1, cmd: memcache.Gat},
	{give: "gat x k\r\n", reply: "CLIENT_ERROR invalid exptime argument", n: -1, cmd: memcache.Gat},
	{give: "gats 1 " + key251 + "\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.Gats},
	{give: "mg\r\n", reply: "ERROR", n: -1, cmd: memcache.MetaGet},
	{give: "mg " + key251 + " v\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaGet},
	{give: "md\r\n", reply: "ERROR", n: -1, cmd: memcache.MetaDelete},
	{give: "md " + key251 + "\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaDelete},
	{give: "ma\r\n", reply: "ERROR", n: -1, cmd: memcache.MetaArithmetic},
	{give: "ma " + key251 + "\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaArithmetic},
	{give: "me\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaDebug},
	{give: "me " + key251 + "\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaDebug},
	{give: "ms\r\n", reply: "ERROR", n: -1, cmd: memcache.MetaSet},
	{give: "ms k\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaSet},
	{give: "ms k x\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaSet},
	{give: "ms k -1\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaSet},
	{give: "ms " + key251 + " 1\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: len("ms " + key251 + " 1\r\n"), cmd: memcache.MetaSet},
	{give: "ms k 2 a b c d e f g h i j k l m n o p q\r\nhi\r\n", reply: "CLIENT_ERROR options flags too long", n: len("ms k 2 a b c d e f g h i j k l m n o p q\r\n"), cmd: memcache.MetaSet},
	{give: "ms k 1\r\nxyz\r\n", reply: "CLIENT_ERROR bad data chunk", n: len("ms k 1\r\nxyz"), cmd: memcache.MetaSet},
	// memcached sends the errors of quiet meta commands too.
	{give: "mg " + key251 + " v q\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaGet},
	{give: "md " + key251 + " q\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaDelete},
	{give: "ma " + key251 + " q\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaArithmetic},
	{give: "ms k x q\r\n", reply: "CLIENT_ERROR bad command line format", n: -1, cmd: memcache.MetaSet},
	{give: "ms " + key251 + " 1 q\r\nx\r\n", reply: "CLIENT_ERROR bad command line format", n: len("ms " + key251 + " 1 q\r\n"), cmd: memcache.MetaSet},
	{give: "ms k 1 q\r\nxyz\r\n", reply: "CLIENT_ERROR bad data chunk", n: len("ms k 1 q\r\nxyz"), cmd: memcache.MetaSet},
	// Limits.
	{give: "set k 0 0 2000000\r\n", reply: "SERVER_ERROR object too large for cache", n: -1, cmd: memcache.Set, tooLarge: true, discard: 2000002, lim: protocol.Limits{MaxBulk: 1 << 20}},
	{give: "set k 0 0 11 noreply\r\n", reply: "SERVER_ERROR object too large for cache", n: -1, cmd: memcache.Set, tooLarge: true, noreply: true, discard: 13, lim: protocol.Limits{MaxBulk: 10}},
	{give: "ms k 11 T0\r\n", reply: "SERVER_ERROR object too large for cache", n: -1, cmd: memcache.MetaSet, tooLarge: true, discard: 13, lim: protocol.Limits{MaxBulk: 10}},
	{give: "ms k 2000000 q\r\n", reply: "SERVER_ERROR object too large for cache", n: -1, cmd: memcache.MetaSet, tooLarge: true, discard: 2000002, lim: protocol.Limits{MaxBulk: 1 << 20}},
	{give: "get a b c d\r\n", reply: "CLIENT_ERROR too many keys", n: -1, cmd: memcache.Get, tooLarge: true, lim: protocol.Limits{MaxArgs: 3}},
	{give: "gat 0 a b c d\r\n", reply: "CLIENT_ERROR too many keys", n: -1, cmd: memcache.Gat, tooLarge: true, lim: protocol.Limits{MaxArgs: 3}},
	{give: "set aaaaaaaaaaaa", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 16}},
	{give: "delete aaaaaaaaa\r\n", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 17}},
	{give: "gets aaaaaaaaaaa", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 8, MaxRequest: 16}},
	{give: "get aaaaaaaaaaaa\r\n", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 8, MaxRequest: 17}},
	{give: "gat 0 aaaaaaaaaa\r\n", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 17, MaxRequest: 8}},
	// Past MaxLine only a retrieval command and a space, after at most
	// 100 spaces, make a line a get line.
	{give: "getaaaaaaaaaaaaaaaa", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 16}},
	{give: "get\taaaaaaaaaaaaaaa", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 16}},
	{give: strings.Repeat(" ", 101) + "get a", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 64}},
	{give: "mg aaaaaaaaaaaaaaaaaaaaa", reply: "CLIENT_ERROR line too long", n: 0, tooLarge: true, lim: protocol.Limits{MaxLine: 16}},
}

func TestParseRequestErrors(t *testing.T) {
	for _, tt := range badRequests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var req memcache.Request
			n, err := memcache.ParseRequest([]byte(tt.give), tt.lim, &req)
			var pe *protocol.Error
			require.True(t, errors.As(err, &pe), "error %v", err)
			assert.Equal(t, tt.reply, pe.Reply)
			assert.Equal(t, protocol.Memcache, pe.Kind)
			assert.ErrorIs(t, err, protocol.ErrProtocol)
			assert.Equal(t, tt.tooLarge, errors.Is(err, protocol.ErrTooLarge))
			wantN := tt.n
			if wantN < 0 {
				wantN = len(tt.give)
			}
			assert.Equal(t, wantN, n)
			assert.Equal(t, tt.give[:wantN], string(req.Raw))
			assert.Equal(t, tt.noreply, req.Noreply)
			assert.Equal(t, tt.cmd, req.Command)
			assert.Equal(t, tt.discard, req.Discard)
		})
	}
}

func TestParseRequestLimits(t *testing.T) {
	// A line of exactly MaxLine bytes, CRLF included, is accepted.
	var req memcache.Request
	line := "get " + strings.Repeat("a", 11) + "\r\n"
	n, err := memcache.ParseRequest([]byte(line), protocol.Limits{MaxLine: len(line)}, &req)
	require.NoError(t, err)
	assert.Equal(t, len(line), n)

	// So are MaxArgs keys and a MaxBulk data block.
	n, err = memcache.ParseRequest([]byte("get a b c\r\n"), protocol.Limits{MaxArgs: 3}, &req)
	require.NoError(t, err)
	assert.Equal(t, 11, n)
	n, err = memcache.ParseRequest([]byte("set k 0 0 10\r\n0123456789\r\n"), protocol.Limits{MaxBulk: 10}, &req)
	require.NoError(t, err)
	assert.Equal(t, 26, n)

	// Without a line end, a buffer shorter than MaxLine is incomplete.
	n, err = memcache.ParseRequest([]byte("set aaaaaaaaaaa"), protocol.Limits{MaxLine: 16}, &req)
	require.NoError(t, err)
	assert.Zero(t, n)

	// A get, gets, gat or gats line may be as long as MaxRequest (and at
	// least MaxLine), after up to 100 spaces.
	for _, give := range []string{"get ", "gets ", "gat 0 ", "gats -1 ", strings.Repeat(" ", 100) + "get "} {
		lim := protocol.Limits{MaxLine: 16, MaxRequest: 1 << 20}
		var keys []string
		var sb strings.Builder
		sb.WriteString(give)
		for i := 0; sb.Len() < 100<<10; i++ {
			k := "key:" + strconv.Itoa(i)
			keys = append(keys, k)
			sb.WriteString(k + " ")
		}
		line := sb.String() + "\r\n"
		for _, cut := range []int{1, 16, 17, len(give) - 1, len(give), 1000, len(line) - 1} {
			n, err = memcache.ParseRequest([]byte(line[:cut]), lim, &req)
			require.NoError(t, err, "%.20q cut at %d", give, cut)
			assert.Zero(t, n)
		}
		n, err = memcache.ParseRequest([]byte(line), lim, &req)
		require.NoError(t, err, "%.20q", give)
		assert.Equal(t, len(line), n)
		assert.Len(t, req.Keys, len(keys))
		assert.Equal(t, keys[len(keys)-1], string(req.Keys[len(keys)-1]))
		// MaxLine bounds them when it is the larger limit.
		n, err = memcache.ParseRequest([]byte(line), protocol.Limits{MaxLine: len(line), MaxRequest: 16}, &req)
		require.NoError(t, err)
		assert.Equal(t, len(line), n)
	}
	// By default, a get line may be 64 MiB long.
	assert.Equal(t, 64<<20, protocol.Limits{}.WithDefaults().MaxRequest)
}

// TestParseRequestNoAllocBeforeLimit checks that a request announcing a
// huge data block, or one over MaxBulk, allocates nothing but its error.
func TestParseRequestNoAllocBeforeLimit(t *testing.T) {
	tests := []struct {
		give string
		lim  protocol.Limits
	}{
		{"set k 0 0 999999999999\r\n", protocol.Limits{}},
		{"set k 0 0 2147483645\r\n", protocol.Limits{}},
		{"set k 0 0 1000000\r\n", protocol.Limits{MaxBulk: 1000}},
		{"get " + strings.Repeat("k ", 100) + "\r\n", protocol.Limits{MaxArgs: 10}},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			b := []byte(tt.give)
			req := memcache.Request{Keys: make([][]byte, 0, 16)}
			allocs := testing.AllocsPerRun(100, func() {
				_, err := memcache.ParseRequest(b, tt.lim, &req)
				require.Error(t, err)
			})
			assert.Equal(t, 1.0, allocs, "only the *protocol.Error is allocated")
			assert.Equal(t, 16, cap(req.Keys))
		})
	}
}

// TestParseRequestResync checks that parsing a stream of requests and
// errors with n > 0 stays in step with memcached's reading of it.
func TestParseRequestResync(t *testing.T) {
	in := "set k 0 0 abc\r\nhello\r\nget a\r\nset k 0 0 1\r\nxyz\r\nfoo\r\ndelete k\r\n"
	var got []string
	b := []byte(in)
	var req memcache.Request
	for len(b) > 0 {
		n, err := memcache.ParseRequest(b, protocol.Limits{}, &req)
		require.Positive(t, n)
		if err != nil {
			var pe *protocol.Error
			require.True(t, errors.As(err, &pe))
			got = append(got, pe.Reply)
		} else {
			got = append(got, req.Command.String())
		}
		b = b[n:]
	}
	assert.Equal(t, []string{
		"CLIENT_ERROR bad command line format",
		"ERROR", // "hello", as memcached reads it
		"get",
		"CLIENT_ERROR bad data chunk",
		"ERROR", // the "\r\n" after "xyz"
		"ERROR", // foo
		"delete",
	}, got)
}

func TestParseRequestReusesKeys(t *testing.T) {
	req := memcache.Request{Keys: make([][]byte, 0, 4)}
	_, err := memcache.ParseRequest([]byte("get a b c\r\n"), protocol.Limits{}, &req)
	require.NoError(t, err)
	keys := req.Keys
	_, err = memcache.ParseRequest([]byte("get x y\r\n"), protocol.Limits{}, &req)
	require.NoError(t, err)
	assert.Equal(t, &keys[0], &req.Keys[0], "Keys' backing array is reused")
	assert.Equal(t, []string{"x", "y"}, view(&req).Keys)
}

// TestParseRequestAliasesAreClipped checks that appending to a returned
// slice cannot overwrite the input.
func TestParseRequestAliasesAreClipped(t *testing.T) {
	b := []byte("set k 0 0 1\r\nx\r\nget y\r\n")
	var req memcache.Request
	_, err := memcache.ParseRequest(b, protocol.Limits{}, &req)
	require.NoError(t, err)
	_ = append(req.Keys[0], 'Z')
	_ = append(req.Data, 'Z')
	_ = append(req.Raw, 'Z')
	assert.Equal(t, "set k 0 0 1\r\nx\r\nget y\r\n", string(b))
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"", false},
		{"k", true},
		{key250, true},
		{key251, false},
		{"a b", false},
		{"a\rb", false},
		{"a\nb", false},
		{"a\x00", false},
		{"\x00", false},
		{"\r", false},
		// memcached stores keys with other control bytes; twemproxy
		// forwards them.
		{"a\tb", true},
		{"a\x7f", true},
		{"\x01", true},
		{"a\x1fb\x0b\x0c", true},
		{"\x80\xff", true},
		{"\xc3\xa9", true},
		{"~{}:", true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			assert.Equal(t, tt.want, memcache.ValidKey([]byte(tt.give)))
		})
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		give                       memcache.Command
		want                       string
		retrieval, storage, isMeta bool
	}{
		{memcache.Unknown, "unknown", false, false, false},
		{memcache.Get, "get", true, false, false},
		{memcache.Gats, "gats", true, false, false},
		{memcache.Set, "set", false, true, false},
		{memcache.Cas, "cas", false, true, false},
		{memcache.Incr, "incr", false, false, false},
		{memcache.FlushAll, "flush_all", false, false, false},
		{memcache.MetaGet, "mg", false, false, true},
		{memcache.MetaDebug, "me", false, false, true},
		{memcache.Command(200), "Command(200)", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.give.String())
			assert.Equal(t, tt.retrieval, tt.give.IsRetrieval())
			assert.Equal(t, tt.storage, tt.give.IsStorage())
			assert.Equal(t, tt.isMeta, tt.give.IsMeta())
		})
	}
}
