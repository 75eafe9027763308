package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/metrics"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// serveProxy serves a Redis pool named name over servers on a free port.
func serveProxy(t *testing.T, name string, servers []shard.Server, eject bool) (*proxy.Server, string) {
	t.Helper()
	cfg := proxy.Config{Name: name, Protocol: protocol.Redis, Servers: servers, Ring: shard.RingOptions{Distribution: shard.Modula}}
	cfg.Pool.Timeout = 5 * time.Second
	if eject {
		cfg.Pool.AutoEject = true
		cfg.Pool.FailureLimit = 1
		cfg.Pool.RetryTimeout = time.Hour
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

// gather scrapes c and returns the value of every sample by name and
// labels ("pool" or "pool/server").
func gather(t *testing.T, c prometheus.Collector) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		vals := map[string]float64{}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, lp := range m.GetLabel() {
				if key != "" {
					key += "/"
				}
				key += lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				vals[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				vals[key] = m.GetGauge().GetValue()
			default:
				t.Fatalf("%s: unexpected type %v", mf.GetName(), mf.GetType())
			}
		}
		out[mf.GetName()] = vals
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
	m := gather(t, metrics.NewCollector([]*proxy.Server{s}))

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
	m := gather(t, metrics.NewCollector([]*proxy.Server{s}))
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
	m := gather(t, metrics.NewCollector([]*proxy.Server{s}))
	assert.Equal(t, float64(0), m["walnut_server_live"]["gamma/only"])
	assert.Equal(t, []string{"gamma"}, metrics.Unready([]*proxy.Server{s}))
}
