// Package goredis puts go-redis (github.com/redis/go-redis/v9) on a redis
// pool's servers exactly as nutcracker (twemproxy) places keys, in two ways.
//
// NewClient returns a *redis.Client whose every connection is served by
// walnut's router inside the process (a proxy.Server reached through an
// in-memory connection, see proxy.Dialer): keys land where nutcracker puts
// them whatever the pool's hash tag, MGET, MSET, DEL, UNLINK, EXISTS and
// TOUCH across servers are split and merged, failing servers are ejected as
// the pool says, and the whole go-redis API works within what nutcracker
// serves. It is the one to use unless every hop counts.
//
// NewRing returns a go-redis Ring that talks to the servers directly, with
// no router at all, at the price of go-redis's Ring limits: keys are placed
// as nutcracker places them only for pools with hash_tag "{}" (see Hash
// tags), multi-key commands go whole to their first key's server (see
// Limits of go-redis's Ring), and go-redis's heartbeat, not the pool's
// server_failure_limit and server_retry_timeout, decides ejection.
//
// # The in-process client
//
//	c, err := goredis.NewClient(servers, shard.RingOptions{}, // no hash tag
//		goredis.ClientOptions{Password: "s3cret"})
//	...
//	vals, err := c.MGet(ctx, "user:{1}", "user:{2}", "user:{3}").Result()
//
// or from a pool of a nutcracker.yml, whose redis_auth, redis_db and server
// connection settings then apply:
//
//	c, err := goredis.NewClientFromPool(pool, goredis.ClientOptions{})
//
// go-redis's pipelines (of any length: the in-memory connection never
// makes a writer wait for its reader), hooks and options work as with any
// server; ClientOptions.Redis is the template of the go-redis options.
// Commands nutcracker does not serve (blocking commands, Pub/Sub,
// transactions, most commands without a key) get the router's error reply. The router lives while the client has
// connections, and ClientOptions.Linger after (see proxy.Dialer): Close the
// client to release the server connections.
//
// # The Ring: use
//
// Build the Ring from the pool's servers and ring options (hash,
// distribution, hash tag), the same values shard.NewRing takes:
//
//	servers := []shard.Server{
//		{Addr: "10.0.0.1:6379", Weight: 1, Name: "a"},
//		{Addr: "10.0.0.2:6379", Weight: 1, Name: "b"},
//	}
//	ring, err := goredis.NewRing(servers, shard.RingOptions{HashTag: "{}"},
//		goredis.Options{Password: "s3cret"})
//	...
//	err = ring.Set(ctx, "user:{42}:name", "ann", 0).Err()
//
// or, as a convenience, from a pool of a nutcracker.yml read by package
// config, whose redis_auth, redis_db, timeout and auto_eject_hosts then fill
// Options:
//
//	pool, err := config.LoadClientPool("nutcracker.yml", "sessions")
//	...
//	ring, err := goredis.NewRingFromPool(pool, goredis.Options{})
//
// config.LoadClientPool looks the pool up by name and reads the file for a
// client: the pool need not have a listen address, and a listen host name
// is not resolved.
//
// NewRing names the Ring's shards after the servers' IDs (shard.Server.ID:
// the name after the weight in the servers: entry, or the address when there
// is none), which is what nutcracker hashes into its ketama continuum and
// orders its servers by; it plugs in Placement.NewConsistentHash, which maps
// the shard names go-redis hands it back to those servers. To assemble
// redis.RingOptions by hand, use a Placement: its Addrs for
// RingOptions.Addrs and its NewConsistentHash for
// RingOptions.NewConsistentHash. Shard names must be the servers' IDs; a
// shard with any other name receives no keys.
//
// # Hash tags
//
// go-redis does not hand the Ring's ConsistentHash the key: it hands it the
// part of the key between the first '{' and the first '}' after it, when
// there is at least one byte between them, and otherwise the whole key (its
// internal hashtag.Key), before any hook or option can intervene.
//
// For a pool with hash_tag "{}" that is harmless: nutcracker extracts the
// same part by the same rule, and that part contains no '}', so the pool's
// tag finds nothing more in it. Every key, including "{}", "a{b{c}d",
// "}{x}" and keys without braces, lands on nutcracker's server.
//
// For any other pool, with no hash_tag or with another tag such as "$$",
// nutcracker places a key such as "user:{42}:name" by the whole key (or by
// its own tag), go-redis by "42": with n equal servers, about (n-1)/n of
// such keys would land on the wrong server. Only the keys for which
// Placement.Exact reports false can be misplaced; keys without a '{' followed later by a '}'
// with something in between are always placed as nutcracker places them.
// RingOptions and NewRing therefore refuse such rings with ErrHashTag unless
// Options.AllowMisplacedBraceKeys says the application has no such keys (or
// accepts the misplacement).
//
// # Database
//
// nutcracker 0.5.0 sends SELECT redis_db to a new server connection before
// AUTH redis_auth, and carries on in database 0 when SELECT fails: with a
// password-protected server its keys are in database 0, whatever redis_db
// says. RingOptions makes go-redis do the same for Options.DB (see
// RingOptions), so keys land in nutcracker's database as well as on its
// server.
//
// # Dead servers
//
// go-redis pings every shard (RingOptions.HeartbeatFrequency, default
// 500ms) and, after three failed pings, rebuilds its ConsistentHash over the
// shards still up. Placement then places keys as nutcracker does with the
// dead servers ejected (shard.Ring.WithLive): only their keys move. For a pool
// with auto_eject_hosts: false (Options.AutoEjectHosts false), nutcracker
// never ejects a server, so RingOptions sets a HeartbeatFn that always
// reports shards up: keys of a dead server fail instead of moving, as through
// nutcracker. The timing
// differs from nutcracker's server_failure_limit and server_retry_timeout,
// which are not used.
//
// # Limits of go-redis's Ring
//
// A command is placed by its first key only. nutcracker splits MGET, DEL,
// MSET and the like into one command per key; a Ring sends the whole command
// to the first key's server, so give multi-key commands only keys that share
// a hash tag, or pipeline single-key commands. Watch, transactions and
// Pub/Sub, which nutcracker does not support, follow go-redis's own rules.
// Do not call Ring.SetAddrs with shards other than Placement.Addrs.
package goredis
