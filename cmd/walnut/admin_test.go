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

// TestReloadSignalAndPost checks walnut's wiring of reloads (the reload
// itself is tested in package proxy/fleet): SIGHUP, SIGUSR1 and POST
// /reload on --admin-addr all re-read the -c file and apply it, the
// outcome is logged with its trigger, and /metrics counts them.
func TestReloadSignalAndPost(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	addrA := hostPort(testserver.FreePort(t, "127.0.0.1"))
	addrB := hostPort(testserver.FreePort(t, "127.0.0.1"))
	admin := hostPort(testserver.FreePort(t, "127.0.0.1"))
	poolA := "alpha:\n  listen: " + addrA + "\n  redis: true\n  servers:\n" + server(r.Addr)
	poolB := "beta:\n  listen: " + addrB + "\n  redis: true\n  servers:\n" + server(r.Addr)
	conf := writeFile(t, dir, "nutcracker.yml", poolA)
	logFile := filepath.Join(dir, "walnut.log")
	p := startWalnut(t, dir, "-c", conf, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")),
		"-o", logFile, "--admin-addr", admin)
	waitStarted(t, p, logFile)
	c := testserver.DialRedis(t, addrA)
	got, err := c.Do("SET", "k", "v")
	require.NoError(t, err)
	require.Equal(t, "+OK", got)

	writeFile(t, dir, "nutcracker.yml", poolA+poolB)
	p.signal(t, syscall.SIGHUP)
	want := `msg="configuration reloaded" file=` + conf + ` trigger=SIGHUP added=1 removed=0 changed=0 pools="[beta alpha]"`
	require.Eventually(t, func() bool { return strings.Contains(readFile(logFile), want) },
		10*time.Second, 10*time.Millisecond, "log:\n%s", readFile(logFile))
	got, err = testserver.DialRedis(t, addrB).Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "v", got, "the added pool serves")

	writeFile(t, dir, "nutcracker.yml", poolA)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+admin+"/reload", "text/plain", nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "ok\n", string(body))
	assert.Contains(t, readFile(logFile), `trigger="POST /reload" added=0 removed=1 changed=0 pools=[alpha]`)

	// SIGUSR1, the reload signal twemproxy planned.
	writeFile(t, dir, "nutcracker.yml", poolA+poolB)
	p.signal(t, syscall.SIGUSR1)
	want = `msg="configuration reloaded" file=` + conf + ` trigger=SIGUSR1 added=1 removed=0 changed=0 pools="[beta alpha]"`
	require.Eventually(t, func() bool { return strings.Contains(readFile(logFile), want) },
		10*time.Second, 10*time.Millisecond, "log:\n%s", readFile(logFile))
	got, err = testserver.DialRedis(t, addrB).Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "v", got, "the pool added again serves")

	code, metrics := httpGet(t, "http://"+admin+"/metrics")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, metrics, "\nwalnut_config_reloads_total 3\n")
	assert.Contains(t, metrics, "\nwalnut_config_reload_failures_total 0\n")
	got, err = c.Do("GET", "k")
	require.NoError(t, err)
	assert.Equal(t, "v", got, "the kept pool's client is still connected")

	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(t, 10*time.Second))
}
