package gomemcache

import (
	"fmt"
	"net"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// Backend configures the server connections as a pool's
	// server_connections, timeout, auto_eject_hosts, server_failure_limit,
	// server_retry_timeout and preconnect do (see proxy.BackendOptions).
	Backend proxy.BackendOptions
	// Linger is how long the in-process proxy outlives the client's last
	// connection (see proxy.Dialer). Zero: proxy.DefaultLinger(Backend),
	// which keeps ejected servers out for server_retry_timeout with
	// auto_eject_hosts, and nothing otherwise. Negative: no time at all.
	Linger time.Duration
}

// NewClient returns a gomemcache client whose every connection is served
// by walnut's router in-process: a proxy.Server for servers placed under
// ring (hash, distribution and hash tag, see shard.NewRing), reached
// through an in-memory connection (proxy.Dialer as Client.DialContext),
// with no socket between the client and the router. Keys land where
// nutcracker puts them; GetMulti sends one get for all its keys, which the
// router splits by server and merges, as nutcracker does; failing servers
// are ejected as Backend says, by the router, which a Selector leaves to
// its owner.
//
// The Client's selector has one address, the router's: Ping and FlushAll
// send one request, which the router answers or refuses as nutcracker
// would (it refuses flush_all). A positive Backend.Timeout plus a second
// becomes Client.Timeout, so that the router's timeout error, not
// gomemcache's, ends a slow request; otherwise gomemcache's default
// applies. The caller may change Timeout and MaxIdleConns before use.
//
// The router is started by the client's first connection and closed, with
// its server connections, once the client has had no connection for
// Linger: Client.Close closes the idle connections, after which the server
// connections follow (the Client may still be used: a new router is
// started). NewClient returns an error, and starts nothing, for servers or
// options a proxy.Server refuses.
func NewClient(servers []shard.Server, ring shard.RingOptions, opts ClientOptions) (*memcache.Client, error) {
	cfg := proxy.Config{
		Name:     "gomemcache",
		Protocol: protocol.Memcache,
		Servers:  servers,
		Ring:     ring,
		Backend:  opts.Backend,
	}
	return newClient(cfg, opts.Linger)
}

// NewClientFromPool returns NewClient for pool p of a nutcracker.yml: its
// servers, hash, distribution and hash tag, the settings of its server
// connections (server_connections, timeout, auto_eject_hosts,
// server_failure_limit, server_retry_timeout, preconnect) and walnut's
// client_output_watermark, client_output_limit and client_request_limit,
// as proxy.FromPool maps them, with the default Linger. listen,
// client_connections, client_timeout and the other settings of client
// sockets are not used. It returns an error wrapping ErrNotMemcache for a
// redis pool; its errors name the pool.
func NewClientFromPool(p config.Pool) (*memcache.Client, error) {
	if p.Redis {
		return nil, fmt.Errorf("%w: pool %q", ErrNotMemcache, p.Name)
	}
	cfg := proxy.FromPool(p, nil)
	cfg.Network, cfg.Addr, cfg.SocketPerm = "", "", 0
	cfg.MaxClients, cfg.TCPKeepAlive, cfg.ReusePort, cfg.ClientTimeout = 0, false, false, 0
	return newClient(cfg, 0)
}

func newClient(cfg proxy.Config, linger time.Duration) (*memcache.Client, error) {
	if linger == 0 {
		linger = proxy.DefaultLinger(cfg.Backend)
	}
	d, err := proxy.NewDialer(cfg, linger)
	if err != nil {
		return nil, fmt.Errorf("gomemcache: %w", err)
	}
	c := memcache.NewFromSelector(routerSelector{&staticAddr{network: "tcp", str: "walnut." + cfg.Name + ":0"}})
	c.DialContext = d.DialContext
	if cfg.Backend.Timeout > 0 {
		c.Timeout = cfg.Backend.Timeout + time.Second
	}
	return c, nil
}

// routerSelector sends every key to one address, the in-process router,
// which places it.
type routerSelector struct{ addr net.Addr }

func (s routerSelector) PickServer(key string) (net.Addr, error) {
	if !legalKey(key) {
		return nil, memcache.ErrMalformedKey
	}
	return s.addr, nil
}

func (s routerSelector) Each(f func(net.Addr) error) error { return f(s.addr) }
