// Package gomemcache puts a gomemcache client
// (github.com/bradfitz/gomemcache/memcache) on a memcached pool's servers
// exactly as nutcracker (twemproxy) places keys, in two ways.
//
// NewClient returns a *memcache.Client whose every connection is served by
// walnut's router inside the process (a proxy.Server reached through an
// in-memory connection, see proxy.Dialer): keys land where nutcracker puts
// them, a GetMulti is one request that the router splits by server and
// merges, and failing servers are ejected as the pool's auto_eject_hosts,
// server_failure_limit and server_retry_timeout say. It is the one to use
// unless every hop counts.
//
// New returns a *memcache.Client over a Selector, which talks to the
// memcacheds directly, with no router at all: placement is the same, but
// nothing ejects a failing server unless its owner calls Selector.SetLive,
// and each operation is gomemcache's own (see Dead servers and Caveats).
//
// # The in-process client
//
//	mc, err := gomemcache.NewClient(servers, shard.RingOptions{HashTag: "{}"},
//		gomemcache.ClientOptions{})
//	...
//	items, err := mc.GetMulti([]string{"a", "b", "c"})
//
// or from a pool of a nutcracker.yml, whose server connection settings then
// apply:
//
//	mc, err := gomemcache.NewClientFromPool(pool)
//
// The router lives while the client has connections, and
// ClientOptions.Linger after (see proxy.Dialer), which by default keeps an
// ejected server out for server_retry_timeout even though gomemcache drops
// its connection after each server error. Client.Close closes the idle
// connections and so, after the linger time, the server connections.
//
// # The Selector: use
//
// Build the Client from the pool's servers and ring options (hash,
// distribution, hash tag), the same values shard.NewRing takes:
//
//	servers := []shard.Server{
//		{Addr: "10.0.0.1:11211", Weight: 1, Name: "a"},
//		{Addr: "10.0.0.2:11211", Weight: 1, Name: "b"},
//	}
//	mc, err := gomemcache.New(servers, shard.RingOptions{HashTag: "{}"})
//	...
//	err = mc.Set(&memcache.Item{Key: "user:{42}:name", Value: []byte("ann")})
//
// or, as a convenience, from a pool of a nutcracker.yml read by package
// config, whose timeout then becomes the Client's:
//
//	pool, err := config.LoadClientPool("nutcracker.yml", "cache")
//	...
//	mc, err := gomemcache.NewFromPool(pool)
//
// config.LoadClientPool looks the pool up by name and reads the file for a
// client: the pool need not have a listen address, and a listen host name
// is not resolved.
//
// New and NewFromPool plug a Selector, a memcache.ServerSelector, into
// memcache.NewFromSelector. NewSelector returns the Selector of a server
// list and shard.RingOptions, NewSelectorFromPool that of a pool.
// A Selector places a key with a shard.Ring: the pool's hash, distribution
// (ketama, modula or random) and hash_tag, and its servers' weights and names.
// Names matter: ketama hashes each server's ID (shard.Server.ID, the name
// after the weight in the servers: entry, or else the address, without the
// port when it is 11211) into its continuum, and nutcracker numbers the
// servers in the order of their IDs. With a hash tag a key is placed by the
// tagged part ("user:{42}:name" by "42") but stored under the whole key,
// as nutcracker stores it.
//
// # Keys
//
// PickServer refuses, with memcache.ErrMalformedKey, the keys gomemcache's
// Client refuses: longer than 250 bytes, or containing a space, a control
// byte or DEL. The Client checks keys itself, but in Set, Add and the other
// storage commands only after it has connected, so a dead server would hide
// the reason. PickServer also refuses the empty key, which the Client lets
// through and memcached answers with an error. Bytes 0x80 and above are
// placed as nutcracker places them.
//
// # Addresses
//
// Server addresses are resolved once, by NewSelector, as memcache.ServerList
// resolves them; a host name that does not resolve is an error there, not, as
// with nutcracker, a failure of each request for that server's keys. Unix
// socket servers ("/path/to.sock:1 name" in the pool) are dialled over
// "unix". Resolution never affects placement.
//
// # Dead servers
//
// With auto_eject_hosts: true nutcracker takes a server that fails
// server_failure_limit times in a row out of the distribution for
// server_retry_timeout, and only that server's keys move. A Selector does not
// watch servers; its owner mirrors ejection with SetLive, after which keys go
// where nutcracker sends them with the same servers ejected. Without
// auto_eject_hosts nutcracker never ejects a server, so its keys fail rather
// than move; leave every server live to match it.
//
// # Caveats
//
//   - With distribution: random, nutcracker sends each request to a random
//     server, and so does a Selector: a get rarely finds what a set stored.
//   - The pool's timeout becomes Client.Timeout; with none, gomemcache's 500ms
//     default applies instead of nutcracker's unlimited wait.
//     server_connections and the other proxy settings are not used.
//   - FlushAll and Ping reach every server, ejected or not (see
//     Selector.Each).
//   - GetMulti sends one request per server for the keys it holds, as
//     nutcracker splits a multi-key get.
package gomemcache
