package fleet_test

// The tests of this file reload the configuration of a Fleet in front of
// real redis-servers, with nutcracker, started with the same configuration
// over the same servers, as the oracle of key placement. The Fleet serves
// its stats and admin servers, as walnut does.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/proxy/fleet"
)

// poolYAML is a redis pool of a nutcracker.yml; servers are entries such
// as "127.0.0.1:6379:1".
func poolYAML(name, listen string, servers ...string) string {
	y := fmt.Sprintf("%s:\n  listen: %s\n  redis: true\n  distribution: ketama\n  timeout: 5000\n  servers:\n", name, listen)
	for _, s := range servers {
		y += "    - " + s + "\n"
	}
	return y
}

// weighted is a server entry: addr with weight w.
func weighted(addr string, w int) string { return addr + ":" + strconv.Itoa(w) }

// A reloadRig is a Fleet started by a reload test from its configuration
// file, logging to a buffer, with its stats server and admin server.
type reloadRig struct {
	f        *fleet.Fleet
	conf     string // the configuration file
	logs     *testserver.SyncBuffer
	stats    string // the stats server's address
	admin    string // the admin server's address
	serveErr chan error
	served   error // what Serve returned, once exited has seen it
	done     bool  // Serve has returned
	stopped  bool  // shutdown was called
}

// startReloadRig writes yml and starts a Fleet with it, with a fresh stats
// document on every read (StatsInterval 0) and the admin server.
func startReloadRig(t *testing.T, yml string) *reloadRig {
	t.Helper()
	dir := t.TempDir()
	rig := &reloadRig{
		conf:     writeFile(t, dir, "nutcracker.yml", yml),
		logs:     &testserver.SyncBuffer{},
		serveErr: make(chan error, 1),
	}
	file, err := config.Load(rig.conf)
	require.NoError(t, err)
	rig.f, err = fleet.New(file, fleet.Options{
		Logger:    slog.New(slog.NewTextHandler(rig.logs, nil)),
		StatsAddr: "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0",
		Service:   "walnut",
		Version:   "test",
	})
	require.NoError(t, err)
	require.NoError(t, rig.f.Listen())
	rig.stats = rig.f.StatsAddr().String()
	rig.admin = rig.f.AdminAddr().String()
	go func() { rig.serveErr <- rig.f.Serve() }()
	t.Cleanup(func() {
		// A clean stop.
		if !rig.stopped {
			rig.shutdown(t)
		}
		if t.Failed() {
			t.Logf("fleet log:\n%s", rig.log())
		}
	})
	return rig
}

// log returns what the Fleet has logged.
func (rig *reloadRig) log() string { return rig.logs.String() }

// exited reports whether Serve has returned.
func (rig *reloadRig) exited() bool {
	if !rig.done {
		select {
		case rig.served = <-rig.serveErr:
			rig.done = true
		default:
		}
	}
	return rig.done
}

// shutdown shuts the Fleet down, as walnut does on SIGTERM, and checks that
// it stopped cleanly: Shutdown returns nil and Serve ErrServerClosed.
func (rig *reloadRig) shutdown(t *testing.T) {
	t.Helper()
	rig.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	assert.NoError(t, rig.f.Shutdown(ctx), "shutdown")
	if !rig.done {
		select {
		case rig.served = <-rig.serveErr:
			rig.done = true
		case <-time.After(15 * time.Second):
			t.Fatal("Serve did not return after Shutdown")
		}
	}
	assert.ErrorIs(t, rig.served, fleet.ErrServerClosed, "Serve's result")
}

// rewrite replaces the configuration file.
func (rig *reloadRig) rewrite(t *testing.T, yml string) {
	t.Helper()
	require.NoError(t, os.WriteFile(rig.conf, []byte(yml), 0o644))
}

// reloadOutcome matches the Fleet's line on the outcome of a reload (the
// proxy logs "configuration reloaded" per pool too, without file=).
var reloadOutcome = regexp.MustCompile(`(?m)^.*msg="configuration (reloaded|reload failed)" file=.*$`)

// reloadFile calls ReloadFile, as walnut does on SIGHUP, and returns the
// Fleet's log line on the outcome.
func (rig *reloadRig) reloadFile(t *testing.T) string {
	t.Helper()
	before := len(reloadOutcome.FindAllString(rig.log(), -1))
	_ = rig.f.ReloadFile("SIGHUP")
	all := reloadOutcome.FindAllString(rig.log(), -1)
	require.Greater(t, len(all), before, "no reload logged after ReloadFile")
	return all[before]
}

// post asks for a reload with POST /reload and returns the status and body.
func (rig *reloadRig) post(t *testing.T) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post("http://"+rig.admin+"/reload", "text/plain", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// scrape reads /metrics and parses it with expfmt.
func (rig *reloadRig) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, "http://"+rig.admin+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return mfs
}

// metric returns the metric of family name whose labels include the
// name-value pairs labels, or nil.
func metric(mfs map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns the value of a counter or gauge, or -1 if m is nil.
func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	default:
		return m.GetGauge().GetValue()
	}
}

// labelValues returns the sorted values of label in family name.
func labelValues(mfs map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, m := range mfs[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && !slices.Contains(out, lp.GetValue()) {
				out = append(out, lp.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}

// newRedisClient returns a go-redis client of one connection to addr that
// does not retry (so that no failure is hidden) and counts its dials.
// walnut, as nutcracker, speaks RESP2 and has no CLIENT command.
func newRedisClient(t *testing.T, addr string, dials *atomic.Int64) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		DisableIdentity: true,
		PoolSize:        1,
		MaxRetries:      -1,
		DialTimeout:     5 * time.Second,
		ReadTimeout:     10 * time.Second,
		WriteTimeout:    10 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials != nil {
				dials.Add(1)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// setAll writes value(k) for every key of keys through rdb, pipelined.
func setAll(t *testing.T, rdb *redis.Client, keys []string, value func(string) string) {
	t.Helper()
	ctx := context.Background()
	for start := 0; start < len(keys); start += 200 {
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys[start:min(start+200, len(keys))] {
				p.Set(ctx, k, value(k), 0)
			}
			return nil
		})
		require.NoError(t, err)
		for _, c := range cmds {
			require.Equal(t, "OK", c.(*redis.StatusCmd).Val())
		}
	}
}

// getAll reads keys through rdb, pipelined; a missing key reads as "".
func getAll(t *testing.T, rdb *redis.Client, keys []string) []string {
	t.Helper()
	ctx := context.Background()
	out := make([]string, 0, len(keys))
	for start := 0; start < len(keys); start += 200 {
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys[start:min(start+200, len(keys))] {
				p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			require.NoError(t, err)
		}
		for _, c := range cmds {
			v, err := c.(*redis.StringCmd).Result()
			if errors.Is(err, redis.Nil) {
				v, err = "", nil
			}
			require.NoError(t, err)
			out = append(out, v)
		}
	}
	return out
}

// An oracle is nutcracker running one pool's configuration over the same
// redis-servers as walnut, on its own listen address. It is reached with
// testserver's plain RESP client: go-redis starts every connection with
// HELLO, on which nutcracker closes the connection.
type oracle struct {
	n       *testserver.Nutcracker
	conn    *testserver.RedisConn
	servers []string // the servers' addresses
}

// set writes value(k) for every key of keys through nutcracker.
func (o *oracle) set(t *testing.T, keys []string, value func(string) string) {
	t.Helper()
	for _, k := range keys {
		got, err := o.conn.Do("SET", k, value(k))
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
	}
}

// get reads keys through nutcracker; a missing key reads as "".
func (o *oracle) get(t *testing.T, keys []string) []string {
	t.Helper()
	out := make([]string, len(keys))
	for i, k := range keys {
		var err error
		out[i], err = o.conn.Do("GET", k)
		require.NoError(t, err)
	}
	return out
}

// startOracle starts nutcracker with yml(listen) for a free listen
// address; servers are the addresses of the pool's servers.
func startOracle(t *testing.T, yml func(listen string) string, servers ...string) *oracle {
	t.Helper()
	listen := hostPort(testserver.FreePort(t, "127.0.0.1"))
	n := testserver.StartNutcracker(t, yml(listen), testserver.NutcrackerOptions{Listen: []string{listen}})
	return &oracle{n: n, conn: testserver.DialRedis(t, listen), servers: servers}
}

// stop stops nutcracker.
func (o *oracle) stop() {
	o.conn.Close()
	o.n.Stop()
}

// check checks that walnut (through wal) places keys as nutcracker does:
// keys written through nutcracker are each on exactly one of the pool's
// servers (read directly from each through direct), every server gets
// some, and walnut reads every one back, so it routes each to the server
// nutcracker chose; and keys written through walnut are read back through
// nutcracker. stage prefixes the keys, which must be new.
func (o *oracle) check(t *testing.T, stage string, wal *redis.Client, direct map[string]*redis.Client) {
	t.Helper()
	const n = 300
	value := func(k string) string { return "placed:" + k }
	viaNut := make([]string, n)
	viaWal := make([]string, n)
	for i := range n {
		// The number first: fnv1a_64, the default hash, spreads keys
		// that differ only in their last bytes poorly.
		viaNut[i] = fmt.Sprintf("%d:%s:nut", i, stage)
		viaWal[i] = fmt.Sprintf("%d:%s:walnut", i, stage)
	}
	o.set(t, viaNut, value)
	where := make([][]string, n)
	perServer := map[string]int{}
	for addr, rdb := range direct {
		for i, v := range getAll(t, rdb, viaNut) {
			if v != "" {
				where[i] = append(where[i], addr)
				perServer[addr]++
			}
		}
	}
	for i, w := range where {
		require.Len(t, w, 1, "%s: key %s on %v", stage, viaNut[i], w)
		require.Contains(t, o.servers, w[0], "%s: key %s on a server not in the configuration", stage, viaNut[i])
	}
	for _, s := range o.servers {
		assert.Positive(t, perServer[s], "%s: no key on %s: %v", stage, s, perServer)
	}
	got := getAll(t, wal, viaNut)
	for i, k := range viaNut {
		require.Equal(t, value(k), got[i], "%s: walnut reads %s elsewhere than nutcracker put it (%s)", stage, k, where[i][0])
	}
	setAll(t, wal, viaWal, value)
	got = o.get(t, viaWal)
	for i, k := range viaWal {
		require.Equal(t, value(k), got[i], "%s: nutcracker does not find %s where walnut put it", stage, k)
	}
}

// loadValue is the value the load clients write for key.
func loadValue(key string) string { return "load-value:" + key + ":" + strconv.Itoa(len(key)*31) }

// A loadClient pipelines batches of SET and GET through walnut with one
// go-redis connection, and checks every reply.
type loadClient struct {
	rdb      *redis.Client
	keys     []string
	dials    atomic.Int64
	requests atomic.Int64
	failures atomic.Int64

	mu    sync.Mutex
	first []string // the first failures
}

// run sends batches until stop is closed.
func (c *loadClient) run(stop <-chan struct{}) {
	ctx := context.Background()
	const pairs = 8
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		cmds, _ := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range pairs {
				k := c.keys[(n*2*pairs+2*i)%len(c.keys)]
				p.Set(ctx, k, loadValue(k), 0)
				p.Get(ctx, c.keys[(n*2*pairs+2*i+1)%len(c.keys)])
			}
			return nil
		})
		for _, cmd := range cmds {
			c.requests.Add(1)
			switch cmd := cmd.(type) {
			case *redis.StatusCmd:
				if v, err := cmd.Result(); err != nil || v != "OK" {
					c.fail(fmt.Sprintf("%v: %q, %v", cmd.Args(), v, err))
				}
			case *redis.StringCmd:
				k := cmd.Args()[1].(string)
				if v, err := cmd.Result(); err != nil || v != loadValue(k) {
					c.fail(fmt.Sprintf("GET %s: %q, %v", k, v, err))
				}
			}
		}
	}
}

func (c *loadClient) fail(msg string) {
	c.failures.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.first) < 5 {
		c.first = append(c.first, msg)
	}
}

// TestReloadUnderLoad reloads a Fleet three times (a server added through
// ReloadFile, one removed through POST /reload, the weights changed
// through ReloadFile) while go-redis clients pipeline SETs and GETs
// through it. No
// request may fail, no client connection may drop, every GET must return
// its own key's value, and after each reload walnut must place keys as
// nutcracker does with the new configuration.
//
// Removing or adding a server moves keys, so a key SET before a reload may
// be read after it from another server. The load's keys are therefore
// written to every server first, with the values the clients write: a
// GET routed anywhere finds its key's value, and a reply that is not its
// own request's is caught. Placement is checked with fresh keys.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("reloads under go-redis load, compared with nutcracker: a long load run, not part of the -short loop (proxy's TestReloadUnderLoad still runs)")
	}
	testserver.RequireBinary(t, "nutcracker")
	var addrs []string
	direct := map[string]*redis.Client{}
	for range 4 {
		s := testserver.StartRedis(t, testserver.RedisOptions{})
		addrs = append(addrs, s.Addr)
		direct[s.Addr] = newRedisClient(t, s.Addr, nil)
	}
	listen := hostPort(testserver.FreePort(t, "127.0.0.1"))
	yml := func(servers ...string) func(string) string {
		return func(listen string) string { return poolYAML("alpha", listen, servers...) }
	}
	initial := []string{weighted(addrs[0], 1), weighted(addrs[1], 1), weighted(addrs[2], 1)}
	rig := startReloadRig(t, yml(initial...)(listen))

	const clients, keysPerClient = 4, 200
	var load []*loadClient
	var seed []string
	for i := range clients {
		c := &loadClient{}
		for j := range keysPerClient {
			c.keys = append(c.keys, fmt.Sprintf("load:%d:%d", i, j))
		}
		c.rdb = newRedisClient(t, listen, &c.dials)
		seed = append(seed, c.keys...)
		load = append(load, c)
	}
	for _, rdb := range direct {
		setAll(t, rdb, seed, loadValue)
	}
	total := func() int64 {
		var n int64
		for _, c := range load {
			n += c.requests.Load()
		}
		return n
	}
	// waitMore waits until the clients have sent n more requests.
	waitMore := func(n int64) {
		t.Helper()
		target := total() + n
		require.Eventually(t, func() bool { return total() >= target }, 30*time.Second, 5*time.Millisecond,
			"the load stalled at %d requests", total())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range load {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(stop)
		}()
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)

	// walnut's own client for the placement checks, kept open.
	wal := newRedisClient(t, listen, nil)
	waitMore(500)
	o := startOracle(t, yml(initial...), addrs[:3]...)
	o.check(t, "initial", wal, direct)
	o.stop()

	stages := []struct {
		name    string
		servers []string
		post    bool
	}{
		{name: "add", servers: []string{weighted(addrs[0], 1), weighted(addrs[1], 1), weighted(addrs[2], 1), weighted(addrs[3], 1)}},
		{name: "remove", servers: []string{weighted(addrs[1], 1), weighted(addrs[2], 1), weighted(addrs[3], 1)}, post: true},
		{name: "weights", servers: []string{weighted(addrs[1], 3), weighted(addrs[2], 1), weighted(addrs[3], 2)}},
	}
	for _, st := range stages {
		rig.rewrite(t, yml(st.servers...)(listen))
		before, start := total(), time.Now()
		if st.post {
			code, body := rig.post(t)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "ok\n", body)
		} else {
			line := rig.reloadFile(t)
			require.Contains(t, line, `msg="configuration reloaded"`)
			require.Contains(t, line, "changed=1")
		}
		during, took := total()-before, time.Since(start)
		// The load goes on with the new configuration.
		waitMore(500)
		var servers []string
		for _, s := range st.servers {
			servers = append(servers, s[:strings.LastIndexByte(s, ':')])
		}
		o := startOracle(t, yml(st.servers...), servers...)
		o.check(t, st.name, wal, direct)
		o.stop()

		mfs := rig.scrape(t)
		slices.Sort(servers)
		assert.Equal(t, servers, labelValues(mfs, "walnut_server_live", "server"), st.name)
		assert.Equal(t, float64(clients+1), value(metric(mfs, "walnut_client_connections", "pool", "alpha")), st.name)
		t.Logf("%s: %d requests answered during the reload (%v), %d in all so far", st.name, during, took.Round(time.Millisecond), total())
	}
	waitMore(500)
	stopLoad()

	mfs := rig.scrape(t)
	assert.Equal(t, float64(0), value(metric(mfs, "walnut_client_eof_total", "pool", "alpha")), "no client closed")
	assert.Equal(t, float64(0), value(metric(mfs, "walnut_client_err_total", "pool", "alpha")), "no client failed")
	assert.Equal(t, float64(clients+1), value(metric(mfs, "walnut_client_connections", "pool", "alpha")))
	assert.Equal(t, float64(3), value(metric(mfs, "walnut_config_reloads_total")))
	assert.Equal(t, float64(0), value(metric(mfs, "walnut_config_reload_failures_total")))
	var failures int64
	for i, c := range load {
		failures += c.failures.Load()
		assert.Zero(t, c.failures.Load(), "client %d: %v", i, c.first)
		assert.Equal(t, int64(1), c.dials.Load(), "client %d reconnected", i)
		assert.Equal(t, uint32(1), c.rdb.PoolStats().TotalConns, "client %d", i)
		assert.Positive(t, c.requests.Load(), "client %d", i)
	}
	t.Logf("%d requests from %d clients, %d failed", total(), clients, failures)
	require.False(t, rig.exited())
}

// TestReloadRejected checks that a configuration walnut cannot apply
// changes nothing: walnut serves on with the same placement (checked
// against nutcracker with the old configuration), the same pools and
// servers and the same clients; the reason is logged at error level with
// the file, and the failure is counted in /metrics.
func TestReloadRejected(t *testing.T) {
	r0 := testserver.StartRedis(t, testserver.RedisOptions{})
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	direct := map[string]*redis.Client{r0.Addr: newRedisClient(t, r0.Addr, nil), r1.Addr: newRedisClient(t, r1.Addr, nil)}
	listen := hostPort(testserver.FreePort(t, "127.0.0.1"))
	good := func(listen string) string {
		return poolYAML("alpha", listen, weighted(r0.Addr, 1), weighted(r1.Addr, 1))
	}
	started := time.Now()
	rig := startReloadRig(t, good(listen))
	o := startOracle(t, good, r0.Addr, r1.Addr)
	var dials atomic.Int64
	wal := newRedisClient(t, listen, &dials)
	o.check(t, "before", wal, direct)

	// An address another process holds.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	other := taken.Addr().String()
	free := hostPort(testserver.FreePort(t, "127.0.0.1"))

	tests := []struct {
		name   string
		yml    string
		post   bool
		code   int    // POST's status
		reason string // in the reply and the log (where slog escapes quotes)
	}{
		{
			name: "syntax error", post: true, code: http.StatusBadRequest,
			yml:    "alpha:\n  listen: " + listen + "\n  redis: true\n  servers: [\n",
			reason: "nutcracker.yml:",
		},
		{
			name:   "unknown hash",
			yml:    strings.Replace(good(listen), "  redis: true\n", "  redis: true\n  hash: nosuchhash\n", 1),
			reason: `key "hash"`,
		},
		{
			// Accepted by package config, rejected by proxy.Config.Validate.
			name: "invalid new pool", post: true, code: http.StatusBadRequest,
			yml: good(listen) + "mc:\n  listen: " + hostPort(testserver.FreePort(t, "127.0.0.1")) +
				"\n  redis_db: 1\n  servers:\n" + server(r2.Addr),
			reason: "pool 'mc': proxy: pool \"mc\": redis_auth and redis_db need a redis pool",
		},
		{
			name: "protocol change", post: true, code: http.StatusBadRequest,
			yml:    strings.Replace(good(listen), "redis: true", "redis: false", 1),
			reason: "pool 'alpha': changing the protocol needs a restart",
		},
		{
			// With a server added too, which must not take effect.
			name: "listen address in use", post: true, code: http.StatusInternalServerError,
			yml:    poolYAML("alpha", other, weighted(r0.Addr, 1), weighted(r1.Addr, 1), weighted(r2.Addr, 1)),
			reason: "bind on pool 'alpha' to addr '" + other + "' failed: address already in use",
		},
		{
			// Pool "ab" (shorter names come first) is bound before "beta"
			// fails, and must be closed again.
			name: "new pool's address in use",
			yml: poolYAML("alpha", listen, weighted(r0.Addr, 1), weighted(r1.Addr, 1), weighted(r2.Addr, 1)) +
				poolYAML("ab", free, weighted(r0.Addr, 1)) +
				poolYAML("beta", other, weighted(r0.Addr, 1)),
			reason: "bind on pool 'beta' to addr '" + other + "' failed: address already in use",
		},
	}
	for i, tt := range tests {
		rig.rewrite(t, tt.yml)
		if tt.post {
			code, body := rig.post(t)
			assert.Equal(t, tt.code, code, "%s: %s", tt.name, body)
			assert.Contains(t, body, tt.reason, tt.name)
		} else {
			line := rig.reloadFile(t)
			assert.Contains(t, line, `msg="configuration reload failed" file=`+rig.conf, tt.name)
		}
		// Checked first, before a garbage collection in walnut could
		// close a listener leaked by the failed reload.
		_, err = net.DialTimeout("tcp", free, time.Second)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED, "%s: nothing listens on %s", tt.name, free)
		log := rig.log()
		assert.Regexp(t, `level=ERROR msg="configuration reload failed" file=`+regexp.QuoteMeta(rig.conf)+` trigger=[^\n]* err="[^\n]*`+
			regexp.QuoteMeta(strings.ReplaceAll(tt.reason, `"`, `\"`)),
			log, tt.name)

		// The old configuration serves on, unchanged.
		require.False(t, rig.exited(), tt.name)
		o.check(t, fmt.Sprintf("rejected%d", i), wal, direct)
		mfs := rig.scrape(t)
		assert.Equal(t, []string{"alpha"}, labelValues(mfs, "walnut_client_connections", "pool"), tt.name)
		assert.Equal(t, sorted(r0.Addr, r1.Addr), labelValues(mfs, "walnut_server_live", "server"), tt.name)
		assert.Equal(t, float64(1), value(metric(mfs, "walnut_client_connections", "pool", "alpha")), tt.name)
		assert.Equal(t, float64(i+1), value(metric(mfs, "walnut_config_reloads_total")), tt.name)
		assert.Equal(t, float64(i+1), value(metric(mfs, "walnut_config_reload_failures_total")), tt.name)
		assert.Equal(t, float64(0), value(metric(mfs, "walnut_config_last_reload_successful")), tt.name)
		last := value(metric(mfs, "walnut_config_last_reload_success_timestamp_seconds"))
		assert.InDelta(t, float64(started.Unix()), last, 10, "the start is the last success: %s", tt.name)
		doc, err := readStats(rig.stats)
		require.NoError(t, err)
		pool, ok := doc["alpha"].(map[string]any)
		require.True(t, ok, "%s: %v", tt.name, doc)
		assert.Contains(t, pool, r0.Addr)
		assert.Contains(t, pool, r1.Addr)
		assert.NotContains(t, pool, r2.Addr, tt.name)
		assert.NotContains(t, doc, "beta", tt.name)
		assert.NotContains(t, doc, "ab", tt.name)
	}
	_, err = net.DialTimeout("tcp", listen, time.Second)
	assert.NoError(t, err, "the old address still accepts")

	// A valid configuration after the failures is applied.
	beforeOK := time.Now()
	rig.rewrite(t, poolYAML("alpha", listen, weighted(r0.Addr, 1), weighted(r1.Addr, 1), weighted(r2.Addr, 1)))
	code, body := rig.post(t)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "ok\n", body)
	mfs := rig.scrape(t)
	assert.Equal(t, float64(len(tests)+1), value(metric(mfs, "walnut_config_reloads_total")))
	assert.Equal(t, float64(len(tests)), value(metric(mfs, "walnut_config_reload_failures_total")))
	assert.Equal(t, float64(1), value(metric(mfs, "walnut_config_last_reload_successful")))
	assert.GreaterOrEqual(t, value(metric(mfs, "walnut_config_last_reload_success_timestamp_seconds")), float64(beforeOK.Unix()))
	assert.Equal(t, sorted(r0.Addr, r1.Addr, r2.Addr), labelValues(mfs, "walnut_server_live", "server"))
	assert.Equal(t, int64(1), dials.Load(), "walnut's client stayed connected throughout")

	// Only POST reloads.
	code, _ = httpGet(t, "http://"+rig.admin+"/reload")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}

// sorted returns ss sorted.
func sorted(ss ...string) []string {
	ss = slices.Clone(ss)
	slices.Sort(ss)
	return ss
}

// TestReloadListenAddressChange moves a TCP pool and a unix socket pool to
// new addresses: clients connected before keep their connections, new
// clients connect on the new addresses, and the old ones refuse them.
// Moving back to an address freed by an earlier reload works too.
func TestReloadListenAddressChange(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	oldAddr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	newAddr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	oldSock, newSock := filepath.Join(dir, "old.sock"), filepath.Join(dir, "new.sock")
	require.Less(t, len(newSock), 100, "unix socket path too long")
	conf := func(tcp, sock string) string {
		return poolYAML("alpha", tcp, weighted(r.Addr, 1)) + poolYAML("sock", sock, weighted(r.Addr, 1))
	}
	rig := startReloadRig(t, conf(oldAddr, oldSock))

	oldTCP := testserver.DialRedis(t, oldAddr)
	got, err := oldTCP.Do("SET", "k", "before")
	require.NoError(t, err)
	require.Equal(t, "+OK", got)
	oldUnix, err := net.Dial("unix", oldSock)
	require.NoError(t, err)
	defer oldUnix.Close()
	oldUnixR := bufio.NewReader(oldUnix)
	require.Equal(t, "before", respDo(t, oldUnix, oldUnixR, "GET", "k"))

	rig.rewrite(t, conf(newAddr, newSock))
	line := rig.reloadFile(t)
	require.Contains(t, line, `msg="configuration reloaded"`)
	assert.Contains(t, line, "added=0 removed=0 changed=2")

	// Old connections work, on the same sockets.
	for i := range 20 {
		v := "after" + strconv.Itoa(i)
		got, err = oldTCP.Do("SET", "k", v)
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
		require.Equal(t, v, respDo(t, oldUnix, oldUnixR, "GET", "k"))
	}
	// New clients connect on the new addresses only.
	got, err = testserver.DialRedis(t, newAddr).Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "after19", got)
	newUnix, err := net.Dial("unix", newSock)
	require.NoError(t, err)
	defer newUnix.Close()
	assert.Equal(t, "after19", respDo(t, newUnix, bufio.NewReader(newUnix), "GET", "k"))
	_, err = net.DialTimeout("tcp", oldAddr, time.Second)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = net.Dial("unix", oldSock)
	assert.Error(t, err)
	assert.False(t, exists(oldSock), "the old socket file is removed")

	// The retired listeners' Serve returning is no failure.
	time.Sleep(100 * time.Millisecond)
	require.False(t, rig.exited(), "Serve returned: %v\n%s", rig.served, rig.log())
	mfs := rig.scrape(t)
	assert.Equal(t, float64(2), value(metric(mfs, "walnut_client_connections", "pool", "alpha")))
	assert.Equal(t, float64(2), value(metric(mfs, "walnut_client_connections", "pool", "sock")))

	// Back to the old TCP address, which the reload freed.
	rig.rewrite(t, conf(oldAddr, newSock))
	code, body := rig.post(t)
	require.Equal(t, http.StatusOK, code, body)
	got, err = testserver.DialRedis(t, oldAddr).Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "after19", got)
	_, err = net.DialTimeout("tcp", newAddr, time.Second)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	got, err = oldTCP.Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "after19", got, "the first client is still connected")

	rig.shutdown(t)
	assert.False(t, exists(newSock), "unix socket removed at exit")
}

// TestReloadAddRemovePool removes a pool, adds one and gives the removed
// pool's address to another new pool (rebound after the old listener is
// closed). The kept pool's client is undisturbed; the removed pool's
// client is disconnected once it has nothing in flight.
func TestReloadAddRemovePool(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	addrA := hostPort(testserver.FreePort(t, "127.0.0.1"))
	addrB := hostPort(testserver.FreePort(t, "127.0.0.1"))
	addrC := hostPort(testserver.FreePort(t, "127.0.0.1"))
	rig := startReloadRig(t, poolYAML("alpha", addrA, weighted(r.Addr, 1))+poolYAML("beta", addrB, weighted(r.Addr, 1)))

	ca := testserver.DialRedis(t, addrA)
	got, err := ca.Do("SET", "k", "v")
	require.NoError(t, err)
	require.Equal(t, "+OK", got)
	cb, err := net.Dial("tcp", addrB)
	require.NoError(t, err)
	defer cb.Close()
	cbR := bufio.NewReader(cb)
	require.Equal(t, "v", respDo(t, cb, cbR, "GET", "k"))

	rig.rewrite(t, poolYAML("alpha", addrA, weighted(r.Addr, 1))+
		poolYAML("delta", addrB, weighted(r.Addr, 1))+
		poolYAML("gamma", addrC, weighted(r.Addr, 1)))
	code, body := rig.post(t)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, rig.log(), `msg="configuration reloaded" file=`+rig.conf+` trigger="POST /reload" added=2 removed=1 changed=0 pools="[alpha delta gamma]"`)

	// The removed pool's client is closed: EOF.
	require.NoError(t, cb.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = cbR.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	require.Eventually(t, func() bool { return strings.Contains(rig.log(), `msg="removed pool stopped" pool=beta`) },
		10*time.Second, 10*time.Millisecond)

	for _, addr := range []string{addrB, addrC} {
		got, err := testserver.DialRedis(t, addr).Do("GET", "k")
		require.NoError(t, err, addr)
		assert.Equal(t, "v", got, addr)
	}
	got, err = ca.Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "v", got, "the kept pool's client is still connected")

	doc, err := readStats(rig.stats)
	require.NoError(t, err)
	for _, pool := range []string{"alpha", "delta", "gamma"} {
		assert.Contains(t, doc, pool)
	}
	assert.NotContains(t, doc, "beta")
	mfs := rig.scrape(t)
	assert.Equal(t, []string{"alpha", "delta", "gamma"}, labelValues(mfs, "walnut_client_connections", "pool"))
	assert.Equal(t, float64(1), value(metric(mfs, "walnut_client_connections", "pool", "alpha")))
	code, body = httpGet(t, "http://"+rig.admin+"/readyz")
	assert.Equal(t, http.StatusOK, code, body)

	// Remove the added pools again; the kept one serves on.
	rig.rewrite(t, poolYAML("alpha", addrA, weighted(r.Addr, 1)))
	line := rig.reloadFile(t)
	assert.Contains(t, line, "added=0 removed=2 changed=0")
	for _, addr := range []string{addrB, addrC} {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED, addr)
	}
	got, err = ca.Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "v", got)
	rig.shutdown(t)
}
