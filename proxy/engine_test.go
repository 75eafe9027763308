//go:build linux

package proxy_test

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
)

func TestNewEngineRejectsNoLoops(t *testing.T) {
	_, err := proxy.NewEngine(0)
	require.Error(t, err)
}

// TestEngineSharedByServers serves a Redis and a memcached pool with one
// Engine of two loops: many clients at once on both, pipelined and one
// request at a time, large values included; then the Servers shut down,
// the Engine closes, and no goroutine is left.
func TestEngineSharedByServers(t *testing.T) {
	e, err := proxy.NewEngine(2)
	require.NoError(t, err)
	require.Equal(t, 2, e.Loops())
	rbs := startBackends(t, protocol.Redis, 3)
	mbs := startBackends(t, protocol.Memcache, 2)
	var rs, ms *proxy.Server
	var raddr, maddr string
	t.Run("serve", func(t *testing.T) {
		rs, raddr = startProxy(t, protocol.Redis, rbs, func(c *proxy.Config) { c.Engine = e })
		ms, maddr = startProxy(t, protocol.Memcache, mbs, func(c *proxy.Config) { c.Engine = e })
		big := strings.Repeat("v", 3<<20)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				c := rawDial(t, raddr)
				for j := range 50 {
					k := fmt.Sprintf("k%d.%d", i, j)
					if c.do("SET", k, k) != "+OK\r\n" {
						t.Errorf("SET %s", k)
						return
					}
				}
				var cmds [][]string
				for j := range 50 {
					cmds = append(cmds, cmd("GET", fmt.Sprintf("k%d.%d", i, j)))
				}
				cmds = append(cmds, cmd("MGET", fmt.Sprintf("k%d.0", i), fmt.Sprintf("k%d.1", i), "nokey"))
				c.send(cmds...)
				for j := range 50 {
					k := fmt.Sprintf("k%d.%d", i, j)
					if got := c.reply(); got != fmt.Sprintf("$%d\r\n%s\r\n", len(k), k) {
						t.Errorf("GET %s: %q", k, got)
						return
					}
				}
				k0, k1 := fmt.Sprintf("k%d.0", i), fmt.Sprintf("k%d.1", i)
				want := fmt.Sprintf("*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$-1\r\n", len(k0), k0, len(k1), k1)
				if got := c.reply(); got != want {
					t.Errorf("MGET: %q", got)
				}
				if i == 0 {
					if c.do("SET", "big", big) != "+OK\r\n" {
						t.Error("SET big")
					}
					if got := c.do("GET", "big"); got != fmt.Sprintf("$%d\r\n%s\r\n", len(big), big) {
						t.Errorf("GET big: %d bytes", len(got))
					}
				}
			}()
			go func() {
				defer wg.Done()
				nc, err := net.Dial("tcp", maddr)
				if err != nil {
					t.Error(err)
					return
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
				k := fmt.Sprintf("m%d", i)
				want := fmt.Sprintf("STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
				if _, err := fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(k), k, k); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
					t.Errorf("memcached %s: %q %v", k, got, err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int64(0), rs.Stats().ClientErr)
	})
	// The subtest's cleanup shut both Servers down.
	require.NoError(t, e.Close())
	_ = ms
	if proxy.EngineLoopsForTest() == 0 {
		// Close waited for the loops (those of WALNUT_TEST_LOOPS's
		// engine run on).
		buf := make([]byte, 1<<20)
		require.NotContains(t, string(buf[:runtime.Stack(buf, true)]), "proxy.(*eloop).run")
	}
}
