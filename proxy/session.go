package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/shard"
)

// A session is one client's conversation with a pool: a client connection
// of a Server, or one call of the in-process Client. It takes the client's
// requests a batch at a time, dispatches each (the protocol's handler
// routes it and queues its backend requests), waits for the batch's
// replies and appends them in request order. For a connection, serve is
// that loop: it reads every complete request buffered, and writes the
// batch's replies with one write before reading again. Forwarded requests
// alias the read buffer, which is safe because nothing is read until the
// batch is answered.
type session struct {
	s  *Server
	nc net.Conn // nil for the in-process Client
	h  handler  // the protocol's part: reading, dispatching, replying
	// ev is set when an event loop serves the connection (engine.go):
	// the loop reads, writes and waits for the session, which then has
	// no goroutine of its own.
	ev *evClient

	batch // the batch in progress

	// What differs between a client connection and an in-process call,
	// set when the session is made (newSession, NewClient).
	trusted     bool            // asked no password: Auth is only sent to the servers, and AUTH cannot lose it
	quitEnds    bool            // QUIT ends the session once answered
	named       bool            // CLIENT SETNAME/GETNAME and HELLO SETNAME name the session
	resp3OK     bool            // HELLO 3 may switch the session to RESP3 (resp3.go)
	replyAsync  bool            // a batch of one forwarded request is answered by whoever reads its reply (async.go)
	limitOutput bool            // Config.OutputLimit applies to pipelined batches
	recycle     func(*session)  // takes back a session whose caller gave up its batch
	inflight    *sync.WaitGroup // held by an abandoned batch until it completes

	// wake is signalled by the call that completes the batch, and by the
	// async call's completer when the session waits for it.
	wake chan struct{}

	// The async call (see async.go): asyncOut from its start until the
	// session has taken its completion, astate its state, aerr the error
	// of its write to the client.
	asyncOut bool
	astate   atomic.Int32
	aerr     error

	out      []byte // the batch's replies, in order
	avgReply int    // the average reply size of pipelined requests so far (0: none yet), for window

	interrupted atomic.Bool
	// readTimed and writeTimed record a ClientTimeout deadline armed, to
	// be cleared if a Reload turns the timeout off.
	readTimed, writeTimed bool
	drainBy               atomic.Int64 // Shutdown: UnixNano drainGrace after it; stored before interrupted
	drainLast             int64        // Shutdown: UnixNano when the previous batch ended; 0 before Shutdown

	// In-process use (Client): the requests of the batch, copied, and
	// where each reply of the batch ends in out.
	in    []byte
	marks []int

	// Detached calls: memcached noreply requests, which the batch does
	// not wait for (a backend that stops reading would otherwise hold the
	// client, as noreply requests have no timeout). Their data is copied.
	dmu       sync.Mutex
	dfree     []*call
	ndetached atomic.Int32  // in flight, for a client connection
	nd        *atomic.Int32 // the counter to use: &ndetached, or the Client's

	pinFields // pinned conversations (pinned.go)

	// Redis session state.
	authed bool
	name   []byte
	resp3  bool // the client speaks RESP3 (HELLO 3)
}

// A handler is one protocol's part of a session: how requests are read,
// dispatched and answered. A connection's loop (serve) and the in-process
// Client drive it alike: take a batch (read, or parse), dispatch each
// request, wait for the batch, append each reply.
type handler interface {
	// read reads the client's next batch of complete requests and
	// returns how many there are. A request the protocol answers and
	// skips (memcached's errors in step) is answered here; an error ends
	// the session, after any reply the protocol owes the client.
	read(c *session) (int, error)
	// parse takes the requests of in, which end at ends, as the next
	// batch (in-process). If any is malformed or incomplete it fails and
	// the batch is not run.
	parse(c *session, in []byte, ends []int) error
	// dispatch routes request i of the batch. It reports a QUIT, which
	// has been given its slot.
	dispatch(c *session, i int) (quit bool)
	// appendReply appends the reply of the batch's request i, whose
	// slot is c.slots[i] (request c.first+i of those the handler holds).
	appendReply(c *session, out []byte, i int) []byte
	// appendError appends an error reply with text msg.
	appendError(out []byte, msg string) []byte
	// reset drops the batch's references to request bytes, keeping at
	// most a bounded capacity for the next batch.
	reset()
	// size returns the bytes of requests lo to hi as received.
	size(lo, hi int) int
}

// newSession returns a session of s. A client connection nc is served by
// serve; with nc nil the session is the in-process Client's, which sets
// its own fields.
func newSession(s *Server, nc net.Conn) *session {
	c := &session{s: s, nc: nc, wake: make(chan struct{}, 1)}
	c.nd = &c.ndetached
	c.g = s.gen.Load()
	if s.proto == protocol.Redis {
		c.h = &redisHandler{}
	} else {
		c.h = &memcacheHandler{}
	}
	if nc != nil {
		c.quitEnds, c.named, c.replyAsync, c.limitOutput, c.resp3OK = true, true, true, true, true
	}
	return c
}

// interrupt makes a client blocked in a read return, so that it notices
// the server is shutting down; a client in the middle of a batch finishes
// it first.
func (c *session) interrupt() {
	c.drainBy.Store(time.Now().Add(drainGrace).UnixNano())
	c.interrupted.Store(true)
	if c.ev != nil {
		c.ev.interrupt()
		return
	}
	// Requests already on their way are still read and answered.
	_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
}

// done reports whether the session should end after a batch: only after
// QUIT. On Shutdown the session reads on for drainGrace after a batch
// that may have been read within drainGrace of Shutdown (the previous
// batch ended by then), so that requests a client sent before Shutdown
// are answered even when a batch took long; a later batch gives no more
// time, so a client that keeps sending does not keep the session, and
// Shutdown, going until Shutdown's context ends.
func (c *session) done(quit bool) bool {
	if quit {
		return true
	}
	if c.interrupted.Load() {
		now := time.Now()
		if c.drainLast < c.drainBy.Load() {
			_ = c.nc.SetReadDeadline(now.Add(drainGrace))
		}
		c.drainLast = now.UnixNano()
	}
	return false
}

// linger ends a connection closed by Shutdown: it sends FIN and discards
// what the client still sends for a moment, so that closing with unread
// data does not reset the connection and destroy replies the client has
// not read yet.
func (c *session) linger() {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.nc.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
	_, _ = io.Copy(io.Discard, c.nc)
}

// serve serves a client connection until it ends, then closes it.
func (c *session) serve() {
	err := c.loop()
	if aerr := c.awaitAsync(); err == nil {
		err = aerr
	}
	c.unpin()
	if c.interrupted.Load() {
		c.linger()
	}
	c.nc.Close()
	c.s.stats.clientConns.Add(-1)
	switch {
	case err == nil || errors.Is(err, io.EOF) || c.interrupted.Load():
		c.s.stats.clientEOF.Add(1)
	default:
		c.s.stats.clientErr.Add(1)
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.s.log.Debug("client connection closed", "remote", c.nc.RemoteAddr().String(), "err", err)
		}
	}
}

// loop is the session loop of a client connection: read what the client
// has sent, run it and write the replies, until the client quits or fails.
//
// The requests read together are run in windows, each written to the
// client before the next is sent to the backends, so that the replies a
// session holds stay near the output watermark whatever the client
// pipelines (see window). A client that does not read its replies blocks
// the session in its write: its next requests are neither sent nor read
// (the kernel's buffers then stop the client), and it is served again,
// in order, when it reads. Nothing is dropped and the client is not
// disconnected for being slow; client_timeout is what bounds a stall.
func (c *session) loop() error {
	// A session that left an event loop goes on with its batch.
	i, n := c.resumeI, c.resumeN
	c.resumeI, c.resumeN = 0, 0
	for {
		if n == 0 {
			c.beforeRead()
			var err error
			if n, err = c.h.read(c); err != nil {
				return err
			}
			i = 0
		}
		quit := false
		for i < n && !quit {
			if c.pinNext(i) {
				// Served alone, on a server connection of its own.
				var err error
				if quit, err = c.pinned(i); err != nil {
					return err
				}
				i++
				continue
			}
			k := c.windowCut(i, i+c.window(n-i)) - i
			quit, _ = c.run(i, i+k, nil)
			if c.overflow.Load() {
				return c.cutOff()
			}
			out := c.appendReplies(c.out[:0], false)
			if k > 1 {
				c.learn(len(out)+c.bigLen, len(c.slots))
			}
			if size := c.h.size(i, i+k); size >= pool.LargeReply {
				freeLater(size) // the read buffer that held them goes at the next read
			}
			if err := c.write(out); err != nil {
				return err
			}
			i += k
		}
		c.h.reset()
		n = 0
		if c.done(quit) {
			return nil
		}
	}
}

// firstWindow is how many pipelined requests a session runs at once before
// it has seen how large its replies are.
const firstWindow = 16

// window returns how many of the next remaining requests to run before
// writing their replies: as many as the output watermark holds at the
// session's average reply size so far, at least one.
func (c *session) window(remaining int) int {
	if c.avgReply == 0 {
		return min(remaining, firstWindow)
	}
	w := c.s.gen.Load().cfg.OutputWatermark
	if w == 0 {
		w = DefaultOutputWatermark
	}
	return max(1, min(remaining, w/c.avgReply))
}

// learn updates the session's average reply size with a window's: bytes
// of replies to n requests.
func (c *session) learn(bytes, n int) {
	if n == 0 {
		return
	}
	avg := max(1, bytes/n)
	if c.avgReply == 0 {
		c.avgReply = avg
	} else {
		c.avgReply = max(1, (3*c.avgReply+avg)/4)
	}
}

// errOutputLimit fails the calls of a batch whose replies passed the
// client's output limit.
var errOutputLimit = errors.New("client output limit exceeded")

// beforeRead arms the client timeout for the next request.
func (c *session) beforeRead() {
	if c.interrupted.Load() {
		return // Shutdown's deadline stays
	}
	if c.pin != nil && c.pin.kind == pinPubsub {
		c.pubsubBeforeRead()
		return
	}
	switch t := c.s.gen.Load().cfg.ClientTimeout; {
	case t > 0:
		_ = c.nc.SetReadDeadline(time.Now().Add(t))
		c.readTimed = true
	case c.readTimed:
		// A Reload turned the timeout off.
		_ = c.nc.SetReadDeadline(time.Time{})
		c.readTimed = false
	default:
		return
	}
	if c.interrupted.Load() {
		// Shutdown's interrupt came meanwhile: keep its deadline.
		_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
	}
}

// cutOff ends a connection whose batch passed the output limit: the client
// gets one error reply instead of the batch's replies.
func (c *session) cutOff() error {
	_ = c.awaitAsync()
	limit := c.outLimit
	c.s.log.Warn("client closed: output limit exceeded", "remote", c.nc.RemoteAddr().String(), "limit", limit)
	msg := "client output limit exceeded: the replies to the pipelined requests passed " +
		strconv.FormatInt(limit, 10) + " bytes (client_output_limit); read replies while pipelining"
	b := c.h.appendError(c.out[:0], msg)
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.nc.Write(b); err == nil {
		// FIN, not a reset that would destroy the error reply: the
		// client's unread requests are still buffered.
		c.linger()
	}
	return errOutputLimit
}

// write sends out, after any outstanding async reply, and drops an
// oversized buffer.
func (c *session) write(out []byte) error {
	if len(out) == 0 && len(c.big) == 0 {
		// Nothing to write (the batch's reply is the async call's, or
		// none): the async reply, if any, is not waited for.
		c.out = out
		c.trim()
		return nil
	}
	if err := c.awaitAsync(); err != nil {
		return err
	}
	c.armWrite(c.g)
	var err error
	if c.ev != nil {
		err = c.ev.send(out, c.big) // it returns large buffers when written
		clear(c.big)
		c.big, c.bigLen = c.big[:0], 0
	} else if len(c.big) == 0 {
		_, err = c.nc.Write(out)
	} else {
		err = c.writeBig(out)
	}
	if cap(out) > maxKeptBuffer {
		if cap(out) >= pool.LargeReply && c.ev == nil {
			freeLater(cap(out)) // a merged reply of large values
		}
		out = nil
	}
	c.out = out[:0]
	c.trim()
	return err
}

// writeBig writes out with the batch's large replies in place, each from
// where it lies, then lets go of them.
func (c *session) writeBig(out []byte) error {
	prev := 0
	var err error
	for _, b := range c.big {
		if b.at > prev {
			if _, err = c.nc.Write(out[prev:b.at]); err != nil {
				break
			}
		}
		if _, err = c.nc.Write(b.b); err != nil {
			break
		}
		prev = b.at
	}
	if err == nil && prev < len(out) {
		_, err = c.nc.Write(out[prev:])
	}
	freeLater(c.bigLen)
	clear(c.big)
	c.big, c.bigLen = c.big[:0], 0
	return err
}

// armWrite sets the write deadline for a write to the client, by g's
// client_timeout. It is called by whoever writes to the client: the
// client's goroutine, or the completer of its async call.
func (c *session) armWrite(g *generation) {
	if t := g.cfg.ClientTimeout; t > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(t))
		c.writeTimed = true
	} else if c.writeTimed {
		_ = c.nc.SetWriteDeadline(time.Time{})
		c.writeTimed = false
	}
}

// trim bounds what a client keeps between batches, so that an idle
// connection that once ran a large batch holds little memory: at most
// maxKeptCalls calls, and their buffers only up to keptBudget bytes in all.
func (c *session) trim() {
	kept := 0
	for _, cl := range c.calls {
		cl.req.Data = nil // it may point into the read buffer
		kept += cap(cl.reply) + cap(cl.buf)
		if kept > keptBudget {
			if cap(cl.reply) >= pool.LargeReply {
				freeLater(cap(cl.reply))
			}
			cl.reply, cl.buf = nil, nil
		}
	}
	if len(c.calls) > maxKeptCalls {
		clear(c.calls[maxKeptCalls:])
		c.calls = c.calls[:maxKeptCalls:maxKeptCalls]
	}
	if cap(c.local) > maxKeptBuffer {
		c.local = nil
	}
	if cap(c.out) > maxKeptBuffer {
		c.out = nil
	}
	if cap(c.in) > maxKeptBuffer {
		c.in = nil
	}
	if cap(c.marks) > maxKeptCalls {
		c.marks = nil
	}
	if cap(c.slots) > maxKeptCalls {
		c.slots = nil
	}
	if cap(c.keyCall) > 4*maxKeptCalls {
		c.keyCall = nil
	}
	clear(c.keys) // they point into the read buffer
	if cap(c.keys) > 4*maxKeptCalls {
		c.keys = nil
	}
	if cap(c.cmdIDs) > 4*maxKeptCalls {
		c.cmdIDs = nil
	}
	if cap(c.pos) > 4*maxKeptCalls {
		c.pos = nil
	}
	if cap(c.blocks) > 4*maxKeptCalls {
		c.blocks = nil
	}
}

const (
	// maxKeptCalls is the most call objects a client keeps between
	// batches.
	maxKeptCalls = 64
	// keptBudget bounds the bytes of the request and reply buffers a
	// client keeps between batches.
	keptBudget = 256 << 10
	// drainGrace is how long Shutdown waits for requests a client has
	// sent but the proxy has not read yet, and then for the client to
	// close, before closing its connection.
	drainGrace = 100 * time.Millisecond
)

// maxKeptBuffer is the largest scratch buffer kept between batches.
const maxKeptBuffer = 256 << 10

// ring returns the ring in force.
func (c *session) ring() *shard.Ring { return c.g.ring.Load() }

// placeholderKey is the key twemproxy routes keyless commands by.
var placeholderKey = []byte("placeholder")
