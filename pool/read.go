package pool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"
)

// readLoop is the reader goroutine: it reads while it holds the read role,
// and waits to be given it again, until the link fails.
func (l *link) readLoop() {
	for {
		l.fmu.Lock()
		role, err := l.role.Load(), l.err
		l.fmu.Unlock()
		if role == roleBackground {
			if l.readFor(nil, false) == readBroken {
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

// Results of readFor.
const (
	readDone   = iota // the role is given up: the waiter's requests are answered, or nothing is in flight
	readBroken        // the link failed; the requests in the private FIFO are failed
	readSlow          // the waiter waited holdOthers with no reply; it still holds the role
)

// holdOthers is how long a waiter that holds the read role of other
// connections too waits for a reply on the one it reads before it lets
// the others go to their reader goroutines (see Waiter.Read): a slow
// server must not hold up the replies of the others' clients.
const holdOthers = 2 * time.Millisecond

// readFor reads replies, frames them and completes requests in order, as
// the holder of the read role: for the waiter w until w's requests are
// answered, or for the reader goroutine (w nil) until nothing is in flight;
// then it gives up the role (see release). With early set, it returns
// readSlow if no reply has come after holdOthers.
func (l *link) readFor(w *waitRead, early bool) int {
	res := l.readReplies(w, early)
	if res == readBroken {
		l.failPrivate()
	}
	return res
}

// endEarly restores the read deadline that readReplies shortened to
// holdOthers: the oldest request's, or none.
func (l *link) endEarly() {
	l.fmu.Lock()
	l.early = false
	var d int64
	if l.pp.s.p.opts.Timeout > 0 {
		l.pHead = firstDeadline(l.rq[l.rqi:])
		d = l.oldestLocked()
	}
	l.armed = -1 // force the deadline to be set, even to an equal one
	l.armLocked(d)
	l.fmu.Unlock()
}

func (l *link) readReplies(w *waitRead, early bool) int {
	p := l.pp.s.p
	framer, isFailure := p.opts.Framer, p.opts.IsFailure
	timeouts := p.opts.Timeout > 0
	nc := l.nc // set before any reader runs, never changed
	b := &l.rb
	if b.buf == nil {
		b.room()
	}
	for {
		if w != nil {
			if w.n.Load() <= 0 {
				if l.early {
					l.endEarly()
				}
				if l.release() {
					return readDone
				}
				return readBroken
			}
			if early {
				early = false
				l.fmu.Lock()
				soon := p.now() + int64(holdOthers)
				if l.err == nil && (l.armed <= 0 || soon < l.armed) {
					l.armed = -1 // not a request's deadline: see endEarly
					l.early = true
					_ = nc.SetReadDeadline(p.at(soon))
				}
				l.fmu.Unlock()
			}
		} else if l.rqi == len(l.rq) {
			if done, ok := l.idle(); done {
				if ok {
					return readDone
				}
				return readBroken
			}
		}
		n, err := b.fill(nc)
		if n > 0 && b.ready() {
			buf, start := b.buf, b.r
			ends, ents := l.ends[:0], l.ents[:0]
			var bad error // why the link must close: malformed, failure or stray reply
			for b.r < b.w {
				if l.rqi == len(l.rq) && !l.refill() {
					bad = errStray
					break
				}
				e := l.rq[l.rqi]
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
				l.rq[l.rqi] = entry{}
				l.rqi++
				if isFailure != nil && isFailure(buf[b.r-m:b.r]) {
					bad = errFailureReply
					break
				}
			}
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
				return readBroken
			}
			clear(ents)
			if timeouts && !l.early {
				l.fmu.Lock()
				l.pHead = firstDeadline(l.rq[l.rqi:])
				l.armLocked(l.oldestLocked())
				l.fmu.Unlock()
			}
		}
		if err != nil {
			if l.early && errors.Is(err, os.ErrDeadlineExceeded) {
				l.endEarly()
				return readSlow
			}
			if l.readFailed(err) {
				continue
			}
			return readBroken
		}
		b.room()
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
	if l.rb.r < l.rb.w {
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
	if l.raw != nil {
		// Look first: a close that came meanwhile fails the connection
		// now, before a writer can take the watched connection as good.
		if class, cause := l.checkIdle(); cause != nil {
			l.fmu.Unlock()
			l.pp.mu.Unlock()
			l.fail(mapErr(cause), class, cause, nil)
			return
		}
	}
	l.watch.Store(true)
	spawn := l.toReaderLocked()
	l.fmu.Unlock()
	l.pp.mu.Unlock()
	l.startReader(spawn)
}

// toReaderLocked gives the read role to the link's reader goroutine, and
// reports whether that goroutine must be started (see startReader). fmu
// is held.
func (l *link) toReaderLocked() (spawn bool) {
	l.role.Store(roleBackground)
	spawn = !l.readerUp
	l.readerUp = true
	return spawn
}

// startReader starts the reader goroutine (spawn) or wakes it, after
// toReaderLocked, with no lock held. It reports false if the pool is
// closing, which fails the link.
func (l *link) startReader(spawn bool) bool {
	if !spawn {
		l.wakeReader()
		return true
	}
	if !l.pp.s.p.start(l.readLoop) {
		l.fail(ErrClosed, failNone, nil, nil)
		return false
	}
	return true
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
		if l.rb.r < l.rb.w {
			l.fmu.Unlock()
			l.fail(ErrInvalid, failErr, errStray, nil)
			return false
		}
		l.freeLocked()
		l.fmu.Unlock()
		return true
	}
	spawn := l.toReaderLocked()
	l.fmu.Unlock()
	return l.startReader(spawn)
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
		if len(reply) >= LargeReply && !e.init && e.req.KeepLarge {
			if from == 0 && ends[j] == l.rb.w {
				// The buffer was grown for this reply alone (perhaps
				// larger, see Options.Estimate): it becomes the
				// reply's, and the link reads on into a new one.
				reply = buf[:ends[j]:ends[j]]
				l.rb.buf, l.rb.r, l.rb.w = nil, 0, 0
			} else {
				reply = bytes.Clone(reply)
			}
		}
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
	l.pp.s.initReply(reply, &l.initLeft, &l.initErrs)
}

// initReply checks and logs the reply to an Init request on a connection
// that expects left more of them (this one included) and has seen errs
// error replies so far; it updates both.
func (s *server) initReply(reply []byte, left, errs *int) {
	isErr := s.p.opts.IsError != nil && s.p.opts.IsError(reply)
	if isErr {
		*errs++
	}
	s.logInit(len(s.p.init)-*left, reply, isErr)
	*left--
	if *left == 0 && *errs == 0 {
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
