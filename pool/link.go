package pool

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnutproxy/walnut/internal/rawio"
)

const (
	// readBufSize is a connection's initial read buffer, twemproxy's
	// default mbuf size.
	readBufSize = 16 << 10
	// maxIdleReadBuf is the largest read buffer kept once it is empty;
	// a bigger one, grown for a large reply, is dropped.
	maxIdleReadBuf = 256 << 10
	// maxReadAhead bounds how far past the bytes already received a
	// framer's size hint may grow the read buffer at once, so that a
	// backend announcing a huge reply cannot make the pool allocate it
	// before the bytes arrive; beyond it the buffer doubles as data comes.
	maxReadAhead = 4 << 20
	// maxCopy is the largest request copied into the write buffer; bigger
	// ones are handed to writev as they are.
	maxCopy = 1 << 10
	// maxIdleWriteBuf is the largest write buffer kept between batches.
	maxIdleWriteBuf = 256 << 10
	// maxIdleEntries is the most entries a queue keeps room for once it
	// has been emptied.
	maxIdleEntries = 16 << 10
)

// entry is a request queued or in flight on a link.
type entry struct {
	req      *Request
	deadline int64  // on Pool.now's clock; 0: none (NoReply, Init, or no Timeout)
	seq      uint64 // set by the writer when it hands the entry off; 0 before
	init     bool   // an Init request: reply swallowed, not counted
	noReply  bool   // req.NoReply, read by Do: the writer never reads req once it is handed off
	// w is req.Waiter, read by Do; cnt, if not nil, is the count of
	// w's requests in flight on the link that w reads (see Waiter), which
	// the entry is taken off when it is completed.
	w   *Waiter
	cnt *atomic.Int32
}

// outcome is the result of a request completed while the writer was still
// writing it, kept for the writer to deliver once it is done.
type outcome struct {
	req   *Request
	reply []byte // a copy: the read buffer it came from moves on
	err   error
	cnt   *atomic.Int32 // the entry's cnt
}

// pipe is one of a server's Conns connection slots. It holds the current
// link, replaced by a new one on first use after the previous one failed.
type pipe struct {
	s  *server
	mu sync.Mutex // the queue lock: guards l and its links' fields marked "queue lock"
	l  *link
	c  pipeCounters
}

// pipeCounters are the traffic counters of one pipe, grouped by the
// goroutine that writes them and padded apart to avoid false sharing.
type pipeCounters struct {
	queuedN, queuedB atomic.Int64 // Do
	_                [48]byte
	// Writer: taken off the queue (written or failed), and of those put in
	// flight awaiting a reply.
	dequeuedN, dequeuedB atomic.Int64
	sentN, sentB         atomic.Int64
	_                    [32]byte
	// Reader (and failures): in-flight requests completed (answered or
	// failed), and replies delivered.
	doneN, doneB atomic.Int64
	respN, respB atomic.Int64
	_            [32]byte
}

// enqueue adds e to the pipe's current link, starting a new link if there
// is none. If nobody is writing on the connected link, the queue is
// written on the caller's goroutine: at once, or, for a request with a
// Waiter, when the waiter's goroutine has queued its whole batch and calls
// Waiter.Read (one write for the batch). NoReply requests are left to the
// writer goroutine, as they have no timeout: a stuck server must not hold
// the caller.
func (pp *pipe) enqueue(e entry) {
	pp.mu.Lock()
	l := pp.l
	fresh := l == nil || l.err != nil
	if fresh {
		l = pp.newLinkLocked()
	}
	l.queue = append(l.queue, e)
	pp.c.queuedN.Add(1)
	pp.c.queuedB.Add(int64(len(e.req.Data)))
	arm := e.deadline != 0 && l.qOldest.Load() == 0
	if arm {
		l.qOldest.Store(e.deadline)
	}
	inline := !fresh && !e.noReply && l.nc != nil && !l.writing
	behind := l.writing && l.nc != nil // another writer has the queue
	if !inline && !l.writing && l.writerIdle {
		l.writerIdle = false
		l.wakeWriter()
	}
	pp.mu.Unlock()
	if fresh {
		pp.startLink(l)
	}
	if arm {
		// The first request with a deadline in the queue: make sure the
		// reader's deadline covers it even if the writer is stuck. If the
		// request waits behind another writer on a connection nobody
		// reads (that writer's batch awaits no reply), the reader
		// goroutine watches it, so that the deadline is seen.
		l.fmu.Lock()
		if l.err == nil && (l.armed == 0 || e.deadline < l.armed) {
			l.armLocked(e.deadline)
		}
		toReader, spawn := false, false
		if l.err == nil && behind && l.role.Load() == roleFree {
			l.watch.Store(true)
			toReader, spawn = true, l.toReaderLocked()
		}
		l.fmu.Unlock()
		if toReader {
			l.startReader(spawn)
		}
	}
	switch {
	case !inline:
	case e.w != nil:
		e.w.addFlush(l)
	default:
		l.writeInline(nil, false)
	}
}

// retire closes an idle connection found closed (or sent to unasked) by
// its server, counting the failure as any other, and moves the requests
// queued on it, none of them written, to a new connection.
func (l *link) retire(class failClass, cause error) {
	pp := l.pp
	pp.mu.Lock()
	l.fmu.Lock()
	q := l.queue
	l.queue = nil
	d, ok := l.killLocked(mapErr(cause))
	var nl *link
	if ok && len(q) > 0 {
		nl = pp.newLinkLocked()
		nl.queue = append(nl.queue, q...)
		nl.qOldest.Store(firstDeadline(q))
	} else if len(q) > 0 {
		d.queue = q // failed already: its queue fails with it
	}
	l.fmu.Unlock()
	pp.mu.Unlock()
	l.finish(d, class, cause, nil)
	if nl != nil {
		pp.startLink(nl)
	}
}

// connect starts a link if the pipe has none (Options.Preconnect).
func (pp *pipe) connect() {
	pp.mu.Lock()
	if pp.l != nil && pp.l.err == nil {
		pp.mu.Unlock()
		return
	}
	l := pp.newLinkLocked()
	pp.mu.Unlock()
	pp.startLink(l)
}

func (pp *pipe) newLinkLocked() *link {
	p := pp.s.p
	l := &link{pp: pp, epoch: pp.s.epoch.Load(), wake: make(chan struct{}, 1),
		rwake: make(chan struct{}, 1), initLeft: len(p.init)}
	l.rb.estimate = p.opts.Estimate
	for _, r := range p.init {
		l.queue = append(l.queue, entry{req: r, init: true})
	}
	pp.l = l
	return l
}

func (pp *pipe) startLink(l *link) {
	if !pp.s.p.start(l.run) {
		l.fail(ErrClosed, failNone, nil, nil)
	}
}

// Read roles: who reads a link's replies (link.role).
const (
	// roleFree: nobody; nothing is in flight.
	roleFree uint32 = iota
	// roleBackground: the link's reader goroutine.
	roleBackground
	// roleWaiter: a Waiter, which reads in Waiter.Read.
	roleWaiter
)

// link is one connection: a queue of requests not yet written, a FIFO of
// requests written and awaiting replies, and the I/O on them. A link that
// has failed (err set) is never reused.
//
// # Who does the I/O
//
// Writing: whoever finds the queue non-empty and nobody writing (writing,
// under the queue lock) writes it: the caller of Do, inline, or the link's
// writer goroutine (run), which dials the connection, writes what queued
// meanwhile, and afterwards writes only what an inline writer leaves (see
// drain). Reading: the holder of the read role (role). When a writer puts
// requests in flight on a link whose role is free, it gives the role to
// its own Waiter (which reads in Waiter.Read, on the caller's goroutine)
// or else to the link's reader goroutine, started on first need. A waiter
// reads until its own requests are answered, a reader goroutine until
// nothing is in flight; then each gives the role back, or to the reader
// goroutine if requests remain in flight. With one caller at a time a
// request thus costs its caller one write and one read, and no other
// goroutine runs.
//
// # Locks
//
// Two locks keep producers off the reader's path. The queue lock (pp.mu) is
// taken by Do, and by the writer once per batch. The in-flight lock (fmu)
// is taken by the writer twice per batch, to append the batch to handoff
// before writing it and to mark it written after, and by the reader when
// it has matched every reply it took and needs more: it then takes all of
// handoff at once, as its private FIFO. Failing a link takes both locks,
// queue lock first; the requests in the reader's private FIFO are failed
// by the reader.
//
// A batch is in handoff, where a reply or a failure may complete its
// requests, while the writer is still writing it, perhaps with writev
// straight from the requests' Data. Once Done has run its request may be
// reused, so the writer reads everything it needs from the batch before
// handing it off (the data to write, which entries are NoReply) and never
// touches a handed-off request again; and a request is not completed while
// the writer may still be writing it. The writer numbers the entries it
// hands off (seq) and, once a write has returned, marks every entry up to
// the last one written (written). Whoever completes an entry numbered
// beyond written instead leaves its outcome in held, under fmu, and the
// writer delivers it when its write returns (see hold).
type link struct {
	pp    *pipe
	epoch uint64        // server epoch when created; see server.failure
	wake  chan struct{} // capacity 1: wakes the idle writer goroutine
	rwake chan struct{} // capacity 1: wakes the idle reader goroutine

	// queue lock
	queue      []entry
	writing    bool         // a writer holds the queue (drain)
	writerIdle bool         // the writer goroutine waits for wake
	qOldest    atomic.Int64 // deadline of the queue's first entry with one; 0: none; read under fmu

	fmu sync.Mutex
	// in-flight lock
	handoff  []entry // written, awaiting replies, not yet taken by the reader
	pHead    int64   // deadline of the reader's oldest request with one, as of its last report; 0: none
	armed    int64   // read deadline set on nc (Pool.now clock), 0: none
	held     []outcome
	written  atomic.Uint64 // seq of the last entry the writer is done with; stored under fmu
	role     atomic.Uint32 // read role; stored under fmu
	readerUp bool          // the reader goroutine has been started
	// An idle connection is watched by the reader goroutine (watch set),
	// so that a server closing it is noticed at once, as in twemproxy,
	// once it has been idle for idleWatch: freeAt is when the role last
	// became free, and timer, pending while timerOn, fires watchIdle.
	// early: the read deadline is a waiter's holdOthers, not a request's
	// (see readFor); owned by the read role's holder.
	early   bool
	watch   atomic.Bool  // stored under fmu
	freeAt  atomic.Int64 // stored under fmu
	timer   *time.Timer
	timerOn bool

	// both locks to write, either to read
	nc  net.Conn    // nil until dialled
	raw *rawio.Conn // nc, if it has raw system calls (see rawio); else nil
	err error       // set once, when the link fails

	// writer-owned: whoever holds writing
	seq   uint64 // of the last entry handed off
	wbuf  []byte
	bufs  net.Buffers // the batch being written: runs of wbuf and large requests' Data
	wv    net.Buffers // consumed by WriteTo; a field so it does not escape per batch
	spare []entry     // the previous batch's slice, for the next queue

	// read-role-owned: the holder of role
	rb       replyBuf
	rq       []entry // private FIFO: rq[rqi:] await replies, oldest first
	rqi      int
	ents     []entry // requests answered by the current read
	ends     []int   // where their replies end in the read buffer
	initLeft int     // Init replies still expected
	initErrs int
}

func (l *link) wakeWriter() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) wakeReader() {
	select {
	case l.rwake <- struct{}{}:
	default:
	}
}

// armLocked sets the read deadline to d (0: none). It is how Timeout is
// enforced: the reader's Read fails when the oldest request's time is up.
func (l *link) armLocked(d int64) {
	if d == l.armed || l.nc == nil {
		return
	}
	l.armed = d
	var t time.Time
	if d != 0 {
		t = l.pp.s.p.at(d)
	}
	_ = l.nc.SetReadDeadline(t) // fails only if nc is closed, and then so is the link
}

// oldestLocked returns the deadline of the oldest request with one, or 0:
// the reader's oldest, or else the first in handoff, or else in the queue
// (requests are queued in deadline order). The reader's pHead may be older
// than its true oldest; a deadline that fires early is re-armed. It is
// called with fmu held, only when Timeout is set.
func (l *link) oldestLocked() int64 {
	if l.pHead != 0 {
		return l.pHead
	}
	if d := firstDeadline(l.handoff); d != 0 {
		return d
	}
	return l.qOldest.Load()
}

// firstDeadline returns the deadline of the first entry that has one, or 0.
func firstDeadline(es []entry) int64 {
	for _, e := range es {
		if e.deadline != 0 {
			return e.deadline
		}
	}
	return 0
}

// doomed is what a failed link leaves to be finished outside the locks.
type doomed struct {
	nc       net.Conn
	err      error
	inflight []entry
	queue    []entry
}

// killLocked marks l failed with err and takes its requests, except those
// in the reader's private FIFO. It reports false if l had already failed.
// Both locks are held.
func (l *link) killLocked(err error) (doomed, bool) {
	if l.err != nil {
		return doomed{}, false
	}
	pp := l.pp
	l.err = err
	d := doomed{nc: l.nc, err: err, inflight: l.handoff, queue: l.queue}
	l.handoff, l.queue = nil, nil
	if l.nc != nil {
		pp.s.conns.Add(-1)
	}
	if pp.l == l {
		pp.l = nil
	}
	l.wakeWriter()
	l.wakeReader()
	return d, true
}

// fail closes l, failing its requests with err; class and cause say how
// the failure is counted and logged. first are requests the reader took
// (already counted as done): they fail before the others. If l has failed
// already, only first are failed, with l's error. It returns l's error.
func (l *link) fail(err error, class failClass, cause error, first []entry) error {
	l.pp.mu.Lock()
	l.fmu.Lock()
	d, ok := l.killLocked(err)
	err = l.err
	l.fmu.Unlock()
	l.pp.mu.Unlock()
	if ok {
		l.finish(d, class, cause, first)
		return err
	}
	l.failEntries(first, err)
	return err
}

// failEntries fails the non-Init requests of es with err, leaving those
// the writer may still be writing to it. No lock is held.
func (l *link) failEntries(es []entry, err error) {
	written := l.written.Load()
	for _, e := range es {
		if e.init || e.seq > written && l.hold(e, nil, err) {
			continue
		}
		e.req.Done(nil, err)
		e.uncount()
	}
}

// uncount takes a completed entry off its waiter's count.
func (e *entry) uncount() {
	if e.cnt != nil {
		e.cnt.Add(-1)
	}
}

// hold completes e, which the writer may still be writing, with reply (copied)
// or err: if the writer has not yet finished with it, the outcome is left
// in held for the writer to deliver, and hold reports true; otherwise
// hold reports false and the caller completes e. No lock is held.
func (l *link) hold(e entry, reply []byte, err error) bool {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if e.seq <= l.written.Load() {
		return false
	}
	o := outcome{req: e.req, reply: bytes.Clone(reply), err: err}
	o.cnt = e.cnt
	l.held = append(l.held, o)
	return true
}

// finish completes a kill outside the locks: it closes the connection,
// counts the failure, then fails first, the requests in flight and those
// queued, in that order.
func (l *link) finish(d doomed, class failClass, cause error, first []entry) {
	if d.nc != nil {
		_ = d.nc.Close()
	}
	c := &l.pp.c
	n, b := countEntries(d.queue)
	c.dequeuedN.Add(n)
	c.dequeuedB.Add(b)
	n, b = countEntries(d.inflight)
	c.doneN.Add(n)
	c.doneB.Add(b)
	if cause == nil {
		cause = d.err
	}
	l.pp.s.failure(l.epoch, class, cause)
	l.failEntries(first, d.err)
	l.failEntries(d.inflight, d.err)
	l.failEntries(d.queue, d.err)
}

// countEntries returns the number and bytes of the non-Init entries.
func countEntries(es []entry) (n, b int64) {
	for _, e := range es {
		if !e.init {
			n++
			b += int64(len(e.req.Data))
		}
	}
	return n, b
}
