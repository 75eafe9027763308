package main

import (
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
)

// TestListenersLoopbackByDefault: without -a and --admin-addr, the stats
// server is bound to 127.0.0.1 (nutcracker binds 0.0.0.0) and there is no
// admin server. The sockets open checks are the ones walnut serves.
func TestListenersLoopbackByDefault(t *testing.T) {
	o, err := parseOptions([]string{"-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1"))})
	require.NoError(t, err)
	f, err := config.Parse("loopback.yml", []byte("alpha:\n  listen: "+hostPort(testserver.FreePort(t, "127.0.0.1"))+
		"\n  servers:\n"+server("127.0.0.1:1")))
	require.NoError(t, err)
	fl, err := open(f, o, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer fl.Close()
	addr, ok := fl.StatsAddr().(*net.TCPAddr)
	require.True(t, ok)
	assert.True(t, addr.IP.IsLoopback(), "stats listener on %v", addr)
	assert.Nil(t, fl.AdminAddr(), "no admin listener unless --admin-addr is given")
}
