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
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/shard"
)

// A clientConn is one client connection. Its goroutine reads a batch of
// requests (every complete request buffered), sends each to its backend
// through the pool, waits for every reply of the batch, writes the replies
// in request order with one write, and reads again. Forwarded requests alias
// the read buffer, which is safe because nothing is read until the batch is
// answered.
type clientConn struct {
	s  *Server
	nc net.Conn

	// g is the configuration of the current batch, held from begin to
	// end; after end it is still read for its immutable fields.
	g  *generation
	t0 int64 // nanotime when the batch began
	// outLimit is the batch's output limit (0: none); held counts the
	// reply bytes its calls have received, and overflow is set when
	// they pass outLimit, after which replies are dropped.
	outLimit int64
	held     atomic.Int64
	overflow atomic.Bool
	// cmdIDs are the command ids of the batch's requests for the latency
	// histograms (see commandLatencies), -1 for those not counted.
	cmdIDs []int16

	// Batch completion: pending counts the calls in flight plus one for
	// the dispatching goroutine; the call that brings it to zero wakes it.
	pending atomic.Int32
	wake    chan struct{}
	// waiter writes the batch's requests at its end, and lets this
	// goroutine read their replies itself (see pool.Waiter) when inline is
	// set.
	waiter pool.Waiter
	inline bool

	// The async call (see async.go): asyncOut from its start until the
	// client goroutine has taken its completion, astate its state, aerr
	// the error of its write to the client; single is set for a batch of
	// one request that may use it.
	single   bool
	asyncOut bool
	astate   atomic.Int32
	aerr     error

	calls  []*call // reused; calls[:ncalls] belong to the current batch
	ncalls int

	slots   []slot
	local   []byte    // locally generated replies, referenced by slots
	keyCall []int32   // for fragmented requests: the call of each key
	srvCall []int32   // scratch: server index → call index, -1 if none
	pos     []int     // scratch: key positions
	keys    [][]byte  // scratch: the keys of a command being split
	blocks  []mcBlock // scratch: VALUE blocks of the memcached fragments being merged
	out     []byte

	interrupted atomic.Bool
	// readTimed and writeTimed record a ClientTimeout deadline armed, to
	// be cleared if a Reload turns the timeout off.
	readTimed, writeTimed bool
	drainBy               atomic.Int64 // Shutdown: UnixNano drainGrace after it; stored before interrupted
	drainLast             int64        // Shutdown: UnixNano when the previous batch ended; 0 before Shutdown

	// In-process use (Client): the requests of the batch, copied.
	in     []byte
	cmds   []resp.Command
	mcreqs []memcache.Request
	mcerrs []string // per mcreqs: the reply to a request rejected in step, or ""
	marks  []int    // where each reply of the batch ends in out

	// Detached calls: memcached noreply requests, which the batch does
	// not wait for (a backend that stops reading would otherwise hold the
	// client, as noreply requests have no timeout). Their data is copied.
	dmu       sync.Mutex
	dfree     []*call
	ndetached atomic.Int32  // in flight, for a proxy client connection
	nd        *atomic.Int32 // the counter to use: &ndetached, or the Client's

	// In-process use (Client): owner is the Client; state hands the
	// connection over between Client.do and the call that completes a
	// batch (see batchWaiting).
	owner *Client
	state atomic.Int32

	// Redis session state.
	authed bool
	name   []byte
}

// A call is one request to one backend.
type call struct {
	cc     *clientConn
	req    pool.Request
	reply  []byte // copy of the reply
	err    error  // pool error, if the request failed
	buf    []byte // request bytes built by the proxy (fragments, re-encoded inline commands)
	nkeys  int    // keys in a fragment
	cur    int    // merge cursor: into reply (Redis) or blocks (memcached)
	blk0   int    // memcached merge: first of this call's blocks
	nblk   int    // memcached merge: number of blocks
	server int

	g        *generation // detached and async calls: the generation they hold
	detached bool        // not part of a batch: see clientConn.dfree
	async    bool        // the connection's async call (see async.go)
	cmdID    int16       // async call: the command id for its latency, -1: none
	t0       int64       // async call: nanotime when its batch began
}

func (cl *call) done(reply []byte, err error) {
	if cl.async {
		cl.doneAsync(reply, err)
		return
	}
	if cl.detached {
		cl.cc.freeDetached(cl)
		return
	}
	cl.err = err
	if lim := cl.cc.outLimit; lim > 0 && cl.cc.held.Add(int64(len(reply))) > lim {
		cl.cc.overflow.Store(true)
		cl.err, reply = errOutputLimit, nil
	}
	cl.reply = append(cl.reply[:0], reply...)
	if err == nil {
		cl.cc.g.backends[cl.server].rtt.observe(nanotime() - cl.cc.t0)
	}
	if cl.cc.pending.Add(-1) == 0 {
		cl.cc.finish()
	}
}

// States of an in-process batch (clientConn.state).
const (
	batchWaiting   int32 = iota // Client.do waits for the batch
	batchFinished               // the last call is done; do takes wake
	batchAbandoned              // do returned early (ctx); the last call recycles
)

// finish is called when the last call of a batch is done: it wakes the
// waiting goroutine, or, for an in-process batch whose caller has given
// up, returns the connection to its Client.
func (c *clientConn) finish() {
	if c.owner == nil || c.state.CompareAndSwap(batchWaiting, batchFinished) {
		c.wake <- struct{}{}
		return
	}
	c.owner.recycle(c) // batchAbandoned
}

// Slot kinds: how a request's reply is produced.
const (
	slotLocal  uint8 = iota // bytes in local[lo:hi]
	slotSingle              // one call's reply, passed through
	slotNone                // no reply (memcached noreply)
	slotMGet                // Redis MGET fragments, merged by key position
	slotSum                 // Redis DEL/UNLINK/TOUCH/EXISTS fragments, integers added
	slotMSet                // Redis MSET fragments, +OK when all succeed
	slotMcGet               // memcached get/gets/gat/gats fragments, VALUE blocks merged
	slotAsync               // written by the async call's completer (see async.go)
)

// A slot is one client request's place in the reply order.
type slot struct {
	kind        uint8
	lo, hi      int   // slotLocal: local[lo:hi]
	call, ncall int32 // calls[call : call+ncall]
	key0, nkeys int32 // keyCall[key0 : key0+nkeys]
}

func newClientConn(s *Server, nc net.Conn) *clientConn {
	c := &clientConn{s: s, nc: nc, wake: make(chan struct{}, 1)}
	c.nd = &c.ndetached
	c.g = s.gen.Load()
	return c
}

// interrupt makes a client blocked in a read return, so that it notices
// the server is shutting down; a client in the middle of a batch finishes
// it first.
func (c *clientConn) interrupt() {
	c.drainBy.Store(time.Now().Add(drainGrace).UnixNano())
	c.interrupted.Store(true)
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
func (c *clientConn) done(quit bool) bool {
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
func (c *clientConn) linger() {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.nc.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
	_, _ = io.Copy(io.Discard, c.nc)
}

func (c *clientConn) serve() {
	var err error
	if c.s.proto == protocol.Redis {
		err = c.serveRedis()
	} else {
		err = c.serveMemcache()
	}
	if aerr := c.awaitAsync(); err == nil {
		err = aerr
	}
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

// errOutputLimit fails the calls of a batch whose replies passed the
// client's output limit.
var errOutputLimit = errors.New("client output limit exceeded")

// begin starts a batch of n requests, with the configuration in force.
func (c *clientConn) begin(n int) {
	c.g = c.s.acquire()
	c.outLimit = 0
	if n > 1 && c.owner == nil {
		switch l := c.g.cfg.OutputLimit; {
		case l == 0:
			c.outLimit = DefaultOutputLimit
		case l > 0:
			c.outLimit = int64(l)
		}
	}
	c.held.Store(0)
	c.overflow.Store(false)
	c.inline = c.owner == nil && n <= maxWaiterBatch
	// A failed write of the async reply means the client is gone: its
	// next read says so.
	_ = c.pollAsync()
	c.single = c.owner == nil && n == 1 && !c.asyncOut
	for len(c.srvCall) < len(c.g.backends) {
		c.srvCall = append(c.srvCall, -1)
	}
	c.t0 = nanotime()
	c.cmdIDs = c.cmdIDs[:0]
	c.ncalls = 0
	c.slots = c.slots[:0]
	c.local = c.local[:0]
	c.keyCall = c.keyCall[:0]
	c.pending.Store(1)
	c.state.Store(batchWaiting)
}

// newCall returns a fresh call of the current batch and its index.
func (c *clientConn) newCall(server int) (*call, int32) {
	if c.ncalls == len(c.calls) {
		cl := &call{cc: c}
		cl.req.Done = cl.done
		c.calls = append(c.calls, cl)
	}
	cl := c.calls[c.ncalls]
	idx := int32(c.ncalls)
	c.ncalls++
	cl.err = nil
	cl.reply = cl.reply[:0]
	cl.buf = cl.buf[:0]
	cl.nkeys = 0
	cl.cur = 0
	cl.server = server
	cl.req.Data = nil
	cl.req.NoReply = false
	cl.req.Tag = 0
	cl.req.Waiter = &c.waiter
	return cl, idx
}

// maxDetached is the most noreply requests of one client in flight
// without being waited for; beyond it they are waited for like others,
// which bounds the memory a client can pin in a stuck backend's queue.
const maxDetached = 1024

// detachedCall returns a call for a request the batch will not wait for,
// or nil if the client has maxDetached of them in flight.
func (c *clientConn) detachedCall(server int) *call {
	if c.nd.Load() >= maxDetached {
		return nil
	}
	c.dmu.Lock()
	var cl *call
	if n := len(c.dfree); n > 0 {
		cl = c.dfree[n-1]
		c.dfree = c.dfree[:n-1]
	}
	c.dmu.Unlock()
	if cl == nil {
		cl = &call{cc: c, detached: true}
		cl.req.Done = cl.done
	}
	c.nd.Add(1)
	c.s.detached.Add(1)
	cl.server = server
	cl.buf = cl.buf[:0]
	cl.req.Waiter = &c.waiter
	cl.g = c.g
	c.g.refs.Add(1) // the batch holds a reference: the count is not 0
	return cl
}

func (c *clientConn) freeDetached(cl *call) {
	g := cl.g
	cl.g = nil
	cl.req.Data = nil
	if cap(cl.buf) > maxKeptBuffer {
		cl.buf = nil
	}
	c.dmu.Lock()
	c.dfree = append(c.dfree, cl)
	c.dmu.Unlock()
	c.nd.Add(-1)
	c.s.detached.Add(-1)
	c.s.release(g)
}

// group assigns each of keys to a new call for its server, one call per
// server in order of first appearance, counting each call's keys and
// recording in keyCall the call of each key. If every key lives on one
// server it undoes that and returns the server as one (else one is -1).
func (c *clientConn) group(keys [][]byte) (first, ncall, key0 int32, one int) {
	r := c.ring()
	first = int32(c.ncalls)
	key0 = int32(len(c.keyCall))
	for _, k := range keys {
		srv := r.Pick(k)
		ci := c.srvCall[srv]
		if ci < 0 {
			_, ci = c.newCall(srv)
			c.srvCall[srv] = ci
		}
		c.calls[ci].nkeys++
		c.keyCall = append(c.keyCall, ci)
	}
	ncall = int32(c.ncalls) - first
	for _, cl := range c.calls[first:c.ncalls] {
		c.srvCall[cl.server] = -1
	}
	if ncall == 1 {
		one = c.calls[first].server
		c.ncalls = int(first)
		c.keyCall = c.keyCall[:key0]
		return first, 0, key0, one
	}
	return first, ncall, key0, -1
}

// send queues a call on its server.
func (c *clientConn) send(cl *call) {
	c.pending.Add(1)
	c.g.backends[cl.server].pool.Do(0, &cl.req)
}

// maxWaiterBatch is the largest batch whose client goroutine reads its
// replies itself (see pool.Waiter); every batch's requests are written by
// its client goroutine, once dispatched. The replies of a larger batch are read
// by the connections' reader goroutines, so that a client busy dispatching
// a long pipeline does not hold up the replies of others who share its
// backend connection.
const maxWaiterBatch = 32

// wait blocks until every call of the batch is done, then ends the batch.
// If the batch's writes made it the reader of a backend connection, it
// reads the replies there itself first.
func (c *clientConn) wait() {
	if c.inline {
		c.waiter.Read()
	} else {
		c.waiter.Flush()
	}
	if c.pending.Add(-1) != 0 {
		<-c.wake
	}
	c.end()
}

// end ends a batch whose calls are done: it records the latency of its
// requests and releases its configuration.
func (c *clientConn) end() {
	d := nanotime() - c.t0
	for _, id := range c.cmdIDs {
		c.s.lat.observe(int(id), d)
	}
	c.s.release(c.g)
}

// addLocal appends a slot whose reply is b.
func (c *clientConn) addLocal(b []byte) {
	lo := len(c.local)
	c.local = append(c.local, b...)
	c.slots = append(c.slots, slot{kind: slotLocal, lo: lo, hi: len(c.local)})
}

// beforeRead arms the client timeout for the next request.
func (c *clientConn) beforeRead() {
	if c.interrupted.Load() {
		return // Shutdown's deadline stays
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
func (c *clientConn) cutOff() error {
	_ = c.awaitAsync()
	limit := c.outLimit
	c.s.log.Warn("client closed: output limit exceeded", "remote", c.nc.RemoteAddr().String(), "limit", limit)
	msg := "client output limit exceeded: the replies to the pipelined requests passed " +
		strconv.FormatInt(limit, 10) + " bytes (client_output_limit); read replies while pipelining"
	var b []byte
	if c.s.proto == protocol.Redis {
		b = resp.AppendError(c.out[:0], "ERR "+msg)
	} else {
		b = memcache.AppendServerError(c.out[:0], msg)
	}
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
func (c *clientConn) write(out []byte) error {
	if len(out) == 0 {
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
	_, err := c.nc.Write(out)
	if cap(out) > maxKeptBuffer {
		out = nil
	}
	c.out = out[:0]
	c.trim()
	return err
}

// armWrite sets the write deadline for a write to the client, by g's
// client_timeout. It is called by whoever writes to the client: the
// client's goroutine, or the completer of its async call.
func (c *clientConn) armWrite(g *generation) {
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
func (c *clientConn) trim() {
	kept := 0
	for _, cl := range c.calls {
		cl.req.Data = nil // it may point into the read buffer
		kept += cap(cl.reply) + cap(cl.buf)
		if kept > keptBudget {
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
	// Parsed requests point into c.in: drop those references but keep
	// the capacity of their argument slices.
	for i := range c.cmds {
		clear(c.cmds[i].Args)
		c.cmds[i].Raw = nil
	}
	c.cmds = c.cmds[:0]
	if cap(c.cmds) > maxKeptCalls {
		c.cmds = nil
	}
	for i := range c.mcreqs {
		clear(c.mcreqs[i].Keys)
		c.mcreqs[i].Raw, c.mcreqs[i].Data = nil, nil
	}
	c.mcreqs = c.mcreqs[:0]
	if cap(c.mcreqs) > maxKeptCalls {
		c.mcreqs = nil
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
func (c *clientConn) ring() *shard.Ring { return c.g.ring.Load() }

// placeholderKey is the key twemproxy routes keyless commands by.
var placeholderKey = []byte("placeholder")
