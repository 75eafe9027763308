package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// A LoopIO is the non-blocking socket of a LoopConn, owned by the caller.
// Read and Writev never block: when nothing can be read or written now
// they return an error for which errors.Is(err, syscall.EAGAIN) holds
// (with n == 0). Read returns io.EOF when the server has closed the
// connection. Writev writes the buffers in order, as much as the socket
// takes, and returns how many bytes it wrote; it may write fewer than
// all of them without an error (the LoopConn calls it again), and is
// never given more than 1024 buffers at once.
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
// do. Request.Waiter is ignored.
//
// A LoopConn is not safe for concurrent use: its owner calls every method
// from one goroutine, and the Done of its requests is called from those
// calls (Do, Readable, Flush, Expire, Failed, DialFailed, Close), never from
// another goroutine. A Done may call Do (of this LoopConn or another) but
// no other method of its LoopConn.
//
// Its life: Do queues; when NeedDial reports true the owner starts
// connecting to Server (Dialing), then calls Connected with the socket, or
// DialFailed. While connected it calls Readable when the socket is
// readable, Flush when it is writable or after queuing (the owner may
// batch: call Flush once after many Do), Expire when Next has passed. A
// non-nil error from Readable, Flush or Expire, or the owner's own Failed,
// means the connection is gone: its requests have been failed and
// counted, the owner closes the socket, and the LoopConn is back to not
// connected (a later Do makes NeedDial true again). One exception, as for
// the pool's own connections: when the server closes (or sends unasked on)
// a connection that has been used and has nothing in flight, the requests
// queued on it and not yet written are kept for the next connection, and
// NeedDial reports true at once.
type LoopConn struct {
	p       *Pool
	s       *server
	onClose func()

	// guarded by s.loopMu
	idx      int  // index in s.loops; -1 once unregistered
	notified bool // onClose has been called

	c pipeCounters

	state      uint8 // loopIdle, loopDialing or loopConnected
	dead       bool  // Close was called, or the pool was closed at NewLoopConn
	preconnect bool  // Options.Preconnect, until the first attempt
	epoch      uint64
	dialEnd    int64 // deadline of the attempt in progress (Pool.now's clock)
	dialByReq  bool  // dialEnd is a request's deadline, not DialTimeout
	io         LoopIO
	used       bool // bytes have been written on the connection

	queue []entry // not yet written
	spare []entry // an emptied batch's slice, for the next queue

	// Writing: the batch being written, in byte order, with where each
	// entry's bytes end in the batch (ends); batch[:bi] are written.
	batch []entry
	ends  []int
	bi    int
	wdone int      // bytes of the batch written
	wbuf  []byte   // the copied runs of small requests
	bufs  [][]byte // the batch's layout: bufs[wi:] are left to write, bufs[wi] perhaps in part
	wi    int
	seq   uint64     // of the last entry put in a batch
	wseq  uint64     // of the last entry fully written
	held  []loopHeld // replies to entries not yet fully written, oldest first

	// Reading: fl[fh:] await replies, oldest first.
	fl       []entry
	fh       int
	rb       replyBuf
	rents    []entry // requests answered by the current read
	rends    []int   // where their replies end in the read buffer
	initLeft int
	initErrs int
}

// loopHeld is a reply that arrived before its request was fully written.
type loopHeld struct {
	seq   uint64
	req   *Request
	reply []byte // a copy: the read buffer moves on
}

// States of a LoopConn's connection.
const (
	loopIdle      uint8 = iota // not connected, no attempt in progress
	loopDialing                // Dialing was called
	loopConnected              // Connected was called
)

// maxIOV is the most buffers given to one Writev (Linux's IOV_MAX).
const maxIOV = 1024

// errDialTimeout is the cause logged when a connection attempt times out.
var errDialTimeout = errors.New("pool: connection attempt timed out")

// NewLoopConn returns a LoopConn to p's server, not connected. closed is
// called, from any goroutine and at most once, when p is closed, so that
// the owner calls Close from its own goroutine; it must not block. It
// may still be called after Close has returned if p is closed meanwhile,
// and is never called if p is already closed at NewLoopConn (Do then
// fails at once with ErrClosed). closed may be nil.
func (p *Pool) NewLoopConn(closed func()) *LoopConn {
	s := p.srv
	c := &LoopConn{p: p, s: s, onClose: closed, preconnect: p.opts.Preconnect, idx: -1}
	c.rb.estimate = p.opts.Estimate
	s.loopMu.Lock()
	if p.closed.Load() {
		c.dead = true
	} else {
		c.idx = len(s.loops)
		s.loops = append(s.loops, c)
	}
	s.loopMu.Unlock()
	return c
}

// closeLoops calls the closed callback of every live LoopConn of s; Close
// calls it once the pool is marked closed.
func (s *server) closeLoops() {
	var fs []func()
	s.loopMu.Lock()
	for _, c := range s.loops {
		if !c.notified && c.onClose != nil {
			c.notified = true
			fs = append(fs, c.onClose)
		}
	}
	s.loopMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Server returns the server to connect to.
func (c *LoopConn) Server() Server { return c.s.cfg }

// Dial connects to the server as the pool's own connections do: with
// Options.Dial (or a net.Dialer), bounded by DialTimeout and ctx. Unlike
// the other methods it may be called from any goroutine, so that the
// owner can connect without blocking its loop (name resolution and the
// connect may take a while) and then take the socket.
func (c *LoopConn) Dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.p.opts.DialTimeout)
	defer cancel()
	return c.p.dial(ctx, c.s.cfg.Network, c.s.cfg.Addr)
}

// Do queues req as Pool.Do does: a request to an ejected server, or on a
// closed pool or LoopConn, is completed before Do returns (ErrEjected,
// ErrClosed). Nothing is written until Flush. If Options.Timeout is set,
// req's time starts now.
func (c *LoopConn) Do(req *Request) {
	if c.s.ejected.Load() {
		req.Done(nil, ErrEjected)
		return
	}
	p := c.p
	if c.dead || p.closed.Load() {
		req.Done(nil, ErrClosed)
		return
	}
	var deadline int64
	if p.opts.Timeout > 0 && !req.NoReply {
		deadline = p.now() + int64(p.opts.Timeout)
	}
	c.queue = append(c.queue, entry{req: req, deadline: deadline, noReply: req.NoReply})
	c.c.queuedN.Add(1)
	c.c.queuedB.Add(int64(len(req.Data)))
}

// NeedDial reports whether the owner should start a connection: requests
// are queued (or the pool has Preconnect and no attempt has been made
// yet, and the server is not ejected), there is no connection and no
// attempt in progress, and neither the pool nor the LoopConn is closed.
func (c *LoopConn) NeedDial() bool {
	if c.state != loopIdle || c.dead || c.p.closed.Load() {
		return false
	}
	return len(c.queue) > 0 || c.preconnect && !c.s.ejected.Load()
}

// Dialing records that the owner has started connecting at now: the
// attempt is bounded by the earlier of DialTimeout and the deadline of
// the oldest request queued (see Next and Expire).
func (c *LoopConn) Dialing(now time.Time) {
	if c.state != loopIdle || c.dead {
		return
	}
	p := c.p
	c.state = loopDialing
	c.preconnect = false
	c.epoch = c.s.epoch.Load()
	c.dialEnd = p.since(now) + int64(p.opts.DialTimeout)
	c.dialByReq = false
	if p.opts.Timeout > 0 {
		if oldest := firstDeadline(c.queue); oldest != 0 && oldest < c.dialEnd {
			c.dialEnd, c.dialByReq = oldest, true
		}
	}
}

// DialFailed records a failed connection attempt: the queued requests
// fail with the pool's error for err and the failure is counted.
func (c *LoopConn) DialFailed(err error) {
	if c.state == loopConnected || c.dead {
		return
	}
	if c.state == loopIdle {
		c.epoch = c.s.epoch.Load()
		c.preconnect = false
	}
	if c.p.closed.Load() {
		c.fail(ErrClosed, failNone, err, nil, false)
		return
	}
	c.fail(mapErr(err), failErr, err, nil, false)
}

// Connected gives the LoopConn its socket: Init requests are queued ahead
// of the others. The owner then calls Flush.
func (c *LoopConn) Connected(io LoopIO) {
	if c.state == loopConnected || c.dead {
		return
	}
	if c.state == loopIdle {
		c.epoch = c.s.epoch.Load()
		c.preconnect = false
	}
	c.state = loopConnected
	c.io = io
	c.used = false
	c.s.conns.Add(1)
	init := c.p.init
	c.initLeft, c.initErrs = len(init), 0
	if len(init) > 0 {
		q := make([]entry, 0, len(init)+len(c.queue))
		for _, r := range init {
			q = append(q, entry{req: r, init: true})
		}
		c.queue = append(q, c.queue...)
	}
}

// Pending reports whether requests are queued or partly written: whether
// Flush has bytes to write once connected.
func (c *LoopConn) Pending() bool { return c.wi < len(c.bufs) || len(c.queue) > 0 }

// Flush writes queued requests until all are written or the socket takes
// no more; what is left is written by the next Flush. Small requests are
// copied into a write buffer, larger ones written from their Data. A
// NoReply request is completed once written. Flush does nothing unless
// connected.
func (c *LoopConn) Flush() error {
	for c.state == loopConnected {
		if c.wi == len(c.bufs) {
			if len(c.queue) == 0 {
				return nil
			}
			c.startBatch()
			c.advance(0) // requests with no bytes
			continue
		}
		n, err := c.io.Writev(c.bufs[c.wi:min(len(c.bufs), c.wi+maxIOV)])
		if n > 0 {
			c.used = true
			c.advance(n)
		}
		switch {
		case err == nil:
			if n == 0 {
				return nil // nothing taken, nothing said: try again later
			}
		case errors.Is(err, syscall.EAGAIN):
			return nil
		case errors.Is(err, syscall.EINTR):
		default:
			return c.fail(mapErr(err), failErr, err, nil, false)
		}
	}
	return nil
}

// startBatch takes the queue as the batch to write: it puts the requests
// that await replies in flight and lays out the write in bufs, runs of
// small requests copied into wbuf and larger ones (over maxCopy bytes) as
// they are.
func (c *LoopConn) startBatch() {
	batch := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	cnt := &c.c
	small := 0
	var dqN, dqB, sN, sB int64
	for _, e := range batch {
		n := len(e.req.Data)
		if n <= maxCopy {
			small += n
		}
		if !e.init {
			dqN++
			dqB += int64(n)
			if !e.noReply {
				sN++
				sB += int64(n)
			}
		}
	}
	cnt.dequeuedN.Add(dqN)
	cnt.dequeuedB.Add(dqB)
	if c.fh > 0 && c.fh >= len(c.fl)-c.fh {
		// Most of the FIFO is answered: move the rest to the front.
		n := copy(c.fl, c.fl[c.fh:])
		clear(c.fl[n:])
		c.fl, c.fh = c.fl[:n], 0
	}
	if cap(c.wbuf) < small {
		c.wbuf = make([]byte, 0, max(small, 2*cap(c.wbuf)))
	}
	buf, bufs, ends := c.wbuf[:0], c.bufs[:0], c.ends[:0]
	mark, end := 0, 0 // start of the current run in buf (which never reallocates); bytes laid out
	for i := range batch {
		c.seq++
		batch[i].seq = c.seq
		e := batch[i]
		if !e.noReply {
			c.fl = append(c.fl, e)
		}
		d := e.req.Data
		end += len(d)
		ends = append(ends, end)
		if len(d) <= maxCopy {
			buf = append(buf, d...)
			continue
		}
		if len(buf) > mark {
			bufs = append(bufs, buf[mark:])
			mark = len(buf)
		}
		bufs = append(bufs, d)
	}
	if len(buf) > mark {
		bufs = append(bufs, buf[mark:])
	}
	c.wbuf, c.bufs, c.ends = buf, bufs, ends
	c.batch, c.bi, c.wdone, c.wi = batch, 0, 0, 0
	cnt.sentN.Add(sN)
	cnt.sentB.Add(sB)
}

// advance records that n more bytes of the batch are written: it
// completes the NoReply requests written, delivers the replies held for
// requests now written, and ends the batch once it is all written.
func (c *LoopConn) advance(n int) {
	c.wdone += n
	for n > 0 {
		b := c.bufs[c.wi]
		if n < len(b) {
			c.bufs[c.wi] = b[n:]
			break
		}
		n -= len(b)
		c.bufs[c.wi] = nil
		c.wi++
	}
	for c.bi < len(c.batch) && c.ends[c.bi] <= c.wdone {
		e := &c.batch[c.bi]
		c.bi++
		c.wseq = e.seq
		if e.noReply {
			req := e.req
			*e = entry{}
			req.Done(nil, nil)
		}
	}
	if len(c.held) > 0 {
		c.deliverHeld()
	}
	if c.bi == len(c.batch) {
		clear(c.batch)
		c.endBatch()
	}
}

// deliverHeld completes the requests whose replies were held until they
// were written.
func (c *LoopConn) deliverHeld() {
	i := 0
	for ; i < len(c.held) && c.held[i].seq <= c.wseq; i++ {
		h := c.held[i]
		c.held[i] = loopHeld{}
		h.req.Done(h.reply, nil)
	}
	if i == len(c.held) {
		c.held = c.held[:0]
	} else {
		c.held = c.held[i:]
	}
}

// endBatch lets go of the batch, which the caller clears, keeping its
// buffers for the next one within the pool's bounds.
func (c *LoopConn) endBatch() {
	if cap(c.batch) <= maxIdleEntries && c.spare == nil {
		c.spare = c.batch[:0]
	}
	c.batch, c.bi, c.wdone = nil, 0, 0
	clear(c.bufs)
	c.bufs, c.wi = c.bufs[:0], 0
	c.ends = c.ends[:0]
	c.wbuf = c.wbuf[:0]
	if cap(c.wbuf) > maxIdleWriteBuf {
		c.wbuf = nil
	}
	if cap(c.ends) > maxIdleEntries {
		c.ends = nil
	}
	if cap(c.bufs) > maxIdleEntries {
		c.bufs = nil
	}
}

// Readable reads until the socket has nothing more, completing the
// requests whose replies arrived. It does nothing unless connected.
func (c *LoopConn) Readable() error {
	b := &c.rb
	for c.state == loopConnected {
		b.room()
		n, err := b.fill(c.io)
		if n > 0 && b.ready() {
			if err := c.frame(); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
			if n == 0 {
				return nil
			}
		case errors.Is(err, syscall.EAGAIN):
			return nil
		case errors.Is(err, syscall.EINTR):
		default:
			return c.readFailed(err)
		}
	}
	return nil
}

// frame cuts the bytes read into replies and completes their requests. A
// malformed reply, a reply with nothing in flight or a reply IsFailure
// rejects fails the connection, with ErrInvalid.
func (c *LoopConn) frame() error {
	p := c.p
	framer, isFailure := p.opts.Framer, p.opts.IsFailure
	b := &c.rb
	buf, start := b.buf, b.r
	ends, ents := c.rends[:0], c.rents[:0]
	var bad error
	for b.r < b.w {
		if c.fh == len(c.fl) {
			bad = errStray
			break
		}
		e := c.fl[c.fh]
		m, ferr := b.next(framer, e.req)
		if ferr != nil {
			bad = ferr
			break
		}
		if m == 0 {
			break
		}
		ends = append(ends, b.r)
		ents = append(ents, e)
		c.fl[c.fh] = entry{}
		c.fh++
		if isFailure != nil && isFailure(buf[b.r-m:b.r]) {
			bad = errFailureReply
			break
		}
	}
	if c.fh == len(c.fl) {
		clear(c.fl)
		c.fl, c.fh = c.fl[:0], 0
		if cap(c.fl) > maxIdleEntries {
			c.fl = nil
		}
	}
	c.rends, c.rents = ends, ents
	if len(ents) > 0 {
		c.deliver(buf, start, ends, ents, bad == errFailureReply)
	}
	var err error
	switch {
	case bad == nil:
	case bad == errFailureReply:
		first := ents[len(ents)-1]
		err = c.fail(ErrInvalid, failErr, bad, &first, false)
	case bad == errStray && len(ents) == 0 && c.idle():
		err = c.fail(ErrInvalid, failErr, bad, nil, true)
	default:
		err = c.fail(ErrInvalid, failErr, bad, nil, false)
	}
	clear(ents)
	if cap(ents) > maxIdleEntries {
		c.rents, c.rends = nil, nil
	}
	return err
}

// idle reports whether the connection has been used and nothing is in
// flight or partly written on it: a failure then spares the queue.
func (c *LoopConn) idle() bool {
	return c.used && c.fh == len(c.fl) && c.batch == nil
}

// deliver completes the requests ents with the replies buf[start:ends[0]],
// buf[ends[0]:ends[1]], …, all but the last if dropLast is set (a failure
// reply, whose request the caller fails). A reply to a request not yet
// fully written is copied and held until it is.
func (c *LoopConn) deliver(buf []byte, start int, ends []int, ents []entry, dropLast bool) {
	s := c.s
	good := len(ents)
	if dropLast {
		good--
	}
	var respN, respB int64
	from := start
	for j := 0; j < good; j++ {
		if !ents[j].init {
			respN++
			respB += int64(ends[j] - from)
		}
		from = ends[j]
	}
	doneN, doneB := countEntries(ents)
	cnt := &c.c
	cnt.doneN.Add(doneN)
	cnt.doneB.Add(doneB)
	cnt.respN.Add(respN)
	cnt.respB.Add(respB)
	if respN > 0 {
		s.ok()
	}
	from = start
	for j := 0; j < good; j++ {
		e := ents[j]
		at := from
		reply := buf[at:ends[j]]
		from = ends[j]
		switch {
		case e.init:
			s.initReply(reply, &c.initLeft, &c.initErrs)
			continue
		case e.seq > c.wseq:
			// Answered before it was written in full.
			c.held = append(c.held, loopHeld{seq: e.seq, req: e.req, reply: bytes.Clone(reply)})
			continue
		case len(reply) >= LargeReply && e.req.KeepLarge:
			if at == 0 && ends[j] == c.rb.w {
				// The buffer was grown for this reply alone (perhaps
				// larger, see Options.Estimate): it becomes the reply's,
				// and the connection reads on into a new one.
				reply = buf[:ends[j]:ends[j]]
				c.rb.buf, c.rb.r, c.rb.w = nil, 0, 0
			} else {
				reply = bytes.Clone(reply)
			}
		}
		e.req.Done(reply, nil)
	}
}

// readFailed handles a Read error other than EAGAIN.
func (c *LoopConn) readFailed(err error) error {
	class, cause := failErr, err
	if errors.Is(err, io.EOF) {
		class = failEOF
	}
	idle := c.idle()
	if idle && class == failEOF {
		cause = errIdleEOF
	}
	return c.fail(mapErr(err), class, cause, nil, idle)
}

// Next returns when Expire must next be called: the deadline of the
// oldest request waiting on the connection (Timeout), or of the attempt
// in progress (DialTimeout); the zero time if none, and while neither
// connected nor connecting.
func (c *LoopConn) Next() time.Time {
	switch c.state {
	case loopDialing:
		return c.p.at(c.dialEnd)
	case loopConnected:
		if d := c.oldest(); d != 0 {
			return c.p.at(d)
		}
	}
	return time.Time{}
}

// oldest returns the deadline of the oldest request with one on the
// connection, or 0.
func (c *LoopConn) oldest() int64 {
	if c.p.opts.Timeout == 0 {
		return 0
	}
	if d := firstDeadline(c.fl[c.fh:]); d != 0 {
		return d
	}
	return firstDeadline(c.queue)
}

// Expire fails the connection (or the attempt) with ErrTimedOut if its
// deadline has passed at now, as the pool's connections do: a request's
// Timeout counts in ServerTimedOut, an attempt that outlasted DialTimeout
// in ServerErr.
func (c *LoopConn) Expire(now time.Time) error {
	t := c.p.since(now)
	switch c.state {
	case loopDialing:
		if t >= c.dialEnd {
			class := failErr
			if c.dialByReq {
				class = failTimeout
			}
			return c.fail(ErrTimedOut, class, errDialTimeout, nil, false)
		}
	case loopConnected:
		if d := c.oldest(); d != 0 && t >= d {
			return c.fail(ErrTimedOut, failTimeout, os.ErrDeadlineExceeded, nil, false)
		}
	}
	return nil
}

// Failed records that the socket failed outside Readable and Flush (an
// error or hang-up the owner saw): as a read error err would, a nil err
// as the server closing the connection. While connecting it is
// DialFailed.
func (c *LoopConn) Failed(err error) {
	switch {
	case c.dead:
	case c.state == loopDialing:
		c.DialFailed(err)
	case c.state == loopConnected:
		if err == nil {
			err = io.EOF
		}
		_ = c.readFailed(err)
	}
}

// Close fails every request with ErrClosed and ends the LoopConn: Do
// fails at once from then on, and Stats keeps only its cumulative
// counters. The owner closes the socket. Calling it again has no effect,
// and so does every other method but Do afterwards (Connected too: the
// owner closes a socket it connects after Close).
func (c *LoopConn) Close() {
	if c.dead {
		return
	}
	c.dead = true
	c.fail(ErrClosed, failNone, nil, nil, false)
	c.queue, c.spare, c.fl, c.wbuf, c.rb = nil, nil, nil, nil, replyBuf{}
	s := c.s
	s.loopMu.Lock()
	if i := c.idx; i >= 0 {
		last := len(s.loops) - 1
		s.loops[i] = s.loops[last]
		s.loops[i].idx = i
		s.loops[last] = nil
		s.loops = s.loops[:last]
		c.idx = -1
		s.retired.retire(&c.c)
	}
	s.loopMu.Unlock()
}

// fail ends the connection, or the attempt, with err: it counts the
// failure (class and cause, as server.failure), then completes the
// requests: the replies held, first (answered by a failure reply), those
// in flight, the NoReply requests not yet written, and the queue, whose
// requests are kept instead if keep is set. It returns err.
func (c *LoopConn) fail(err error, class failClass, cause error, first *entry, keep bool) error {
	if c.state == loopConnected {
		c.s.conns.Add(-1)
	}
	c.state = loopIdle
	c.io = nil
	held := c.held
	c.held = nil
	fl := c.fl[c.fh:]
	c.fh = len(c.fl)
	batch := c.batch
	unwritten := batch[min(c.bi, len(batch)):]
	c.endBatch() // nothing more is written: the requests' bytes are no longer needed
	var q []entry
	if keep {
		// The Init requests go with the connection; the next has its own.
		kept := c.queue[:0]
		for _, e := range c.queue {
			if !e.init {
				kept = append(kept, e)
			}
		}
		clear(c.queue[len(kept):])
		c.queue = kept
	} else {
		q = c.queue
		c.queue = nil
	}
	b := &c.rb
	b.r, b.w, b.need, b.hint = 0, 0, 0, false
	if len(b.buf) > maxIdleReadBuf {
		b.buf = nil
	}
	c.initLeft, c.initErrs = 0, 0

	cnt := &c.c
	n, by := countEntries(q)
	cnt.dequeuedN.Add(n)
	cnt.dequeuedB.Add(by)
	n, by = countEntries(fl)
	cnt.doneN.Add(n)
	cnt.doneB.Add(by)
	if cause == nil {
		cause = err
	}
	c.s.failure(c.epoch, class, cause)

	for _, h := range held {
		h.req.Done(h.reply, nil)
	}
	if first != nil && !first.init {
		first.req.Done(nil, err)
	}
	for _, e := range fl {
		if !e.init {
			e.req.Done(nil, err)
		}
	}
	for _, e := range unwritten {
		if e.noReply {
			e.req.Done(nil, err)
		}
	}
	for _, e := range q {
		if !e.init {
			e.req.Done(nil, err)
		}
	}
	clear(c.fl)
	c.fl, c.fh = c.fl[:0], 0
	clear(batch)
	return err
}
