package proxy

import (
	"log/slog"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/protocol"
)

// FromPool returns the Config that serves pool p of a nutcracker.yml as
// nutcracker would, logging to log (nil: nothing is logged).
//
// Keys map as follows: listen → Network, Addr and SocketPerm; hash,
// hash_tag and distribution → Ring; redis → Protocol; redis_auth → Auth;
// redis_db → DB; client_connections → MaxClients (enforced, unlike
// nutcracker); tcpkeepalive → TCPKeepAlive; server_connections,
// timeout, auto_eject_hosts, server_failure_limit, server_retry_timeout
// and preconnect → Backend. server_failure_limit 0 acts as 1 and
// server_retry_timeout 0 as 1 ms, as in nutcracker (where 0 means "eject on
// the first failure" and "retry at once"). backlog is not applied: Go
// listens with the system's maximum backlog (net.core.somaxconn).
// reuseport → ReusePort. walnut's keys: client_timeout → ClientTimeout;
// client_output_watermark → OutputWatermark; client_output_limit →
// OutputLimit; client_request_limit → Limits.MaxRequest;
// max_pinned_connections → MaxPinned; redis_refuse_commands →
// RefuseCommands.
func FromPool(p config.Pool, log *slog.Logger) Config {
	cfg := Config{
		Name:         p.Name,
		Network:      p.ListenNetwork,
		Addr:         p.ListenAddr,
		SocketPerm:   p.ListenPerm,
		Protocol:     protocol.Memcache,
		Servers:      p.Servers,
		Ring:         p.RingOptions(),
		Auth:         p.RedisAuth,
		DB:           p.RedisDB,
		MaxClients:   p.ClientConnections,
		TCPKeepAlive: p.TCPKeepalive,
		ReusePort:    p.Reuseport,
		Logger:       log,

		ClientTimeout:   p.ClientTimeout,
		OutputWatermark: p.ClientOutputWatermark,
		OutputLimit:     p.ClientOutputLimit,
		RefuseCommands:  p.RedisRefuseCommands,
		MaxPinned:       p.MaxPinnedConnections,
	}
	cfg.Limits.MaxRequest = p.ClientRequestLimit
	if p.Redis {
		cfg.Protocol = protocol.Redis
	}
	cfg.Backend.Conns = p.ServerConnections
	cfg.Backend.Timeout = p.Timeout
	cfg.Backend.AutoEject = p.AutoEjectHosts
	cfg.Backend.FailureLimit = max(p.ServerFailureLimit, 1)
	cfg.Backend.RetryTimeout = p.ServerRetryTimeout
	if cfg.Backend.RetryTimeout <= 0 {
		cfg.Backend.RetryTimeout = time.Millisecond
	}
	cfg.Backend.Preconnect = p.Preconnect
	return cfg
}
