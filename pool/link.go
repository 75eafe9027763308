package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
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
	// w is req.Waiter, read by Do; counted marks an entry counted in w.n
	// (see Waiter), uncounted when it is completed.
	w       *Waiter
	counted bool
}

// outcome is the result of a request completed while the writer was still
// writing it, kept for the writer to deliver once it is done.
type outcome struct {
	req   *Request
	reply []byte // a copy: the read buffer it came from moves on
	err   error
	w     *Waiter // the entry's waiter, if it was counted
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
	inline := inlineIO && !fresh && !e.noReply && l.nc != nil && !l.writing
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
		// reader's deadline covers it even if the writer is stuck.
		l.fmu.Lock()
		if l.err == nil && (l.armed == 0 || e.deadline < l.armed) {
			l.armLocked(e.deadline)
		}
		l.fmu.Unlock()
	}
	switch {
	case !inline:
	case e.w != nil:
		e.w.addFlush(l)
	default:
		l.writeInline(nil, false)
	}
}

// writeInline writes l's queue on the calling goroutine, unless somebody
// is writing already (they write it) or l is not connected yet (the
// writer goroutine writes it once it is). w is the caller's waiter, if
// any; reserve allows the write to make w the reader of l (see drain). An
// idle connection is checked first, so that a server that closed it
// meanwhile costs a new connection, not the requests.
func (l *link) writeInline(w *Waiter, reserve bool) {
	pp := l.pp
	pp.mu.Lock()
	if l.err != nil || l.nc == nil || l.writing || len(l.queue) == 0 {
		pp.mu.Unlock()
		return
	}
	role := l.role.Load()
	if role != roleFree && !l.watch.Load() {
		// Requests are in flight: others are using the connection, and
		// the writer goroutine, which runs after them, writes theirs and
		// these in one write.
		if l.writerIdle {
			l.writerIdle = false
			l.wakeWriter()
		}
		pp.mu.Unlock()
		return
	}
	l.writing = true
	// Idle for a while and unwatched: check it. Nobody reads it, and
	// nobody will while we hold writing.
	check := role == roleFree && l.rc != nil && pp.s.p.now()-l.freeAt.Load() >= int64(idleCheck)
	pp.mu.Unlock()
	if check {
		if class, cause := l.checkIdle(); cause != nil {
			l.retire(class, cause)
			return
		}
	}
	l.drain(w, true, reserve)
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
// goroutine runs. With inlineIO false (the measurement switch) the writer
// and reader goroutines do every write and read, as before.
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
	watch   atomic.Bool  // stored under fmu
	freeAt  atomic.Int64 // stored under fmu
	timer   *time.Timer
	timerOn bool

	// both locks to write, either to read
	nc   net.Conn        // nil until dialled
	conn net.Conn        // nc, unwrapped, for writev (see rawio)
	rc   syscall.RawConn // nc's, for checkIdle; nil if nc has none
	err  error           // set once, when the link fails

	// writer-owned: whoever holds writing
	seq   uint64 // of the last entry handed off
	wbuf  []byte
	bufs  net.Buffers // the batch being written: runs of wbuf and large requests' Data
	wv    net.Buffers // consumed by WriteTo; a field so it does not escape per batch
	spare []entry     // the previous batch's slice, for the next queue

	// read-role-owned: the holder of role
	buf      []byte  // read buffer, allocated at the first read
	r, w     int     // unread bytes are buf[r:w]
	need     int     // bytes from r the next reply needs before framing is worth trying
	rq       []entry // private FIFO: rq[rqi:] await replies, oldest first
	rqi      int
	ents     []entry // requests answered by the current read
	ends     []int   // where their replies end in the read buffer
	initLeft int     // Init replies still expected
	initErrs int

	// checkIdle's results, and the function it passes to rc.Read, made
	// once so that the check does not allocate.
	peekN   int
	peekErr error
	peekFn  func(fd uintptr) bool
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
	if e.counted {
		e.w.n.Add(-1)
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
	if e.counted {
		o.w = e.w
	}
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
	l.pp.s.failure(l, class, cause)
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

// run is the writer goroutine: it dials, then writes whatever is queued
// that no caller writes, until the link fails.
func (l *link) run() {
	pp := l.pp
	s := pp.s
	p := s.p

	deadline := p.now() + int64(p.opts.DialTimeout)
	byRequest := false
	if p.opts.Timeout > 0 {
		if oldest := l.qOldest.Load(); oldest != 0 && oldest < deadline {
			deadline, byRequest = oldest, true
		}
	}
	ctx, cancel := context.WithDeadline(p.ctx, p.at(deadline))
	nc, err := p.dial(ctx, s.cfg.Network, s.cfg.Addr)
	cancel()
	if err != nil {
		switch {
		case p.ctx.Err() != nil:
			l.fail(ErrClosed, failNone, err, nil)
		case byRequest && errors.Is(err, context.DeadlineExceeded):
			l.fail(ErrTimedOut, failTimeout, err, nil)
		default:
			l.fail(mapErr(err), failErr, err, nil)
		}
		return
	}
	var rc syscall.RawConn
	if inlineIO {
		rc = rawConn(nc)
		l.peekFn = l.peek
	}
	conn := nc
	nc = rawio.Wrap(nc)

	pp.mu.Lock()
	l.fmu.Lock()
	if l.err != nil {
		l.fmu.Unlock()
		pp.mu.Unlock()
		_ = nc.Close()
		return
	}
	l.nc, l.rc, l.conn = nc, rc, conn
	s.conns.Add(1)
	if p.opts.Timeout > 0 {
		l.armLocked(l.oldestLocked())
	}
	if !inlineIO {
		// The reader goroutine reads for the link's whole life.
		l.role.Store(roleBackground)
		l.readerUp = true
	} else {
		l.freeLocked()
	}
	l.fmu.Unlock()
	pp.mu.Unlock()
	if !inlineIO && !p.start(l.readLoop) {
		l.fail(ErrClosed, failNone, nil, nil)
		return
	}
	l.write()
}

// write is the writer goroutine's loop.
func (l *link) write() {
	pp := l.pp
	for {
		pp.mu.Lock()
		for (len(l.queue) == 0 || l.writing) && l.err == nil {
			l.writerIdle = true
			pp.mu.Unlock()
			<-l.wake
			// Let the goroutines made runnable with the one that woke us
			// (typically those whose replies just arrived) queue their
			// next requests first: one write for many, not one for each.
			runtime.Gosched()
			pp.mu.Lock()
		}
		if l.err != nil {
			pp.mu.Unlock()
			return
		}
		l.writing = true
		pp.mu.Unlock()
		if !l.drain(nil, false, false) {
			return
		}
	}
}

const (
	// maxInlineRounds is the most batches a caller writes inline before
	// it leaves what queued meanwhile to the writer goroutine, so that a
	// busy connection does not keep one client's goroutine writing for
	// others.
	maxInlineRounds = 4
	// maxWaiterBatch is the largest batch (in bytes) whose writer takes
	// the read role for its Waiter: a larger one is read by the reader
	// goroutine, so that a caller is never blocked writing a large batch
	// to a connection whose replies only it would read.
	maxWaiterBatch = 64 << 10
)

// drain writes the queue, batch after batch, until it is empty, by the
// holder of writing, which the caller has set: the writer goroutine
// (inline false), or a caller of Do or Waiter.Read with its waiter w,
// possibly nil. If reserve is set and a batch holding one of w's requests
// goes in flight on a connection nobody reads, w becomes its reader (the
// read role), provided the batch is small. An inline caller stops after
// maxInlineRounds batches, or after the batch that gave its waiter the
// read role (so that it never blocks on a write while it is the only one
// who would read the replies), and leaves the rest to the writer
// goroutine. drain reports false if the link failed.
func (l *link) drain(w *Waiter, inline, reserve bool) bool {
	pp := l.pp
	c := &pp.c
	timeouts := pp.s.p.opts.Timeout > 0
	for round := 0; ; round++ {
		pp.mu.Lock()
		if l.err != nil {
			l.writing = false
			pp.mu.Unlock()
			return false
		}
		if len(l.queue) == 0 {
			l.writing = false
			pp.mu.Unlock()
			return true
		}
		if inline && (round == maxInlineRounds || w != nil && w.link != nil) {
			l.writing = false
			if l.writerIdle {
				l.writerIdle = false
				l.wakeWriter()
			}
			pp.mu.Unlock()
			return true
		}
		batch := l.queue
		l.queue = l.spare[:0]
		l.spare = nil
		l.qOldest.Store(0)
		pp.mu.Unlock()
		dqN, dqB := countEntries(batch)
		c.dequeuedN.Add(dqN)
		c.dequeuedB.Add(dqB)
		// The batch is the writer's alone until it is handed off: read
		// from its requests all that the write needs.
		sN, sB, replies, mine, noReply := l.prepare(batch, w)

		l.fmu.Lock()
		if l.err != nil {
			err := l.err
			l.fmu.Unlock()
			l.resetBufs()
			l.failEntries(batch, err)
			return false
		}
		spawn, signal := false, false
		if replies && l.role.Load() == roleFree {
			if inline && reserve && mine && len(l.wbuf) <= maxWaiterBatch && len(l.bufs) == 1 {
				l.role.Store(roleWaiter)
				w.link = l
			} else {
				l.role.Store(roleBackground)
				spawn, signal = !l.readerUp, l.readerUp
				l.readerUp = true
			}
		}
		if replies {
			l.watch.Store(false)
		}
		count := inline && w != nil && w.link == l
		for i := range batch {
			if batch[i].noReply {
				continue
			}
			l.seq++
			batch[i].seq = l.seq
			if count && batch[i].w == w {
				batch[i].counted = true
				w.n.Add(1)
			}
			l.handoff = append(l.handoff, batch[i])
		}
		c.sentN.Add(sN)
		c.sentB.Add(sB)
		if timeouts && l.armed == 0 {
			l.armLocked(l.oldestLocked())
		}
		l.fmu.Unlock()
		if signal {
			l.wakeReader()
		} else if spawn && !pp.s.p.start(l.readLoop) {
			l.fail(ErrClosed, failNone, nil, nil)
		}

		// From here on the handed-off requests may be completed by
		// others, and are not read again.
		err := l.send()
		l.fmu.Lock()
		l.written.Store(l.seq)
		held := l.held
		l.held = nil
		l.fmu.Unlock()
		if err != nil {
			err = l.fail(mapErr(err), failErr, err, nil)
		}
		for _, o := range held {
			o.req.Done(o.reply, o.err)
			if o.w != nil {
				o.w.n.Add(-1)
			}
		}
		if noReply {
			for _, e := range batch {
				if e.noReply {
					e.req.Done(nil, err)
				}
			}
		}
		clear(batch)
		if cap(batch) <= maxIdleEntries {
			l.spare = batch[:0]
		}
		if err != nil {
			return false
		}
	}
}

// prepare reads from batch's requests what the writer needs, before it
// hands the batch off: it lays out the write in bufs, one buffer or, when
// the batch holds large requests, several for writev. Requests up to
// maxCopy bytes are copied into runs in wbuf; larger ones are written from
// where they are, so their Data must stay untouched until written, which
// Done guarantees. It returns the count and bytes of the requests that
// await replies (Init excluded), whether any request awaits a reply (Init
// included), whether one of those is w's, and whether any is NoReply.
func (l *link) prepare(batch []entry, w *Waiter) (sN, sB int64, replies, mine, noReply bool) {
	small := 0
	for _, e := range batch {
		n := len(e.req.Data)
		if n <= maxCopy {
			small += n
		}
		switch {
		case e.noReply:
			noReply = true
			continue
		case !e.init:
			sN++
			sB += int64(n)
		}
		replies = true
		if w != nil && e.w == w {
			mine = true
		}
	}
	if cap(l.wbuf) < small {
		l.wbuf = make([]byte, 0, max(small, 2*cap(l.wbuf)))
	}
	buf, bufs := l.wbuf[:0], l.bufs[:0]
	mark := 0 // start of the current run in buf; buf never reallocates
	for _, e := range batch {
		d := e.req.Data
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
	l.wbuf, l.bufs = buf, bufs
	return sN, sB, replies, mine, noReply
}

// send writes what prepare laid out, with one write or one writev, and
// lets go of the requests' data.
func (l *link) send() error {
	var err error
	if len(l.bufs) == 1 {
		_, err = l.nc.Write(l.bufs[0])
	} else {
		l.wv = l.bufs
		_, err = l.wv.WriteTo(l.conn)
		l.wv = nil
	}
	l.resetBufs()
	return err
}

// resetBufs drops the references bufs holds to a batch's data.
func (l *link) resetBufs() {
	clear(l.bufs)
	l.bufs = l.bufs[:0]
	l.wbuf = l.wbuf[:0]
	if cap(l.wbuf) > maxIdleWriteBuf {
		l.wbuf = nil
	}
}

// readLoop is the reader goroutine: it reads while it holds the read role,
// and waits to be given it again, until the link fails.
func (l *link) readLoop() {
	for {
		l.fmu.Lock()
		role, err := l.role.Load(), l.err
		l.fmu.Unlock()
		if role == roleBackground {
			if !l.readFor(nil) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		<-l.rwake
	}
}

// readFor reads replies, frames them and completes requests in order, as
// the holder of the read role: for the waiter w until w's requests are
// answered, or for the reader goroutine (w nil) until nothing is in flight;
// then it gives up the role (see release). It reports false once the link
// has failed, after failing the requests left in its private FIFO.
func (l *link) readFor(w *Waiter) bool {
	if l.readReplies(w) {
		return true
	}
	l.failPrivate()
	return false
}

func (l *link) readReplies(w *Waiter) bool {
	p := l.pp.s.p
	framer, isFailure := p.opts.Framer, p.opts.IsFailure
	timeouts := p.opts.Timeout > 0
	nc := l.nc // set before any reader runs, never changed
	if l.buf == nil {
		l.buf = make([]byte, readBufSize)
	}
	for {
		if w != nil {
			if w.n.Load() == 0 {
				return l.release()
			}
		} else if l.rqi == len(l.rq) && inlineIO {
			if done, ok := l.idle(); done {
				return ok
			}
		}
		buf := l.buf
		n, err := nc.Read(buf[l.w:])
		l.w += n
		if n > 0 && l.w-l.r >= l.need {
			r, wr := l.r, l.w
			ends, ents := l.ends[:0], l.ents[:0]
			start := r
			var bad error // why the link must close: malformed, failure or stray reply
			for r < wr {
				if l.rqi == len(l.rq) && !l.refill() {
					bad = errStray
					break
				}
				e := l.rq[l.rqi]
				m, ferr := framer(buf[r:wr], e.req)
				if ferr != nil || m > wr-r {
					bad = ferr
					if bad == nil {
						bad = errFramerLength
					}
					break
				}
				if m <= 0 {
					l.need = wr - r + 1
					if -m > l.need {
						l.need = -m
					}
					break
				}
				l.need = 0
				r += m
				ends = append(ends, r)
				ents = append(ents, e)
				l.rq[l.rqi] = entry{}
				l.rqi++
				if isFailure != nil && isFailure(buf[r-m:r]) {
					bad = errFailureReply
					break
				}
			}
			l.r = r
			l.ends, l.ents = ends, ents
			if len(ents) > 0 {
				l.deliver(buf, start, ends, ents, bad == errFailureReply)
			}
			if bad != nil {
				var first []entry
				if bad == errFailureReply {
					first = append(first, ents[len(ents)-1])
				}
				first = append(first, l.takePrivate()...)
				l.fail(ErrInvalid, failErr, bad, first)
				clear(ents)
				return false
			}
			clear(ents)
			if timeouts {
				l.fmu.Lock()
				l.pHead = firstDeadline(l.rq[l.rqi:])
				l.armLocked(l.oldestLocked())
				l.fmu.Unlock()
			}
		}
		if err != nil {
			if l.readFailed(err) {
				continue
			}
			return false
		}
		l.compact()
	}
}

// compact makes room in the read buffer for the next read: it moves the
// unread bytes to the front, grows the buffer to what the next reply needs,
// and drops a large buffer once it is empty.
func (l *link) compact() {
	buf := l.buf
	if l.r == l.w {
		l.r, l.w = 0, 0
		if len(buf) > maxIdleReadBuf {
			l.buf = make([]byte, readBufSize)
		}
		return
	}
	if l.w == len(buf) || l.r+l.need > len(buf) {
		size := len(buf)
		if l.w-l.r == size || l.need > size {
			size = max(2*size, min(l.need, l.w-l.r+maxReadAhead))
		}
		if size != len(buf) {
			nb := make([]byte, size)
			l.w = copy(nb, buf[l.r:l.w])
			l.buf = nb
		} else {
			l.w = copy(buf, buf[l.r:l.w])
		}
		l.r = 0
	}
}

// idle is called by the reader goroutine when its private FIFO is empty:
// it takes what is in handoff, or, if nothing is in flight, gives up the
// read role. It reports done when the reader should stop reading, with ok
// false if the link has failed.
func (l *link) idle() (done, ok bool) {
	l.fmu.Lock()
	if l.err != nil {
		l.fmu.Unlock()
		return false, false // read on: the read fails and says how
	}
	if len(l.handoff) > 0 {
		l.refillLocked()
		l.fmu.Unlock()
		return false, false
	}
	if l.watch.Load() {
		l.fmu.Unlock()
		return false, false // read on: anything that arrives now is stray
	}
	if l.r < l.w {
		l.fmu.Unlock()
		l.fail(ErrInvalid, failErr, errStray, nil)
		return true, false
	}
	l.freeLocked()
	l.fmu.Unlock()
	return true, true
}

const (
	// idleWatch is how long a connection stays idle with nobody reading
	// it before its reader goroutine watches it.
	idleWatch = 10 * time.Millisecond
	// idleCheck is how long a connection stays idle before a writer checks
	// it (checkIdle) before writing to it. A server that closed it within
	// the last idleCheck is noticed by the read instead, failing the
	// requests written: a race that exists in any proxy.
	idleCheck = time.Millisecond
)

// freeLocked frees the read role, and arms the timer that has the idle
// connection watched if it stays idle. fmu is held.
func (l *link) freeLocked() {
	l.role.Store(roleFree)
	l.freeAt.Store(l.pp.s.p.now())
	if l.timerOn {
		return
	}
	l.timerOn = true
	if l.timer == nil {
		l.timer = time.AfterFunc(idleWatch, l.watchIdle)
	} else {
		l.timer.Reset(idleWatch)
	}
}

// watchIdle gives the read role of a connection idle for idleWatch to the
// reader goroutine, which then reads until something arrives: a server
// that closes an idle connection, or sends on it unasked, fails it at once
// rather than at its next use.
func (l *link) watchIdle() {
	// The queue lock first: a writer that found the role free may be
	// checking the connection (checkIdle), and nobody may read it then.
	l.pp.mu.Lock()
	writing := l.writing
	l.fmu.Lock()
	l.timerOn = false
	if l.err != nil || l.role.Load() != roleFree {
		l.fmu.Unlock()
		l.pp.mu.Unlock()
		return
	}
	if d := l.pp.s.p.now() - l.freeAt.Load(); writing || d < int64(idleWatch) {
		l.timerOn = true
		l.timer.Reset(max(idleWatch-time.Duration(d), time.Millisecond))
		l.fmu.Unlock()
		l.pp.mu.Unlock()
		return
	}
	l.role.Store(roleBackground)
	l.watch.Store(true)
	spawn := !l.readerUp
	l.readerUp = true
	l.fmu.Unlock()
	l.pp.mu.Unlock()
	if !spawn {
		l.wakeReader()
	} else if !l.pp.s.p.start(l.readLoop) {
		l.fail(ErrClosed, failNone, nil, nil)
	}
}

// release gives up the read role a waiter held: it is free if nothing is
// in flight, else the reader goroutine's. It reports false if the link
// has failed.
func (l *link) release() bool {
	l.fmu.Lock()
	if l.err != nil {
		l.fmu.Unlock()
		return false
	}
	if l.rqi == len(l.rq) && len(l.handoff) == 0 {
		if l.r < l.w {
			l.fmu.Unlock()
			l.fail(ErrInvalid, failErr, errStray, nil)
			return false
		}
		l.freeLocked()
		l.fmu.Unlock()
		return true
	}
	l.role.Store(roleBackground)
	spawn := !l.readerUp
	l.readerUp = true
	l.fmu.Unlock()
	if !spawn {
		l.wakeReader()
	} else if !l.pp.s.p.start(l.readLoop) {
		l.fail(ErrClosed, failNone, nil, nil)
		return false
	}
	return true
}

// Causes logged when a reply closes the connection.
var (
	errStray        = errors.New("pool: reply with no request outstanding")
	errFailureReply = errors.New("pool: reply reports a server failure")
	errFramerLength = errors.New("pool: Framer returned a length beyond its input")
	errIdleEOF      = errors.New("pool: server closed the idle connection")
)

// refill takes everything in handoff as the reader's private FIFO, which
// must be empty. It reports whether there is anything to take.
func (l *link) refill() bool {
	l.fmu.Lock()
	l.refillLocked()
	l.fmu.Unlock()
	return len(l.rq) > 0
}

func (l *link) refillLocked() {
	clear(l.rq)
	spare := l.rq[:0]
	if cap(spare) > maxIdleEntries {
		spare = nil
	}
	l.rq, l.handoff = l.handoff, spare
	if l.pp.s.p.opts.Timeout > 0 {
		l.pHead = firstDeadline(l.rq)
	}
	l.rqi = 0
}

// takePrivate removes and returns the requests in the private FIFO,
// counted as done.
func (l *link) takePrivate() []entry {
	es := l.rq[l.rqi:]
	l.rq, l.rqi = nil, 0
	n, b := countEntries(es)
	l.pp.c.doneN.Add(n)
	l.pp.c.doneB.Add(b)
	return es
}

// failPrivate fails the requests left in the private FIFO with the link's
// error; every path out of read sets it first.
func (l *link) failPrivate() {
	if l.rqi == len(l.rq) {
		return
	}
	l.fmu.Lock()
	err := l.err
	l.fmu.Unlock()
	l.failEntries(l.takePrivate(), err)
}

// deliver completes the requests ents with the replies buf[start:ends[0]],
// buf[ends[0]:ends[1]], …, all but the last if dropLast is set (a failure
// reply, whose request the caller fails).
func (l *link) deliver(buf []byte, start int, ends []int, ents []entry, dropLast bool) {
	pp := l.pp
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
	c := &pp.c
	c.doneN.Add(doneN)
	c.doneB.Add(doneB)
	c.respN.Add(respN)
	c.respB.Add(respB)
	if respN > 0 {
		pp.s.ok()
	}
	from = start
	written := l.written.Load()
	for j := 0; j < good; j++ {
		e := ents[j]
		reply := buf[from:ends[j]]
		from = ends[j]
		if e.init {
			l.initReply(reply)
			continue
		}
		if e.seq > written && l.hold(e, reply, nil) {
			continue // answered before the writer was done with it
		}
		e.req.Done(reply, nil)
		e.uncount()
	}
}

// initReply handles the reply to an Init request.
func (l *link) initReply(reply []byte) {
	s := l.pp.s
	isErr := s.p.opts.IsError != nil && s.p.opts.IsError(reply)
	if isErr {
		l.initErrs++
	}
	s.logInit(len(s.p.init)-l.initLeft, reply, isErr)
	l.initLeft--
	if l.initLeft == 0 && l.initErrs == 0 {
		s.initFailing.Store(false)
	}
}

// readFailed handles a Read error. It reports true if the reader should go
// on: the read deadline passed but no request's time is up.
func (l *link) readFailed(err error) bool {
	pp := l.pp
	p := pp.s.p
	if errors.Is(err, os.ErrDeadlineExceeded) && p.opts.Timeout > 0 {
		pp.mu.Lock()
		l.fmu.Lock()
		if l.err != nil {
			l.fmu.Unlock()
			pp.mu.Unlock()
			return false
		}
		l.pHead = firstDeadline(l.rq[l.rqi:])
		oldest := l.oldestLocked()
		if oldest != 0 && p.now() >= oldest {
			d, _ := l.killLocked(ErrTimedOut)
			l.fmu.Unlock()
			pp.mu.Unlock()
			l.finish(d, failTimeout, err, l.takePrivate())
			return false
		}
		l.armed = -1 // force a new deadline, even an equal one
		l.armLocked(oldest)
		l.fmu.Unlock()
		pp.mu.Unlock()
		return true
	}
	class := failErr
	if errors.Is(err, io.EOF) {
		class = failEOF
	}
	l.fail(mapErr(err), class, err, l.takePrivate())
	return false
}
