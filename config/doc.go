// Package config reads a twemproxy (nutcracker) configuration file,
// nutcracker.yml, unchanged, and accepts and rejects what nutcracker 0.5.0
// accepts and rejects, apart from the few deliberate differences listed
// below.
//
// It is the one reader of the file for every part of walnut: the proxy
// (package proxy, proxy.FromPool), the in-process clients (adapter/goredis,
// adapter/gomemcache, proxy.Client) and programs of their own. It depends
// only on hashkit and shard.
//
// # Use
//
// A Go client (proxy.Client, a shard.Ring, adapter/goredis,
// adapter/gomemcache) needs one pool. LoadClientPool reads the file and
// returns the pool by name:
//
//	pool, err := config.LoadClientPool("nutcracker.yml", "sessions")
//	...
//	client, err := proxy.NewClient(proxy.FromPool(pool, logger))
//	// or: ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
//
// It reads the file as ClientLoader does: a pool may leave listen out, and a
// listen host name is not resolved, since a client never listens there (the
// proxy's name need not resolve where the client runs, and reading the file
// never waits for DNS). Everything else is checked as nutcracker checks it.
// For several pools of one file, ClientLoader().Load(path) returns the
// *File.
//
// The proxy reads the file with Load (or Parse), which applies
// nutcracker's rules, listen included; File.Pool looks a pool up by name:
//
//	f, err := config.Load("nutcracker.yml")
//	...
//	p, ok := f.Pool("sessions")
//
// Look pools up by name, never by position: File.Pools is sorted by name
// (shorter names first), not in the file's order, so Pools[0] is not the
// file's first pool.
//
// # What is read
//
// The file is one YAML document: a mapping from pool names to pools, each
// pool a mapping from keys to plain values, with one list, "servers" (and
// walnut's optional redis_refuse_commands):
//
//	alpha:
//	  listen: 127.0.0.1:22121
//	  hash: fnv1a_64
//	  distribution: ketama
//	  servers:
//	    - 127.0.0.1:6379:1
//	    - 127.0.0.1:6380:1 server2
//
// Like nutcracker, Parse rejects everything else YAML allows: no document
// (an empty or comment-only file), more than one document, explicit document
// markers ("---", "..."), directives ("%YAML", "%TAG"), flow collections
// ("[a, b]", "{a: b}"), anchors, aliases and tags (including "!"), mappings
// nested deeper than pool → key, lists under any key but "servers" (and
// redis_refuse_commands), unknown
// or duplicate keys, duplicate pool names and empty values (`hash_tag: ""`).
// Quoting does not matter: `redis: "true"` is true and `timeout: "400"` is
// 400. The words YAML reads as null are plain text: `redis_auth: null` is the
// password "null". A UTF-16 file with a byte order mark is read as nutcracker
// (libyaml) reads it.
//
// The keys, their syntax and their defaults when absent:
//
//	listen                "host:port" or "/path/to.sock [octal-perm]"; required
//	                      (unless Loader.ListenOptional, as for ClientLoader)
//	hash                  fnv1a_64 (see hashkit.Names)
//	hash_tag              none; else exactly two bytes, such as "{}"
//	distribution          ketama (or modula, random)
//	timeout               none (milliseconds; 0 also means none)
//	backlog               512
//	client_connections    0 = unlimited
//	redis                 false (memcached)
//	redis_auth            none; only with redis: true
//	redis_db              0
//	preconnect            false
//	auto_eject_hosts      false
//	server_connections    1 (0 is rejected)
//	server_retry_timeout  30000 (milliseconds)
//	server_failure_limit  2
//	tcpkeepalive          false
//	reuseport             false
//	client_timeout        none (milliseconds; 0 also means none); walnut's key
//	client_output_watermark  1048576 (bytes; 0 also means 1048576); walnut's key
//	client_output_limit   none (bytes; 0 also means none); walnut's key
//	client_request_limit  67108864 (bytes; 0 also means 67108864): the longest
//	                      memcached get/gets/gat/gats line; walnut's key
//	max_pinned_connections 1024 (0 also means 1024): the server connections
//	                      the pool's clients hold for themselves (transactions,
//	                      blocking commands, subscriptions); walnut's key
//	redis_refuse_commands none; else a list of Redis commands the proxy
//	                      refuses, one "- command" or "- command subcommand"
//	                      per line ("- flushall", "- script flush"), in any
//	                      case; only with redis: true; walnut's key
//	servers               "host:port:weight [name]" or "/path:weight [name]"
//	                      entries (see shard.ParseServer); required
//
// Numbers are ASCII digits only: no sign, unit, fraction or space, so
// "-1", "1s", "+5" and " 5" are rejected. Booleans are exactly "true" or
// "false". Hash and distribution names are exact and lowercase.
//
// A TCP listen value is split at its last ':'; the port must be 1 to 65535
// and the host must not be empty. IP literals are read as glibc's
// getaddrinfo reads them: IPv4 also in inet_aton shorthand ("127.1",
// "0x7f000001"; ListenAddr then spells the address out), IPv6 with a zone
// that is a number or, for a link-local address, an interface name. Any
// other host is resolved while parsing, as nutcracker resolves it, and a
// name that does not resolve is rejected (a ClientLoader, with
// ListenUnresolved, does not resolve it). A value starting with '/' is a unix
// socket path, optionally followed after its last space by a permission that
// is read like C's strtol in base 8: leading octal digits, up to the first
// other character ("0999" is 0, which leaves the socket's mode alone); more
// than 0777 is rejected, and so is a path too long for a socket address.
//
// Server entries are parsed by shard.ParseServer. Servers are named as
// twemproxy names them (shard.Server.ID), and two servers of one pool with
// the same name are rejected. No two pools may have the same listen value
// (compared as written) or name.
//
// Pools are returned sorted by name, and the servers of a pool by name, the
// way twemproxy sorts them: shorter first, then bytewise. A server's index in
// Pool.Servers is therefore its index in nutcracker's stats and in modula
// and ketama placement.
//
// # Errors
//
// Every rejection is an *Error giving the file, the line, the pool and the
// key, and saying in plain words what is wrong; errors.Is(err, ErrInvalid)
// reports whether an error is a rejected configuration. nutcracker -t prints
// only "syntax is invalid"; walnut always says why.
//
// # Deliberate differences from nutcracker 0.5.0
//
//   - reuseport (a key of twemproxy's development branch, after 0.5.0) is
//     accepted; nutcracker 0.5.0 rejects it as unknown.
//   - client_timeout, client_output_watermark, client_output_limit,
//     client_request_limit, max_pinned_connections and
//     redis_refuse_commands are walnut's own keys (see
//     proxy.Config.ClientTimeout, OutputWatermark, OutputLimit,
//     Limits.MaxRequest, MaxPinned and RefuseCommands); nutcracker
//     rejects them.
//     redis_refuse_commands is a list; whether its names are Redis
//     commands is checked by the proxy (proxy.Config.Validate, which
//     walnut -t runs too).
//   - hash: farm (hashkit.Farm) is accepted; nutcracker has no such hash.
//   - A number that does not fit in an int32 is rejected with a message
//     naming the maximum, 2147483647. nutcracker accumulates digits in a C
//     int and silently wraps: it rejects a value that wraps negative but
//     accepts one that wraps positive, so "timeout: 99999999999" is a
//     timeout of 1215752191 ms and "listen: 127.0.0.1:4294967297" listens
//     on port 1. The same holds for the numbers in a server entry, and for
//     a socket permission that wraps into a mode_t ("-37777777112" or
//     "40000000666"): walnut rejects every permission outside 0 to 0777.
//   - A server weight above 8388608 is rejected, because shard.NewRing
//     refuses it (the continuum sums weights in 32 bits); nutcracker takes
//     any weight up to 2147483647.
//   - client_connections is enforced by the proxy; nutcracker parses it and
//     then ignores it (always unlimited).
//   - A bracketed IPv6 listen host, "[::1]:22121", is accepted; nutcracker
//     passes the brackets to getaddrinfo, which fails. The bare form
//     "::1:22121" is accepted by both. Pool.ListenAddr is always in the form
//     net.Listen expects.
//   - Only "servers" (and redis_refuse_commands) may be a list. nutcracker
//     merely requires exactly one list per pool, so it accepts a pool whose
//     listen value is a one-item list and whose servers value is a single
//     string.
//   - A server entry ending in a space ("127.0.0.1:6379:1 ", quoted) is
//     rejected; nutcracker names that server "" (see shard.ParseServer).
//   - Listen host names are resolved with Go's resolver
//     (net.DefaultResolver), not glibc's getaddrinfo. Both read /etc/hosts
//     and DNS, but they can differ on unusual setups (nsswitch modules,
//     search domains).
//   - A detailed reason is always given, in the error, whether or not the
//     configuration is only being tested.
package config
