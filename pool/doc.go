// Package pool holds walnut's connections to one backend server,
// pipelined, with twemproxy's timeout and auto-ejection semantics. A
// twemproxy pool (a group of servers) is one Pool per server, which the
// proxy routes between. It knows no protocol: requests are raw bytes,
// and replies are delimited by an injected Framer.
//
// # Model
//
// A Pool has Options.Conns connections to its server (twemproxy's
// server_connections, default 1), dialled on first use or, with
// Preconnect, at New, and redialled on the first use after one fails. Do
// queues a request on one of them, round robin, and returns at once; the
// outcome arrives later through the request's Done callback.
//
// Whoever has a request does the I/O when it can, so that one request at
// a time costs no hand-off between goroutines. A caller of Do whose
// connection is idle (nothing in flight) writes the queue itself: at once,
// or, when it passes a Waiter, when the Waiter's goroutine has queued its
// whole batch (Waiter.Read or Flush: one write per connection for a
// batch). If that write put the Waiter's requests in flight on the idle
// connection, Waiter.Read then reads the connection's replies on the
// caller's goroutine until the Waiter's own are in. A connection that is
// busy has each of its two goroutines do what callers leave: the writer
// takes everything queued and writes it in one write (or one writev, when
// large requests are sent from where they lie), then takes what queued
// meanwhile: the busier the connection, the larger the batches, with no
// timer (when woken from idle it yields once first, so that the
// goroutines just handed their replies can queue their next requests into
// the same write). The reader, started on first need, reads while requests
// are in flight that no Waiter reads. Either cuts what the server sent
// into replies with the Framer and hands each to the next request in FIFO
// order, many requests per read, as a slice of its buffer: nothing is
// copied. Options.Init requests (AUTH, SELECT) go first on each new
// connection and their replies are swallowed.
//
// A connection nobody reads is still watched: after 10 ms idle its reader
// goroutine reads it, so that a server closing it (or sending on it unasked)
// fails it at once, as in twemproxy; and a caller about to write to a
// connection idle for over 1 ms first checks it with a non-blocking peek,
// so that a server that closed it costs a new connection, not the request.
// Socket reads and writes are raw system calls (internal/rawio).
//
// A LoopConn is a connection of the pool whose socket its caller owns: an
// event loop serving many connections from one goroutine makes the system
// calls and tells the LoopConn when the socket is readable or writable;
// the LoopConn queues, frames and completes requests, and counts failures,
// as the pool's own connections do, on the caller's goroutine.
//
// # Failures
//
// A request that fails in the pool gets one of this package's errors
// (ErrConnRefused, ErrTimedOut, …, or an error matching a syscall.Errno).
// The proxy answers it with twemproxy's text for the same failure ("-ERR
// Connection refused", "SERVER_ERROR Connection timed out", …). An error reply from a server (Redis -ERR,
// memcached SERVER_ERROR) is not an error: it is delivered as a reply.
//
// As in twemproxy, a connection that fails closes, and every request queued
// or in flight on it fails with the same error: EOF (ErrEOF), a
// reset, a malformed reply or a reply with nothing outstanding
// (ErrInvalid), a reply Options.IsFailure rejects such as Redis -OOM
// (ErrInvalid), or a request whose Options.Timeout passed (ErrTimedOut:
// the timeout is per request, from when it is queued, and closes the whole
// connection). A failed connection attempt fails the requests waiting for
// it.
//
// Each connection close is one failure of its server, however many requests
// it fails, and any reply resets the server's count of consecutive
// failures. With Options.AutoEject a server that fails FailureLimit times in
// a row is ejected: Options.OnChange is told, so its owner can rebuild its
// placement without it, and requests to it fail at once with ErrEjected.
// Where this package differs from twemproxy 0.5.0:
//
//   - Failures are counted per server event, not per connection: when one
//     event (a restart, say) closes several connections of a server, only
//     the first close counts, so server_connections above
//     server_failure_limit no longer ejects a healthy server on its first
//     hiccup (twemproxy issue #430).
//   - Reinstatement is checked: after RetryTimeout the pool opens a fresh
//     connection, sends Init and Options.Probe, and reinstates the server
//     only if the probe is answered with a reply that is not a failure;
//     otherwise the server stays ejected for another RetryTimeout.
//     twemproxy reinstates blindly, and a dead server then fails
//     FailureLimit more requests every RetryTimeout.
//   - Connection attempts time out after Options.DialTimeout (twemproxy
//     waits for the kernel).
//
// ServerStats carries twemproxy's per-server counters, readable at any
// time.
package pool
