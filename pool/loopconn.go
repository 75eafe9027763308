package pool

import (
	"time"
)

// A LoopIO is the non-blocking socket of a LoopConn, owned by the caller.
// Read and Writev never block: when nothing can be read or written now
// they return an error for which errors.Is(err, syscall.EAGAIN) holds
// (with n == 0). Read returns io.EOF when the server has closed the
// connection. Writev writes the buffers in order, as much as the socket
// takes, and returns how many bytes it wrote.
type LoopIO interface {
	Read(p []byte) (n int, err error)
	Writev(bufs [][]byte) (n int, err error)
}

// A LoopConn is one connection to the pool's server whose socket the
// caller owns and drives, typically an event loop that does the system
// calls itself and serves many connections from one goroutine. The
// LoopConn does everything else a connection of the pool does: it queues
// requests, writes them in order (Init first on a new connection), frames
// the replies and completes the requests in order, applies Timeout,
// IsFailure, KeepLarge and NoReply, and counts all of it in the pool's
// Stats, failure count and ejection exactly as the pool's own connections
// do.
//
// A LoopConn is not safe for concurrent use: its owner calls every method
// from one goroutine, and the Done of its requests is called from those
// calls (Do, Readable, Flush, Expire, Failed, DialFailed, Close), never from
// another goroutine.
//
// Its life: Do queues; when NeedDial reports true the owner starts
// connecting to Server (Dialing), then calls Connected with the socket, or
// DialFailed. While connected it calls Readable when the socket is
// readable, Flush when it is writable or after queuing (the owner may
// batch: call Flush once after many Do), Expire when Next has passed. A
// non-nil error from Readable, Flush or Expire, or the owner's own Failed,
// means the connection is gone: its requests have been failed and
// counted, the owner closes the socket, and the LoopConn is back to not
// connected (a later Do makes NeedDial true again).
type LoopConn struct {
	p *Pool
}

// NewLoopConn returns a LoopConn to p's server, not connected. closed is
// called, from any goroutine and at most once, when p is closed, so that
// the owner calls Close from its own goroutine; it must not block.
func (p *Pool) NewLoopConn(closed func()) *LoopConn {
	panic("not implemented")
}

// Server returns the server to connect to.
func (c *LoopConn) Server() Server { panic("not implemented") }

// Do queues req as Pool.Do does: a request to an ejected server, or on a
// closed pool or LoopConn, is completed before Do returns (ErrEjected,
// ErrClosed). Nothing is written until Flush.
func (c *LoopConn) Do(req *Request) { panic("not implemented") }

// NeedDial reports whether the owner should start a connection: requests
// are queued (or the pool has Preconnect) and there is no connection and
// no attempt in progress.
func (c *LoopConn) NeedDial() bool { panic("not implemented") }

// Dialing records that the owner has started connecting at now: the
// attempt is bounded by DialTimeout (see Next and Expire).
func (c *LoopConn) Dialing(now time.Time) { panic("not implemented") }

// DialFailed records a failed connection attempt: the queued requests
// fail with the pool's error for err and the failure is counted.
func (c *LoopConn) DialFailed(err error) { panic("not implemented") }

// Connected gives the LoopConn its socket: Init requests are queued ahead
// of the others. The owner then calls Flush.
func (c *LoopConn) Connected(io LoopIO) { panic("not implemented") }

// Pending reports whether bytes are waiting to be written.
func (c *LoopConn) Pending() bool { panic("not implemented") }

// Flush writes queued requests until all are written or the socket takes
// no more.
func (c *LoopConn) Flush() error { panic("not implemented") }

// Readable reads until the socket has nothing more, completing the
// requests whose replies arrived.
func (c *LoopConn) Readable() error { panic("not implemented") }

// Next returns when Expire must next be called: the deadline of the
// oldest request waiting (Timeout), or of the attempt in progress
// (DialTimeout); the zero time if none.
func (c *LoopConn) Next() time.Time { panic("not implemented") }

// Expire fails the connection (or the attempt) with ErrTimedOut if its
// deadline has passed at now, as the pool's connections do.
func (c *LoopConn) Expire(now time.Time) error { panic("not implemented") }

// Failed records that the socket failed outside Readable and Flush (an
// error or hang-up the owner saw): as a read error err would.
func (c *LoopConn) Failed(err error) { panic("not implemented") }

// Close fails every request with ErrClosed and ends the LoopConn: it is
// no longer counted, and Do fails at once. The owner closes the socket.
func (c *LoopConn) Close() { panic("not implemented") }
