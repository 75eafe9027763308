package proxy

import (
	"sync/atomic"

	"github.com/walnutproxy/walnut/pool"
)

// A batch is the state of the requests a session took together: read
// together (or passed together to the in-process Client), dispatched, then
// answered together, in order. Its replies come from three places (see
// slot): the proxy's own (local), one backend call's reply passed through,
// or several calls' replies merged (a split command).
type batch struct {
	// g is the configuration of the batch, held from begin to end; after
	// end it is still read for its immutable fields.
	g  *generation
	t0 int64 // nanotime when the batch began
	// outLimit is the batch's output limit (0: none); held counts the
	// reply bytes its calls have received, and overflow is set when they
	// pass outLimit, after which replies are dropped.
	outLimit int64
	held     atomic.Int64
	overflow atomic.Bool
	// cmdIDs are the command ids of the batch's requests for the latency
	// histograms (see commandLatencies), -1 for those not counted.
	cmdIDs []int16

	// Completion: pending counts the calls in flight plus one for the
	// dispatching goroutine; the call that brings it to zero wakes it
	// (finish). state hands an in-process batch over between its caller
	// and that call when the caller gives up (see batchWaiting).
	pending atomic.Int32
	state   atomic.Int32
	// waiter writes the batch's requests at its end, and lets the
	// session's goroutine read their replies itself (see pool.Waiter)
	// when inline is set.
	waiter pool.Waiter
	inline bool
	// single is set for a batch of one request that may use the async
	// call (async.go).
	single bool
	// first is the index, among the requests the handler holds, of the
	// batch's first: slot i answers request first+i.
	first int

	calls  []*call // reused; calls[:ncalls] belong to the batch
	ncalls int

	slots []slot // one per request, in order
	local []byte // locally generated replies, referenced by slots
	// big are the large replies passed through (pool.LargeReply or more),
	// which are written from where they lie rather than copied into the
	// session's output; bigLen is their total length.
	big     []bigReply
	bigLen  int
	keyCall []int32   // for split requests: the call of each key
	srvCall []int32   // scratch: server index → call index, -1 if none
	pos     []int     // scratch: key positions
	keys    [][]byte  // scratch: the keys of a command being split
	blocks  []mcBlock // scratch: VALUE blocks of the memcached fragments being merged
}

// A call is one request to one backend.
type call struct {
	cc     *session
	req    pool.Request
	reply  []byte // copy of the reply
	err    error  // pool error, if the request failed
	buf    []byte // request bytes built by the proxy (fragments, re-encoded inline commands)
	nkeys  int    // keys in a fragment
	cur    int    // merge cursor: into reply (Redis) or blocks (memcached)
	blk0   int    // memcached merge: first of this call's blocks
	nblk   int    // memcached merge: number of blocks
	server int
	fin    bool // done: its reply (or error) is in (a batch's calls, read by an event loop's prefix writing)

	g        *generation // detached and async calls: the generation they hold
	detached bool        // not part of a batch: see session.dfree
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
	if len(reply) >= pool.LargeReply {
		cl.reply = reply // a buffer of its own (KeepLarge): kept, not copied
	} else {
		cl.reply = append(cl.reply[:0], reply...)
	}
	if err == nil {
		cl.cc.g.backends[cl.server].rtt.observe(nanotime() - cl.cc.t0)
	}
	cl.fin = true
	if cl.cc.pending.Add(-1) == 0 {
		cl.cc.finish()
	} else if ev := cl.cc.ev; ev != nil {
		ev.progress() // on the loop's goroutine: a prefix may be complete
	}
}

// States of an in-process batch (session.state).
const (
	batchWaiting   int32 = iota // Client.do waits for the batch
	batchFinished               // the last call is done; do takes wake
	batchAbandoned              // do returned early (ctx); the last call recycles
)

// finish is called when the last call of a batch is done: it wakes the
// waiting goroutine, or, for an in-process batch whose caller has given
// up, returns the connection to its Client.
func (c *session) finish() {
	if c.state.CompareAndSwap(batchWaiting, batchFinished) {
		if c.ev != nil {
			c.ev.ready() // an event loop's client: on the loop's goroutine
			return
		}
		c.wake <- struct{}{}
		return
	}
	c.recycle(c) // batchAbandoned
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
	slotFan                 // Redis fan-out replies, merged as fan says (see fanout.go)
	slotMcAll               // memcached flush_all/verbosity/stats: one call per server, merged (mcfanout.go)
)

// A bigReply is a large reply passed through: b goes at offset at of the
// session's output.
type bigReply struct {
	at int
	b  []byte
}

// A slot is one client request's place in the reply order.
type slot struct {
	kind        uint8
	lo, hi      int   // slotLocal: local[lo:hi]
	call, ncall int32 // calls[call : call+ncall]
	key0, nkeys int32 // keyCall[key0 : key0+nkeys]; slotFan: see fanout.go
	fan         fanMerge
}

// begin starts a batch of n requests, with the configuration in force.
func (c *session) begin(n int) {
	c.g = c.s.acquire()
	c.outLimit = 0
	if n > 1 && c.limitOutput {
		c.outLimit = int64(c.g.cfg.OutputLimit) // 0: none
	}
	c.held.Store(0)
	c.overflow.Store(false)
	c.inline = n <= maxWaiterBatch
	// A failed write of the async reply means the client is gone: its
	// next read says so.
	_ = c.pollAsync()
	c.single = c.replyAsync && n == 1 && !c.asyncOut
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
func (c *session) newCall(server int) (*call, int32) {
	if c.ncalls == len(c.calls) {
		cl := &call{cc: c}
		cl.req.Done = cl.done
		c.calls = append(c.calls, cl)
	}
	cl := c.calls[c.ncalls]
	idx := int32(c.ncalls)
	c.ncalls++
	cl.err = nil
	cl.fin = false
	cl.reply = cl.reply[:0]
	cl.buf = cl.buf[:0]
	cl.nkeys = 0
	cl.cur = 0
	cl.server = server
	cl.req.Data = nil
	cl.req.NoReply = false
	cl.req.Tag = 0
	cl.req.KeepLarge = true
	cl.req.Waiter = &c.waiter
	return cl, idx
}

// maxDetached is the most noreply requests of one client in flight
// without being waited for; beyond it they are waited for like others,
// which bounds the memory a client can pin in a stuck backend's queue.
const maxDetached = 1024

// detachedCall returns a call for a request the batch will not wait for,
// or nil if the client has maxDetached of them in flight.
func (c *session) detachedCall(server int) *call {
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

func (c *session) freeDetached(cl *call) {
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
func (c *session) group(keys [][]byte) (first, ncall, key0 int32, one int) {
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
func (c *session) send(cl *call) {
	c.pending.Add(1)
	c.do(cl)
}

// maxWaiterBatch is the largest batch whose client goroutine reads its
// replies itself (see pool.Waiter); every batch's requests are written by
// its client goroutine, once dispatched. The replies of a larger batch are read
// by the connections' reader goroutines, so that a client busy dispatching
// a long pipeline does not hold up the replies of others who share its
// backend connection.
const maxWaiterBatch = 32

// run runs requests lo to hi of those the handler holds as a batch: it
// dispatches them, stopping after a QUIT if the session ends on it, then
// waits for their replies (see wait). It reports a QUIT, and false if done
// closed first.
func (c *session) run(lo, hi int, done <-chan struct{}) (quit, ok bool) {
	quit = c.dispatchWindow(lo, hi)
	if done != nil {
		// The caller may stop waiting (an in-process context): the
		// session writes the batch, but leaves the replies to others.
		c.inline = false
	}
	return quit, c.wait(done)
}

// dispatchWindow begins a batch of requests lo to hi of those the handler
// holds and dispatches them, stopping after a QUIT if the session ends on
// it. It reports a QUIT. The batch's calls are queued, not yet waited for.
func (c *session) dispatchWindow(lo, hi int) (quit bool) {
	c.begin(hi - lo)
	c.first = lo
	for i := lo; i < hi; i++ {
		if c.h.dispatch(c, i) {
			quit = true
			if c.quitEnds {
				break
			}
		}
	}
	return quit
}

// wait writes the batch's requests, reads their replies itself if the
// batch may (see pool.Waiter), and blocks until every call of the batch is
// done; then it ends the batch. If done closes first, the batch is left to
// the call that completes it, which recycles the session, and wait reports
// false.
func (c *session) wait(done <-chan struct{}) bool {
	if c.inline {
		c.waiter.Read()
	} else {
		c.waiter.Flush()
	}
	if c.pending.Add(-1) != 0 {
		if done == nil {
			<-c.wake
		} else {
			select {
			case <-c.wake:
			case <-done:
				c.inflight.Add(1) // released by recycle
				if c.state.CompareAndSwap(batchWaiting, batchAbandoned) {
					return false
				}
				c.inflight.Done()
				<-c.wake // it has just completed
			}
		}
	}
	c.end()
	return true
}

// appendReplies appends the batch's replies to out in request order,
// except large replies passed through, which it records in big; with mark
// it records in c.marks where each reply ends in the whole output (out and
// big together).
func (c *session) appendReplies(out []byte, mark bool) []byte {
	return c.appendRange(out, 0, len(c.slots), mark)
}

// appendRange is appendReplies for the replies of slots lo to hi only.
func (c *session) appendRange(out []byte, lo, hi int, mark bool) []byte {
	c.marks = c.marks[:0]
	clear(c.big)
	c.big, c.bigLen = c.big[:0], 0
	for i := lo; i < hi; i++ {
		out = c.h.appendReply(c, out, i)
		if mark {
			c.marks = append(c.marks, len(out)+c.bigLen)
		}
	}
	return out
}

// slotBytes returns about how many bytes the reply of slot i, whose calls
// are done, takes: its calls' replies together.
func (c *session) slotBytes(i int) int {
	sl := &c.slots[i]
	if sl.kind == slotLocal {
		return sl.hi - sl.lo
	}
	n := 0
	for _, cl := range c.calls[sl.call : sl.call+sl.ncall] {
		n += len(cl.reply)
	}
	return n
}

// slotDone reports whether the reply of slot i is complete: every call it
// is made from is done. The async call's slot is never complete here (an
// event loop's sessions make no async calls).
func (c *session) slotDone(i int) bool {
	sl := &c.slots[i]
	if sl.kind == slotAsync {
		return false
	}
	for _, cl := range c.calls[sl.call : sl.call+sl.ncall] {
		if !cl.fin {
			return false
		}
	}
	return true
}

// appendPassed appends reply, one call's reply passed through as it is,
// to out, or records it in big if it is large.
func (c *session) appendPassed(out, reply []byte) []byte {
	if len(reply) >= pool.LargeReply {
		c.big = append(c.big, bigReply{at: len(out), b: reply})
		c.bigLen += len(reply)
		return out
	}
	return append(out, reply...)
}

// dropBig forgets the large replies recorded after the first n, whose
// reply is being replaced.
func (c *session) dropBig(n int) {
	for _, b := range c.big[n:] {
		c.bigLen -= len(b.b)
	}
	clear(c.big[n:])
	c.big = c.big[:n]
}

// assemble returns the whole output, out with big in place, as one slice:
// for the in-process Client, which returns the replies. A lone large
// reply is returned as it is, not copied.
func (c *session) assemble(out []byte) []byte {
	if len(c.big) == 1 && len(out) == 0 {
		return c.big[0].b
	}
	buf := make([]byte, 0, len(out)+c.bigLen)
	prev := 0
	for _, b := range c.big {
		buf = append(buf, out[prev:b.at]...)
		buf = append(buf, b.b...)
		prev = b.at
	}
	return append(buf, out[prev:]...)
}

// end ends a batch whose calls are done: it records the latency of its
// requests and releases its configuration.
func (c *session) end() {
	d := nanotime() - c.t0
	for _, id := range c.cmdIDs {
		c.s.lat.observe(int(id), d)
	}
	c.s.release(c.g)
}

// addLocal appends a slot whose reply is b.
func (c *session) addLocal(b []byte) {
	lo := len(c.local)
	c.local = append(c.local, b...)
	c.slots = append(c.slots, slot{kind: slotLocal, lo: lo, hi: len(c.local)})
}
