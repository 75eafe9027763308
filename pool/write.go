package pool

import (
	"context"
	"errors"
	"net"
	"runtime"

	"github.com/walnutproxy/walnut/internal/rawio"
)

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
	check := role == roleFree && l.raw != nil && pp.s.p.now()-l.freeAt.Load() >= int64(idleCheck)
	pp.mu.Unlock()
	if check {
		if class, cause := l.checkIdle(); cause != nil {
			l.retire(class, cause)
			return
		}
	}
	l.drain(w, true, reserve)
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
	nc = rawio.Wrap(nc)
	raw, _ := nc.(*rawio.Conn)

	pp.mu.Lock()
	l.fmu.Lock()
	if l.err != nil {
		l.fmu.Unlock()
		pp.mu.Unlock()
		_ = nc.Close()
		return
	}
	l.nc, l.raw = nc, raw
	s.conns.Add(1)
	if p.opts.Timeout > 0 {
		l.armLocked(l.oldestLocked())
	}
	l.freeLocked()
	l.fmu.Unlock()
	pp.mu.Unlock()
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
// read role), provided the batch is small (maxWaiterBatch), so that the
// write does not block on a healthy server. An inline caller stops after
// maxInlineRounds batches, or after the batch that gave its waiter the
// read role (it must not go on writing others' requests while it is the
// only one who would read the replies), and leaves the rest to the writer
// goroutine. drain reports false if the link failed.
func (l *link) drain(w *Waiter, inline, reserve bool) bool {
	pp := l.pp
	c := &pp.c
	timeouts := pp.s.p.opts.Timeout > 0
	var reserved *waitRead // the read role this call gave w
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
		if inline && (round == maxInlineRounds || reserved != nil) {
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
		toReader, spawn := false, false
		if replies && l.role.Load() == roleFree {
			if inline && reserve && mine && len(l.wbuf) <= maxWaiterBatch && len(l.bufs) == 1 {
				l.role.Store(roleWaiter)
				reserved = w.addRead(l)
			} else {
				toReader, spawn = true, l.toReaderLocked()
			}
		}
		if replies {
			l.watch.Store(false)
		}
		count := reserved != nil && reserved.l == l
		for i := range batch {
			if batch[i].noReply {
				continue
			}
			l.seq++
			batch[i].seq = l.seq
			if count && batch[i].w == w {
				batch[i].cnt = &reserved.n
				reserved.n.Add(1)
			}
			l.handoff = append(l.handoff, batch[i])
		}
		c.sentN.Add(sN)
		c.sentB.Add(sB)
		if timeouts && l.armed == 0 {
			l.armLocked(l.oldestLocked())
		}
		l.fmu.Unlock()
		if toReader {
			l.startReader(spawn)
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
			if o.cnt != nil {
				o.cnt.Add(-1)
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
		// The unwrapped connection, which net.Buffers writes with one
		// writev.
		var nc net.Conn = l.nc
		if l.raw != nil {
			nc = l.raw.Unwrap()
		}
		_, err = l.wv.WriteTo(nc)
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
