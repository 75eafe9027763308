package memcache_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// memcachedItemMax is memcached's default item size limit (-I 1m).
const memcachedItemMax = 1 << 20

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c
}

// exchange sends in to memcached on a new connection, followed by
// "version", and returns everything memcached answers until its VERSION
// line (excluded), or until it closes the connection.
func exchange(t *testing.T, addr string, in []byte) (out string, closed bool) {
	t.Helper()
	c := dial(t, addr)
	_, err := c.Write(append(append([]byte{}, in...), "version\r\n"...))
	require.NoError(t, err)
	var buf []byte
	p := make([]byte, 4096)
	for {
		n, err := c.Read(p)
		buf = append(buf, p[:n]...)
		if i := bytes.Index(buf, []byte("VERSION ")); i >= 0 && bytes.HasSuffix(buf, []byte("\r\n")) {
			return string(buf[:i]), false
		}
		if errors.Is(err, io.EOF) {
			return string(buf), true
		}
		require.NoError(t, err, "memcached answered %q so far", buf)
	}
}

// predict runs ParseRequest over in as memcached reads it and returns the
// replies memcached should send: each error's Reply unless noreply, and
// whether the connection must be closed. in must hold only bad requests.
func predict(t *testing.T, in []byte, lim protocol.Limits) (out string, closed bool) {
	t.Helper()
	var req memcache.Request
	for len(in) > 0 {
		n, err := memcache.ParseRequest(in, lim, &req)
		var pe *protocol.Error
		require.True(t, errors.As(err, &pe), "input %q parsed without error", in)
		if n == 0 {
			return out, true
		}
		if !req.Noreply {
			out += pe.Reply + "\r\n"
		}
		in = in[n+req.Discard:]
	}
	return out, false
}

// TestMemcachedMalformed sends every bad request of badRequests to a real
// memcached 1.6 and checks that it answers with the Reply ParseRequest
// gives (or stays silent when req.Noreply), and resynchronises the same
// way; or, for the deliberate deviations, that memcached answers what the
// table says it does.
func TestMemcachedMalformed(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	for _, tt := range badRequests {
		realLimit := tt.lim == protocol.Limits{} || tt.lim == protocol.Limits{MaxBulk: memcachedItemMax}
		if !realLimit {
			continue // a walnut limit memcached does not have
		}
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			in := []byte(tt.give)
			if tt.discard > 0 {
				in = append(in, bytes.Repeat([]byte("a"), tt.discard-2)...)
				in = append(in, "\r\n"...)
			}
			got, closed := exchange(t, srv.Addr, in)
			if tt.mc != "" {
				assert.Equal(t, tt.mc, got)
				assert.False(t, closed)
				return
			}
			want, wantClosed := predict(t, in, tt.lim)
			assert.Equal(t, want, got)
			assert.Equal(t, wantClosed, closed)
		})
	}
}

// client sends requests built with the encoders and reads each response
// with a Reader, checking along the way that ParseRequest reads back each
// request and that every strict prefix of each response is incomplete.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *memcache.Reader
}

func newClient(t *testing.T, addr string) *client {
	c := dial(t, addr)
	return &client{t: t, conn: c, r: memcache.NewReader(c, protocol.Limits{MaxBulk: 4 << 20})}
}

// do sends req, a request of command cmd, and returns memcached's framed
// response.
func (c *client) do(cmd memcache.Command, req []byte) string {
	c.t.Helper()
	var parsed memcache.Request
	n, err := memcache.ParseRequest(req, protocol.Limits{}, &parsed)
	require.NoError(c.t, err, "request %.80q", req)
	require.Equal(c.t, len(req), n)
	require.Equal(c.t, cmd, parsed.Command)
	return c.doBad(cmd, req)
}

// doBad is do for a request that ParseRequest may reject.
func (c *client) doBad(cmd memcache.Command, req []byte) string {
	t := c.t
	t.Helper()
	_, err := c.conn.Write(req)
	require.NoError(t, err)
	resp, err := c.r.ReadResponse(cmd)
	require.NoError(t, err, "response to %.80q", req)
	for i := 0; i < len(resp); i += 1 + len(resp)/500 {
		n, err := memcache.FrameResponse(resp[:i], cmd, protocol.Limits{MaxBulk: 4 << 20})
		require.NoError(t, err)
		require.Zero(t, n, "prefix of %d bytes of %.80q", i, resp)
	}
	n, err := memcache.FrameResponse(resp, cmd, protocol.Limits{MaxBulk: 4 << 20})
	require.NoError(t, err)
	require.Equal(t, len(resp), n)
	return string(resp)
}

// values takes a framed retrieval response apart with ParseValue.
func values(t *testing.T, resp string) []memcache.Value {
	t.Helper()
	b := []byte(resp)
	var vs []memcache.Value
	for memcache.ClassifyResponse(b) == memcache.RespValue {
		var v memcache.Value
		n, err := memcache.ParseValue(b, protocol.Limits{MaxBulk: 4 << 20}, &v)
		require.NoError(t, err)
		require.Positive(t, n)
		vs = append(vs, v)
		b = b[n:]
	}
	require.Equal(t, "END\r\n", string(b))
	return vs
}

// TestMemcachedResponses drives a real memcached through every response
// type with requests built by the encoders, framing each response with
// Reader.ReadResponse (FrameResponse) and taking VALUE blocks apart with
// ParseValue.
func TestMemcachedResponses(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	c := newClient(t, srv.Addr)
	k, k2, n, missing := []byte("k"), []byte("k2\xc3\xa9"), []byte("n"), []byte("missing")

	assert.Equal(t, "OK\r\n", c.do(memcache.FlushAll, memcache.AppendRequest(nil, &memcache.Request{Command: memcache.FlushAll})))
	assert.Equal(t, memcache.RespVersion, memcache.ClassifyResponse([]byte(c.do(memcache.Version, memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Version})))))

	// Storage and retrieval.
	assert.Equal(t, "STORED\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, k, 42, 0, 0, []byte("hello"), false)))
	assert.Equal(t, "VALUE k 42 5\r\nhello\r\nEND\r\n", c.do(memcache.Get, memcache.AppendGet(nil, memcache.Get, k)))
	vs := values(t, c.do(memcache.Gets, memcache.AppendGet(nil, memcache.Gets, k)))
	require.Len(t, vs, 1)
	assert.True(t, vs[0].HasCas)
	assert.Equal(t, "k", string(vs[0].Key))
	assert.Equal(t, uint32(42), vs[0].Flags)
	assert.Equal(t, "hello", string(vs[0].Data))
	casUnique := vs[0].Cas
	assert.Equal(t, "EXISTS\r\n", c.do(memcache.Cas, memcache.AppendStorage(nil, memcache.Cas, k, 1, 0, casUnique+1000, []byte("x"), false)))
	assert.Equal(t, "STORED\r\n", c.do(memcache.Cas, memcache.AppendStorage(nil, memcache.Cas, k, 1, 0, casUnique, []byte("hi"), false)))
	assert.Equal(t, "NOT_FOUND\r\n", c.do(memcache.Cas, memcache.AppendStorage(nil, memcache.Cas, missing, 1, 0, 1, []byte("x"), false)))
	assert.Equal(t, "NOT_STORED\r\n", c.do(memcache.Add, memcache.AppendStorage(nil, memcache.Add, k, 0, 0, 0, []byte("x"), false)))
	assert.Equal(t, "NOT_STORED\r\n", c.do(memcache.Replace, memcache.AppendStorage(nil, memcache.Replace, missing, 0, 0, 0, []byte("x"), false)))
	assert.Equal(t, "STORED\r\n", c.do(memcache.Append, memcache.AppendStorage(nil, memcache.Append, k, 0, 0, 0, []byte("!"), false)))
	assert.Equal(t, "STORED\r\n", c.do(memcache.Prepend, memcache.AppendStorage(nil, memcache.Prepend, k, 0, 0, 0, []byte(">"), false)))
	assert.Equal(t, "STORED\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, k2, 7, -1, 0, []byte("gone"), false)))
	assert.Equal(t, "END\r\n", c.do(memcache.Get, memcache.AppendGet(nil, memcache.Get, k2)), "negative exptime expires at once")
	assert.Equal(t, "STORED\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, k2, 7, 0, 0, []byte("a\r\nb"), false)))

	// A multi-key get: values in key order, missing keys absent.
	vs = values(t, c.do(memcache.Get, memcache.AppendGet(nil, memcache.Get, k, missing, k2, k)))
	require.Len(t, vs, 3)
	assert.Equal(t, []string{"k", "k2\xc3\xa9", "k"}, []string{string(vs[0].Key), string(vs[1].Key), string(vs[2].Key)})
	assert.Equal(t, ">hi!", string(vs[0].Data))
	assert.Equal(t, "a\r\nb", string(vs[1].Data))
	assert.Equal(t, uint32(7), vs[1].Flags)
	assert.False(t, vs[0].HasCas)

	// Arithmetic.
	assert.Equal(t, "STORED\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, n, 0, 0, 0, []byte("5"), false)))
	assert.Equal(t, "8\r\n", c.do(memcache.Incr, memcache.AppendIncr(nil, n, 3, false)))
	assert.Equal(t, "0\r\n", c.do(memcache.Decr, memcache.AppendDecr(nil, n, 100, false)))
	assert.Equal(t, "NOT_FOUND\r\n", c.do(memcache.Incr, memcache.AppendIncr(nil, missing, 1, false)))
	assert.Equal(t, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", c.do(memcache.Incr, memcache.AppendIncr(nil, k, 1, false)))

	// Touch, gat, gats.
	assert.Equal(t, "TOUCHED\r\n", c.do(memcache.Touch, memcache.AppendTouch(nil, k, 100, false)))
	assert.Equal(t, "NOT_FOUND\r\n", c.do(memcache.Touch, memcache.AppendTouch(nil, missing, 100, false)))
	vs = values(t, c.do(memcache.Gat, memcache.AppendGat(nil, memcache.Gat, 100, k)))
	require.Len(t, vs, 1)
	assert.False(t, vs[0].HasCas)
	vs = values(t, c.do(memcache.Gats, memcache.AppendGat(nil, memcache.Gats, 100, k, k2)))
	require.Len(t, vs, 2)
	assert.True(t, vs[1].HasCas)
	assert.Equal(t, "END\r\n", c.do(memcache.Gat, memcache.AppendGat(nil, memcache.Gat, 100)))

	// Delete.
	assert.Equal(t, "DELETED\r\n", c.do(memcache.Delete, memcache.AppendDelete(nil, k, false)))
	assert.Equal(t, "NOT_FOUND\r\n", c.do(memcache.Delete, memcache.AppendDelete(nil, k, false)))

	// Error replies are complete responses to any command.
	assert.Equal(t, "CLIENT_ERROR invalid numeric delta argument\r\n", c.doBad(memcache.Incr, []byte("incr n abc\r\n")))
	assert.Equal(t, "CLIENT_ERROR bad command line format\r\n", c.doBad(memcache.Get, []byte("get a "+key251+"\r\n")))
	big := bytes.Repeat([]byte("v"), 2_000_000)
	assert.Equal(t, "SERVER_ERROR object too large for cache\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, k, 0, 0, 0, big, false)))
	assert.Equal(t, "CLIENT_ERROR usage: stats detail on|off|dump\r\n", c.do(memcache.Stats, []byte("stats detail\r\n")))

	// A value close to memcached's 1 MB item limit.
	large := bytes.Repeat([]byte("0123456789abcdef"), 65500)
	assert.Equal(t, "STORED\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, k, 3, 0, 0, large, false)))
	vs = values(t, c.do(memcache.Get, memcache.AppendGet(nil, memcache.Get, k)))
	require.Len(t, vs, 1)
	assert.Equal(t, len(large), vs[0].Bytes)
	assert.True(t, bytes.Equal(large, vs[0].Data))

	// noreply: no response; the next one belongs to the next request.
	_, err := c.conn.Write(memcache.AppendStorage(nil, memcache.Set, k, 0, 0, 0, []byte("quiet"), true))
	require.NoError(t, err)
	assert.Equal(t, "VALUE k 0 5\r\nquiet\r\nEND\r\n", c.do(memcache.Get, memcache.AppendGet(nil, memcache.Get, k)))

	// Administrative commands.
	assert.Equal(t, "OK\r\n", c.do(memcache.Verbosity, memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Verbosity, Delta: 0})))
	stats := c.do(memcache.Stats, []byte("stats\r\n"))
	assert.True(t, strings.HasPrefix(stats, "STAT pid "), stats)
	assert.True(t, strings.HasSuffix(stats, "\r\nEND\r\n"), stats)
	assert.Equal(t, memcache.RespStat, memcache.ClassifyResponse([]byte(stats)))
	assert.Equal(t, "RESET\r\n", c.do(memcache.Stats, []byte("stats reset\r\n")))
	assert.Equal(t, "ERROR\r\n", c.doBad(memcache.Unknown, []byte("bogus\r\n")))

	// Meta commands, framed.
	assert.Equal(t, "MN\r\n", c.do(memcache.MetaNoop, []byte("mn\r\n")))
	assert.Equal(t, "HD\r\n", c.do(memcache.MetaSet, []byte("ms mk 2 T0\r\nhi\r\n")))
	assert.Equal(t, "VA 2 f0\r\nhi\r\n", c.do(memcache.MetaGet, []byte("mg mk v f\r\n")))
	assert.Equal(t, "HD\r\n", c.do(memcache.MetaGet, []byte("mg mk\r\n")))
	assert.Equal(t, memcache.RespMeta, memcache.ClassifyResponse([]byte(c.do(memcache.MetaDebug, []byte("me mk\r\n")))))
	assert.Equal(t, "HD\r\n", c.do(memcache.MetaDelete, []byte("md mk\r\n")))
	assert.Equal(t, "EN\r\n", c.do(memcache.MetaGet, []byte("mg mk v\r\n")))
	assert.Equal(t, "NF\r\n", c.do(memcache.MetaArithmetic, []byte("ma mk\r\n")))
	assert.Equal(t, "EN\r\n", c.do(memcache.MetaDebug, []byte("me mk\r\n")))

	// quit: no response, then end of stream.
	_, err = c.conn.Write(memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Quit}))
	require.NoError(t, err)
	_, err = c.r.ReadResponse(memcache.Quit)
	assert.ErrorIs(t, err, io.EOF)
}

// TestMemcachedPipeline writes a batch of requests in one go with a
// Writer and frames the concatenated responses one by one.
func TestMemcachedPipeline(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	conn := dial(t, srv.Addr)
	w := memcache.NewWriter(conn)
	reqs := []memcache.Request{
		{Command: memcache.Set, Keys: [][]byte{[]byte("p1")}, Flags: 9, Data: []byte("one")},
		{Command: memcache.Set, Keys: [][]byte{[]byte("p2")}, Data: []byte("two"), Noreply: true},
		{Command: memcache.Gets, Keys: [][]byte{[]byte("p1"), []byte("p2"), []byte("p3")}},
		{Command: memcache.Incr, Keys: [][]byte{[]byte("p1")}, Delta: 1},
		{Command: memcache.Delete, Keys: [][]byte{[]byte("p2")}},
		{Command: memcache.Touch, Keys: [][]byte{[]byte("p2")}},
		{Command: memcache.Version},
	}
	for i := range reqs {
		w.WriteRequest(&reqs[i])
	}
	require.NoError(t, w.Flush())

	r := memcache.NewReader(conn, protocol.Limits{})
	var got []memcache.Response
	for _, req := range reqs {
		if req.Noreply {
			continue
		}
		resp, err := r.ReadResponse(req.Command)
		require.NoError(t, err)
		got = append(got, memcache.ClassifyResponse(resp))
		if req.Command == memcache.Gets {
			vs := values(t, string(resp))
			require.Len(t, vs, 2)
			assert.Equal(t, "one", string(vs[0].Data))
			assert.Equal(t, "two", string(vs[1].Data))
		}
	}
	assert.Equal(t, []memcache.Response{
		memcache.RespStored, memcache.RespValue, memcache.RespClientError,
		memcache.RespDeleted, memcache.RespNotFound, memcache.RespVersion,
	}, got)
	assert.Zero(t, r.Buffered())
}

// metaReplies lists, for each meta command, the status codes FrameResponse
// accepts as its reply (errors aside), from memcached 1.6.18's
// proto_text.c.
var metaReplies = map[memcache.Command][]string{
	memcache.MetaGet:        {"VA", "HD", "EN"},
	memcache.MetaSet:        {"HD", "NS", "EX", "NF"},
	memcache.MetaDelete:     {"HD", "NF", "EX"},
	memcache.MetaArithmetic: {"VA", "HD", "NF", "NS", "EX"},
	memcache.MetaDebug:      {"ME", "EN"},
	memcache.MetaNoop:       {"MN"},
}

// TestMemcachedMetaReplies drives a real memcached through the outcomes
// of every meta command, checks that each reply frames as the reply to
// its own command, and that it is rejected as the reply to any meta
// command that memcached never answers with its status code. (ma's NS,
// an autovivify that could not store, cannot be provoked.)
func TestMemcachedMetaReplies(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	c := newClient(t, srv.Addr)
	assert.Equal(t, "OK\r\n", c.do(memcache.FlushAll, []byte("flush_all\r\n")))
	steps := []struct {
		cmd  memcache.Command
		req  string
		want string // the reply, or its status code and a space
	}{
		{memcache.MetaNoop, "mn\r\n", "MN\r\n"},
		{memcache.MetaGet, "mg mr v\r\n", "EN\r\n"},
		{memcache.MetaSet, "ms mr 2\r\nhi\r\n", "HD\r\n"},
		{memcache.MetaSet, "ms mr 1 ME\r\nx\r\n", "NS\r\n"},
		{memcache.MetaSet, "ms mr 1 C999999999\r\nx\r\n", "EX\r\n"},
		{memcache.MetaSet, "ms nf 1 C1\r\nx\r\n", "NF\r\n"},
		{memcache.MetaGet, "mg mr v\r\n", "VA 2\r\nhi\r\n"},
		{memcache.MetaGet, "mg mr\r\n", "HD\r\n"},
		{memcache.MetaDebug, "me mr\r\n", "ME "},
		{memcache.MetaDebug, "me nf\r\n", "EN\r\n"},
		{memcache.MetaSet, "ms mn 1\r\n5\r\n", "HD\r\n"},
		{memcache.MetaArithmetic, "ma mn\r\n", "HD\r\n"},
		{memcache.MetaArithmetic, "ma mn v\r\n", "VA 1\r\n7\r\n"},
		{memcache.MetaArithmetic, "ma mn C999999999\r\n", "EX\r\n"},
		{memcache.MetaArithmetic, "ma nf\r\n", "NF\r\n"},
		{memcache.MetaDelete, "md mn C999999999\r\n", "EX\r\n"},
		{memcache.MetaDelete, "md mn\r\n", "HD\r\n"},
		{memcache.MetaDelete, "md mn\r\n", "NF\r\n"},
	}
	for _, s := range steps {
		resp := c.do(s.cmd, []byte(s.req))
		if strings.HasSuffix(s.want, " ") {
			assert.True(t, strings.HasPrefix(resp, s.want), "%q: %q", s.req, resp)
		} else {
			assert.Equal(t, s.want, resp, "%q", s.req)
		}
		code := resp[:2]
		for other, codes := range metaReplies {
			n, err := memcache.FrameResponse([]byte(resp), other, protocol.Limits{})
			if slices.Contains(codes, code) {
				assert.NoError(t, err, "%q as the reply to %v", resp, other)
				assert.Equal(t, len(resp), n)
			} else {
				assert.ErrorIs(t, err, protocol.ErrProtocol, "%q as the reply to %v", resp, other)
				assert.Zero(t, n)
			}
		}
	}
}

// TestMemcachedMetaQuiet checks Request.Quiet and what a real memcached
// 1.6.18 suppresses in quiet mode, per command and outcome: each request
// is followed by mn, and the reply before MN, if any, must be want. A
// suppressed reply is why a FIFO matcher cannot forward quiet requests:
// the MN that arrives instead does not frame as their reply.
func TestMemcachedMetaQuiet(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	c := newClient(t, srv.Addr)
	assert.Equal(t, "OK\r\n", c.do(memcache.FlushAll, []byte("flush_all\r\n")))
	steps := []struct {
		cmd   memcache.Command
		req   string
		quiet bool
		want  string // "": no reply; ends with a space: a prefix
	}{
		// mg: a miss (EN) is suppressed, a hit is not.
		{memcache.MetaGet, "mg k v q\r\n", true, ""},
		{memcache.MetaGet, "mg k qx\r\n", true, ""}, // memcached reads a flag by its first byte
		{memcache.MetaGet, "mg k v q q\r\n", true, "CLIENT_ERROR duplicate flag\r\n"},
		{memcache.MetaGet, "mg k q zz\r\n", true, "CLIENT_ERROR invalid flag\r\n"},
		// ms: HD is suppressed; NS, EX and NF are not.
		{memcache.MetaSet, "ms k 2 q\r\nhi\r\n", true, ""},
		{memcache.MetaGet, "mg k v q\r\n", true, "VA 2\r\nhi\r\n"},
		{memcache.MetaGet, "mg k q\r\n", true, "HD\r\n"},
		{memcache.MetaSet, "ms k 1 q ME\r\nx\r\n", true, "NS\r\n"},
		{memcache.MetaSet, "ms k 1 q C999999999\r\nx\r\n", true, "EX\r\n"},
		{memcache.MetaSet, "ms nf 1 q C1\r\nx\r\n", true, "NF\r\n"},
		{memcache.MetaSet, "ms nf 1 q MR\r\nx\r\n", true, "NS\r\n"},
		// ma: the update of an existing item is suppressed; NF, EX and
		// the reply for an item created by N are not.
		{memcache.MetaSet, "ms n 1 q\r\n5\r\n", true, ""},
		{memcache.MetaArithmetic, "ma n q\r\n", true, ""},
		{memcache.MetaArithmetic, "ma n q v\r\n", true, ""},
		{memcache.MetaGet, "mg n v\r\n", false, "VA 1\r\n7\r\n"},
		{memcache.MetaArithmetic, "ma n q C999999999\r\n", true, "EX\r\n"},
		{memcache.MetaArithmetic, "ma nf q\r\n", true, "NF\r\n"},
		{memcache.MetaArithmetic, "ma viv q N0\r\n", true, "HD\r\n"},
		{memcache.MetaArithmetic, "ma viv2 q N0 v\r\n", true, "VA 1\r\n0\r\n"},
		{memcache.MetaArithmetic, "ma k q\r\n", true, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		// md: HD (deleted or marked stale) is suppressed; NF and EX are not.
		{memcache.MetaDelete, "md n q C999999999\r\n", true, "EX\r\n"},
		{memcache.MetaDelete, "md n q I\r\n", true, ""},
		{memcache.MetaDelete, "md n q\r\n", true, ""},
		{memcache.MetaDelete, "md n q\r\n", true, "NF\r\n"},
		{memcache.MetaDelete, "md k q zz\r\n", true, "CLIENT_ERROR invalid or duplicate flag\r\n"},
		// me and mn have no q flag.
		{memcache.MetaDebug, "me k q\r\n", false, "ME k "},
		{memcache.MetaDebug, "me nf q\r\n", false, "EN\r\n"},
		{memcache.MetaNoop, "mn q\r\n", false, "MN\r\n"},
	}
	mn := []byte("mn\r\n")
	for _, s := range steps {
		var req memcache.Request
		n, err := memcache.ParseRequest([]byte(s.req), protocol.Limits{}, &req)
		require.NoError(t, err, "%q", s.req)
		require.Equal(t, len(s.req), n)
		require.Equal(t, s.cmd, req.Command)
		assert.Equal(t, s.quiet, req.Quiet, "Quiet of %q", s.req)
		assert.False(t, req.Noreply)

		_, err = c.conn.Write(append([]byte(s.req), mn...))
		require.NoError(t, err)
		if s.want == "" {
			_, err := memcache.FrameResponse(mn, s.cmd, protocol.Limits{})
			assert.ErrorIs(t, err, protocol.ErrProtocol, "MN frames as the reply to %q", s.req)
		} else {
			resp, err := c.r.ReadResponse(s.cmd)
			require.NoError(t, err, "%q", s.req)
			if strings.HasSuffix(s.want, " ") {
				assert.True(t, strings.HasPrefix(string(resp), s.want), "%q: %q", s.req, resp)
			} else {
				assert.Equal(t, s.want, string(resp), "%q", s.req)
			}
		}
		resp, err := c.r.ReadResponse(memcache.MetaNoop)
		require.NoError(t, err, "%q", s.req)
		require.Equal(t, "MN\r\n", string(resp), "after %q", s.req)
	}
}

// TestMemcachedKeysAndLongGets checks, against a real memcached, that
// every key ValidKey accepts (control bytes other than CR, LF and NUL
// included) is stored and found under the same bytes, and that a get of
// thousands of keys, a line far beyond MaxLine, is read by ParseRequest
// and answered by memcached.
func TestMemcachedKeysAndLongGets(t *testing.T) {
	srv := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	c := newClient(t, srv.Addr)
	var keys [][]byte
	for b := 1; b < 256; b++ {
		if b == ' ' || b == '\r' || b == '\n' {
			continue
		}
		keys = append(keys, []byte{'k', byte(b), 'k'}, []byte{byte(b)})
	}
	keys = append(keys, bytes.Repeat([]byte{0x7f}, memcache.MaxKeyLen))
	for i, k := range keys {
		require.True(t, memcache.ValidKey(k), "%q", k)
		assert.Equal(t, "STORED\r\n", c.do(memcache.Set, memcache.AppendStorage(nil, memcache.Set, k, uint32(i), 0, 0, k, false)), "%q", k)
	}
	// One get of every key and 5,000 missing ones: a line of about 80 KiB.
	all := slices.Clone(keys)
	for i := range 5000 {
		all = append(all, []byte("missing:"+strconv.Itoa(i)+"\x01"))
	}
	for _, cmd := range []memcache.Command{memcache.Get, memcache.Gets} {
		line := memcache.AppendGet(nil, cmd, all...)
		require.Greater(t, len(line), protocol.DefaultMaxLine)
		vs := values(t, c.do(cmd, line))
		require.Len(t, vs, len(keys))
		for i, v := range vs {
			assert.Equal(t, string(keys[i]), string(v.Key))
			assert.Equal(t, string(keys[i]), string(v.Data))
			assert.Equal(t, uint32(i), v.Flags)
		}
	}
}
