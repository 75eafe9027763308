package goredis

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// ClientOptions configure NewClient. NewClientFromPool takes Password, DB
// and Backend from the pool and only Linger and Redis from the caller.
type ClientOptions struct {
	// Password is the pool's redis_auth: sent with AUTH on every server
	// connection. Empty: none.
	Password string
	// DB, if positive, is the pool's redis_db: selected on every server
	// connection as nutcracker selects it (before AUTH, an error reply
	// ignored). The go-redis client itself sees database 0.
	DB int
	// Backend configures the server connections as a pool's
	// server_connections, timeout, auto_eject_hosts, server_failure_limit,
	// server_retry_timeout and preconnect do (see proxy.BackendOptions).
	Backend proxy.BackendOptions
	// Linger is how long the in-process proxy outlives the client's last
	// connection (see proxy.Dialer). Zero: proxy.DefaultLinger(Backend),
	// which keeps ejected servers out for server_retry_timeout with
	// auto_eject_hosts, and nothing otherwise. Negative: no time at all.
	Linger time.Duration
	// Redis, if not nil, is the template of the go-redis client's options
	// (PoolSize, timeouts, Protocol, hooks…). It is copied; Addr, Network,
	// Dialer, Username, Password and DB are set by NewClient. If its
	// ReadTimeout is zero and Backend.Timeout is positive, ReadTimeout is
	// set a second longer than Backend.Timeout, so that the proxy's
	// timeout error reply, not go-redis's timeout, ends a slow request.
	Redis *redis.Options
}

// NewClient returns a go-redis client whose every connection is served by
// walnut's router in-process: a proxy.Server for servers placed under ring
// (hash, distribution and hash tag, see shard.NewRing), reached through an
// in-memory connection (proxy.Dialer as Options.Dialer), with no socket
// between the client and the router. Keys land where nutcracker puts them,
// for any hash tag or none; MGET, MSET, DEL, UNLINK, EXISTS and TOUCH
// across servers are split and their replies merged; failing servers are
// ejected as Backend says; the whole go-redis API works, within what
// nutcracker serves (see the package documentation).
//
// The proxy is started by the client's first connection and closed, with
// its server connections, once the client has had no connection for
// Linger; redis.Client.Close closes the connections, so the server
// connections follow after Linger. NewClient returns an error, and starts
// nothing, for servers or options a proxy.Server refuses.
func NewClient(servers []shard.Server, ring shard.RingOptions, opts ClientOptions) (*redis.Client, error) {
	cfg := proxy.Config{
		Name:     "goredis",
		Protocol: protocol.Redis,
		Servers:  servers,
		Ring:     ring,
		Backend:  opts.Backend,
		Auth:     opts.Password,
		DB:       opts.DB,
	}
	return newClient(cfg, opts)
}

// NewClientFromPool returns NewClient for pool p of a nutcracker.yml:
// its servers, hash, distribution and hash tag, redis_auth, redis_db and
// the settings of its server connections (server_connections, timeout,
// auto_eject_hosts, server_failure_limit, server_retry_timeout,
// preconnect), and walnut's client_output_watermark, client_output_limit,
// client_request_limit and redis_refuse_commands, as proxy.FromPool maps
// them. listen, client_connections, client_timeout and the other settings
// of client sockets are not used. It returns ErrNotRedis for a memcached
// pool; its errors name the pool.
func NewClientFromPool(p config.Pool, opts ClientOptions) (*redis.Client, error) {
	if !p.Redis {
		return nil, fmt.Errorf("%w: pool %q", ErrNotRedis, p.Name)
	}
	cfg := proxy.FromPool(p, nil)
	cfg.Network, cfg.Addr, cfg.SocketPerm = "", "", 0
	cfg.MaxClients, cfg.TCPKeepAlive, cfg.ReusePort, cfg.ClientTimeout = 0, false, false, 0
	opts.Backend = cfg.Backend
	return newClient(cfg, opts)
}

func newClient(cfg proxy.Config, opts ClientOptions) (*redis.Client, error) {
	linger := opts.Linger
	if linger == 0 {
		linger = proxy.DefaultLinger(cfg.Backend)
	}
	d, err := proxy.NewDialer(cfg, linger)
	if err != nil {
		return nil, fmt.Errorf("goredis: %w", err)
	}
	var ro redis.Options
	if opts.Redis != nil {
		ro = *opts.Redis
	}
	ro.Network = "tcp"
	ro.Addr = "walnut." + cfg.Name + ":0" // a name for go-redis's logs: nothing is dialled
	ro.Dialer = d.DialContext
	ro.Username, ro.Password, ro.DB = "", cfg.Auth, 0
	if ro.ReadTimeout == 0 && cfg.Backend.Timeout > 0 {
		ro.ReadTimeout = cfg.Backend.Timeout + time.Second
	}
	return redis.NewClient(&ro), nil
}
