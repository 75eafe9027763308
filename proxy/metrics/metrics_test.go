package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/proxy/metrics"
	"github.com/walnutproxy/walnut/shard"
)

// serveProxy serves a Redis pool named name over servers on a free port.
func serveProxy(t *testing.T, name string, servers []shard.Server, eject bool) (*proxy.Server, string) {
	t.Helper()
	cfg := proxy.Config{Name: name, Protocol: protocol.Redis, Servers: servers, Ring: shard.RingOptions{Distribution: shard.Modula}}
	cfg.Backend.Timeout = 5 * time.Second
	if eject {
		cfg.Backend.AutoEject = true
		cfg.Backend.FailureLimit = 1
		cfg.Backend.RetryTimeout = time.Hour
	}
	s, err := proxy.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.True(t, errors.Is(<-done, proxy.ErrServerClosed))
	})
	return s, l.Addr().String()
}

// pools returns a Source.Pools reporting ss.
func pools(ss ...*proxy.Server) func() []*proxy.Server {
	return func() []*proxy.Server { return ss }
}

// A scrape is what gather read: the value of every counter and gauge, and
// every histogram, by name and labels ("pool", "pool/server" or
// "pool/command").
type scrape struct {
	vals  map[string]map[string]float64
	hists map[string]map[string]*dto.Histogram
}

// gather scrapes c with a pedantic registry, which also checks that every
// metric collected was described.
func gather(t *testing.T, c prometheus.Collector) scrape {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return gatherFrom(t, reg)
}

// gatherFrom scrapes reg.
func gatherFrom(t *testing.T, reg prometheus.Gatherer) scrape {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := scrape{vals: map[string]map[string]float64{}, hists: map[string]map[string]*dto.Histogram{}}
	for _, mf := range mfs {
		vals := map[string]float64{}
		hists := map[string]*dto.Histogram{}
		for _, m := range mf.GetMetric() {
			// The pool first, then the other labels in name order.
			var key, rest string
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "pool" {
					key = lp.GetValue()
				} else {
					rest += "/" + lp.GetValue()
				}
			}
			key += rest
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				vals[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				vals[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				hists[key] = m.GetHistogram()
			default:
				t.Fatalf("%s: unexpected type %v", mf.GetName(), mf.GetType())
			}
		}
		if len(hists) > 0 {
			out.hists[mf.GetName()] = hists
		} else {
			out.vals[mf.GetName()] = vals
		}
	}
	return out
}

func TestCollectorMatchesStats(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	s, addr := serveProxy(t, "alpha", []shard.Server{{Addr: r1.Addr}, {Addr: r2.Addr, Name: "second"}}, false)

	const n = 40
	c := testserver.DialRedis(t, addr)
	for i := range n {
		got, err := c.Do("SET", "key:"+strconv.Itoa(i), "v")
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
	}
	got, err := c.Do("MGET", "key:1", "key:2", "key:3", "key:4")
	require.NoError(t, err)
	require.NotEmpty(t, got)

	// Stats and the scrape are taken with the client idle, so they agree.
	st := s.Stats()
	m := gather(t, metrics.NewCollector(metrics.Source{Pools: pools(s)})).vals

	assert.Equal(t, float64(st.ClientEOF), m["walnut_client_eof_total"]["alpha"])
	assert.Equal(t, float64(st.ClientErr), m["walnut_client_err_total"]["alpha"])
	assert.Equal(t, float64(1), m["walnut_client_connections"]["alpha"])
	assert.Equal(t, float64(st.ServerEjects), m["walnut_server_ejects_total"]["alpha"])
	assert.Equal(t, float64(st.ForwardError), m["walnut_forward_error_total"]["alpha"])
	assert.Equal(t, float64(st.Fragments), m["walnut_fragments_total"]["alpha"])
	assert.Positive(t, m["walnut_fragments_total"]["alpha"], "the MGET was split")

	require.Len(t, st.Servers, 2)
	var requests float64
	for _, ss := range st.Servers {
		k := "alpha/" + ss.Name
		for name, want := range map[string]int64{
			"walnut_server_eof_total":            ss.ServerEOF,
			"walnut_server_err_total":            ss.ServerErr,
			"walnut_server_timedout_total":       ss.ServerTimedOut,
			"walnut_server_connections":          ss.ServerConnections,
			"walnut_server_requests_total":       ss.Requests,
			"walnut_server_request_bytes_total":  ss.RequestBytes,
			"walnut_server_responses_total":      ss.Responses,
			"walnut_server_response_bytes_total": ss.ResponseBytes,
			"walnut_server_in_queue":             ss.InQueue,
			"walnut_server_in_queue_bytes":       ss.InQueueBytes,
			"walnut_server_out_queue":            ss.OutQueue,
			"walnut_server_out_queue_bytes":      ss.OutQueueBytes,
			"walnut_server_ejections_total":      ss.Ejects,
			"walnut_server_init_errors_total":    ss.InitErrors,
		} {
			v, ok := m[name][k]
			require.True(t, ok, "%s{%s} missing", name, k)
			assert.Equal(t, float64(want), v, "%s{%s}", name, k)
		}
		assert.Equal(t, float64(0), m["walnut_server_ejected_at_seconds"][k])
		assert.Equal(t, float64(1), m["walnut_server_live"][k])
		assert.Positive(t, m["walnut_server_request_bytes_total"][k], k)
		requests += m["walnut_server_requests_total"][k]
	}
	assert.Contains(t, m["walnut_server_live"], "alpha/second")
	// n SETs and the MGET's parts, one per server.
	assert.Equal(t, float64(n)+m["walnut_fragments_total"]["alpha"], requests)
	assert.Empty(t, metrics.Unready([]*proxy.Server{s}))
}

func TestCollectorEjectedServer(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	s, addr := serveProxy(t, "beta", []shard.Server{{Addr: r.Addr, Name: "up"}, {Addr: dead, Name: "down"}}, true)

	// Send keys until one lands on the dead server and it is ejected.
	c := testserver.DialRedis(t, addr)
	before := time.Now()
	for i := 0; s.Stats().ServerEjects == 0; i++ {
		require.Less(t, i, 1000, "never ejected")
		_, _ = c.Do("SET", fmt.Sprintf("k%d", i), "v")
	}
	m := gather(t, metrics.NewCollector(metrics.Source{Pools: pools(s)})).vals
	assert.Equal(t, float64(1), m["walnut_server_ejects_total"]["beta"])
	assert.Equal(t, float64(1), m["walnut_server_ejections_total"]["beta/down"])
	assert.Equal(t, float64(0), m["walnut_server_live"]["beta/down"])
	assert.Equal(t, float64(1), m["walnut_server_live"]["beta/up"])
	at := m["walnut_server_ejected_at_seconds"]["beta/down"]
	assert.InDelta(t, float64(before.UnixMicro())/1e6, at, 60)
	assert.GreaterOrEqual(t, at, float64(before.Unix()))
	assert.Positive(t, m["walnut_forward_error_total"]["beta"])
	// One live server left: the pool is still ready.
	assert.Empty(t, metrics.Unready([]*proxy.Server{s}))
}

func TestCollectorEveryServerEjected(t *testing.T) {
	// With every server ejected the proxy routes with the full ring, as
	// twemproxy does; the metrics and readiness must still say none is live.
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	s, addr := serveProxy(t, "gamma", []shard.Server{{Addr: dead, Name: "only"}}, true)
	c := testserver.DialRedis(t, addr)
	for i := 0; s.Stats().ServerEjects == 0; i++ {
		require.Less(t, i, 1000, "never ejected")
		_, _ = c.Do("SET", fmt.Sprintf("k%d", i), "v")
	}
	m := gather(t, metrics.NewCollector(metrics.Source{Pools: pools(s)})).vals
	assert.Equal(t, float64(0), m["walnut_server_live"]["gamma/only"])
	assert.Equal(t, []string{"gamma"}, metrics.Unready([]*proxy.Server{s}))
}

// checkHistogram checks that the Prometheus histogram got is want with
// its per-bucket counts made cumulative.
func checkHistogram(t *testing.T, want proxy.Histogram, got *dto.Histogram, name string) {
	t.Helper()
	require.NotNil(t, got, name)
	assert.Equal(t, want.Count, got.GetSampleCount(), name)
	assert.InDelta(t, want.Sum, got.GetSampleSum(), 1e-9, name)
	require.Len(t, got.GetBucket(), len(want.Bounds), name)
	var cum uint64
	for i, b := range got.GetBucket() {
		cum += want.Counts[i]
		assert.Equal(t, want.Bounds[i], b.GetUpperBound(), "%s bucket %d", name, i)
		assert.Equal(t, cum, b.GetCumulativeCount(), "%s bucket le=%v", name, b.GetUpperBound())
	}
	// What is left is the +Inf bucket, which Prometheus derives from the
	// count.
	assert.Equal(t, want.Count, cum+want.Counts[len(want.Counts)-1], name)
}

func TestCollectorHistograms(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	s, addr := serveProxy(t, "alpha", []shard.Server{{Addr: r1.Addr}, {Addr: r2.Addr}}, false)

	const sets, gets = 31, 17
	c := testserver.DialRedis(t, addr)
	for i := range sets {
		got, err := c.Do("SET", "key:"+strconv.Itoa(i), "v")
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
	}
	for i := range gets {
		got, err := c.Do("GET", "key:"+strconv.Itoa(i))
		require.NoError(t, err)
		require.Equal(t, "v", got)
	}

	sc := gather(t, metrics.NewCollector(metrics.Source{Pools: pools(s)}))
	lat := sc.hists["walnut_request_duration_seconds"]
	require.Len(t, lat, 2, "only the commands sent: %v", lat)
	assert.Equal(t, uint64(gets), lat["alpha/get"].GetSampleCount())
	assert.Equal(t, uint64(sets), lat["alpha/set"].GetSampleCount())
	assert.Positive(t, lat["alpha/get"].GetSampleSum())
	assert.Positive(t, lat["alpha/set"].GetSampleSum())
	// Bucket by bucket, as the proxy counted (the client is idle).
	want := s.Latencies()
	require.Len(t, want, 2)
	for _, cl := range want {
		checkHistogram(t, cl.Histogram, lat["alpha/"+cl.Command], cl.Command)
	}

	// Every request reached a server and got its reply: one round trip
	// each, on the server the request counter names.
	rtt := sc.hists["walnut_server_rtt_seconds"]
	require.Len(t, rtt, 2)
	var total uint64
	for _, ss := range s.Stats().Servers {
		k := "alpha/" + ss.Name
		h := rtt[k]
		require.NotNil(t, h, k)
		assert.Equal(t, sc.vals["walnut_server_requests_total"][k], float64(h.GetSampleCount()), k)
		assert.Positive(t, h.GetSampleCount(), "keys on both servers: %s", k)
		assert.Positive(t, h.GetSampleSum(), k)
		checkHistogram(t, ss.RTT, h, k)
		total += h.GetSampleCount()
	}
	assert.Equal(t, uint64(sets+gets), total)
}

func TestCollectorPoolsChange(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	alpha, addrA := serveProxy(t, "alpha", []shard.Server{{Addr: r1.Addr, Name: "one"}}, false)
	beta, _ := serveProxy(t, "beta", []shard.Server{{Addr: r1.Addr}}, false)

	var mu sync.Mutex
	current := []*proxy.Server{alpha}
	set := func(ss ...*proxy.Server) {
		mu.Lock()
		defer mu.Unlock()
		current = ss
	}
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(metrics.NewCollector(metrics.Source{Pools: func() []*proxy.Server {
		mu.Lock()
		defer mu.Unlock()
		return current
	}})))
	c := testserver.DialRedis(t, addrA)
	for i := range 5 {
		_, err := c.Do("SET", "k"+strconv.Itoa(i), "v")
		require.NoError(t, err)
	}

	sc := gatherFrom(t, reg)
	assert.Equal(t, map[string]float64{"alpha": 1}, sc.vals["walnut_client_connections"])
	assert.Equal(t, map[string]float64{"alpha/one": 5}, sc.vals["walnut_server_requests_total"])

	set(alpha, beta)
	sc = gatherFrom(t, reg)
	assert.Equal(t, map[string]float64{"alpha": 1, "beta": 0}, sc.vals["walnut_client_connections"])

	// A reload adding a server: it is reported, and the kept server keeps
	// its counters and its round-trip histogram.
	cfg := alpha.Config()
	cfg.Servers = append(cfg.Servers, shard.Server{Addr: r2.Addr, Name: "two"})
	require.NoError(t, alpha.Reload(cfg))
	sc = gatherFrom(t, reg)
	assert.Equal(t, map[string]float64{"alpha/one": 5, "alpha/two": 0, "beta/" + r1.Addr: 0}, sc.vals["walnut_server_requests_total"])
	assert.Equal(t, uint64(5), sc.hists["walnut_server_rtt_seconds"]["alpha/one"].GetSampleCount())
	assert.Equal(t, uint64(0), sc.hists["walnut_server_rtt_seconds"]["alpha/two"].GetSampleCount())
	assert.Equal(t, uint64(5), sc.hists["walnut_request_duration_seconds"]["alpha/set"].GetSampleCount())

	set(beta)
	sc = gatherFrom(t, reg)
	assert.Equal(t, map[string]float64{"beta": 0}, sc.vals["walnut_client_connections"])
	assert.NotContains(t, sc.hists, "walnut_request_duration_seconds", "beta has served nothing")
	assert.Len(t, sc.hists["walnut_server_rtt_seconds"], 1)
}

func TestCollectorReloads(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	s, _ := serveProxy(t, "alpha", []shard.Server{{Addr: r.Addr}}, false)
	tests := []struct {
		give               metrics.ReloadStats
		reloads, failures  float64
		lastOK, lastSecond float64
	}{
		{give: metrics.ReloadStats{LastOK: true}, lastOK: 1},
		{
			give:    metrics.ReloadStats{Successes: 3, Failures: 2, LastSuccess: time.Unix(1700000000, 500e6)},
			reloads: 5, failures: 2, lastOK: 0, lastSecond: 1700000000.5,
		},
		{
			give:    metrics.ReloadStats{Successes: 1, LastSuccess: time.Unix(1800000000, 0), LastOK: true},
			reloads: 1, lastOK: 1, lastSecond: 1800000000,
		},
	}
	for _, tt := range tests {
		m := gather(t, metrics.NewCollector(metrics.Source{
			Pools:   pools(s),
			Reloads: func() metrics.ReloadStats { return tt.give },
		})).vals
		assert.Equal(t, map[string]float64{"": tt.reloads}, m["walnut_config_reloads_total"], "%+v", tt.give)
		assert.Equal(t, map[string]float64{"": tt.failures}, m["walnut_config_reload_failures_total"], "%+v", tt.give)
		assert.Equal(t, map[string]float64{"": tt.lastOK}, m["walnut_config_last_reload_successful"], "%+v", tt.give)
		assert.Equal(t, map[string]float64{"": tt.lastSecond}, m["walnut_config_last_reload_success_timestamp_seconds"], "%+v", tt.give)
		assert.Contains(t, m, "walnut_client_connections")
	}

	// Without Reloads there are no reload metrics.
	m := gather(t, metrics.NewCollector(metrics.Source{Pools: pools(s)})).vals
	for name := range m {
		assert.NotContains(t, name, "walnut_config_")
	}
}

// countingLocker is a sync.Mutex that counts its Lock calls and says
// whether it is held.
type countingLocker struct {
	mu     sync.Mutex
	locks  int
	locked bool
}

func (l *countingLocker) Lock() {
	l.mu.Lock()
	l.locks++
	l.locked = true
}

func (l *countingLocker) Unlock() {
	l.locked = false
	l.mu.Unlock()
}

func TestCollectorLock(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	s, _ := serveProxy(t, "alpha", []shard.Server{{Addr: r.Addr}}, false)
	var l countingLocker
	heldDuringPools := false
	m := gather(t, metrics.NewCollector(metrics.Source{
		Pools: func() []*proxy.Server {
			heldDuringPools = l.locked
			return []*proxy.Server{s}
		},
		Lock: &l,
	})).vals
	assert.Contains(t, m["walnut_server_live"], "alpha/"+r.Addr)
	assert.Equal(t, 1, l.locks)
	assert.True(t, heldDuringPools)
	assert.False(t, l.locked, "released")
}
