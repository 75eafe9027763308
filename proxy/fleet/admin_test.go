package fleet_test

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// checkBuckets checks a histogram scraped from /metrics: proxy's bounds
// (50µs to 10s, ascending) and then +Inf, which holds every observation,
// and cumulative counts that never decrease.
func checkBuckets(t *testing.T, h *dto.Histogram, name string) {
	t.Helper()
	require.NotNil(t, h, name)
	bs := h.GetBucket()
	require.Greater(t, len(bs), 2, name)
	last := len(bs) - 1
	assert.Equal(t, 50e-6, bs[0].GetUpperBound(), name)
	assert.Equal(t, 10.0, bs[last-1].GetUpperBound(), name)
	assert.True(t, math.IsInf(bs[last].GetUpperBound(), 1), name)
	assert.Equal(t, h.GetSampleCount(), bs[last].GetCumulativeCount(), name)
	for i := 1; i < len(bs); i++ {
		assert.Greater(t, bs[i].GetUpperBound(), bs[i-1].GetUpperBound(), name)
		assert.GreaterOrEqual(t, bs[i].GetCumulativeCount(), bs[i-1].GetCumulativeCount(), name)
	}
	assert.Equal(t, h.GetSampleCount(), bs[last-1].GetCumulativeCount(), "%s: loopback requests take less than 10s", name)
}

// TestAdminMetricsAfterTraffic sends exactly known traffic through walnut
// and checks the latency and round-trip histograms of /metrics against
// it, then reloads and checks the reload metrics.
func TestAdminMetricsAfterTraffic(t *testing.T) {
	r0 := testserver.StartRedis(t, testserver.RedisOptions{})
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	listen := hostPort(testserver.FreePort(t, "127.0.0.1"))
	yml := poolYAML("alpha", listen, weighted(r0.Addr, 1), weighted(r1.Addr, 1))
	started := time.Now()
	rig := startReloadRig(t, yml)

	const gets, sets = 23, 41
	c := testserver.DialRedis(t, listen)
	for i := range sets {
		got, err := c.Do("SET", strconv.Itoa(i)+":key", "v")
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
	}
	for i := range gets {
		got, err := c.Do("GET", strconv.Itoa(i)+":key")
		require.NoError(t, err)
		require.Equal(t, "v", got)
	}

	mfs := rig.scrape(t)
	assert.Equal(t, []string{"get", "set"}, labelValues(mfs, "walnut_request_duration_seconds", "command"))
	for cmd, n := range map[string]int{"get": gets, "set": sets} {
		m := metric(mfs, "walnut_request_duration_seconds", "pool", "alpha", "command", cmd)
		require.NotNil(t, m, cmd)
		h := m.GetHistogram()
		assert.Equal(t, uint64(n), h.GetSampleCount(), cmd)
		assert.Positive(t, h.GetSampleSum(), cmd)
		checkBuckets(t, h, cmd)
	}
	var rtts uint64
	for _, s := range []string{r0.Addr, r1.Addr} {
		m := metric(mfs, "walnut_server_rtt_seconds", "pool", "alpha", "server", s)
		require.NotNil(t, m, s)
		h := m.GetHistogram()
		requests := value(metric(mfs, "walnut_server_requests_total", "pool", "alpha", "server", s))
		assert.Positive(t, requests, "keys on both servers: %s", s)
		assert.Equal(t, requests, float64(h.GetSampleCount()), "one round trip per request: %s", s)
		assert.Positive(t, h.GetSampleSum(), s)
		checkBuckets(t, h, s)
		rtts += h.GetSampleCount()
	}
	assert.Equal(t, uint64(gets+sets), rtts)

	// Reloads: none yet; the start is the last successful load.
	reloads := func(total, failures, lastOK float64) {
		t.Helper()
		mfs := rig.scrape(t)
		assert.Equal(t, total, value(metric(mfs, "walnut_config_reloads_total")), "reloads")
		assert.Equal(t, failures, value(metric(mfs, "walnut_config_reload_failures_total")), "failures")
		assert.Equal(t, lastOK, value(metric(mfs, "walnut_config_last_reload_successful")), "last successful")
	}
	reloads(0, 0, 1)
	ts := value(metric(mfs, "walnut_config_last_reload_success_timestamp_seconds"))
	assert.InDelta(t, float64(started.UnixNano())/1e9, ts, 10)

	code, body := rig.post(t)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, rig.log(), "added=0 removed=0 changed=0", "the same file again")
	reloads(1, 0, 1)
	rig.rewrite(t, yml+"beta: [\n")
	assert.Contains(t, rig.reloadFile(t), "configuration reload failed")
	reloads(2, 1, 0)
	afterFailure := time.Now()
	rig.rewrite(t, yml)
	code, body = rig.post(t)
	require.Equal(t, http.StatusOK, code, body)
	reloads(3, 1, 1)
	mfs = rig.scrape(t)
	assert.GreaterOrEqual(t, value(metric(mfs, "walnut_config_last_reload_success_timestamp_seconds")), float64(afterFailure.Unix()))
	// The reloads kept the servers and their histograms.
	m := metric(mfs, "walnut_request_duration_seconds", "pool", "alpha", "command", "get")
	require.NotNil(t, m)
	assert.Equal(t, uint64(gets), m.GetHistogram().GetSampleCount())
	var after uint64
	for _, s := range []string{r0.Addr, r1.Addr} {
		after += metric(mfs, "walnut_server_rtt_seconds", "server", s).GetHistogram().GetSampleCount()
	}
	assert.Equal(t, rtts, after)
}
