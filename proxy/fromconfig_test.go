package proxy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
)

// TestNoListenRefused: a pool read with config.Loader.ListenOptional and no
// listen key can back an in-process Client, but the proxy refuses to listen
// for it (net.Listen would pick a port on every interface).
func TestNoListenRefused(t *testing.T) {
	f, err := config.Loader{ListenOptional: true}.Parse("clients.yml", []byte("alpha:\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n"))
	require.NoError(t, err)
	p, ok := f.Pool("alpha")
	require.True(t, ok)
	s, err := proxy.New(proxy.FromPool(p, nil))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Listen()
	require.EqualError(t, err, `proxy: pool "alpha" has no listen address`)
	require.EqualError(t, s.ListenAndServe(), `proxy: pool "alpha" has no listen address`)

	c, err := proxy.NewClient(proxy.FromPool(p, nil))
	require.NoError(t, err)
	assert.NoError(t, c.Close())
}

// TestFromPoolRequestLimit: client_request_limit becomes Limits.MaxRequest
// (0: protocol's default, 64 MiB).
func TestFromPoolRequestLimit(t *testing.T) {
	f, err := config.Parse("a.yml", []byte("alpha:\n  listen: 127.0.0.1:22199\n  client_request_limit: 1048576\n  servers:\n   - 127.0.0.1:1:1\n"))
	require.NoError(t, err)
	p, ok := f.Pool("alpha")
	require.True(t, ok)
	assert.Equal(t, 1<<20, proxy.FromPool(p, nil).Limits.MaxRequest)
	p.ClientRequestLimit = 0
	assert.Equal(t, protocol.DefaultMaxRequest, proxy.FromPool(p, nil).Limits.WithDefaults().MaxRequest)
}
