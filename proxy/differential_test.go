package proxy_test

// Differential tests: the same bytes are sent through the real nutcracker
// 0.5.0 and through walnut, over the same backends, and the replies are
// compared byte for byte. Where walnut deliberately differs from nutcracker
// (see the package documentation and the README), walnut's documented reply
// is asserted instead, together with nutcracker's observed behaviour.
// TestPlacement checks the core promise: a key lands on the same backend
// through either proxy.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

const dtHost = "127.0.0.1"

// dtTimeout bounds every raw exchange of these tests.
const dtTimeout = 10 * time.Second

var dtLimits = protocol.Limits{}.WithDefaults()

// A dtPool is one pool served both by nutcracker (from a generated
// nutcracker.yml) and by a walnut proxy built from the equivalent Config.
type dtPool struct {
	Name    string
	Kind    protocol.Kind
	Dist    shard.Distribution
	Servers []shard.Server

	NutAddr string // nutcracker's listen address for the pool
	Walnut  *proxy.Server
	WalAddr string
}

// yml returns the pool's nutcracker.yml section.
func (p *dtPool) yml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", p.Name)
	fmt.Fprintf(&b, "  listen: %s\n", p.NutAddr)
	b.WriteString("  hash: fnv1a_64\n")
	b.WriteString("  hash_tag: \"{}\"\n")
	fmt.Fprintf(&b, "  distribution: %s\n", p.Dist)
	b.WriteString("  timeout: 2000\n")
	fmt.Fprintf(&b, "  redis: %t\n", p.Kind == protocol.Redis)
	b.WriteString("  servers:\n")
	for _, s := range p.Servers {
		fmt.Fprintf(&b, "   - %s:%d", s.Addr, s.Weight)
		if s.Name != "" {
			b.WriteString(" " + s.Name)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// dtStartTwins starts one nutcracker serving every pool (with extra command
// line arguments args) and one walnut proxy per pool.
func dtStartTwins(t *testing.T, args []string, pools ...*dtPool) *testserver.Nutcracker {
	t.Helper()
	var yml strings.Builder
	var listens []string
	for _, p := range pools {
		p.NutAddr = net.JoinHostPort(dtHost, strconv.Itoa(testserver.FreePort(t, dtHost)))
		yml.WriteString(p.yml())
		listens = append(listens, p.NutAddr)
	}
	nut := testserver.StartNutcracker(t, yml.String(), testserver.NutcrackerOptions{Listen: listens, Args: args})
	for _, p := range pools {
		p.Walnut, p.WalAddr = startProxy(t, p.Kind, nil, func(cfg *proxy.Config) {
			cfg.Name = p.Name
			cfg.Servers = p.Servers
			cfg.Ring = shard.RingOptions{Hash: hashkit.FNV64a, Distribution: p.Dist, HashTag: "{}"}
			cfg.Backend.Timeout = 2 * time.Second
		})
	}
	return nut
}

// dtFlushAll empties every backend directly.
func dtFlushAll(t *testing.T, kind protocol.Kind, bs []backend) {
	t.Helper()
	for _, b := range bs {
		c := dtDial(t, b.Addr)
		var want string
		if kind == protocol.Redis {
			_, err := c.Write(resp.AppendCommandString(nil, "FLUSHALL"))
			require.NoError(t, err)
			want = "+OK\r\n"
		} else {
			_, err := c.Write([]byte("flush_all\r\n"))
			require.NoError(t, err)
			want = "OK\r\n"
		}
		got := make([]byte, len(want))
		_, err := io.ReadFull(c, got)
		require.NoError(t, err, "flush %s", b.Addr)
		require.Equal(t, want, string(got), "flush %s", b.Addr)
		c.Close()
	}
}

// dtDial connects to addr; the connection is closed at cleanup.
func dtDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, dtTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// A dtFramer returns the length of the complete reply at the start of b, or
// 0 if b holds only part of it.
type dtFramer func(b []byte) (int, error)

func dtRedisFramer(b []byte) (int, error) { return resp.FrameReply(b, dtLimits) }

func dtMemcacheFramer(cmd memcache.Command) dtFramer {
	return func(b []byte) (int, error) { return memcache.FrameResponse(b, cmd, dtLimits) }
}

// exchange writes req to c in one write and reads until a reply is framed
// for each of frames. It returns what it read; on an error (EOF, timeout,
// malformed reply) it returns what it had read so far with the error.
func dtExchange(c net.Conn, req []byte, frames []dtFramer) ([]byte, error) {
	if err := c.SetDeadline(time.Now().Add(dtTimeout)); err != nil {
		return nil, err
	}
	if len(req) > 0 {
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
	}
	var buf []byte
	off, idx := 0, 0
	tmp := make([]byte, 64<<10)
	for idx < len(frames) {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for idx < len(frames) {
			m, ferr := frames[idx](buf[off:])
			if ferr != nil {
				return buf, fmt.Errorf("reply %d: %w", idx, ferr)
			}
			if m == 0 {
				break
			}
			off += m
			idx++
		}
		if idx < len(frames) && err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// dtReadToClose reads from c until EOF or until wait has passed. It reports
// the bytes read and whether the peer closed the connection.
func dtReadToClose(c net.Conn, wait time.Duration) ([]byte, bool) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(c)
	if err == nil || errors.Is(err, io.EOF) {
		return b, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return b, false
	}
	// A reset also means closed.
	return b, true
}

// dtRedisFrames returns one dtFramer per command in req.
func dtRedisFrames(t *testing.T, req []byte) []dtFramer {
	t.Helper()
	rd := resp.NewReader(bytes.NewReader(req), dtLimits)
	var frames []dtFramer
	var cmd resp.Command
	for {
		err := rd.ReadCommand(&cmd)
		if errors.Is(err, io.EOF) {
			return frames
		}
		require.NoError(t, err, "request %q", req)
		frames = append(frames, dtRedisFramer)
	}
}

// dtMemcacheFrames returns a dtFramer for each request in req that gets a
// reply (noreply requests get none); parsing stops at quit.
func dtMemcacheFrames(t *testing.T, req []byte) []dtFramer {
	t.Helper()
	var frames []dtFramer
	var r memcache.Request
	for len(req) > 0 {
		n, err := memcache.ParseRequest(req, dtLimits, &r)
		require.True(t, n > 0, "incomplete memcached request %q", req)
		if r.Command == memcache.Quit {
			break
		}
		if err != nil {
			frames = append(frames, dtMemcacheFramer(memcache.Unknown))
		} else if !r.Noreply {
			frames = append(frames, dtMemcacheFramer(r.Command))
		}
		req = req[n+r.Discard:]
	}
	return frames
}

// dtSpreadKeys returns, for each server index of ring, a key with prefix that
// the ring places there.
func dtSpreadKeys(t *testing.T, ring *shard.Ring, prefix string) []string {
	t.Helper()
	keys := make([]string, ring.Len())
	found := 0
	for i := 0; found < len(keys) && i < 100000; i++ {
		k := prefix + strconv.Itoa(i)
		if s := ring.PickString(k); keys[s] == "" {
			keys[s] = k
			found++
		}
	}
	require.Equal(t, len(keys), found, "no key with prefix %q for some server", prefix)
	return keys
}

// rc encodes one Redis command as a RESP array of bulk strings.
func dtCmd(args ...string) string { return string(resp.AppendCommandString(nil, args...)) }

// show shortens long byte strings for failure messages.
func dtShow(b []byte) string {
	if len(b) > 400 {
		return fmt.Sprintf("%q…(%d bytes)", b[:400], len(b))
	}
	return fmt.Sprintf("%q", b)
}

type dtCase struct {
	name string
	req  string
	// closes: both proxies are expected to close the connection after the
	// replies (memcached quit).
	closes bool
	// mask replaces the cas unique of VALUE lines before comparing.
	mask bool
}

// dtRunDiff sends each case through nutcracker and through walnut, flushing
// the backends before each, and compares the replies. It returns the
// number of cases compared and of mismatches.
func dtRunDiff(t *testing.T, p *dtPool, bs []backend, cases []dtCase) (compared, mismatched int) {
	t.Helper()
	for _, tc := range cases {
		var frames []dtFramer
		if p.Kind == protocol.Redis {
			frames = dtRedisFrames(t, []byte(tc.req))
		} else {
			frames = dtMemcacheFrames(t, []byte(tc.req))
		}
		var got [2][]byte
		for i, addr := range []string{p.NutAddr, p.WalAddr} {
			dtFlushAll(t, p.Kind, bs)
			c := dtDial(t, addr)
			b, err := dtExchange(c, []byte(tc.req), frames)
			proxyName := [2]string{"nutcracker", "walnut"}[i]
			if err != nil {
				t.Errorf("%s: %s: %v after %s", tc.name, proxyName, err, dtShow(b))
			}
			if tc.closes {
				rest, closed := dtReadToClose(c, 2*time.Second)
				b = append(b, rest...)
				if !closed {
					t.Errorf("%s: %s kept the connection open", tc.name, proxyName)
				}
			}
			c.Close()
			if tc.mask {
				b = dtMaskCas(b)
			}
			got[i] = b
		}
		compared++
		if !bytes.Equal(got[0], got[1]) {
			mismatched++
			t.Errorf("%s: request %s\nnutcracker: %s\nwalnut:     %s", tc.name, dtShow([]byte(tc.req)), dtShow(got[0]), dtShow(got[1]))
		}
	}
	return compared, mismatched
}

var dtCasRe = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)

func dtMaskCas(b []byte) []byte { return dtCasRe.ReplaceAll(b, []byte("$1 CAS\r")) }

func TestDifferentialRedis(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	p := &dtPool{Name: "diff", Kind: protocol.Redis, Dist: shard.Ketama, Servers: entries(bs)}
	dtStartTwins(t, nil, p)
	ring := p.Walnut.Ring()
	k := dtSpreadKeys(t, ring, "key:")                 // k[i] lives on server i
	s := []string{"{tag}:x:0", "{tag}:y:1", "z{tag}2"} // all on the server of "tag"
	for _, key := range s[1:] {
		require.Equal(t, ring.PickString(s[0]), ring.PickString(key))
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	binary := "a\r\nb\x00\xff$3\r\n*1\r\n-ERR\r\n:1\r\n\r\n"
	var pipeline strings.Builder
	var mgetArgs = []string{"MGET"}
	for i := 0; i < 60; i++ {
		key := "pipe:" + strconv.Itoa(i)
		pipeline.WriteString(dtCmd("SET", key, "v"+strconv.Itoa(i)))
		pipeline.WriteString(dtCmd("GET", key))
		mgetArgs = append(mgetArgs, key, "nokey:"+strconv.Itoa(i))
	}
	pipeline.WriteString(dtCmd(mgetArgs...))
	pipeline.WriteString(dtCmd(append([]string{"DEL"}, mgetArgs[1:]...)...))

	mset, mget := []string{"MSET"}, []string{"MGET"}
	for i := 0; i < 500; i++ {
		key := "wide:" + strconv.Itoa(i)
		mset = append(mset, key, strconv.Itoa(i*i))
		mget = append(mget, key)
		if i%7 == 0 {
			mget = append(mget, "wide-missing:"+strconv.Itoa(i))
		}
	}
	cases := []dtCase{
		{name: "mget-500-keys", req: dtCmd(mset...) + dtCmd(mget...) + dtCmd(append([]string{"DEL"}, mget[1:]...)...)},
		{name: "set-get", req: dtCmd("SET", k[0], "v0") + dtCmd("GET", k[0]) + dtCmd("GET", "missing")},
		{name: "set-options", req: dtCmd("SET", k[1], "v1", "EX", "100") + dtCmd("SET", k[1], "v2", "GET") + dtCmd("SET", k[1], "v3", "NX") + dtCmd("TTL", k[1]) + dtCmd("GET", k[1])},
		{name: "case-insensitive", req: dtCmd("sEt", k[2], "x") + dtCmd("gEt", k[2])},
		{name: "incr", req: dtCmd("INCR", "ctr") + dtCmd("INCR", "ctr") + dtCmd("INCRBY", "ctr", "40") + dtCmd("DECR", "ctr") + dtCmd("GET", "ctr") + dtCmd("SET", "str", "abc") + dtCmd("INCR", "str") + dtCmd("INCRBYFLOAT", "f", "1.5")},
		{name: "append-strlen", req: dtCmd("APPEND", k[0], "hello") + dtCmd("APPEND", k[0], " world") + dtCmd("STRLEN", k[0]) + dtCmd("STRLEN", "missing") + dtCmd("GET", k[0]) + dtCmd("GETRANGE", k[0], "0", "4") + dtCmd("SETRANGE", k[0], "6", "WORLD") + dtCmd("GET", k[0])},
		{name: "expire-ttl", req: dtCmd("SET", k[1], "v") + dtCmd("EXPIRE", k[1], "100") + dtCmd("TTL", k[1]) + dtCmd("TTL", "missing") + dtCmd("PERSIST", k[1]) + dtCmd("TTL", k[1]) + dtCmd("PEXPIRE", k[1], "100000") + dtCmd("EXPIRE", "missing", "10") + dtCmd("TYPE", k[1])},
		{name: "hash", req: dtCmd("HSET", "h", "f1", "v1", "f2", "v2") + dtCmd("HGET", "h", "f1") + dtCmd("HGET", "h", "nope") + dtCmd("HGETALL", "h") + dtCmd("HGETALL", "missing") + dtCmd("HLEN", "h") + dtCmd("HMGET", "h", "f1", "x", "f2") + dtCmd("HDEL", "h", "f1") + dtCmd("HKEYS", "h")},
		{name: "list", req: dtCmd("LPUSH", "l", "a", "b", "c") + dtCmd("RPUSH", "l", "z") + dtCmd("LRANGE", "l", "0", "-1") + dtCmd("LRANGE", "missing", "0", "-1") + dtCmd("LLEN", "l") + dtCmd("LPOP", "l") + dtCmd("LINDEX", "l", "1")},
		{name: "set", req: dtCmd("SADD", "s", "a", "b", "c", "a") + dtCmd("SMEMBERS", "s") + dtCmd("SCARD", "s") + dtCmd("SISMEMBER", "s", "b") + dtCmd("SMEMBERS", "missing")},
		{name: "zset", req: dtCmd("ZADD", "z", "1", "a", "2.5", "b", "3", "c") + dtCmd("ZRANGE", "z", "0", "-1", "WITHSCORES") + dtCmd("ZSCORE", "z", "b") + dtCmd("ZRANK", "z", "c") + dtCmd("ZINCRBY", "z", "10", "a") + dtCmd("ZREVRANGE", "z", "0", "1", "WITHSCORES") + dtCmd("ZRANGE", "missing", "0", "-1")},
		{name: "mget-spread", req: dtCmd("SET", k[0], "v0") + dtCmd("SET", k[1], "v1") + dtCmd("SET", k[2], "v2") +
			dtCmd("MGET", k[0], k[1], "missing1", k[2], k[0], "missing2", k[2], k[1], k[1])},
		{name: "mget-single-key", req: dtCmd("SET", k[0], "v0") + dtCmd("MGET", k[0]) + dtCmd("mget", "missing")},
		{name: "mget-one-server", req: dtCmd("MSET", s[0], "a", s[1], "b") + dtCmd("MGET", s[0], s[1], s[0], s[2])},
		{name: "mset", req: dtCmd("MSET", k[0], "x0", k[1], "x1", k[2], "x2", "other", "o") + dtCmd("GET", k[0]) + dtCmd("GET", k[1]) + dtCmd("GET", k[2]) + dtCmd("GET", "other") + dtCmd("MSET", k[0], "y0", k[0], "z0", k[1], "y1") + dtCmd("MGET", k[0], k[1])},
		{name: "del-missing", req: dtCmd("MSET", k[0], "1", k[1], "1", k[2], "1") + dtCmd("DEL", k[0], "nope", k[1], k[2], "nope2", k[0]) + dtCmd("DEL", k[0]) + dtCmd("GET", k[1])},
		{name: "exists-one-server", req: dtCmd("MSET", s[0], "1", s[1], "1") + dtCmd("EXISTS", s[0], s[1], s[2], s[0]) + dtCmd("EXISTS", k[0]) + dtCmd("EXISTS", "nope")},
		{name: "touch-unlink", req: dtCmd("MSET", k[0], "1", k[1], "1", k[2], "1") + dtCmd("TOUCH", k[0], k[1], "nope", k[2]) + dtCmd("TOUCH", k[0]) + dtCmd("UNLINK", k[0], "nope", k[1]) + dtCmd("UNLINK", k[2]) + dtCmd("MGET", k[0], k[1], k[2])},
		{name: "getset-setnx", req: dtCmd("GETSET", k[0], "a") + dtCmd("GETSET", k[0], "b") + dtCmd("SETNX", k[0], "c") + dtCmd("SETNX", k[1], "d") + dtCmd("MGET", k[0], k[1])},
		{name: "eval-one-key", req: dtCmd("EVAL", "return redis.call('set',KEYS[1],ARGV[1])", "1", k[0], "ev") + dtCmd("EVAL", "return redis.call('get',KEYS[1])", "1", k[0]) + dtCmd("EVAL", "return {KEYS[1],ARGV[1],ARGV[2]}", "1", k[2], "a", "b")},
		{name: "eval-tagged-keys", req: dtCmd("EVAL", "return redis.call('mset',KEYS[1],ARGV[1],KEYS[2],ARGV[2])", "2", s[0], s[1], "p", "q") + dtCmd("MGET", s[0], s[1])},
		{name: "ping", req: dtCmd("PING") + dtCmd("ping")},
		{name: "auth-without-redis-auth", req: dtCmd("AUTH", "secret") + dtCmd("GET", k[0])},
		{name: "binary-value", req: dtCmd("SET", k[1], binary) + dtCmd("GET", k[1]) + dtCmd("MGET", k[1], k[0]) + dtCmd("STRLEN", k[1])},
		{name: "binary-key", req: dtCmd("SET", "\xc3\xa9t\xc3\xa9\x00\xff\r\n", "v") + dtCmd("GET", "\xc3\xa9t\xc3\xa9\x00\xff\r\n") + dtCmd("MGET", "\xc3\xa9t\xc3\xa9\x00\xff\r\n", k[0], k[1], k[2])},
		{name: "1MB-value", req: dtCmd("SET", k[2], big) + dtCmd("GET", k[2]) + dtCmd("STRLEN", k[2]) + dtCmd("MGET", k[0], k[2], k[1])},
		{name: "wrongtype", req: dtCmd("LPUSH", k[0], "x") + dtCmd("GET", k[0]) + dtCmd("HGET", k[0], "f") + dtCmd("INCR", k[0]) + dtCmd("SADD", k[0], "m") + dtCmd("APPEND", k[0], "z")},
		{name: "empty-key", req: dtCmd("SET", "", "empty") + dtCmd("GET", "") + dtCmd("MGET", "", k[1], "") + dtCmd("DEL", "", k[1]) + dtCmd("GET", "")},
		{name: "empty-value", req: dtCmd("SET", k[0], "") + dtCmd("GET", k[0]) + dtCmd("STRLEN", k[0])},
		{name: "hash-tag-multikey", req: dtCmd("SADD", s[0], "a", "b") + dtCmd("SADD", s[1], "b", "c") + dtCmd("SINTER", s[0], s[1]) + dtCmd("SDIFF", s[0], s[1]) + dtCmd("SUNIONSTORE", s[2], s[0], s[1]) + dtCmd("SCARD", s[2])},
		{name: "error-reply-passthrough", req: dtCmd("SET", k[0], "v") + dtCmd("EXPIRE", k[0], "notanumber") + dtCmd("ZADD", k[1], "x", "m") + dtCmd("SETEX", k[2], "-5", "v") + dtCmd("GET", k[0])},
		{name: "pipeline-batch", req: pipeline.String()},
	}
	compared, mismatched := dtRunDiff(t, p, bs, cases)
	t.Logf("redis: %d cases compared byte for byte, %d mismatches", compared, mismatched)
}

// A dtDevCase is a request where walnut deliberately differs from
// nutcracker.
type dtDevCase struct {
	name  string
	setup string // sent first on the same connection, answered alike by both
	req   string
	// walnut is an anchored pattern for walnut's reply to req: nreplies
	// replies.
	walnut   string
	nreplies int
	// walnutCloses: walnut closes the connection after its replies.
	walnutCloses bool
	// nut is the pattern for the bytes nutcracker sends; nutCloses says
	// whether it then closes the connection (otherwise nut describes
	// nutNReplies framed replies and the connection must stay open).
	nut         string
	nutCloses   bool
	nutNReplies int
}

func dtExact(s string) string { return "^" + regexp.QuoteMeta(s) + "$" }

// dtRunDev checks each dtDevCase against both proxies and returns the number of
// cases checked.
func dtRunDev(t *testing.T, p *dtPool, bs []backend, cases []dtDevCase) int {
	t.Helper()
	var probe, probeWant string
	if p.Kind == protocol.Redis {
		probe, probeWant = dtCmd("PING"), "+PONG\r\n"
	} else {
		probe, probeWant = "version\r\n", "VERSION "
	}
	// frames returns n framers for the replies to req: Redis replies are
	// framed alike; memcached replies by the command of each request.
	frames := func(req string, n int) []dtFramer {
		f := make([]dtFramer, n)
		var mc []dtFramer
		if p.Kind == protocol.Memcache {
			mc = dtMemcacheFrames(t, []byte(req))
		}
		for i := range f {
			switch {
			case p.Kind == protocol.Redis:
				f[i] = dtRedisFramer
			case i < len(mc):
				f[i] = mc[i]
			default:
				f[i] = dtMemcacheFramer(memcache.Unknown)
			}
		}
		return f
	}
	setup := func(c net.Conn, tc dtDevCase) bool {
		if tc.setup == "" {
			return true
		}
		var frames []dtFramer
		if p.Kind == protocol.Redis {
			frames = dtRedisFrames(t, []byte(tc.setup))
		} else {
			frames = dtMemcacheFrames(t, []byte(tc.setup))
		}
		if b, err := dtExchange(c, []byte(tc.setup), frames); err != nil {
			t.Errorf("%s: setup: %v after %s", tc.name, err, dtShow(b))
			return false
		}
		return true
	}
	for _, tc := range cases {
		// nutcracker
		dtFlushAll(t, p.Kind, bs)
		c := dtDial(t, p.NutAddr)
		if setup(c, tc) {
			if tc.nutCloses {
				_ = c.SetWriteDeadline(time.Now().Add(dtTimeout))
				_, err := c.Write([]byte(tc.req))
				require.NoError(t, err)
				b, closed := dtReadToClose(c, 3*time.Second)
				if !closed {
					t.Errorf("%s: nutcracker kept the connection open (read %s); nutcracker 0.5.0 closes it", tc.name, dtShow(b))
				}
				if !regexp.MustCompile(tc.nut).Match(b) {
					t.Errorf("%s: nutcracker sent %s before closing, want %s", tc.name, dtShow(b), tc.nut)
				}
			} else {
				b, err := dtExchange(c, []byte(tc.req), frames(tc.req, tc.nutNReplies))
				if err != nil {
					t.Errorf("%s: nutcracker: %v after %s", tc.name, err, dtShow(b))
				} else if !regexp.MustCompile(tc.nut).Match(b) {
					t.Errorf("%s: nutcracker replied %s, want %s", tc.name, dtShow(b), tc.nut)
				}
			}
		}
		c.Close()

		// walnut
		dtFlushAll(t, p.Kind, bs)
		c = dtDial(t, p.WalAddr)
		if setup(c, tc) {
			b, err := dtExchange(c, []byte(tc.req), frames(tc.req, tc.nreplies))
			if err != nil {
				t.Errorf("%s: walnut: %v after %s", tc.name, err, dtShow(b))
			} else if !regexp.MustCompile(tc.walnut).Match(b) {
				t.Errorf("%s: walnut replied %s, want %s", tc.name, dtShow(b), tc.walnut)
			}
			if tc.walnutCloses {
				rest, closed := dtReadToClose(c, 3*time.Second)
				if !closed || len(rest) > 0 {
					t.Errorf("%s: walnut after its reply: closed %v, extra bytes %s; want closed, none", tc.name, closed, dtShow(rest))
				}
			} else if err == nil {
				b, err := dtExchange(c, []byte(probe), frames(probe, 1))
				if err != nil || !strings.HasPrefix(string(b), probeWant) {
					t.Errorf("%s: walnut connection not usable afterwards: %v, %s", tc.name, err, dtShow(b))
				}
			}
		}
		c.Close()
	}
	return len(cases)
}

func TestDifferentialRedisDeliberate(t *testing.T) {
	bs := startBackends(t, protocol.Redis, 3)
	p := &dtPool{Name: "dev", Kind: protocol.Redis, Dist: shard.Ketama, Servers: entries(bs)}
	dtStartTwins(t, nil, p)
	k := dtSpreadKeys(t, p.Walnut.Ring(), "key:")
	cases := []dtDevCase{
		{name: "config", req: dtCmd("CONFIG", "GET", "maxmemory"),
			walnut: `^-ERR [^\r\n]*CONFIG[^\r\n]*\r\n$`, nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "config-after-set-same-write", req: dtCmd("SET", "a", "1") + dtCmd("CONFIG", "GET", "maxmemory"),
			walnut: `^\+OK\r\n-ERR [^\r\n]*CONFIG[^\r\n]*\r\n$`, nreplies: 2, nut: `^$`, nutCloses: true},
		{name: "keys", req: dtCmd("KEYS", "nosuchkey*"),
			walnut: dtExact("*0\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "unknown-command", req: dtCmd("FOOBAR", "x"),
			walnut: `^-ERR unknown command 'FOOBAR'[^\r\n]*\r\n$`, nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "select-1", req: dtCmd("SELECT", "1"),
			walnut: `^-ERR [^\r\n]*SELECT[^\r\n]*\r\n$`, nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "select-0", req: dtCmd("SELECT", "0"),
			walnut: dtExact("+OK\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "inline-ping", req: "PING\r\n",
			walnut: dtExact("+PONG\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "inline-set-get", req: "SET " + k[0] + " inl\r\nGET " + k[0] + "\r\n",
			walnut: dtExact("+OK\r\n$3\r\ninl\r\n"), nreplies: 2, nut: `^$`, nutCloses: true},
		{name: "ping-msg", req: dtCmd("PING", "msg"),
			walnut: dtExact("$3\r\nmsg\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "echo", req: dtCmd("ECHO", "hello"),
			walnut: dtExact("$5\r\nhello\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "quit", req: dtCmd("SET", "a", "1") + dtCmd("QUIT") + dtCmd("GET", "a"),
			walnut: dtExact("+OK\r\n+OK\r\n"), nreplies: 2, walnutCloses: true, nut: dtExact("+OK\r\n"), nutCloses: true},
		{name: "exists-3-servers", setup: dtCmd("MSET", k[0], "1", k[1], "1", k[2], "1"), req: dtCmd("EXISTS", k[0], k[1], k[2], "nope"),
			walnut: dtExact(":3\r\n"), nreplies: 1, nut: dtExact(":1\r\n"), nutNReplies: 1},
		{name: "expire-nx", setup: dtCmd("SET", k[0], "v"), req: dtCmd("EXPIRE", k[0], "10", "NX"),
			walnut: dtExact(":1\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "arity-get", req: dtCmd("GET"),
			walnut: dtExact("-ERR wrong number of arguments for 'get' command\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "arity-ttl", req: dtCmd("TTL", "a", "b"),
			walnut: dtExact("-ERR wrong number of arguments for 'ttl' command\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "sunion-crossslot", setup: dtCmd("SADD", k[0], "a") + dtCmd("SADD", k[1], "b"), req: dtCmd("SUNION", k[0], k[1]),
			walnut: `^-CROSSSLOT [^\r\n]*\r\n$`, nreplies: 1, nut: dtExact("*1\r\n$1\r\na\r\n"), nutNReplies: 1},
		{name: "eval-crossslot", req: dtCmd("EVAL", "return #KEYS", "2", k[0], k[1]),
			walnut: `^-CROSSSLOT [^\r\n]*\r\n$`, nreplies: 1, nut: dtExact(":2\r\n"), nutNReplies: 1},
		{name: "arity-mset-odd", req: dtCmd("MSET", k[0], "v", k[1]),
			walnut: dtExact("-ERR wrong number of arguments for 'mset' command\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "eval-numkeys-0", req: dtCmd("EVAL", "return 7", "0"),
			walnut: dtExact(":7\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
	}
	n := dtRunDev(t, p, bs, cases)
	t.Logf("redis: %d deliberate differences checked", n)
}

func TestDifferentialMemcache(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	p := &dtPool{Name: "diffmc", Kind: protocol.Memcache, Dist: shard.Ketama, Servers: entries(bs)}
	dtStartTwins(t, nil, p)
	ring := p.Walnut.Ring()
	k := dtSpreadKeys(t, ring, "key:")
	set := func(cmd, key string, flags int, val string, extra ...string) string {
		line := fmt.Sprintf("%s %s %d 0 %d", cmd, key, flags, len(val))
		for _, e := range extra {
			line += " " + e
		}
		return line + "\r\n" + val + "\r\n"
	}
	var binVal []byte
	for i := 0; i < 256; i++ {
		binVal = append(binVal, byte(i))
	}
	big := strings.Repeat("memcached!", 50000) // 500 kB
	var pipeline strings.Builder
	get, missing := "get", ""
	for i := 0; i < 60; i++ {
		key := "pipe:" + strconv.Itoa(i)
		pipeline.WriteString(set("set", key, i, "v"+strconv.Itoa(i)))
		pipeline.WriteString("get " + key + "\r\n")
		get += " " + key
		missing += " nokey:" + strconv.Itoa(i)
	}
	pipeline.WriteString(get + missing + "\r\n")
	wideSets, wideGet := "", "get"
	for i := 0; i < 200; i++ {
		key := "wide:" + strconv.Itoa(i)
		wideSets += set("set", key, i, strings.Repeat("x", i))
		wideGet += " " + key
	}
	wideGet += "\r\n"
	// libmemcached's memcslap -t mget sends one get of 2,000 keys: a line
	// of ~100 KB, past the 64 KiB that bounds other lines. Missing keys
	// come last (see the interleaved case below).
	var mgetSets, mget strings.Builder
	mget.WriteString("get")
	for i := range 3000 {
		key := fmt.Sprintf("memcslap:key:%06d:%s", i, strings.Repeat("p", 12))
		if i < 2000 {
			mgetSets.WriteString(set("set", key, i, "v"+strconv.Itoa(i)))
		}
		mget.WriteString(" " + key)
	}
	mget.WriteString("\r\n")
	require.Greater(t, mget.Len(), protocol.DefaultMaxLine)
	ctrl := []string{"a\x01b", "\x7f", "tab\tkey", "\x1b[31m", "\x02\x03"}
	var ctrlReq strings.Builder
	for i, key := range ctrl {
		ctrlReq.WriteString(set("set", key, i, "c"+strconv.Itoa(i)))
	}
	ctrlReq.WriteString("get " + strings.Join(ctrl, " ") + "\r\n")
	ctrlReq.WriteString("delete \x7f\r\nincr \x02\x03 1\r\nget \x7f \x02\x03\r\n")

	cases := []dtCase{
		{name: "set-get", req: set("set", k[0], 5, "abc") + "get " + k[0] + "\r\nget missing\r\n"},
		{name: "add", req: set("add", k[1], 1, "one") + set("add", k[1], 2, "two") + "get " + k[1] + "\r\n"},
		{name: "replace", req: set("replace", k[2], 0, "x") + set("set", k[2], 0, "y") + set("replace", k[2], 3, "z") + "get " + k[2] + "\r\n"},
		{name: "append-prepend", req: set("set", k[0], 7, "mid") + set("append", k[0], 0, ">>") + set("prepend", k[0], 0, "<<") + "get " + k[0] + "\r\n" + set("append", "missing", 0, "x") + set("prepend", "missing", 0, "x")},
		{name: "incr-decr", req: set("set", k[1], 0, "10") + "incr " + k[1] + " 5\r\ndecr " + k[1] + " 100\r\nincr " + k[1] + " 18446744073709551615\r\nincr missing 1\r\ndecr missing 1\r\n" + set("set", k[2], 0, "abc") + "incr " + k[2] + " 1\r\nget " + k[1] + "\r\n"},
		{name: "touch", req: set("set", k[0], 0, "t") + "touch " + k[0] + " 100\r\ntouch missing 100\r\nget " + k[0] + "\r\n"},
		{name: "delete", req: set("set", k[1], 0, "d") + "delete " + k[1] + "\r\ndelete " + k[1] + "\r\nget " + k[1] + "\r\n"},
		{name: "noreply", req: set("set", k[0], 0, "a", "noreply") + set("append", k[0], 0, "b", "noreply") + set("set", k[1], 0, "5", "noreply") + "incr " + k[1] + " 3 noreply\r\n" + set("set", k[2], 0, "x", "noreply") + "delete " + k[2] + " noreply\r\ntouch " + k[0] + " 10 noreply\r\n" + set("add", k[0], 0, "zz", "noreply") + "get " + k[0] + " " + k[1] + " " + k[2] + "\r\n"},
		// Missing keys come last: see the interleaved case below.
		{name: "multiget-spread", req: set("set", k[0], 1, "v0") + set("set", k[1], 2, "v1") + set("set", k[2], 3, "v2") + "get " + k[0] + " " + k[1] + " " + k[2] + " " + k[0] + " " + k[2] + " " + k[1] + " " + k[1] + " missing1 missing2 missing3\r\n"},
		{name: "multiget-spread-gets", req: set("set", k[0], 1, "v0") + set("set", k[1], 2, "v1") + set("set", k[2], 3, "v2") + "gets " + k[2] + " " + k[1] + " " + k[0] + " " + k[2] + " missing1\r\n", mask: true},
		{name: "multiget-all-missing", req: "get " + k[0] + " " + k[1] + " " + k[2] + "\r\n"},
		{name: "gets", req: set("set", k[0], 1, "v0") + set("set", k[2], 2, "v2") + "gets " + k[0] + "\r\ngets " + k[2] + " " + k[0] + " missing " + k[1] + "\r\n", mask: true},
		{name: "binary-value", req: set("set", k[1], 0, string(binVal)) + "get " + k[1] + " " + k[0] + "\r\n"},
		{name: "end-inside-value", req: set("set", k[2], 0, "a\r\nEND\r\n") + set("set", k[0], 0, "VALUE x 0 1\r\nEND\r\n") + "get " + k[2] + " " + k[0] + " " + k[1] + "\r\nget " + k[2] + "\r\n"},
		{name: "flags-max", req: set("set", k[0], 4294967295, "f") + "get " + k[0] + "\r\n"},
		{name: "large-value", req: set("set", k[1], 0, big) + "get " + k[1] + " " + k[2] + "\r\n"},
		{name: "high-byte-key", req: set("set", "\xc3\xa9t\xc3\xa9", 0, "v") + "get \xc3\xa9t\xc3\xa9 " + k[0] + "\r\n"},
		{name: "quit", req: set("set", k[0], 0, "q") + "quit\r\nget " + k[0] + "\r\n", closes: true},
		{name: "pipeline-batch", req: pipeline.String()},
		{name: "multiget-200-keys", req: wideSets + wideGet},
		{name: "incr-negative-delta", req: set("set", k[0], 0, "5") + "incr " + k[0] + " -1\r\nget " + k[0] + "\r\n"},
		{name: "key-250-bytes", req: set("set", strings.Repeat("k", 250), 0, "long") + "get " + strings.Repeat("k", 250) + " " + k[1] + "\r\n"},
		{name: "multiget-3000-keys-100KB-line", req: mgetSets.String() + mget.String()},
		{name: "keys-with-control-bytes", req: ctrlReq.String()},
	}
	compared, mismatched := dtRunDiff(t, p, bs, cases)
	t.Logf("memcached: %d cases compared byte for byte, %d mismatches", compared, mismatched)

	// The long multi-get and the control-byte keys through walnut (three
	// servers) and against one memcached directly: the same bytes.
	for _, tc := range cases[len(cases)-2:] {
		var got [2][]byte
		for i, addr := range []string{bs[0].Addr, p.WalAddr} {
			dtFlushAll(t, protocol.Memcache, bs)
			c := dtDial(t, addr)
			b, err := dtExchange(c, []byte(tc.req), dtMemcacheFrames(t, []byte(tc.req)))
			require.NoError(t, err, "%s: %s", tc.name, dtShow(b))
			got[i] = b
		}
		if !bytes.Equal(got[0], got[1]) {
			t.Errorf("%s: memcached %s\nwalnut    %s", tc.name, dtShow(got[0]), dtShow(got[1]))
		}
		if tc.name == "multiget-3000-keys-100KB-line" {
			require.Equal(t, 2000, bytes.Count(got[1], []byte("VALUE memcslap:key:")))
		} else {
			require.Equal(t, 5+1, bytes.Count(got[1], []byte("VALUE ")), "%s", dtShow(got[1]))
		}
	}

	// Missing keys between found keys of the same server. nutcracker
	// (memcache_post_coalesce) copies, for each requested key in turn, the
	// next VALUE block of the reply of that key's server, so a missing key
	// takes the block of a later key on its server and the blocks come out
	// of request order (the same blocks, in another order). walnut returns
	// them in request order, as one memcached does.
	{
		req := set("set", k[0], 1, "v0") + set("set", k[1], 2, "v1") + set("set", k[2], 3, "v2")
		keys := []string{k[0], k[1], "missing1", k[2], k[0], "missing2", k[2], k[1], "missing3", k[1]}
		req += "get " + strings.Join(keys, " ") + "\r\n"
		want := "STORED\r\nSTORED\r\nSTORED\r\n"
		for _, key := range keys {
			for i := range k {
				if key == k[i] {
					want += fmt.Sprintf("VALUE %s %d 2\r\nv%d\r\n", key, i+1, i)
				}
			}
		}
		want += "END\r\n"
		var got [2][]byte
		for i, addr := range []string{p.NutAddr, p.WalAddr} {
			dtFlushAll(t, protocol.Memcache, bs)
			c := dtDial(t, addr)
			b, err := dtExchange(c, []byte(req), dtMemcacheFrames(t, []byte(req)))
			require.NoError(t, err, "%s", dtShow(b))
			got[i] = b
		}
		compared++
		if string(got[1]) != want {
			mismatched++
			t.Errorf("multiget-interleaved-missing: walnut %s\nwant (request order) %q", dtShow(got[1]), want)
		}
		blocks := func(b []byte) []string {
			out := regexp.MustCompile(`VALUE [^\r]*\r\n[^\r]*\r\n`).FindAllString(string(b), -1)
			slices.Sort(out)
			return out
		}
		if !slices.Equal(blocks(got[0]), blocks(got[1])) {
			t.Errorf("multiget-interleaved-missing: nutcracker and walnut return different VALUE blocks:\nnutcracker %s\nwalnut     %s", dtShow(got[0]), dtShow(got[1]))
		}
		// nutcracker's order, simulated: each server's reply holds its
		// found keys in request order; each requested key takes the next
		// block of its server's reply, if any.
		queues := make(map[int][]string)
		for _, key := range keys {
			for i := range k {
				if key == k[i] {
					srv := ring.PickString(key)
					queues[srv] = append(queues[srv], fmt.Sprintf("VALUE %s %d 2\r\nv%d\r\n", key, i+1, i))
				}
			}
		}
		nutWant := "STORED\r\nSTORED\r\nSTORED\r\n"
		for _, key := range keys {
			srv := ring.PickString(key)
			if q := queues[srv]; len(q) > 0 {
				nutWant += q[0]
				queues[srv] = q[1:]
			}
		}
		nutWant += "END\r\n"
		if string(got[0]) != nutWant {
			t.Errorf("multiget-interleaved-missing: nutcracker %s, want (simulated coalesce) %q", dtShow(got[0]), nutWant)
		}
		t.Logf("multiget-interleaved-missing (nutcracker's order is an artefact of its coalescing):\nnutcracker %q\nwalnut     %q", got[0], got[1])
	}

	// cas needs the cas unique from gets: each proxy gets its own sequence.
	var got [2][]byte
	for i, addr := range []string{p.NutAddr, p.WalAddr} {
		dtFlushAll(t, protocol.Memcache, bs)
		c := dtDial(t, addr)
		req := set("set", k[0], 0, "a") + "gets " + k[0] + "\r\n"
		b, err := dtExchange(c, []byte(req), dtMemcacheFrames(t, []byte(req)))
		require.NoError(t, err, "%s", dtShow(b))
		m := regexp.MustCompile(`VALUE \S+ 0 1 (\d+)\r\n`).FindSubmatch(b)
		require.NotNil(t, m, "gets reply %s", dtShow(b))
		casID := string(m[1])
		req2 := set("cas", k[0], 0, "b", casID) + set("cas", k[0], 0, "c", casID) + set("cas", "missing", 0, "x", "1") + set("cas", k[0], 0, "d", casID, "noreply") + "gets " + k[0] + "\r\n"
		b2, err := dtExchange(c, []byte(req2), dtMemcacheFrames(t, []byte(req2)))
		require.NoError(t, err, "%s", dtShow(b2))
		got[i] = dtMaskCas(append(b, b2...))
	}
	if !bytes.Equal(got[0], got[1]) {
		mismatched++
		t.Errorf("cas: nutcracker %s\nwalnut %s", dtShow(got[0]), dtShow(got[1]))
	}
	compared++
	t.Logf("memcached: with cas, %d cases compared, %d mismatches", compared, mismatched)
}

func TestDifferentialMemcacheDeliberate(t *testing.T) {
	bs := startBackends(t, protocol.Memcache, 3)
	p := &dtPool{Name: "devmc", Kind: protocol.Memcache, Dist: shard.Ketama, Servers: entries(bs)}
	dtStartTwins(t, nil, p)
	cases := []dtDevCase{
		{name: "unknown-command", req: "foo bar\r\n",
			walnut: dtExact("ERROR\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "uppercase-get", req: "GET k\r\n",
			walnut: dtExact("ERROR\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		// Sent to every server and merged (see TestMemcacheFanOut for
		// the merge, checked against the servers themselves).
		{name: "stats", req: "stats\r\n",
			walnut: `^(STAT \S+ [^\r\n]*\r\n)+END\r\n$`, nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "stats-slabs", req: "stats slabs\r\n",
			walnut: `^CLIENT_ERROR stats slabs [^\r\n]*\r\n$`, nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "flush_all", req: "flush_all\r\n",
			walnut: dtExact("OK\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "flush_all-noreply", setup: "set k 0 0 1\r\na\r\n", req: "flush_all noreply\r\nget k\r\n",
			walnut: dtExact("END\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		// Answered by walnut (nutcracker forwards it to one server).
		{name: "version", req: "version\r\n",
			walnut: dtExact("VERSION 1.6.18\r\n"), nreplies: 1, nut: `^VERSION [^\r\n]+\r\n$`, nutNReplies: 1},
		{name: "negative-exptime", req: "set k 0 -1 1\r\na\r\n",
			walnut: dtExact("STORED\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "delete-with-time-0", setup: "set k 0 0 1\r\na\r\n", req: "delete k 0\r\n",
			walnut: dtExact("DELETED\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "key-251-bytes", req: "get " + strings.Repeat("k", 251) + "\r\n",
			walnut: dtExact("CLIENT_ERROR bad command line format\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "verbosity", req: "verbosity 1\r\n",
			walnut: dtExact("OK\r\n"), nreplies: 1, nut: `^$`, nutCloses: true},
		{name: "meta-get", req: "mg k v\r\n",
			walnut: `^CLIENT_ERROR [^\r\n]*\r\n$`, nreplies: 1, nut: `^$`, nutCloses: true},
	}
	n := dtRunDev(t, p, bs, cases)
	t.Logf("memcached: %d deliberate differences checked", n)
}

// dtPlacementKeys returns n distinct keys of 1 to 40 random bytes from
// 0x21 to 0x7e; about a third carry a {tag} from a small set, so that
// several keys share each tag.
func dtPlacementKeys(rng *rand.Rand, n int) []string {
	seen := make(map[string]bool, n)
	keys := make([]string, 0, n)
	randBytes := func(m int) string {
		b := make([]byte, m)
		for i := range b {
			b[i] = byte(0x21 + rng.IntN(0x7e-0x21+1))
		}
		return string(b)
	}
	for len(keys) < n {
		k := randBytes(1 + rng.IntN(40))
		if rng.IntN(3) == 0 {
			k = randBytes(rng.IntN(8)) + "{tag" + strconv.Itoa(rng.IntN(12)) + "}" + randBytes(rng.IntN(8))
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// kv helpers: pipelined writes and reads of many keys over one connection.

func dtPipelineWrite(t *testing.T, kind protocol.Kind, addr string, keys []string) {
	t.Helper()
	var req []byte
	frames := make([]dtFramer, len(keys))
	for i, k := range keys {
		v := "v:" + k
		if kind == protocol.Redis {
			req = resp.AppendCommandString(req, "SET", k, v)
			frames[i] = dtRedisFramer
		} else {
			req = fmt.Appendf(req, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
			frames[i] = dtMemcacheFramer(memcache.Set)
		}
	}
	c := dtDial(t, addr)
	defer c.Close()
	b, err := dtExchange(c, req, frames)
	require.NoError(t, err, "%s", dtShow(b))
	want := "STORED\r\n"
	if kind == protocol.Redis {
		want = "+OK\r\n"
	}
	require.Equal(t, strings.Repeat(want, len(keys)), string(b))
}

// dtPipelineRead reads every key from addr and reports, for each, whether it
// was found with its value "v:"+key; a found key with another value fails
// the test.
func dtPipelineRead(t *testing.T, kind protocol.Kind, addr string, keys []string) []bool {
	t.Helper()
	var req []byte
	for _, k := range keys {
		if kind == protocol.Redis {
			req = resp.AppendCommandString(req, "GET", k)
		} else {
			req = fmt.Appendf(req, "get %s\r\n", k)
		}
	}
	frame := dtRedisFramer
	if kind == protocol.Memcache {
		frame = dtMemcacheFramer(memcache.Get)
	}
	c := dtDial(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(dtTimeout))
	_, err := c.Write(req)
	require.NoError(t, err)
	var buf []byte
	tmp := make([]byte, 64<<10)
	found := make([]bool, len(keys))
	i, off := 0, 0
	for i < len(keys) {
		n, rerr := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for i < len(keys) {
			m, ferr := frame(buf[off:])
			require.NoError(t, ferr)
			if m == 0 {
				break
			}
			r := string(buf[off : off+m])
			v := "v:" + keys[i]
			var hit, miss string
			if kind == protocol.Redis {
				hit, miss = "$"+strconv.Itoa(len(v))+"\r\n"+v+"\r\n", "$-1\r\n"
			} else {
				hit, miss = fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", keys[i], len(v), v), "END\r\n"
			}
			switch r {
			case hit:
				found[i] = true
			case miss:
			default:
				t.Fatalf("%s: reply to key %q: %q", addr, keys[i], r)
			}
			off += m
			i++
		}
		if i < len(keys) {
			require.NoError(t, rerr, "%s after %d replies", addr, i)
		}
	}
	return found
}

func TestPlacement(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, kind := range []protocol.Kind{protocol.Redis, protocol.Memcache} {
		t.Run(kind.String(), func(t *testing.T) {
			bs := startBackends(t, kind, 3)
			pools := []*dtPool{
				{Name: "ketama", Kind: kind, Dist: shard.Ketama, Servers: entries(bs)},
				{Name: "modula", Kind: kind, Dist: shard.Modula, Servers: entries(bs)},
			}
			dtStartTwins(t, nil, pools...)
			keys := dtPlacementKeys(rand.New(rand.NewPCG(seed, uint64(kind))), 1000)
			for _, p := range pools {
				ring := p.Walnut.Ring()
				perServer := make(map[string]int)
				// walnut writes, nutcracker reads.
				dtFlushAll(t, kind, bs)
				dtPipelineWrite(t, kind, p.WalAddr, keys)
				hits := 0
				for i, ok := range dtPipelineRead(t, kind, p.NutAddr, keys) {
					if ok {
						hits++
					} else {
						t.Errorf("%s/%s: key %q written through walnut is missing through nutcracker", kind, p.Name, keys[i])
					}
				}
				// Which backend holds each key, against walnut's ring.
				owners := make([][]string, len(keys))
				for _, b := range bs {
					for i, ok := range dtPipelineRead(t, kind, b.Addr, keys) {
						if ok {
							owners[i] = append(owners[i], b.Addr)
						}
					}
				}
				agree := 0
				for i, k := range keys {
					want := ring.Server(ring.PickString(k)).Addr
					perServer[ring.ID(ring.PickString(k))]++
					if len(owners[i]) == 1 && owners[i][0] == want {
						agree++
					} else {
						t.Errorf("%s/%s: key %q is on %v; walnut's ring picks %s", kind, p.Name, k, owners[i], want)
					}
				}
				// nutcracker writes, walnut reads.
				dtFlushAll(t, kind, bs)
				dtPipelineWrite(t, kind, p.NutAddr, keys)
				back := 0
				for i, ok := range dtPipelineRead(t, kind, p.WalAddr, keys) {
					if ok {
						back++
					} else {
						t.Errorf("%s/%s: key %q written through nutcracker is missing through walnut", kind, p.Name, keys[i])
					}
				}
				t.Logf("%s/%s: %d keys; walnut→nutcracker hits %d/%d; backend = walnut ring %d/%d; nutcracker→walnut hits %d/%d; keys per server %v",
					kind, p.Name, len(keys), hits, len(keys), agree, len(keys), back, len(keys), perServer)
				if len(perServer) != len(bs) {
					t.Errorf("%s/%s: keys reached only %d of %d servers", kind, p.Name, len(perServer), len(bs))
				}
			}
		})
	}
}
