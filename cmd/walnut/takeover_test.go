package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// TestReuseportTakeover runs a second walnut on the port of a first with
// reuseport: true, then stops the first with SIGTERM while clients keep
// connecting and sending: every request is answered, by one process or
// the other. A connection the kernel queued on the old listener but the old
// process never accepted is reset when that listener closes (unless
// net.ipv4.tcp_migrate_req is 1); nothing of it reached a backend, so the
// client retries it, and the test counts such resets.
func TestReuseportTakeover(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	conf := writeFile(t, dir, "nutcracker.yml", "alpha:\n  listen: "+addr+
		"\n  redis: true\n  reuseport: true\n  servers:\n"+server(r1.Addr)+server(r2.Addr))
	start := func(name string) (*proc, int) {
		log := filepath.Join(dir, name+".log")
		stats := testserver.FreePort(t, "127.0.0.1")
		p := startWalnut(t, dir, "-c", conf, "-o", log, "-s", strconv.Itoa(stats))
		waitStarted(t, p, log)
		return p, stats
	}
	old, _ := start("old")

	var (
		stop                    = make(chan struct{})
		wg                      sync.WaitGroup
		requests, resets, conns atomic.Int64
		mu                      sync.Mutex
		failures                []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 5 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	// session runs one connection of 10 SET/GET pairs. It reports false
	// if the connection was reset before its first reply (to be retried).
	session := func(id, n int) bool {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			fail("dial: %v", err)
			return true
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for i := range 10 {
			k := fmt.Sprintf("t%d:%d:%d", id, n, i)
			_, err := fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k, len(k), k)
			var set, get string
			if err == nil {
				set, err = r.ReadString('\n')
			}
			if err == nil {
				if get, err = r.ReadString('\n'); err == nil {
					var v string
					v, err = r.ReadString('\n')
					get += v
				}
			}
			if err != nil {
				if i == 0 && set == "" && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
					resets.Add(1)
					return false
				}
				fail("%s: %v after %d pairs", k, err, i)
				return true
			}
			if set != "+OK\r\n" || get != "$1\r\nv\r\n" {
				fail("%s: replies %q %q", k, set, get)
			}
			requests.Add(2)
		}
		conns.Add(1)
		return true
	}
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				for !session(id, n) {
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	next, nextStats := start("new")
	time.Sleep(300 * time.Millisecond)
	before := requests.Load()
	old.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, old.wait(t, 10*time.Second))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.Empty(t, failures)
	assert.Greater(t, requests.Load(), before, "no request after the old walnut stopped")
	assert.False(t, next.exited())
	st, err := readStats(hostPort(nextStats))
	require.NoError(t, err)
	served := st["alpha"].(map[string]any)["client_eof"].(float64)
	assert.Greater(t, served, 0.0, "the new walnut served no client")
	migrate := strings.TrimSpace(readFile("/proc/sys/net/ipv4/tcp_migrate_req"))
	if migrate == "1" {
		assert.Zero(t, resets.Load(), "with tcp_migrate_req=1 no queued connection is reset")
	}
	t.Logf("%d requests on %d connections through the handover (%.0f by the new walnut), 0 failed; %d connections reset before their first reply and retried (tcp_migrate_req=%q)",
		requests.Load(), conns.Load(), served, resets.Load(), migrate)
	next.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, next.wait(t, 10*time.Second))
	_ = os.Remove(conf)
}
