package proxy

import (
	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// A client that sends one request at a time is answered by whichever
// goroutine completes the request: its batch of one forwarded request is
// sent with the connection's async call, and the client's goroutine goes
// back to reading the client at once instead of waiting for the reply.
// The goroutine that reads the reply from the backend (a connection's
// reader goroutine, or this client's own goroutine reading inline) writes
// it to the client, with a non-blocking write. So a request costs the
// client's goroutine one wake-up (its next request), not two (the reply,
// then its next request).
//
// At most one async call is outstanding. Everything else that writes to
// the client (the next batch's replies, an error reply, the end of the
// session) first waits for it (awaitAsync), so replies stay in request
// order; a batch read while it is outstanding takes the ordinary path.
// Async calls come from a pool of the Server's, so that an idle client
// holds none.

// asyncFor reports whether the request raw, forwarded whole, takes the
// async call: it is the batch's only request (single), and not large, as
// the async call copies the request (the read buffer moves on) and a large
// one is better left where it lies until its reply is in.
func (c *session) asyncFor(raw []byte) bool { return c.single && len(raw) < pool.LargeReply }

// asyncCall returns the connection's async call, reset for a request to
// server, holding the batch's configuration. The batch's last command id
// moves to the call, which records its latency when it completes.
func (c *session) asyncCall(server int) *call {
	cl := c.s.asyncCalls.Get().(*call)
	cl.cc = c
	cl.err = nil
	cl.server = server
	cl.buf = cl.buf[:0]
	cl.req.NoReply = false
	cl.req.Tag = 0
	cl.req.KeepLarge = true
	cl.req.Waiter = &c.waiter
	cl.g = c.g
	c.g.refs.Add(1) // the batch holds a reference: the count is not 0
	cl.t0 = c.t0
	cl.cmdID = -1
	if n := len(c.cmdIDs); n > 0 {
		cl.cmdID = c.cmdIDs[n-1]
		c.cmdIDs = c.cmdIDs[:n-1]
	}
	c.asyncOut = true
	c.astate.Store(asyncPending)
	c.slots = append(c.slots, slot{kind: slotAsync})
	return cl
}

// sendAsync queues the async call, whose request is in its buf, on its
// server.
func (c *session) sendAsync(cl *call) {
	cl.req.Data = cl.buf
	c.do(cl)
}

// doneAsync completes the async call: it writes the reply (or the error
// reply) to the client, records the latency and lets go of the call.
func (cl *call) doneAsync(reply []byte, err error) {
	c := cl.cc
	g := cl.g
	now := nanotime()
	out := reply
	if err != nil {
		c.s.stats.forwardError.Add(1)
		if c.s.proto == protocol.Redis {
			out = resp.AppendError(cl.reply[:0], "ERR "+wireText(err))
		} else {
			out = memcache.AppendServerError(cl.reply[:0], wireText(err))
		}
		cl.reply = out[:0]
	} else {
		g.backends[cl.server].rtt.observe(now - cl.t0)
	}
	if cl.cmdID >= 0 {
		c.s.lat.observe(int(cl.cmdID), now-cl.t0)
	}
	cl.req.Data = nil
	c.armWrite(g)
	n, werr := 0, error(nil)
	if tw, ok := c.nc.(tryWriter); ok {
		n, werr = tw.TryWrite(out)
	}
	large := len(reply) >= pool.LargeReply // a buffer of its own (KeepLarge)
	if werr == nil && n < len(out) {
		// The client's socket is full (or cannot be written without
		// blocking): finish on a goroutine of its own, with the reply
		// copied (unless it is large, and so already the call's), so
		// that the backend's reader never waits for a client.
		rest := out[n:]
		if !large {
			rest = append(cl.buf[:0], rest...)
			cl.buf = rest
		}
		go cl.finishAsync(rest, g, large)
		return
	}
	cl.endAsync(werr, g)
	if large {
		freeLater(len(reply))
	}
}

// finishAsync writes the rest of an async reply that did not fit in the
// client's socket, as the client goroutine's own writes do.
func (cl *call) finishAsync(rest []byte, g *generation, large bool) {
	_, err := cl.cc.nc.Write(rest)
	cl.endAsync(err, g)
	if large {
		freeLater(len(rest))
	}
}

func (cl *call) endAsync(werr error, g *generation) {
	c := cl.cc
	cl.g, cl.cc = nil, nil
	if cap(cl.buf) > maxKeptBuffer {
		cl.buf = nil
	}
	if cap(cl.reply) > maxKeptBuffer {
		cl.reply = nil
	}
	c.s.asyncCalls.Put(cl)
	c.s.release(g)
	c.aerr = werr
	if !c.astate.CompareAndSwap(asyncPending, asyncDone) {
		c.wake <- struct{}{} // asyncWaiting: awaitAsync waits for it
	}
}

// States of a connection's async call (session.astate).
const (
	asyncPending int32 = iota // outstanding
	asyncDone                 // complete; the client goroutine has not looked yet
	asyncWaiting              // the client goroutine waits in awaitAsync
)

// newAsyncCall makes a call for a Server's pool of async calls.
func newAsyncCall() any {
	cl := &call{async: true}
	cl.req.Done = cl.done
	return cl
}

// awaitAsync waits for the async call, if one is outstanding, and returns
// the error of its write to the client. It uses the wake channel, which
// no batch is using then.
func (c *session) awaitAsync() error {
	if !c.asyncOut {
		return nil
	}
	if c.astate.CompareAndSwap(asyncPending, asyncWaiting) {
		<-c.wake
	}
	return c.endAwait()
}

// pollAsync takes the async call's completion if it has completed,
// without waiting.
func (c *session) pollAsync() error {
	if !c.asyncOut || c.astate.Load() != asyncDone {
		return nil
	}
	return c.endAwait()
}

// endAwait takes the async call's completion: the error of its write to
// the client.
func (c *session) endAwait() error {
	err := c.aerr
	c.aerr = nil
	c.asyncOut = false
	return err
}
