package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestAdminServer runs walnut with --admin-addr in front of two
// redis-servers and checks /metrics against the traffic sent, and the
// health, readiness and pprof endpoints.
func TestAdminServer(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	admin := hostPort(testserver.FreePort(t, "127.0.0.1"))
	conf := writeFile(t, dir, "nutcracker.yml",
		"alpha:\n  listen: "+addr+"\n  redis: true\n  distribution: modula\n  servers:\n"+server(r1.Addr)+server(r2.Addr))
	logFile := filepath.Join(dir, "walnut.log")
	p := startWalnut(t, dir, "-c", conf, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")),
		"-o", logFile, "--admin-addr", admin)
	waitStarted(t, p, logFile)
	assert.Contains(t, readFile(logFile), "admin="+admin)

	const n = 25
	c := testserver.DialRedis(t, addr)
	for i := range n {
		got, err := c.Do("SET", fmt.Sprintf("key:%d", i), "v")
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
	}

	code, body := httpGet(t, "http://"+admin+"/metrics")
	require.Equal(t, http.StatusOK, code)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	reqs := mfs["walnut_server_requests_total"]
	require.NotNil(t, reqs, body)
	var sum float64
	servers := map[string]bool{}
	for _, m := range reqs.GetMetric() {
		sum += m.GetCounter().GetValue()
		for _, l := range m.GetLabel() {
			if l.GetName() == "server" {
				servers[l.GetValue()] = true
			} else {
				assert.Equal(t, "pool", l.GetName())
				assert.Equal(t, "alpha", l.GetValue())
			}
		}
	}
	assert.Equal(t, float64(n), sum)
	assert.Equal(t, map[string]bool{r1.Addr: true, r2.Addr: true}, servers)
	require.NotNil(t, mfs["walnut_client_connections"])
	assert.Equal(t, float64(1), mfs["walnut_client_connections"].GetMetric()[0].GetGauge().GetValue())
	require.NotNil(t, mfs["walnut_server_live"])
	for _, m := range mfs["walnut_server_live"].GetMetric() {
		assert.Equal(t, float64(1), m.GetGauge().GetValue())
	}
	assert.NotNil(t, mfs["go_goroutines"], "Go runtime collector")
	assert.NotNil(t, mfs["process_open_fds"], "process collector")

	code, body = httpGet(t, "http://"+admin+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = httpGet(t, "http://"+admin+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = httpGet(t, "http://"+admin+"/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine")
	code, _ = httpGet(t, "http://"+admin+"/debug/pprof/heap?debug=1")
	assert.Equal(t, http.StatusOK, code)
	code, _ = httpGet(t, "http://"+admin+"/nothing")
	assert.Equal(t, http.StatusNotFound, code)

	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(t, 10*time.Second))
	_, err = (&http.Client{Timeout: time.Second}).Get("http://" + admin + "/healthz")
	assert.Error(t, err, "admin server closed")
}

func TestParseAdminAddr(t *testing.T) {
	o, err := parseOptions([]string{"--admin-addr=127.0.0.1:22223"})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:22223", o.adminAddr)
	o, err = parseOptions(nil)
	require.NoError(t, err)
	assert.Empty(t, o.adminAddr, "off by default")
	o, err = parseOptions([]string{"--admin-addr=:22223"})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:22223", o.adminAddr, "loopback unless a host is given")
	o, err = parseOptions([]string{"--admin-addr=0.0.0.0:22223"})
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:22223", o.adminAddr)

	_, err = parseOptions([]string{"--admin-addr=localhost"})
	assert.EqualError(t, err, "option --admin-addr value 'localhost' is not HOST:PORT")
	_, err = parseOptions([]string{"--admin-addr"})
	assert.EqualError(t, err, "option '--admin-addr' requires an argument")
}

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
	assert.Contains(t, readFile(rig.logFile), "added=0 removed=0 changed=0", "the same file again")
	reloads(1, 0, 1)
	rig.rewrite(t, yml+"beta: [\n")
	assert.Contains(t, rig.sighup(t), "configuration reload failed")
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
