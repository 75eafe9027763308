// Package proxy is walnut's twemproxy-compatible proxy: it composes shard
// (placement), protocol/resp and protocol/memcache (codecs) and pool
// (pipelined backend connections) into listeners, one Server per pool of a
// nutcracker.yml.
//
// # Lifecycle
//
// New validates a Config and builds the backend pool; Serve (or
// ListenAndServe) accepts clients; Shutdown stops accepting, lets every
// client finish the requests it has sent, and closes; Close closes at once.
// FromPool turns a pool read by package config into a Config.
// StatsServer serves nutcracker's stats JSON for a set of Servers. Package
// proxy/fleet serves every pool of a nutcracker.yml together, with reloads
// and the admin endpoints; package proxy/metrics exports Servers to
// Prometheus.
//
// # Request path
//
// Each client connection has one goroutine. It reads every complete request
// already buffered, routes each to a backend through the pool (forwarding
// the client's bytes as they are, without copying), waits until the whole
// batch is answered, and writes all the replies, in request order, with one
// write. There is no lock shared between clients on this path: the ring is
// read through an atomic pointer, the pool locks per backend connection.
// Pipelining depth is unlimited. A batch is at most what one read buffer
// holds (16 KiB of requests, more for one long request), sent to the
// backends in windows of about a megabyte of replies, each written before
// the next is sent (see Client limits), so a client that sends without
// reading is slowed by TCP back-pressure and holds about one window. Between batches a client keeps at most a few hundred KiB of
// buffers. memcached noreply requests are not waited for (their bytes are
// copied), so a backend that stops reading cannot hold up a client's other
// requests.
//
// One request at a time costs no hand-off between goroutines: when its
// backend connection is idle, the client's goroutine writes the request and
// reads the reply itself; when it is busy, the connection's own goroutines
// batch everyone's requests. Sockets are read and written with raw system
// calls. The comment after the package clause in doc.go walks one request
// through the source files.
//
// # Routing (Redis)
//
// Commands are looked up in resp's Redis 7 command table, which says where
// their keys are, and routed by walnut's policy (policy.go), which decides
// for each command:
//
//   - single-key commands go to the server of their key (hash tag applied);
//   - MGET, DEL, UNLINK, TOUCH and EXISTS are split into one command per
//     server and merged (MGET in the original key order, duplicates and
//     missing keys included; the others by adding the counts); MSET is split
//     by key/value pair and answered +OK once every part succeeded.
//     twemproxy does not split EXISTS: it counts only the keys on the first
//     key's server;
//   - commands with several fixed keys (SUNION, RENAME, …) and numkeys
//     commands (EVAL, EVALSHA, ZUNIONSTORE, …) go to the server of their
//     first key, and are refused with -CROSSSLOT when their keys live on
//     different servers (twemproxy sends them anyway); EVAL with numkeys 0
//     goes to the server of the key "placeholder", like COMMAND and LOLWUT;
//   - PING [msg], ECHO, QUIT, AUTH, SELECT 0, HELLO [2|3], RESET and CLIENT
//     SETNAME/GETNAME/SETINFO are answered by the proxy. QUIT is answered
//     +OK, as redis-server 7 does (twemproxy sends nothing), then the
//     connection is closed once the earlier replies are written;
//   - HELLO 3 switches the client to RESP3 (twemproxy refuses HELLO): its
//     requests go to backend connections in RESP3 mode, made for RESP3
//     clients when first needed, and their replies (maps, sets, doubles,
//     booleans, big numbers, verbatim strings, nulls) pass through; split
//     commands merge RESP3 replies. HELLO 2 and RESET switch back. The
//     requests sent before a switch are answered before those after it
//     are sent. The in-process Client answers HELLO 3 with NOPROTO;
//   - commands over the whole keyspace or every server are fanned out and
//     their replies merged into what one redis-server holding every key
//     would answer (fanout.go has the rules): FLUSHALL and FLUSHDB run on
//     every server (+OK when all say +OK); DBSIZE adds the counts; KEYS
//     unites the keys; SCAN walks the servers in ring order with a cursor
//     that is server<<48 | that server's cursor; RANDOMKEY picks a server
//     in proportion to its key count; INFO gives one server's Server
//     section, the Keyspace section added up and a Walnut section (INFO
//     <server-name> gives that server's own INFO); SCRIPT LOAD, SCRIPT
//     FLUSH and FUNCTION LOAD, FLUSH, DELETE and RESTORE run on every
//     server, SCRIPT EXISTS answers 1 where every server has the script.
//     TIME and LASTSAVE come from one server. Commands that change data go
//     to every configured server, and one that is down or ejected fails
//     the request with an error naming it; reads go to the servers of the
//     ring, skipping ejected ones. twemproxy refuses all of these;
//   - transactions, blocking commands and subscriptions are served on a
//     server connection of the client's own (pinned.go), up to
//     Config.MaxPinned of them per pool; a channel is routed like a key,
//     so PUBLISH and SPUBLISH go to their channel's server, a pattern is
//     subscribed on every server, and PUBSUB merges the servers' replies
//     (pubsub.go);
//   - other commands (WAIT, SELECT n, CONFIG, …) get an error
//     reply that names the command and says why, and the connection stays
//     open (twemproxy closes it without a word), and so do the commands a
//     pool refuses by configuration (Config.RefuseCommands, the key
//     redis_refuse_commands). Unknown commands and wrong argument counts
//     get redis-server's own error replies.
//
// Malformed framing gets redis-server's protocol error reply, then the
// connection is closed, as redis-server does. Inline commands are accepted.
//
// With Config.Auth set, a client must AUTH first; every other command gets
// "-NOAUTH Authentication required" (twemproxy's text); the password is
// compared in constant time; a wrong one answers "-ERR invalid password" and
// de-authenticates, as in twemproxy. AUTH default <password> and HELLO 2
// (or 3) AUTH default <password> also work.
//
// # Routing (memcached)
//
// Storage commands, cas, incr, decr, touch and delete go to their key's
// server (noreply requests are forwarded and not answered); get, gets, gat
// and gats with keys on several servers are split and merged into one reply
// with the values in request-key order and one END (nutcracker can put a
// found value before another when a missing key lies between them on one
// server; walnut keeps request order, as a single memcached does). A get
// line may hold any number of keys: it is bounded only by
// Limits.MaxRequest (client_request_limit, 64 MiB by default; other lines
// by Limits.MaxLine, 64 KiB) and by Limits.MaxArgs keys. Keys are refused
// only where memcached cannot take them (a space, CR, LF or NUL, or more
// than 250 bytes); keys with other control bytes are forwarded, as
// nutcracker forwards them.
//
// flush_all [delay] [noreply], verbosity <level> [noreply] and stats reset
// go to every configured server, ejected or not, and are answered OK
// (RESET) when every server says so; stats goes to the servers of the ring
// and its reply is their STAT lines merged, in the first server's order:
// every value that is a decimal number on every server is summed (cmd_get,
// get_hits, curr_items, bytes, curr_connections, total_connections,
// limit_maxbytes, rusage_user, …), except pid, uptime, time, version,
// libevent, pointer_size, threads, reserved_fds, hash_power_level and the
// 0/1 state flags (accepting_conns, hash_is_expanding,
// slab_reassign_running, lru_crawler_running), which, like any value that
// is not a number, are the first server's. A part that fails fails the
// request with "SERVER_ERROR <reason> (server <name>)" (and "; the command
// was sent to every server" for the commands that change the servers);
// otherwise an error line from a server (the first in ring order) is the
// reply, as it is. noreply requests go to every server and are not
// answered. stats with another argument (slabs, items, settings, …)
// describes one server and gets a CLIENT_ERROR. nutcracker closes the
// connection on all of these.
//
// version is answered by walnut itself with "VERSION 1.6.18", the
// memcached release whose protocol it speaks: clients parse a memcached
// major.minor.micro version there (nutcracker forwards version to one
// server). quit closes. Meta commands get a CLIENT_ERROR (mn is answered
// MN), unknown commands ERROR; the connection stays open (twemproxy closes
// it). Requests are read as memcached 1.6 reads them, where twemproxy is
// stricter and closes the connection: a negative exptime and "delete <key>
// 0" are forwarded, a data block without its CRLF gets "CLIENT_ERROR bad
// data chunk" and reading goes on, and an HTTP request line gets ERROR.
//
// # Typed memcached calls (in-process)
//
// Client.Memcache returns a Memcache, the typed memcached API of an
// in-process Client: gomemcache's calls, each with a context, over a
// MemcacheItem (Key, Value, Flags, Expiration, CasID). Get, GetAndTouch,
// GetMulti, Set, Add, Replace, Append, Prepend, CompareAndSwap, Delete,
// Touch, Increment and Decrement are routed as the same requests from a
// client connection would be. They live on this separate value, not on
// Client, so that the Client's own Get, Set and so on are Redis calls.
//
// Results carry gomemcache's meanings as exported sentinels, matched with
// errors.Is: ErrCacheMiss (a Get that found nothing; NOT_FOUND to Delete,
// Touch, Increment, Decrement or CompareAndSwap), ErrNotStored (Add of a
// stored key; Replace, Append or Prepend of a missing one), ErrCASConflict
// (CompareAndSwap after a change) and ErrMalformedKey (an empty key, one
// over 250 bytes, or one with a space or control byte, refused before
// anything is sent). An error line is a *MemcacheError holding it; a
// SERVER_ERROR line, memcached's own or the "SERVER_ERROR Connection
// refused" (and so on) of a server that cannot be reached, also matches
// ErrServerError. On a Client of a Redis pool every call fails with an
// error matching ErrNotMemcache and sends nothing.
//
// GetMulti sends one gets request per server (several for more than 1024
// keys on one server) rather than one request split by the proxy, so
// that a failed server fails only its own keys: it returns the items of
// the servers that answered together with a *GetMultiError, whose
// Failures name each failed server (its shard.Server), the keys it was
// asked for and the error. A key in neither the map nor the error is a
// cache miss.
//
// # Backend connections
//
// Every new backend connection of a Redis pool first gets SELECT redis_db
// (when not 0) and then AUTH redis_auth (when set), their replies
// swallowed: nutcracker's order, kept although it means that against
// servers requiring the password the SELECT fails and keys live in
// database 0 — which is where nutcracker put them.
//
// # Shutdown
//
// Shutdown stops accepting, then lets each client finish: the batch in
// progress is answered, and so are requests that arrive within 100 ms of
// Shutdown or of the end of a batch read by then (those the client sent
// before Shutdown); a client that keeps sending is not waited for beyond
// that. Then the proxy sends FIN, discards what the client still sends for
// 100 ms, and closes, so that replies are not destroyed by a reset.
//
// # Client limits
//
// A client's memory is one window of a batch: at most one read buffer of
// requests, and the replies of the requests sent to the backends so far.
// The requests read together are sent in windows of about
// Config.OutputWatermark bytes of replies (client_output_watermark, 1 MiB
// by default) at the client's average reply size, each written to the
// client before the next is sent. A client that stops
// reading blocks only itself, is not disconnected for it, and holds about
// one window: the proxy stops sending its requests and reading new ones
// until it reads. Config.OutputLimit (client_output_limit, off by default)
// is an optional hard cap on one window's replies: a client past it gets
// "-ERR client output limit exceeded …" (memcached: SERVER_ERROR) and is
// closed. A large value passes in a buffer of its own size: the pool reads
// a large reply into a buffer sized for it (pool.Request.KeepLarge), the
// proxy writes it from there, and memory let go after large values is
// returned to the system soon after. Config.ClientTimeout
// (client_timeout, off by default as in twemproxy) closes a client that
// takes longer than that to send a complete request (idle, or holding half
// a request) or to accept its replies.
//
// # Reload
//
// Server.Reload (and Client.Reload) replaces a pool's configuration while it
// serves, which twemproxy cannot do (twemproxy issue #6). Each batch of a
// client's requests is routed with the configuration in force when the
// batch was read and holds it until the batch is answered, so a Reload
// never fails or reorders a request: batches read afterwards use the new
// ring. Each server has its own one-server pool.Pool; a server whose name,
// address and connection settings are unchanged is kept with its
// connections, ejection state, counters and round-trip histogram, and the
// connections of a removed or changed server are closed once no batch of an
// older configuration uses them. A key written before a Reload that moves it
// is, as after a twemproxy restart with the new configuration, on its old
// server. An invalid configuration changes nothing. Listeners are not
// touched: cmd/walnut binds a changed listen address and retires the old
// listener.
//
// # Latency
//
// Server.Latencies reports, per command, the time from reading a request to
// having its reply ready, and ServerStats.RTT (in Stats), per server, the
// time from reading a request to its server's reply; both in fixed buckets
// from 50µs to 10s, counted with atomic adds and no allocation.
//
// # Failures
//
// A request whose backend fails gets "-ERR <reason>" (memcached:
// "SERVER_ERROR <reason>") with twemproxy's reason texts ("Connection
// refused", "Connection timed out", "unknown" for a closed connection, …),
// and counts in forward_error; a fan-out (Redis or memcached) adds the
// server's name. A split request with a failed part gets one error reply,
// and the connection stays usable (twemproxy closes it after a failed MGET
// or multi-key get). An error reply from a backend to a part of a split
// request is passed on as it is. With pool ejection enabled the
// ring without the ejected servers is rebuilt and swapped atomically; when
// every server is ejected the full ring stays and requests fail with
// "Connection refused", as in twemproxy.
//
// # In-process typed Redis API
//
// A Client (NewClient) sends a pool's requests from inside a Go program,
// through the same routing as a Server and with no proxy in between.
// Client.Redis returns a Redis: the Client with typed methods in the
// manner of go-redis (Get, Set with EX/PX/NX/XX/KEEPTTL through SetArgs,
// Del, Exists, Expire, TTL, Incr, IncrBy, Decr, MGet, MSet, HGet, HSet,
// HGetAll, HDel, HIncrBy), a generic Do whose Reply has typed accessors
// (Text, Bytes, Int, Float, Bool, Slice, Strings, StringMap), and a
// Pipeline that sends several commands as one batch. Each call is routed,
// split and merged exactly as the proxy does it, so MGet, MSet, Del and
// Exists work across servers. Where Client.Do returns replies as data,
// Redis returns errors: an error reply is a *RedisError (err != nil
// catches a failed SET), a nil reply is ErrNil (MGet says it per key, in
// each Reply's Err), and a request that failed on its way to or from a
// server is the pool's error (pool.ErrConnRefused, pool.ErrTimedOut, …)
// wrapped with the server's name, not a reply. A typed GET allocates once,
// for the string it returns. Client.Redis of a memcached pool fails with
// ErrNotRedis.
//
// # Stats
//
// StatsServer writes nutcracker's document byte for byte in layout and key
// order: the header keys, then per pool client_eof, client_err,
// client_connections, server_ejects, forward_error, fragments and one object
// per server named as nutcracker names it. Differences: "service" is
// "walnut" and "version" walnut's; fragments counts the sub-requests of
// split and fanned-out requests (nutcracker never increments it); names are
// JSON-escaped.
package proxy

// The path of one request, for readers of the source (the package
// documentation above says what it does; this says where).
//
// A GET from a client, hop by hop, and the file that holds each hop:
//
//  1. server.go, accept: the client's connection gets a goroutine and a
//     session (session.go), whose loop (session.loop) is the same for both
//     protocols: read a batch, run it, write its replies. What differs by
//     protocol is the session's handler (redisHandler in redis.go,
//     memcacheHandler in memcache.go). Sockets are read and written with
//     raw system calls (internal/rawio), outside the scheduler's
//     system-call bookkeeping.
//  2. redis.go, redisHandler.read: the goroutine reads every complete
//     request buffered (protocol/resp's Reader); batch.go, run: it
//     dispatches each (redisHandler.dispatch → redisDispatch), which
//     classifies the command, answers local ones, picks the server with
//     the ring and splits multi-key commands (redisFragment). Each backend
//     request is a call (batch.go), queued on its server's pool with
//     pool.Do, not yet written. The batch's state (its calls, reply slots,
//     completion count) is a batch, in batch.go.
//  3. batch.go, wait: once the batch is dispatched, the goroutine writes
//     its queued requests to the backends itself, one write per backend
//     connection (pool.Waiter, pool/waiter.go; pool/write.go), unless the
//     connection is busy with others' requests, in which case the
//     connection's writer goroutine writes them with everyone else's. If a
//     small batch's write found the backend connection idle, the goroutine
//     then reads that connection's replies itself (pool/read.go, readFor;
//     replies are cut by the framing loop of pool/frames.go), so that with
//     one request at a time nothing but the client's goroutine runs: one
//     read of the client, one write and one read of the backend, one write
//     of the client. Replies read by another goroutine (a connection's
//     reader goroutine, or another client's goroutine reading the same
//     connection) complete the call there (call.done) and wake this
//     goroutine when its batch is answered.
//  4. batch.go, appendReplies → redis.go, appendRedisReply (memcache.go,
//     appendMemcacheReply): the replies are merged where a command was
//     split, appended in request order, and written to the client with one
//     write (session.write). A request that failed in the pool is answered
//     with twemproxy's words for the failure (wiretext.go). A batch of one
//     forwarded request skips step 3's wait and step 4 (async.go): its
//     reply is written to the client, with a non-blocking write, by the
//     goroutine that read it, and the client's goroutine goes back to
//     reading the client at once; whatever it writes next waits for that
//     reply first, so replies stay in order.
//
// With an Engine (Config.Engine; engine_linux.go, evclient_linux.go) the
// same steps run without a goroutine per client. An event loop owns the
// client's socket (accepted as in step 1, then handed to a loop) and its
// own connections to the backends (pool.LoopConn). In step 2 the loop
// reads the client when epoll reports it readable and the session's
// handler parses what arrived; a partial request waits in the reader's
// buffer for the next readiness (evClient.step). In step 3 the calls are
// queued on the loop's backend connections, and every connection with
// requests is written once after all the clients made ready by the same
// epoll_wait have been read (eloop.settle), so the requests of many clients
// leave in one write. The replies are read when the backend is readable;
// the call that completes a window queues its session (evClient.ready),
// and step 4 appends the replies and writes them to the client
// (evClient.send). What the socket does not take waits there, and the
// session reads no more until it drains. No goroutine is woken anywhere
// on the way: one epoll_wait, one read of the client, one write and one
// read of the backend, one write of the client.
//
// The in-process Client (inprocess.go) runs steps 2 to 4 on the caller's
// goroutine with a session of its own: the handler parses the caller's
// request bytes (handler.parse) in place of reading a socket, and the
// replies are returned instead of written. What a client connection and an
// in-process call do differently (QUIT, AUTH, client names, async replies,
// the output limit) is set as fields of the session when it is made.
// The typed API (redisapi.go, redispipeline.go) takes a session the same
// way, appends its commands to the session's input, and decodes the
// replies where the batch left them, before giving the session back, so
// that only what it returns is allocated.
