package testserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recordingTB captures Skipf and Fatalf instead of stopping the test, so
// the skip/fail policy can be checked. Everything else goes to the real TB.
type recordingTB struct {
	testing.TB

	mu     sync.Mutex
	skips  []string
	fatals []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skips = append(r.skips, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

// highKey returns prefix followed by the bytes 0x80-0xff, a key that
// gomemcache would reject. Keys that differ only in their last bytes hash
// close together under fnv1a_64, so callers vary the prefix.
func highKey(prefix string) []byte {
	k := make([]byte, 0, len(prefix)+0x80)
	k = append(k, prefix...)
	for b := 0x80; b <= 0xff; b++ {
		k = append(k, byte(b))
	}
	return k
}

// redisDo sends one command over c and returns the reply's first line, or
// the contents of a bulk reply.
func redisDo(t *testing.T, c net.Conn, r *bufio.Reader, args ...string) string {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := c.Write(appendRESPCommand(nil, args...))
	require.NoError(t, err, "write %q", args)
	reply, err := readRESPReply(r)
	require.NoError(t, err, "read reply to %q", args)
	return reply
}

func TestRequireBinary(t *testing.T) {
	tests := []struct {
		give       string // CI value
		wantSkips  int
		wantFatals int
	}{
		{give: "", wantSkips: 1},
		{give: "false", wantSkips: 1},
		{give: "true", wantFatals: 1},
		{give: "1", wantFatals: 1},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.give, func(t *testing.T) {
			t.Setenv("CI", tt.give)
			rec := &recordingTB{TB: t}
			path := RequireBinary(rec, "walnut-no-such-binary-7c1f")
			assert.Empty(t, path)
			assert.Len(t, rec.skips, tt.wantSkips, "skips: %q", rec.skips)
			assert.Len(t, rec.fatals, tt.wantFatals, "fatals: %q", rec.fatals)
			for _, msg := range append(rec.skips, rec.fatals...) {
				assert.Contains(t, msg, "walnut-no-such-binary-7c1f")
			}
		})
	}
}

func TestRequireBinarySearchesSbin(t *testing.T) {
	path := RequireBinary(t, "nutcracker")
	if !slices.Contains(sbinDirs(), filepath.Dir(path)) {
		t.Skipf("nutcracker is at %s, not in an sbin directory", path)
	}
	t.Setenv("PATH", "/nonexistent")
	assert.Equal(t, path, RequireBinary(t, "nutcracker"))
}

func TestFreePort(t *testing.T) {
	port := FreePort(t, "127.0.0.1")
	require.Positive(t, port)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "port %d should be bindable", port)
	require.NoError(t, l.Close())
}

func TestStartRedis(t *testing.T) {
	t.Parallel()
	s := StartRedis(t, RedisOptions{})
	require.Equal(t, net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), s.Addr)
	require.Positive(t, s.PID)

	c, err := net.Dial("tcp", s.Addr)
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	assert.Equal(t, "+PONG", redisDo(t, c, r, "PING"))
	assert.Equal(t, "+OK", redisDo(t, c, r, "SET", "k\x80\xff", "v1"))
	assert.Equal(t, "v1", redisDo(t, c, r, "GET", "k\x80\xff"))
	assert.Contains(t, redisDo(t, c, r, "INFO", "server"), "process_id:"+strconv.Itoa(s.PID)+"\r\n")
	require.NoError(t, c.Close())

	s.Stop()
	assert.True(t, s.Exited())
	assert.False(t, accepting(s.Addr), "%s still accepts after Stop", s.Addr)
	s.Stop() // idempotent
}

func TestStartRedisPassword(t *testing.T) {
	t.Parallel()
	s := StartRedis(t, RedisOptions{Password: "sekrit pw", Args: []string{"--maxmemory", "8mb"}})

	c, err := net.Dial("tcp", s.Addr)
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	assert.True(t, strings.HasPrefix(redisDo(t, c, r, "PING"), "-NOAUTH"), "PING before AUTH")
	assert.Equal(t, "+OK", redisDo(t, c, r, "AUTH", "sekrit pw"))
	assert.Equal(t, "+PONG", redisDo(t, c, r, "PING"))
}

func TestStartMemcached(t *testing.T) {
	t.Parallel()
	s := StartMemcached(t, MemcachedOptions{})
	require.Equal(t, "127.0.0.1", s.Host)
	require.Positive(t, s.PID)

	mc := DialMemcache(t, s.Addr)
	k1, k2 := highKey("1/"), highKey("2/")
	require.NoError(t, mc.Set(k1, []byte("one")))
	require.NoError(t, mc.Set(k2, []byte("two\r\nlines")))

	got, err := mc.Get(k1, []byte("missing"), k2)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{
		string(k1): []byte("one"),
		string(k2): []byte("two\r\nlines"),
	}, got)

	_, err = mc.Get()
	assert.Error(t, err, "get with no keys")

	// A reply error leaves the connection usable.
	err = mc.Set([]byte("big"), bytes.Repeat([]byte("x"), 2<<20))
	var re *ReplyError
	require.ErrorAs(t, err, &re)
	assert.True(t, strings.HasPrefix(re.Line, "SERVER_ERROR"), "reply %q", re.Line)
	got, err = mc.Get(k1)
	require.NoError(t, err)
	assert.Equal(t, []byte("one"), got[string(k1)])

	require.NoError(t, mc.Close())
	_, err = mc.Get(k1)
	assert.ErrorIs(t, err, net.ErrClosed)

	s.Stop()
	assert.True(t, s.Exited())
	assert.False(t, accepting(s.Addr), "%s still accepts after Stop", s.Addr)
	s.Stop()
}

func TestStartMemcachedFixedPortBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()

	rec := &recordingTB{TB: t}
	s := StartMemcached(rec, MemcachedOptions{Port: l.Addr().(*net.TCPAddr).Port})
	assert.Nil(t, s)
	require.Len(t, rec.fatals, 1)
	assert.Contains(t, rec.fatals[0], "already accepts connections")
}

func TestStartMemcachedOn11211(t *testing.T) {
	t.Parallel()
	s := StartMemcachedOn11211(t)
	require.Equal(t, 11211, s.Port)
	require.NotEqual(t, "127.0.0.1", s.Host)

	mc := DialMemcache(t, s.Addr)
	require.NoError(t, mc.Set([]byte("k"), []byte("v")))
	got, err := mc.Get([]byte("k"))
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), got["k"])
}

func TestStartNutcracker(t *testing.T) {
	t.Parallel()
	m1 := StartMemcached(t, MemcachedOptions{})
	m2 := StartMemcached(t, MemcachedOptions{})
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t, "127.0.0.1")))
	yml := "alpha:\n" +
		"  listen: " + listen + "\n" +
		"  hash: fnv1a_64\n" +
		"  distribution: ketama\n" +
		"  servers:\n" +
		"   - " + m1.Addr + ":1\n" +
		"   - " + m2.Addr + ":1\n"
	nc := StartNutcracker(t, yml, NutcrackerOptions{Listen: []string{listen}})
	require.Positive(t, nc.PID)
	require.FileExists(t, nc.ConfigPath)
	require.FileExists(t, nc.LogPath)

	proxy := DialMemcache(t, listen)
	keys := make([][]byte, 40)
	for i := range keys {
		keys[i] = highKey(strconv.Itoa(i) + "/")
		require.NoError(t, proxy.Set(keys[i], []byte("v"+strconv.Itoa(i))), "set key %d", i)
	}
	got, err := proxy.Get(keys...)
	require.NoError(t, err)
	require.Len(t, got, len(keys))
	for i, k := range keys {
		assert.Equal(t, []byte("v"+strconv.Itoa(i)), got[string(k)], "key %d", i)
	}

	// Ketama spreads 40 keys over both backends.
	on1, err := DialMemcache(t, m1.Addr).Get(keys...)
	require.NoError(t, err)
	on2, err := DialMemcache(t, m2.Addr).Get(keys...)
	require.NoError(t, err)
	require.NotEmpty(t, on1)
	require.NotEmpty(t, on2)
	assert.Equal(t, len(keys), len(on1)+len(on2))

	stats := nc.Stats(t)
	require.Contains(t, stats, "alpha")
	pool, ok := stats["alpha"].(map[string]any)
	require.True(t, ok, "pool stats %T", stats["alpha"])
	assert.Contains(t, pool, m1.Addr)
	assert.Contains(t, pool, m2.Addr)
	assert.Equal(t, "nutcracker", stats["service"])

	// With a backend down the proxy replies SERVER_ERROR for its keys.
	var onM1 []byte
	for _, k := range keys {
		if _, ok := on1[string(k)]; ok {
			onM1 = k
			break
		}
	}
	require.NotNil(t, onM1)
	m1.Stop()
	_, err = proxy.Get(onM1)
	var re *ReplyError
	require.ErrorAs(t, err, &re)
	assert.True(t, strings.HasPrefix(re.Line, "SERVER_ERROR"), "reply %q", re.Line)

	nc.Stop()
	assert.True(t, nc.Exited())
	assert.False(t, accepting(listen), "%s still accepts after Stop", listen)
	assert.False(t, accepting(nc.StatsAddr), "%s still accepts after Stop", nc.StatsAddr)
	nc.Stop()
}

func TestStartNutcrackerBadConfigReportsLog(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t}
	nc := StartNutcracker(rec, "alpha:\n  listen: 127.0.0.1:1\n  hash: no_such_hash\n  servers:\n   - 127.0.0.1:2:1\n", NutcrackerOptions{})
	assert.Nil(t, nc)
	require.Len(t, rec.fatals, 1)
	assert.Contains(t, rec.fatals[0], `directive "hash" is not a valid hash`, "error should quote the log")
}

func TestStartRedisAnsweredByStranger(t *testing.T) {
	t.Parallel()
	// A redis-server probe must not accept another process's PONG.
	other := StartRedis(t, RedisOptions{})
	err := probeRedis(other.Addr, "", other.PID+1)
	assert.True(t, errors.Is(err, errAddrInUse), "probe error %v", err)
	require.NoError(t, probeRedis(other.Addr, "", other.PID))

	mc := StartMemcached(t, MemcachedOptions{})
	err = probeMemcached(mc.Addr, mc.PID+1)
	assert.True(t, errors.Is(err, errAddrInUse), "probe error %v", err)
	require.NoError(t, probeMemcached(mc.Addr, mc.PID))
}

func TestRedisConn(t *testing.T) {
	srv := StartRedis(t, RedisOptions{})
	c := DialRedis(t, srv.Addr)
	key := "k\x00\xff é"
	reply, err := c.Do("SET", key, "v\r\n")
	require.NoError(t, err)
	assert.Equal(t, "+OK", reply)
	reply, err = c.Do("GET", key)
	require.NoError(t, err)
	assert.Equal(t, "v\r\n", reply)
	reply, err = c.Do("EXISTS", key, "missing")
	require.NoError(t, err)
	assert.Equal(t, ":1", reply)
	reply, err = c.Do("NOSUCHCOMMAND")
	require.NoError(t, err)
	assert.Contains(t, reply, "-ERR")
	require.NoError(t, c.Close())
}
