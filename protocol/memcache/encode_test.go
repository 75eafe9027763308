package memcache_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

func TestAppend(t *testing.T) {
	k := []byte("k")
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{"get", memcache.AppendGet(nil, memcache.Get, k), "get k\r\n"},
		{"gets", memcache.AppendGet([]byte("x"), memcache.Gets, []byte("a"), []byte("b")), "xgets a b\r\n"},
		{"gat", memcache.AppendGat(nil, memcache.Gat, -1, k), "gat -1 k\r\n"},
		{"gats", memcache.AppendGat(nil, memcache.Gats, 10, k, k), "gats 10 k k\r\n"},
		{"set", memcache.AppendStorage(nil, memcache.Set, k, 5, 10, 99, []byte("abc"), false), "set k 5 10 3\r\nabc\r\n"},
		{"set noreply", memcache.AppendStorage(nil, memcache.Set, k, math.MaxUint32, -1, 0, nil, true), "set k 4294967295 -1 0 noreply\r\n\r\n"},
		{"add", memcache.AppendStorage(nil, memcache.Add, k, 0, 0, 0, []byte("x"), false), "add k 0 0 1\r\nx\r\n"},
		{"cas", memcache.AppendStorage(nil, memcache.Cas, k, 1, 2, 99, []byte("x"), true), "cas k 1 2 1 99 noreply\r\nx\r\n"},
		{"incr", memcache.AppendIncr(nil, k, math.MaxUint64, false), "incr k 18446744073709551615\r\n"},
		{"decr", memcache.AppendDecr(nil, k, 1, true), "decr k 1 noreply\r\n"},
		{"delete", memcache.AppendDelete(nil, k, false), "delete k\r\n"},
		{"delete noreply", memcache.AppendDelete(nil, k, true), "delete k noreply\r\n"},
		{"touch", memcache.AppendTouch(nil, k, 100, true), "touch k 100 noreply\r\n"},
		{"value", memcache.AppendValue(nil, k, 7, []byte("ab")), "VALUE k 7 2\r\nab\r\n"},
		{"value cas", memcache.AppendValueCas(nil, k, 0, nil, 12), "VALUE k 0 0 12\r\n\r\n"},
		{"end", memcache.AppendEnd(nil), "END\r\n"},
		{"stored", memcache.AppendResponse(nil, memcache.RespStored), "STORED\r\n"},
		{"not found", memcache.AppendResponse(nil, memcache.RespNotFound), "NOT_FOUND\r\n"},
		{"value response", memcache.AppendResponse([]byte("x"), memcache.RespValue), "x"},
		{"number", memcache.AppendNumber(nil, 42), "42\r\n"},
		{"version", memcache.AppendVersion(nil, "1.6.18\r\nEND"), "VERSION 1.6.18  END\r\n"},
		{"error", memcache.AppendError(nil), "ERROR\r\n"},
		{"client error", memcache.AppendClientError(nil, "bad data chunk"), "CLIENT_ERROR bad data chunk\r\n"},
		{"server error", memcache.AppendServerError(nil, "out\r\nof memory"), "SERVER_ERROR out  of memory\r\n"},
		{"request verbosity", memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Verbosity, Delta: 1, Noreply: true}), "verbosity 1 noreply\r\n"},
		{"request flush_all", memcache.AppendRequest(nil, &memcache.Request{Command: memcache.FlushAll, Exptime: 5}), "flush_all 5\r\n"},
		{"request version", memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Version}), "version\r\n"},
		{"request stats", memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Stats, Raw: []byte("stats slabs\r\n")}), "stats slabs\r\n"},
		{"request no key", memcache.AppendRequest(nil, &memcache.Request{Command: memcache.Delete}), "delete \r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(tt.give))
		})
	}
}

// TestAppendRequestRoundTrip checks that every valid request, encoded
// with AppendRequest, parses back to the same request.
func TestAppendRequestRoundTrip(t *testing.T) {
	for _, tt := range validRequests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			var req, again memcache.Request
			_, err := memcache.ParseRequest([]byte(tt.give), protocol.Limits{}, &req)
			require.NoError(t, err)
			enc := memcache.AppendRequest(nil, &req)
			n, err := memcache.ParseRequest(enc, protocol.Limits{}, &again)
			require.NoError(t, err, "encoded %q", enc)
			assert.Equal(t, len(enc), n)
			assert.Equal(t, view(&req), view(&again))
		})
	}
}

// randomKey returns a valid key of 1..MaxKeyLen bytes from 0x21-0xFF.
func randomKey(rng *rand.Rand) []byte {
	k := make([]byte, 1+rng.IntN(memcache.MaxKeyLen))
	for i := range k {
		for k[i] <= ' ' || k[i] == 0x7f {
			k[i] = byte(rng.IntN(256))
		}
	}
	return k
}

// randomRequest returns a random request that AppendRequest can encode
// and ParseRequest decodes to the same view.
func randomRequest(rng *rand.Rand) memcache.Request {
	cmds := []memcache.Command{
		memcache.Get, memcache.Gets, memcache.Gat, memcache.Gats, memcache.Set, memcache.Add,
		memcache.Replace, memcache.Append, memcache.Prepend, memcache.Cas, memcache.Incr,
		memcache.Decr, memcache.Touch, memcache.Delete, memcache.Version, memcache.Quit,
		memcache.Verbosity, memcache.FlushAll,
	}
	req := memcache.Request{Command: cmds[rng.IntN(len(cmds))]}
	nkeys := 1
	switch {
	case req.Command.IsRetrieval():
		nkeys = rng.IntN(20)
		if !(req.Command == memcache.Gat || req.Command == memcache.Gats) {
			nkeys++
		}
	case req.Command == memcache.Version, req.Command == memcache.Quit,
		req.Command == memcache.Verbosity, req.Command == memcache.FlushAll:
		nkeys = 0
	}
	for range nkeys {
		req.Keys = append(req.Keys, randomKey(rng))
	}
	exptime := func() int64 {
		switch rng.IntN(3) {
		case 0:
			return 0
		case 1:
			return rng.Int64N(1<<31) - 1<<30
		}
		return int64(rng.Uint64())
	}
	noreply := rng.IntN(2) == 0
	switch req.Command {
	case memcache.Gat, memcache.Gats, memcache.Touch:
		req.Exptime = exptime()
	case memcache.Set, memcache.Add, memcache.Replace, memcache.Append, memcache.Prepend, memcache.Cas:
		req.Flags = rng.Uint32()
		req.Exptime = exptime()
		req.Data = make([]byte, rng.IntN(300))
		for i := range req.Data {
			req.Data[i] = byte(rng.IntN(256))
		}
		req.Bytes = len(req.Data)
		if req.Command == memcache.Cas {
			req.Cas = rng.Uint64()
		}
	case memcache.Incr, memcache.Decr:
		req.Delta = rng.Uint64()
	case memcache.Verbosity:
		req.Delta = uint64(rng.Uint32())
	case memcache.FlushAll:
		req.Exptime = exptime()
	}
	switch req.Command {
	case memcache.Get, memcache.Gets, memcache.Gat, memcache.Gats, memcache.Version, memcache.Quit:
	default:
		req.Noreply = noreply
	}
	return req
}

// TestRandomRoundTrip encodes random requests back to back and parses the
// stream, one request at a time and through a Reader fed one byte at a
// time.
func TestRandomRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var want []reqView
	for range 2000 {
		req := randomRequest(rng)
		stream = memcache.AppendRequest(stream, &req)
		want = append(want, view(&req))
	}

	var got []reqView
	b := stream
	var req memcache.Request
	for len(b) > 0 {
		n, err := memcache.ParseRequest(b, protocol.Limits{}, &req)
		require.NoError(t, err, "at %.80q", b)
		require.Positive(t, n)
		got = append(got, view(&req))
		b = b[n:]
	}
	assert.Equal(t, want, got)

	got = got[:0]
	r := memcache.NewReader(oneByteReader(stream), protocol.Limits{})
	for range want {
		require.NoError(t, r.ReadRequest(&req))
		got = append(got, view(&req))
	}
	assert.Equal(t, want, got)
}

// TestRandomResponseRoundTrip encodes random get responses with
// AppendValue and AppendValueCas and takes them apart again.
func TestRandomResponseRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		var resp []byte
		var want []memcache.Value
		for range rng.IntN(10) {
			v := memcache.Value{Key: randomKey(rng), Flags: rng.Uint32(), Data: make([]byte, rng.IntN(100))}
			for i := range v.Data {
				v.Data[i] = byte(rng.IntN(256))
			}
			v.Bytes = len(v.Data)
			start := len(resp)
			if rng.IntN(2) == 0 {
				v.Cas, v.HasCas = rng.Uint64(), true
				resp = memcache.AppendValueCas(resp, v.Key, v.Flags, v.Data, v.Cas)
			} else {
				resp = memcache.AppendValue(resp, v.Key, v.Flags, v.Data)
			}
			v.Raw = resp[start:]
			want = append(want, v)
		}
		resp = memcache.AppendEnd(resp)
		n, err := memcache.FrameResponse(resp, memcache.Gets, protocol.Limits{})
		require.NoError(t, err)
		require.Equal(t, len(resp), n)
		b := resp
		for _, w := range want {
			var v memcache.Value
			n, err := memcache.ParseValue(b, protocol.Limits{}, &v)
			require.NoError(t, err)
			assert.Equal(t, string(w.Key), string(v.Key))
			assert.Equal(t, w.Flags, v.Flags)
			assert.Equal(t, w.Bytes, v.Bytes)
			assert.Equal(t, w.HasCas, v.HasCas)
			assert.Equal(t, w.Cas, v.Cas)
			assert.Equal(t, string(w.Data), string(v.Data))
			assert.Equal(t, string(w.Raw), string(v.Raw))
			b = b[n:]
		}
		assert.Equal(t, "END\r\n", string(b))
	}
}
