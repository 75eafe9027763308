package proxy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// A recorder is a fake Redis backend (pipeRedis) that records every byte
// each of its connections receives.
type recorder struct {
	l       net.Listener
	mu      sync.Mutex
	streams []*bytes.Buffer // one per accepted connection
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &recorder{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			buf := new(bytes.Buffer)
			r.streams = append(r.streams, buf)
			r.mu.Unlock()
			go pipeRedis(&recordingConn{Conn: nc, r: r, buf: buf})
		}
	}()
	return r
}

// received returns a copy of what each connection has received.
func (r *recorder) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, len(r.streams))
	for i, b := range r.streams {
		out[i] = bytes.Clone(b.Bytes())
	}
	return out
}

type recordingConn struct {
	net.Conn
	r   *recorder
	buf *bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.buf.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

// keysWithPrefix returns n keys starting with prefix that the proxy puts
// on n different servers.
func keysWithPrefix(t *testing.T, s *proxy.Server, prefix string, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var keys []string
	for i := 0; len(keys) < n && i < 10000; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if srv := s.Ring().PickString(k); !seen[srv] {
			seen[srv] = true
			keys = append(keys, k)
		}
	}
	require.Len(t, keys, n)
	return keys
}

// authProbe is a set of commands covering every routing class, each
// naming keys that start with marker: single-key, multi-key split over
// the servers (MGET, MSET, DEL, EXISTS, UNLINK, TOUCH), first-key and
// numkeys commands, and the keyless ones.
func authProbe(keys []string) [][]string {
	k0, k1, k2 := keys[0], keys[1], keys[2]
	return [][]string{
		cmd("PING"),
		cmd("SET", k0, "v"),
		cmd("GET", k1),
		cmd("MGET", k0, k1, k2),
		cmd("MSET", k0, "a", k1, "b", k2, "c"),
		cmd("DEL", k0, k1, k2),
		cmd("EXISTS", k0, k1, k2),
		cmd("UNLINK", k0, k1),
		cmd("TOUCH", k1, k2),
		cmd("EVAL", "return 1", "1", k2),
		cmd("SUNION", k0, k0),
		cmd("LOLWUT"),
		cmd("COMMAND", "COUNT"),
		cmd("CLIENT", "SETNAME", "x"),
		cmd("SELECT", "0"),
		cmd("ECHO", "x"),
	}
}

// TestRedisAuthNothingReachesBackend: with redis_auth, no byte of a
// client's commands reaches a backend before that client has
// authenticated, whatever the command's routing, pipelined before AUTH in
// one batch, after a wrong AUTH, or from another, unauthenticated client.
// The backends record every byte they receive.
func TestRedisAuthNothingReachesBackend(t *testing.T) {
	const secret = "s3cret-nothing-before-auth"
	recs := []*recorder{startRecorder(t), startRecorder(t), startRecorder(t)}
	cfg := proxy.Config{Name: "auth", Protocol: protocol.Redis, Auth: secret}
	cfg.Backend.Timeout = 5 * time.Second
	for _, r := range recs {
		cfg.Servers = append(cfg.Servers, shard.Server{Addr: r.l.Addr().String()})
	}
	s, addr := startProxyConfig(t, cfg)
	pre := keysWithPrefix(t, s, "preauth-", 3)
	post := keysWithPrefix(t, s, "postauth-", 3)
	noAuth := "-NOAUTH Authentication required\r\n"

	// 1. Everything before AUTH, inline commands and failed AUTHs included:
	// NOAUTH, and no backend is even connected.
	c := rawDial(t, addr)
	probe := authProbe(pre)
	c.send(probe...)
	for _, p := range probe {
		assert.Equal(t, noAuth, c.reply(), "%v", p)
	}
	_, err := c.nc.Write([]byte("GET preauth-inline\r\nMGET preauth-a preauth-b\r\n"))
	require.NoError(t, err)
	assert.Equal(t, noAuth, c.reply())
	assert.Equal(t, noAuth, c.reply())
	assert.Equal(t, "-ERR invalid password\r\n", c.do("AUTH", "wrong"))
	assert.Equal(t, "-ERR invalid password\r\n", c.do("AUTH", secret[:len(secret)-1]))
	assert.Equal(t, "-ERR invalid password\r\n", c.do("AUTH", secret+"x"))
	assert.Equal(t, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", c.do("AUTH", "default", "wrong"))
	assert.True(t, strings.HasPrefix(c.do("HELLO", "2"), "-NOAUTH HELLO must be called"))
	assert.True(t, strings.HasPrefix(c.do("HELLO", "2", "AUTH", "default", "wrong"), "-WRONGPASS"))
	assert.Equal(t, noAuth, c.do("GET", pre[0]))
	for i, r := range recs {
		assert.Empty(t, r.received(), "backend %d: connected before any client authenticated", i)
	}

	// 2. One pipeline: commands, AUTH, commands. Only those after AUTH
	// reach the backends, each behind the proxy's own AUTH.
	var batch [][]string
	batch = append(batch, probe...)
	batch = append(batch, cmd("AUTH", secret))
	after := authProbe(post)
	batch = append(batch, after...)
	c.send(batch...)
	for _, p := range probe {
		assert.Equal(t, noAuth, c.reply(), "%v before AUTH in the pipeline", p)
	}
	assert.Equal(t, "+OK\r\n", c.reply())
	for _, p := range after {
		assert.NotEqual(t, noAuth, c.reply(), "%v after AUTH in the pipeline", p)
	}

	// 3. A wrong AUTH in a pipeline de-authenticates at once.
	c.send(cmd("AUTH", "wrong"), cmd("GET", pre[1]), cmd("MGET", pre[0], pre[1], pre[2]), cmd("AUTH", secret), cmd("GET", post[1]))
	assert.Equal(t, "-ERR invalid password\r\n", c.reply())
	assert.Equal(t, noAuth, c.reply())
	assert.Equal(t, noAuth, c.reply())
	assert.Equal(t, "+OK\r\n", c.reply())
	assert.Equal(t, "+OK\r\n", c.reply()) // pipeRedis answers GET +OK

	// 4. Authentication belongs to the connection: another client is not
	// authenticated by the first one's AUTH. RESET de-authenticates.
	c2 := rawDial(t, addr)
	c2.send(probe...)
	for _, p := range probe {
		assert.Equal(t, noAuth, c2.reply(), "%v from a second client", p)
	}
	assert.Equal(t, "+RESET\r\n", c.do("RESET"))
	assert.Equal(t, noAuth, c.do("GET", pre[2]))

	// What the backends received: the proxy's AUTH first on every
	// connection, then only commands sent after AUTH.
	authInit := resp.AppendCommandString(nil, "AUTH", secret)
	reached := 0
	for i, r := range recs {
		for j, stream := range r.received() {
			assert.NotContains(t, string(stream), "preauth", "backend %d, connection %d", i, j)
			require.True(t, bytes.HasPrefix(stream, authInit), "backend %d, connection %d starts with %q", i, j, stream)
			rd := resp.NewReader(bytes.NewReader(stream[len(authInit):]), protocol.Limits{})
			var cmd resp.Command
			for rd.ReadCommand(&cmd) == nil {
				reached++
				hasPost := false
				for _, a := range cmd.Args {
					hasPost = hasPost || bytes.HasPrefix(a, []byte("postauth-"))
				}
				name := strings.ToUpper(string(cmd.Args[0]))
				assert.True(t, hasPost || name == "LOLWUT" || name == "COMMAND" || name == "PING",
					"backend %d received %q", i, cmd.Args)
			}
		}
	}
	assert.Positive(t, reached, "the commands after AUTH reached the backends")
}

// startProxyConfig serves cfg on a free loopback port, shut down at
// cleanup, as startProxy does for real backends.
func startProxyConfig(t *testing.T, cfg proxy.Config) (*proxy.Server, string) {
	t.Helper()
	return startProxy(t, cfg.Protocol, nil, func(c *proxy.Config) { *c = cfg })
}

// TestRedisAuthSecretNotLogged runs a redis_auth pool through wrong
// AUTHs, a backend whose requirepass differs (its AUTH fails), a backend
// killed and restarted on its port (refused connections, ejection,
// reconnection, reinstatement) and malformed client input, with every
// log record captured at debug level: the password appears in no log
// record, in no reply and in neither form of the stats.
func TestRedisAuthSecretNotLogged(t *testing.T) {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	secret := "s3cret-" + hex.EncodeToString(b)

	good := testserver.StartRedis(t, testserver.RedisOptions{Password: secret})
	other := testserver.StartRedis(t, testserver.RedisOptions{Password: "not-the-pool-password"})
	flaky := testserver.StartRedis(t, testserver.RedisOptions{Password: secret})
	var logs testserver.SyncBuffer
	cfg := proxy.Config{
		Name: "secret", Protocol: protocol.Redis, Auth: secret,
		Servers: []shard.Server{{Addr: good.Addr}, {Addr: other.Addr}, {Addr: flaky.Addr}},
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	cfg.Ring.Distribution = shard.Modula
	cfg.Backend.Timeout = 2 * time.Second
	cfg.Backend.AutoEject = true
	cfg.Backend.FailureLimit = 1
	cfg.Backend.RetryTimeout = 100 * time.Millisecond
	s, addr := startProxyConfig(t, cfg)
	keys := keysWithPrefix(t, s, "k", 3)
	var srvOf [3]int // server index (ring order) of keys[i]
	for i, k := range keys {
		srvOf[i] = s.Ring().PickString(k)
	}
	var replies strings.Builder
	c := rawDial(t, addr)
	do := func(args ...string) string {
		r := c.do(args...)
		replies.WriteString(r)
		return r
	}

	for _, wrong := range [][]string{
		cmd("AUTH", "wrong"), cmd("AUTH", secret+"x"), cmd("AUTH", secret[:8]), cmd("AUTH", "default", "wrong"),
		cmd("AUTH", secret, secret), cmd("HELLO", "2", "AUTH", "default", "wrong"), cmd("GET", keys[0]),
	} {
		assert.True(t, strings.HasPrefix(do(wrong...), "-"), "%v", wrong)
	}
	require.Equal(t, "+OK\r\n", do("AUTH", secret))
	for _, k := range keys {
		do("SET", k, "v")
		do("GET", k)
	}
	do("MGET", keys[0], keys[1], keys[2])
	do("MSET", keys[0], "a", keys[1], "b", keys[2], "c")

	// The flaky backend dies: refused, ejected; then it comes back on its
	// port and is reinstated, with the password sent again.
	var flakyIdx, flakyKey int
	for i := range keys {
		if s.Ring().Server(srvOf[i]).Addr == flaky.Addr {
			flakyIdx, flakyKey = srvOf[i], i
		}
	}
	flaky.Stop()
	do("GET", keys[flakyKey])
	require.Eventually(t, func() bool { return !s.Live(flakyIdx) }, 5*time.Second, 10*time.Millisecond)
	do("GET", keys[flakyKey]) // served by another server meanwhile
	restarted := testserver.StartRedis(t, testserver.RedisOptions{Port: flaky.Port, Password: secret})
	require.Equal(t, flaky.Addr, restarted.Addr)
	require.Eventually(t, func() bool { return s.Live(flakyIdx) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "+OK\r\n", do("SET", keys[flakyKey], "again"))
	assert.Equal(t, "$5\r\nagain\r\n", do("GET", keys[flakyKey]))

	// Malformed input after AUTH closes the connection (logged at debug).
	bad := rawDial(t, addr)
	bad.send(cmd("AUTH", secret))
	replies.WriteString(bad.reply())
	_, err = bad.nc.Write([]byte("*1\r\n$x\r\n"))
	require.NoError(t, err)
	replies.WriteString(bad.reply())
	assert.True(t, bad.closed())

	// Every kind of record was produced, so the check below covers them.
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "client connection closed") }, 5*time.Second, 10*time.Millisecond)
	for _, msg := range []string{"init request failed", "server ejected", "server reinstated", "server connection closed"} {
		assert.Contains(t, logs.String(), msg)
	}
	st := &proxy.StatsServer{Pools: []*proxy.Server{s}, Version: "test"}
	doc := string(st.Document(time.Now()))
	assert.Contains(t, doc, `"secret"`, "the pool is in the stats")
	assert.NotContains(t, logs.String(), secret, "logs")
	assert.NotContains(t, replies.String(), secret, "replies")
	assert.NotContains(t, doc, secret, "stats JSON")
	assert.NotContains(t, fmt.Sprintf("%+v", s.Stats()), secret, "Server.Stats")
	t.Logf("%d log records, %d bytes of replies, %d bytes of stats checked", strings.Count(logs.String(), "\n"), replies.Len(), len(doc))
}
