package fleet_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/proxy/fleet"
)

// parse parses yml as a nutcracker.yml named nutcracker.yml.
func parse(t *testing.T, yml string) *config.File {
	t.Helper()
	f, err := config.Parse("nutcracker.yml", []byte(yml))
	require.NoError(t, err)
	return f
}

func TestNewRefuses(t *testing.T) {
	clients, err := config.Loader{ListenOptional: true}.Parse("clients.yml", []byte("alpha:\n  redis: true\n  servers:\n"+server("127.0.0.1:1")))
	require.NoError(t, err)
	_, err = fleet.New(clients, fleet.Options{})
	assert.EqualError(t, err, "pool 'alpha' has no listen address")

	mc := parse(t, "mc:\n  listen: "+hostPort(testserver.FreePort(t, "127.0.0.1"))+"\n  redis_db: 1\n  servers:\n"+server("127.0.0.1:1"))
	_, err = fleet.New(mc, fleet.Options{})
	assert.EqualError(t, err, `pool 'mc': proxy: pool "mc": redis_auth and redis_db need a redis pool`)
}

// TestLifecycle walks a Fleet through Listen, Serve, an in-memory Reload
// and Shutdown, checking each step's errors and what is bound.
func TestLifecycle(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	addrA := hostPort(testserver.FreePort(t, "127.0.0.1"))
	addrB := hostPort(testserver.FreePort(t, "127.0.0.1"))
	poolA := "alpha:\n  listen: " + addrA + "\n  redis: true\n  servers:\n" + server(r.Addr)
	poolB := "beta:\n  listen: " + addrB + "\n  redis: true\n  servers:\n" + server(r.Addr)

	// A bind failure leaves nothing bound.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	f, err := fleet.New(parse(t, poolA), fleet.Options{StatsAddr: taken.Addr().String()})
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha"}, f.Names())
	assert.Nil(t, f.Addr("alpha"), "nothing bound before Listen")
	assert.EqualError(t, f.Serve(), "fleet: Serve called before Listen")
	err = f.Listen()
	assert.EqualError(t, err, "bind on stats server addr '"+taken.Addr().String()+"' failed: address already in use")
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Nil(t, f.Addr("alpha"))
	_, err = net.DialTimeout("tcp", addrA, time.Second)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the pool's listener is closed again")
	require.NoError(t, f.Close())
	assert.ErrorIs(t, f.Listen(), fleet.ErrServerClosed)

	// A reload before Serve binds the added pool; Serve serves it.
	f, err = fleet.New(parse(t, poolA), fleet.Options{StatsAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	require.NoError(t, f.Listen())
	require.NoError(t, f.Listen(), "Listen again does nothing")
	require.NoError(t, f.Reload(parse(t, poolA+poolB), "test"))
	assert.Equal(t, []string{"beta", "alpha"}, f.Names())
	assert.Equal(t, addrB, f.Addr("beta").String())
	assert.Equal(t, uint64(1), f.ReloadStats().Successes)
	served := make(chan error, 1)
	go func() { served <- f.Serve() }()
	for _, addr := range []string{addrA, addrB} {
		got, err := testserver.DialRedis(t, addr).Do("SET", "k", addr)
		require.NoError(t, err, addr)
		assert.Equal(t, "+OK", got, addr)
	}
	doc, err := readStats(f.StatsAddr().String())
	require.NoError(t, err)
	assert.Contains(t, doc, "alpha")
	assert.Contains(t, doc, "beta")
	assert.Empty(t, f.Unready())

	// Removing beta through an in-memory file.
	require.NoError(t, f.Reload(parse(t, poolA), "test"))
	assert.Equal(t, []string{"alpha"}, f.Names())
	assert.Equal(t, "nutcracker.yml", f.File().Name)
	_, err = net.DialTimeout("tcp", addrB, time.Second)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	err = f.Reload(parse(t, "alpha:\n  listen: "+addrA+"\n  servers:\n"+server(r.Addr)), "test")
	assert.ErrorIs(t, err, fleet.ErrConfig, "a protocol change is the configuration's fault")
	assert.EqualError(t, err, "pool 'alpha': changing the protocol needs a restart")
	rs := f.ReloadStats()
	assert.Equal(t, uint64(2), rs.Successes)
	assert.Equal(t, uint64(1), rs.Failures)
	assert.False(t, rs.LastOK)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.Shutdown(ctx))
	select {
	case err := <-served:
		assert.ErrorIs(t, err, fleet.ErrServerClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	err = f.Reload(parse(t, poolA), "test")
	assert.EqualError(t, err, "walnut is shutting down")
	assert.False(t, errors.Is(err, fleet.ErrConfig))
	_, err = net.DialTimeout("tcp", addrA, time.Second)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.NoError(t, f.Close(), "Close after Shutdown")
}
