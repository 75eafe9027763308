package proxy_test

// TestStatsCompat serves the same two pools through nutcracker 0.5.0 and
// through walnut, sends the same traffic through each, and compares the two
// stats documents: layout byte for byte (after blanking the values that
// must differ), key names and order, and the counters whose meaning is the
// same in both.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// stFetch reads one stats document raw.
func stFetch(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, dtTimeout)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(dtTimeout)))
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	return b
}

// A stDoc is a decoded stats document: every key path ("pool", "pool/server",
// "pool/server/requests") in document order, and the numbers and strings by
// path.
type stDoc struct {
	raw   []byte
	paths []string
	nums  map[string]int64
	strs  map[string]string
}

// stParse walks doc token by token, so that key order is kept.
func stParse(t *testing.T, doc []byte) *stDoc {
	t.Helper()
	d := &stDoc{raw: doc, nums: map[string]int64{}, strs: map[string]string{}}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok, "document must be an object")
	var walk func(prefix string)
	walk = func(prefix string) {
		for dec.More() {
			kt, err := dec.Token()
			require.NoError(t, err)
			key, ok := kt.(string)
			require.True(t, ok, "key token %v", kt)
			path := key
			if prefix != "" {
				path = prefix + "/" + key
			}
			d.paths = append(d.paths, path)
			vt, err := dec.Token()
			require.NoError(t, err)
			switch v := vt.(type) {
			case json.Delim:
				require.Equal(t, json.Delim('{'), v, "at %s", path)
				walk(path)
			case json.Number:
				n, err := v.Int64()
				require.NoError(t, err, "at %s", path)
				d.nums[path] = n
			case string:
				d.strs[path] = v
			default:
				t.Fatalf("unexpected value %v at %s", vt, path)
			}
		}
		tok, err := dec.Token()
		require.NoError(t, err)
		require.Equal(t, json.Delim('}'), tok)
	}
	walk("")
	_, err = dec.Token()
	require.True(t, errors.Is(err, io.EOF), "one JSON value per document, then EOF: %v", err)
	return d
}

var (
	stStrRe = regexp.MustCompile(`("(?:service|source|version)":)"[^"]*"`)
	stNumRe = regexp.MustCompile(`(":)-?[0-9]+`)
)

// stNormalize blanks the header strings and every number.
func stNormalize(doc []byte) []byte {
	doc = stStrRe.ReplaceAll(doc, []byte(`$1""`))
	return stNumRe.ReplaceAll(doc, []byte(`${1}0`))
}

// stSettle reads addr until two reads 100ms apart agree on every counter
// (nutcracker aggregates in a separate thread and lags the traffic) and,
// if ready is not nil, ready accepts the document.
func stSettle(t *testing.T, addr string, ready func(*stDoc) bool) *stDoc {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	prev := stParse(t, stFetch(t, addr))
	for {
		time.Sleep(100 * time.Millisecond)
		cur := stParse(t, stFetch(t, addr))
		same := len(cur.nums) == len(prev.nums)
		for p, v := range cur.nums {
			if strings.HasSuffix(p, "uptime") || p == "timestamp" {
				continue
			}
			if prev.nums[p] != v {
				same = false
			}
		}
		if same && (ready == nil || ready(cur)) {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats at %s did not settle: %s", addr, cur.raw)
		}
		prev = cur
	}
}

// stKeys returns the 10 keys of the traffic: one on each server of the
// ring (spread), then key:0 and on.
func stKeys(spread []string) []string {
	keys := append([]string(nil), spread...)
	for i := 0; len(keys) < 10; i++ {
		keys = append(keys, "key:"+strconv.Itoa(i))
	}
	return keys
}

// stTraffic sends the same known traffic through one proxy's pool: a SET
// and a GET of each key of stKeys(spread) and one multi-key get of spread[0]
// and spread[1], each as its own round trip. It returns the open client
// connection.
func stTraffic(t *testing.T, kind protocol.Kind, addr string, spread []string) net.Conn {
	t.Helper()
	c := dtDial(t, addr)
	do := func(req string) {
		var frames []dtFramer
		if kind == protocol.Redis {
			frames = dtRedisFrames(t, []byte(req))
		} else {
			frames = dtMemcacheFrames(t, []byte(req))
		}
		b, err := dtExchange(c, []byte(req), frames)
		require.NoError(t, err, "%s: %s", addr, dtShow(b))
		require.NotContains(t, string(b), "ERR", "%s: %q → %s", addr, req, dtShow(b))
	}
	for i, k := range stKeys(spread) {
		if kind == protocol.Redis {
			do(dtCmd("SET", k, "value"+strconv.Itoa(i)))
			do(dtCmd("GET", k))
		} else {
			v := "value" + strconv.Itoa(i)
			do(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v))
			do("get " + k + "\r\n")
		}
	}
	if kind == protocol.Redis {
		do(dtCmd("MGET", spread[0], spread[1]))
	} else {
		do("get " + spread[0] + " " + spread[1] + "\r\n")
	}
	return c
}

func TestStatsCompat(t *testing.T) {
	rb := startBackends(t, protocol.Redis, 3)
	mb := startBackends(t, protocol.Memcache, 3)
	alpha := &dtPool{Name: "alpha", Kind: protocol.Redis, Dist: shard.Ketama, Servers: entries(rb)}
	mc := &dtPool{Name: "mc", Kind: protocol.Memcache, Dist: shard.Ketama, Servers: entries(mb)}
	// -i 1: aggregate every millisecond, as nutcracker's own test harness
	// does, so that the document catches up with the traffic quickly.
	nut := dtStartTwins(t, []string{"-i", "1"}, alpha, mc)

	// nutcracker orders pools by name, shorter first: mc, then alpha.
	st := &proxy.StatsServer{Pools: []*proxy.Server{mc.Walnut, alpha.Walnut}, Version: "0.0.0-test"}
	l, err := net.Listen("tcp", dtHost+":0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- st.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, st.Close())
		require.ErrorIs(t, <-served, proxy.ErrServerClosed)
	})
	walAddr := l.Addr().String()

	type side struct {
		name   string
		addr   string
		before *stDoc
	}
	sides := []*side{{name: "nutcracker", addr: nut.StatsAddr}, {name: "walnut", addr: walAddr}}
	for _, s := range sides {
		s.before = stSettle(t, s.addr, nil)
	}

	// Expected requests per server: each SET, GET and multi-get fragment
	// is one request on its server.
	pools := []*dtPool{mc, alpha}
	expected := map[string]int64{}
	var expectedTotal int64
	spread := map[string][]string{}
	for _, p := range pools {
		ring := p.Walnut.Ring()
		ks := dtSpreadKeys(t, ring, "multi:")
		spread[p.Name] = ks
		for _, k := range stKeys(ks) {
			expected[p.Name+"/"+ring.ID(ring.PickString(k))] += 2
		}
		expected[p.Name+"/"+ring.ID(0)]++
		expected[p.Name+"/"+ring.ID(1)]++
		expectedTotal += 22
	}
	totalRequests := func(d *stDoc) int64 {
		var n int64
		for p, v := range d.nums {
			if strings.HasSuffix(p, "/requests") {
				n += v
			}
		}
		return n
	}

	// The same traffic through each proxy; the client connections stay
	// open while the documents are read.
	var conns []net.Conn
	for _, p := range pools {
		conns = append(conns, stTraffic(t, p.Kind, p.NutAddr, spread[p.Name]))
		conns = append(conns, stTraffic(t, p.Kind, p.WalAddr, spread[p.Name]))
	}
	after := make([]*stDoc, len(sides))
	for i, s := range sides {
		want := totalRequests(s.before) + expectedTotal
		after[i] = stSettle(t, s.addr, func(d *stDoc) bool { return totalRequests(d) >= want })
	}
	nutDoc, walDoc := after[0], after[1]
	t.Logf("nutcracker: %s", nutDoc.raw)
	t.Logf("walnut:     %s", walDoc.raw)

	// Shape of walnut's document.
	raw := walDoc.raw
	assert.True(t, json.Valid(raw), "walnut's document is not valid JSON")
	assert.True(t, bytes.HasSuffix(raw, []byte("\n")), "walnut's document must end in a newline")
	assert.Equal(t, 1, bytes.Count(raw, []byte("\n")), "walnut's document must be one line")
	assert.True(t, bytes.HasSuffix(nutDoc.raw, []byte("\n")), "nutcracker's document ends in a newline")

	// Same keys in the same order: header, pools, servers, fields.
	assert.Equal(t, nutDoc.paths, walDoc.paths, "key paths in document order")
	header := []string{"service", "source", "version", "uptime", "timestamp", "total_connections", "curr_connections", "mc", "alpha"}
	var top []string
	for _, p := range walDoc.paths {
		if !strings.Contains(p, "/") {
			top = append(top, p)
		}
	}
	assert.Equal(t, header, top)

	// Byte for byte, once the values that must differ are blanked.
	nn, wn := stNormalize(nutDoc.raw), stNormalize(walDoc.raw)
	if !bytes.Equal(nn, wn) {
		t.Errorf("normalized documents differ:\nnutcracker %s\nwalnut     %s", nn, wn)
	}

	// Header values.
	assert.Equal(t, "nutcracker", nutDoc.strs["service"])
	assert.Equal(t, "0.5.0", nutDoc.strs["version"])
	assert.Equal(t, "walnut", walDoc.strs["service"])
	assert.Equal(t, "0.0.0-test", walDoc.strs["version"])
	host, _ := os.Hostname()
	assert.Equal(t, host, walDoc.strs["source"])
	assert.Equal(t, nutDoc.strs["source"], walDoc.strs["source"])
	assert.InDelta(t, nutDoc.nums["timestamp"], walDoc.nums["timestamp"], 2)
	delta := func(i int, path string) int64 { return after[i].nums[path] - sides[i].before.nums[path] }
	// Connections of every kind: listeners, clients and servers.
	assert.Equal(t, nutDoc.nums["curr_connections"], walDoc.nums["curr_connections"], "curr_connections: nutcracker vs walnut")
	assert.Equal(t, delta(0, "total_connections"), delta(1, "total_connections"), "total_connections delta: nutcracker vs walnut")
	t.Logf("curr_connections: nutcracker %d, walnut %d; total_connections delta: nutcracker %d, walnut %d",
		nutDoc.nums["curr_connections"], walDoc.nums["curr_connections"], delta(0, "total_connections"), delta(1, "total_connections"))

	// Pool counters.
	for _, p := range pools {
		for _, f := range []string{"client_err", "server_ejects", "forward_error"} {
			path := p.Name + "/" + f
			assert.Equal(t, int64(0), delta(0, path), "nutcracker %s", path)
			assert.Equal(t, int64(0), delta(1, path), "walnut %s", path)
		}
		path := p.Name + "/client_connections"
		assert.Equal(t, int64(1), nutDoc.nums[path], "nutcracker %s", path)
		assert.Equal(t, int64(1), walDoc.nums[path], "walnut %s", path)
		// fragments: nutcracker never counts them; walnut counts the
		// sub-requests of the multi-key get over two servers.
		path = p.Name + "/fragments"
		assert.Equal(t, int64(0), nutDoc.nums[path], "nutcracker %s", path)
		assert.Equal(t, int64(2), delta(1, path), "walnut %s", path)
	}
	// Server counters and gauges.
	compared := 0
	for _, p := range pools {
		ring := p.Walnut.Ring()
		for i := 0; i < ring.Len(); i++ {
			srv := p.Name + "/" + ring.ID(i)
			for _, f := range []string{"requests", "responses"} {
				assert.Equal(t, expected[srv], delta(0, srv+"/"+f), "nutcracker %s/%s", srv, f)
				assert.Equal(t, expected[srv], delta(1, srv+"/"+f), "walnut %s/%s", srv, f)
			}
			for _, f := range []string{"response_bytes", "server_eof", "server_err", "server_timedout"} {
				assert.Equal(t, delta(0, srv+"/"+f), delta(1, srv+"/"+f), "%s/%s delta: nutcracker vs walnut", srv, f)
			}
			// request_bytes: the bytes forwarded. Both proxies rebuild a
			// split memcached get per server as "get k1 k2 \r\n" (with
			// nutcracker's trailing space), so they agree here.
			// (A multi-get whose keys all live on one server is forwarded
			// verbatim by walnut and rebuilt by nutcracker; the traffic
			// here has none.)
			assert.Equal(t, delta(0, srv+"/request_bytes"), delta(1, srv+"/request_bytes"), "%s/request_bytes delta: nutcracker vs walnut", srv)
			for _, f := range []string{"server_connections", "server_ejected_at", "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"} {
				assert.Equal(t, nutDoc.nums[srv+"/"+f], walDoc.nums[srv+"/"+f], "%s/%s: nutcracker vs walnut", srv, f)
			}
			compared++
		}
	}
	t.Logf("compared %d servers in 2 pools; requests per server %v", compared, expected)

	// Closing the clients: client_eof +1, client_connections 0.
	for _, c := range conns {
		c.Close()
	}
	for i, s := range sides {
		d := stSettle(t, s.addr, func(d *stDoc) bool {
			return d.nums["mc/client_connections"] == 0 && d.nums["alpha/client_connections"] == 0
		})
		for _, p := range pools {
			path := p.Name + "/client_eof"
			assert.Equal(t, int64(1), d.nums[path]-s.before.nums[path], "%s %s", s.name, path)
			path = p.Name + "/client_err"
			assert.Equal(t, int64(0), d.nums[path]-s.before.nums[path], "%s %s", s.name, path)
		}
		after[i] = d
	}
	t.Logf("curr_connections after the clients left: nutcracker %d, walnut %d",
		after[0].nums["curr_connections"], after[1].nums["curr_connections"])
}
