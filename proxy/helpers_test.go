package proxy_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// backend is a started backend with its shard entry.
type backend struct {
	*testserver.Server
	entry shard.Server
}

// startBackends starts n redis-servers (or memcacheds) with unequal weights
// and alternate names.
func startBackends(t *testing.T, kind protocol.Kind, n int) []backend {
	t.Helper()
	bs := make([]backend, n)
	for i := range bs {
		var s *testserver.Server
		if kind == protocol.Redis {
			s = testserver.StartRedis(t, testserver.RedisOptions{})
		} else {
			s = testserver.StartMemcached(t, testserver.MemcachedOptions{})
		}
		e := shard.Server{Addr: s.Addr, Weight: 1 + i%3}
		if i%2 == 1 {
			e.Name = "srv" + strconv.Itoa(i)
		}
		bs[i] = backend{Server: s, entry: e}
	}
	return bs
}

func entries(bs []backend) []shard.Server {
	out := make([]shard.Server, len(bs))
	for i, b := range bs {
		out[i] = b.entry
	}
	return out
}

// startProxy builds and serves a proxy over bs on a free loopback port and
// returns it and its address. It is shut down at cleanup.
func startProxy(t *testing.T, kind protocol.Kind, bs []backend, mutate func(*proxy.Config)) (*proxy.Server, string) {
	t.Helper()
	cfg := proxy.Config{
		Name:     "test",
		Protocol: kind,
		Servers:  entries(bs),
		Ring:     shard.RingOptions{HashTag: "{}"},
	}
	cfg.Backend.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
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
