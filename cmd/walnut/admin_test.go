package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

	_, err = parseOptions([]string{"--admin-addr=localhost"})
	assert.EqualError(t, err, "option --admin-addr value 'localhost' is not HOST:PORT")
	_, err = parseOptions([]string{"--admin-addr"})
	assert.EqualError(t, err, "option '--admin-addr' requires an argument")
}
