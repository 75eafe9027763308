package proxy

import (
	"bytes"
	"container/heap"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walnutproxy/walnut/internal/evloop"
	"github.com/walnutproxy/walnut/internal/rawio"
	"github.com/walnutproxy/walnut/pool"
)

// States of an evClient.
const (
	evReading uint8 = iota // between windows: runs the next, or reads the client
	evWaiting              // a window's calls are in flight
	evWriting              // replies the socket did not take are pending
	evEnding               // ended: pending replies are written, then the connection closes
	evLinger               // closing: FIN sent, the client's input is discarded until EOF or the deadline
	evClosed
)

// An evClient is a client connection served by an event loop: the state
// that the goroutine engine keeps on its goroutine's stack (the batch read,
// the window in progress) and the replies the socket has not taken yet.
type evClient struct {
	l    *eloop
	c    *session
	conn evConn
	fd   int
	st   uint8

	i, n, k  int  // requests i to n of the batch read are left; the window in flight has k
	quit     bool // the batch read holds a QUIT that ends the session
	inflight bool // a window's calls are in flight (they refer to the session)
	needArm  bool // the next read starts a batch: arm the client timeout first

	aborted  bool // closed while a window was in flight: close when it is done
	abortErr error
	queued   bool // in the loop's again list (see step's budget)

	// Prefix writing (writePrefix): the window's first wrote replies have
	// been written, winBytes bytes of them; progressed says the client is
	// in the loop's progress list; sentLo to sentHi are the slots whose
	// replies send is writing.
	wrote, winBytes int
	progressed      bool
	late            bool // in the loop's late list (eloop.late)
	sentLo, sentHi  int

	// Heavy windows (eloop.admit): heavy is the reply bytes expected of
	// the window in flight (or admitted), if it counts against the loop's
	// heavy budget; parked says the client waits in the loop's parked
	// list, to send a window of parkedEst bytes.
	heavy     int
	parked    bool
	parkedEst int

	drained bool // the last read found the socket empty: wait for its next edge
	hup     bool // the peer hung up (or the socket failed): read until EOF, never assume drained

	// Deadlines (UnixNano, 0: none), set through evConn by the session
	// code: the read deadline applies while the session waits for input,
	// the write deadline while replies are pending.
	rdl, wdl int64
	timerAt  int64 // the deadline of its entry in the loop's timers; 0: none
	timedOut bool  // the read deadline passed: the next read fails

	// Replies the socket did not take, in order: small ones copied into
	// own, large ones referenced where they lie; pendLarge counts the
	// bytes of the large buffers they hold, returned to the system (see
	// freeLater) once written.
	pend      [][]byte
	own       []byte
	pendLarge int

	endErr    error
	lingering bool // FIN and discard input before closing (Shutdown, output limit)

	// moved is the connection of a client that left the loop (leave),
	// which the handler's reader, made with evConn, reads from.
	moved net.Conn
}

// leave hands the client, whose next request is a pinned command (see
// pinned.go), to a goroutine of its own, as the goroutine engine serves
// its clients, for the rest of the connection's life: the loop lets go of
// its socket, which becomes an ordinary net.Conn, and the session goes on
// with the requests it has read. The replies to the requests before have
// been written (step runs only with nothing pending). A client that sends
// one while the server shuts down is closed instead.
func (ec *evClient) leave() {
	c, l, s := ec.c, ec.l, ec.c.s
	l.p.Del(ec.fd)
	l.fds[ec.fd] = fdRef{}
	f := os.NewFile(uintptr(ec.fd), "client")
	nc, err := net.FileConn(f) // a duplicate, in the runtime's poller
	f.Close()                  // closes the loop's descriptor
	ec.fd = -1
	if err == nil && nc.RemoteAddr() == nil {
		// The peer reset the connection before the hand-over (no peer
		// address): the client is gone.
		nc.Close()
		err = syscall.ENOTCONN
	}
	if err != nil {
		ec.closeNow(err)
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		ec.closeNow(net.ErrClosed)
		return
	}
	conn := rawio.Wrap(nc)
	ec.moved = conn
	c.nc, c.ev = conn, nil
	c.resumeI, c.resumeN = ec.i, ec.n
	s.mu.Unlock()
	// The loop forgets the client: its timers and queues skip it, and a
	// heavy window it was admitted for (but will not send) is given back.
	ec.st = evClosed
	l.heavyDone(ec)
	clear(ec.pend)
	ec.pend, ec.own = nil, nil
	ec.c = nil
	go s.run(c)
}

// closeFD closes the socket of a client that never started.
func (ec *evClient) closeFD() {
	evloop.Close(ec.fd)
	ec.fd = -1
}

// resetFD closes the socket of a client that never started with a reset
// (see resetClose).
func (ec *evClient) resetFD() {
	_ = unix.SetsockoptLinger(ec.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	ec.closeFD()
}

// start registers the connection with the loop and serves what it sent.
func (ec *evClient) start() {
	l := ec.l
	if err := l.p.Add(ec.fd); err != nil {
		ec.closeNow(err)
		return
	}
	l.register(ec.fd, fdRef{c: ec})
	ec.step()
	l.settle()
}

// event handles readiness of the client's socket.
func (ec *evClient) event(ev uint32) {
	if ev&(evloop.In|evloop.RdHup|evloop.Hup|evloop.Err) != 0 {
		ec.drained = false
	}
	if ev&(evloop.RdHup|evloop.Hup|evloop.Err) != 0 {
		// A short read may have taken the last bytes before the FIN,
		// whose edge came with them: no edge will follow.
		ec.hup = true
	}
	if ev&evloop.Out != 0 && len(ec.pend) > 0 {
		if err := ec.flush(); err != nil {
			ec.closeNow(err)
			return
		}
	}
	switch ec.st {
	case evReading:
		ec.step()
	case evWriting:
		if len(ec.pend) == 0 {
			ec.st = evReading
			ec.step()
		}
	case evEnding:
		if len(ec.pend) == 0 {
			ec.finishEnd()
		}
	case evLinger:
		ec.discard()
	}
}

// step runs the session as far as it goes without waiting: windows of
// the requests read, then the next read, until a window waits for
// backends, replies wait for the socket, or nothing more has come in.
func (ec *evClient) step() {
	c := ec.c
	reads := 0
	for ec.st == evReading && !ec.parked {
		if ec.i < ec.n && !ec.quit {
			if c.pinNext(ec.i) {
				ec.leave()
				return
			}
			k := c.window(ec.n - ec.i)
			if rh, ok := c.h.(*redisHandler); ok {
				k = rh.switchCut(ec.i, ec.i+k) - ec.i
				k = rh.pinCut(ec.i, ec.i+k) - ec.i
			}
			if c.avgReply == 0 && k > 1 {
				// Nothing known yet of the client's replies: one request
				// first, whose reply tells whether its windows are heavy
				// (admit), rather than a window that may bring many
				// large replies unbudgeted.
				k = 1
			}
			if !ec.l.admit(ec, c.avgReply*k) {
				return // parked: resumed when heavy windows in flight are done
			}
			ec.k = k
			ec.inflight = true
			if c.dispatchWindow(ec.i, ec.i+k) {
				ec.quit = true
			}
			if c.pending.Add(-1) != 0 {
				ec.st = evWaiting
				return
			}
			ec.windowDone()
			continue
		}
		if ec.n > 0 {
			c.h.reset()
			ec.n, ec.i = 0, 0
			ec.needArm = true
			if c.done(ec.quit) {
				ec.end(nil)
				return
			}
		}
		if reads == stepReads {
			// Enough for one turn: the loop's other clients go first.
			// A client whose requests are answered at once (PING,
			// errors) and who sends them as fast as they are read would
			// otherwise keep the loop to itself.
			if !ec.queued {
				ec.queued = true
				ec.l.again = append(ec.l.again, ec)
			}
			return
		}
		reads++
		if ec.needArm {
			ec.needArm = false
			c.beforeRead()
		}
		n, err := c.h.read(c)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) {
				ec.arm()
				return
			}
			ec.end(err)
			return
		}
		ec.i, ec.n = 0, n
	}
}

// switchCut returns where a window of requests lo to hi must end so that
// a HELLO or RESET, which may switch the client's protocol, comes first
// in its window: a switch waits for the replies to the requests before it
// (session.barrier), which a loop cannot wait for in the middle of a
// window.
func (h *redisHandler) switchCut(lo, hi int) int {
	for i := lo + 1; i < hi; i++ {
		if a := h.cmds[i].Args; len(a) > 0 && (bytes.EqualFold(a[0], helloName) || bytes.EqualFold(a[0], resetName)) {
			return i
		}
	}
	return hi
}

var helloName, resetName = []byte("hello"), []byte("reset")

// maxKeptOwn is the largest buffer of pending replies a client keeps
// once they are written: a client that was slow once keeps little.
const maxKeptOwn = 16 << 10

// stepReads is how many batches a client may read in one step before the
// loop's other clients have their turn.
const stepReads = 16

// ready is called (on the loop) by the call that completes the window in
// flight.
func (ec *evClient) ready() { ec.l.readyq = append(ec.l.readyq, ec) }

// progress is called (on the loop) by a call of the window in flight
// that completed without completing the window: the loop looks for a
// prefix of replies to write once it has read what is ready
// (writePrefix).
func (ec *evClient) progress() {
	if !ec.progressed {
		ec.progressed = true
		ec.l.progressq = append(ec.l.progressq, ec)
	}
}

// writePrefix writes the replies of the window in flight that are
// complete and come before any that is not, so that a client gets its
// replies in order as soon as they can be written rather than when the
// whole window is in, and the proxy holds them no longer than that. A
// prefix of fewer than prefixMin bytes is written only once the window
// has waited prefixDelay (the loop looks again then, see eloop.late):
// most windows complete within that, and writing each small prefix of
// them would cost a system call each. It writes nothing if the whole
// window is complete (windowDone writes it in one go), nor under an
// output limit.
func (ec *evClient) writePrefix(now int64) {
	c := ec.c
	if !ec.inflight || ec.st != evWaiting || ec.aborted || c.outLimit > 0 {
		// With an output limit (client_output_limit) the window is
		// answered whole or cut off with one error: nothing is written
		// before it is in.
		return
	}
	p, size := ec.wrote, 0
	for p < len(c.slots) && c.slotDone(p) {
		size += c.slotBytes(p)
		p++
	}
	if p == ec.wrote || p == len(c.slots) {
		return
	}
	if size < prefixMin && now-c.t0 < int64(prefixDelay) {
		if !ec.late {
			ec.late = true
			ec.l.lateq = append(ec.l.lateq, ec)
		}
		return
	}
	out := c.appendRange(c.out[:0], ec.wrote, p, false)
	ec.winBytes += len(out) + c.bigLen
	ec.sentLo, ec.sentHi = ec.wrote, p
	ec.wrote = p
	c.armWrite(c.g)
	err := ec.send(out, c.big)
	clear(c.big)
	c.big, c.bigLen = c.big[:0], 0
	if cap(out) > maxKeptBuffer {
		out = nil // what the socket did not take may wait in it (send)
	}
	c.out = out[:0]
	if err != nil {
		ec.closeNow(err) // once the window is done: its calls refer to the session
	}
}

// Prefix writing's thresholds (writePrefix).
const (
	prefixMin   = 16 << 10
	prefixDelay = time.Millisecond
)

// windowDone ends the window in flight, once its calls are done: its
// replies (those writePrefix has not written) are appended and written.
func (ec *evClient) windowDone() {
	if !ec.inflight {
		return
	}
	ec.inflight = false
	c := ec.c
	c.end()
	ec.st = evReading
	ec.l.heavyDone(ec)
	wrote, winBytes := ec.wrote, ec.winBytes
	ec.wrote, ec.winBytes = 0, 0
	if ec.aborted {
		ec.closeNow(ec.abortErr)
		return
	}
	if c.overflow.Load() {
		ec.end(c.cutOff())
		return
	}
	out := c.appendRange(c.out[:0], wrote, len(c.slots), false)
	if ec.k > 1 || c.avgReply == 0 {
		c.learn(len(out)+c.bigLen+winBytes, len(c.slots))
	}
	ec.sentLo, ec.sentHi = wrote, len(c.slots)
	if size := c.h.size(ec.i, ec.i+ec.k); size >= pool.LargeReply {
		freeLater(size)
	}
	ec.i += ec.k
	ec.k = 0
	if err := c.write(out); err != nil {
		ec.end(err)
		return
	}
	if len(ec.pend) > 0 {
		ec.st = evWriting
		ec.arm()
	}
}

// send writes replies: out, with the large replies big in place. What the
// socket does not take waits for it to drain (evWriting), and the session
// reads nothing more meanwhile: a client that does not read its replies
// stops being read, and holds at most a window of replies.
func (ec *evClient) send(out []byte, big []bigReply) error {
	if ec.st == evClosed {
		return net.ErrClosed
	}
	segs := ec.l.segs[:0]
	prev := 0
	for _, b := range big {
		segs = append(segs, out[prev:b.at], b.b)
		prev = b.at
	}
	segs = append(segs, out[prev:])
	ec.l.segs = segs
	wrote := 0
	again := false // the socket took all it could: EPOLLOUT will follow
	attempted := len(ec.pend) == 0
	if attempted {
		n, iov, err := evloop.Writev(ec.fd, segs, ec.l.iov)
		ec.l.iov = iov
		if err != nil && !evloop.IsAgain(err) {
			clear(segs)
			return err
		}
		wrote = n
		again = err != nil
	}
	kept := false
	// A large output buffer is dropped by session.write once written
	// (maxKeptBuffer): what is left of it may wait where it lies.
	outOwned := cap(out) > maxKeptBuffer
	large := 0 // bytes of large buffers let go with this write
	if cap(out) >= pool.LargeReply {
		large += cap(out)
	}
	for _, b := range big {
		large += len(b.b)
	}
	for i, s := range segs {
		if wrote >= len(s) {
			wrote -= len(s)
			continue
		}
		s = s[wrote:]
		wrote = 0
		if len(s) >= pool.LargeReply && i%2 == 1 {
			ec.pend = append(ec.pend, s) // a large reply passed through
			kept = true
			continue
		}
		if outOwned && i%2 == 0 {
			ec.pend = append(ec.pend, s)
			continue
		}
		at := len(ec.own)
		ec.own = append(ec.own, s...)
		ec.pend = append(ec.pend, ec.own[at:len(ec.own):len(ec.own)])
	}
	clear(segs)
	if len(ec.pend) == 0 {
		if large > 0 {
			freeLater(large)
		}
	} else {
		ec.pendLarge += large
	}
	if attempted && !again && len(ec.pend) > 0 {
		// writev took every byte it was given but not all the
		// buffers (it takes at most 1024): no EPOLLOUT edge will
		// come for a socket that never filled, so write on now.
		if err := ec.flush(); err != nil {
			return err
		}
	}
	if kept {
		// A large reply waits where it lies: its call must not reuse
		// the buffer for the next reply. Only the calls of the replies
		// being written: others of the window may still be unwritten.
		c := ec.c
		for i := ec.sentLo; i < min(ec.sentHi, len(c.slots)); i++ {
			sl := &c.slots[i]
			for _, cl := range c.calls[sl.call : sl.call+sl.ncall] {
				if cap(cl.reply) >= pool.LargeReply {
					cl.reply = nil
				}
			}
		}
	}
	if len(ec.pend) > 0 && ec.st == evReading {
		ec.st = evWriting
		ec.arm()
	}
	return nil
}

// flush writes pending replies.
func (ec *evClient) flush() error {
	for len(ec.pend) > 0 {
		n, iov, err := evloop.Writev(ec.fd, ec.pend, ec.l.iov)
		ec.l.iov = iov
		if err != nil {
			if evloop.IsAgain(err) {
				return nil
			}
			return err
		}
		for n > 0 && len(ec.pend) > 0 {
			if n >= len(ec.pend[0]) {
				n -= len(ec.pend[0])
				ec.pend[0] = nil
				ec.pend = ec.pend[1:]
				continue
			}
			ec.pend[0] = ec.pend[0][n:]
			n = 0
		}
	}
	ec.pend = ec.pend[:0:0]
	large := ec.pendLarge
	ec.pendLarge = 0
	if cap(ec.own) > maxKeptOwn {
		if cap(ec.own) >= pool.LargeReply {
			large += cap(ec.own)
		}
		ec.own = nil
	} else {
		ec.own = ec.own[:0]
	}
	if large > 0 {
		freeLater(large)
	}
	return nil
}

// read reads the client, for the handler's reader.
func (ec *evClient) read(p []byte) (int, error) {
	if ec.moved != nil {
		return ec.moved.Read(p) // the client left the loop (leave)
	}
	switch {
	case ec.timedOut:
		return 0, os.ErrDeadlineExceeded
	case ec.st == evClosed:
		return 0, net.ErrClosed
	case (ec.drained && !ec.hup) || len(ec.pend) > 0:
		// Nothing until the next edge; or replies wait for the client
		// (memcached errors in step): read no more until they are
		// written.
		return 0, syscall.EAGAIN
	}
	n, err := evloop.Read(ec.fd, p)
	if err != nil {
		if evloop.IsAgain(err) {
			ec.drained = true
		}
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	if n < len(p) {
		ec.drained = true // a short read emptied the socket
	}
	return n, nil
}

// arm makes sure the loop's timers hold the deadline that applies in the
// client's state.
func (ec *evClient) arm() {
	d := ec.deadline()
	if d == 0 || (ec.timerAt != 0 && ec.timerAt <= d) {
		return
	}
	ec.timerAt = d
	heap.Push(&ec.l.timers, timer{at: d, c: ec})
}

// deadline returns the deadline that applies in the client's state.
func (ec *evClient) deadline() int64 {
	switch ec.st {
	case evReading, evLinger:
		return ec.rdl
	case evWriting, evEnding:
		return ec.wdl
	}
	return 0
}

// timer is called when the client's timer fires at now.
func (ec *evClient) timer(now int64) {
	d := ec.deadline()
	if d == 0 {
		return
	}
	if d > now {
		ec.arm()
		return
	}
	switch ec.st {
	case evReading:
		ec.timedOut = true
		ec.step()
	case evWriting, evEnding:
		ec.closeNow(os.ErrDeadlineExceeded)
	case evLinger:
		ec.closeNow(ec.endErr)
	}
}

// interrupt is Shutdown's: the session reads for drainGrace more, then
// ends after its batch (see session.done). It is called from Shutdown's
// goroutine.
func (ec *evClient) interrupt() {
	ec.l.post(func() {
		if ec.st == evClosed {
			return
		}
		ec.rdl = time.Now().Add(drainGrace).UnixNano()
		ec.arm()
	})
}

// end ends the session with err (nil after QUIT): the replies pending are
// written first, then the connection closes, after lingering if Shutdown
// or the output limit asked for it.
func (ec *evClient) end(err error) {
	if ec.st >= evEnding {
		return
	}
	ec.endErr = err
	if ec.c.interrupted.Load() {
		ec.lingering = true
	}
	ec.st = evEnding
	if len(ec.pend) == 0 {
		ec.finishEnd()
		return
	}
	ec.arm()
}

// finishEnd closes the connection, or starts lingering.
func (ec *evClient) finishEnd() {
	if !ec.lingering {
		ec.closeNow(ec.endErr)
		return
	}
	ec.st = evLinger
	_ = evloop.Shutdown(ec.fd)
	ec.rdl = time.Now().Add(drainGrace).UnixNano()
	ec.arm()
	ec.discard()
}

// discard reads and drops the client's input while lingering, and closes
// at its end.
func (ec *evClient) discard() {
	var buf [4096]byte
	for {
		n, err := evloop.Read(ec.fd, buf[:])
		if err != nil && evloop.IsAgain(err) {
			return
		}
		if err != nil || n == 0 {
			ec.closeNow(ec.endErr)
			return
		}
	}
}

// closeNow closes the connection and ends the session, as the goroutine
// engine's serve does.
func (ec *evClient) closeNow(err error) {
	if ec.st == evClosed {
		return
	}
	if ec.inflight {
		// The window's calls still refer to the session: it closes when
		// they are done (windowDone).
		ec.aborted, ec.abortErr = true, err
		return
	}
	prev := ec.st
	ec.st = evClosed
	ec.l.heavyDone(ec) // admitted from the parked list, but never sent

	c := ec.c
	s := c.s
	if ec.fd >= 0 {
		if ec.fd < len(ec.l.fds) {
			ec.l.fds[ec.fd] = fdRef{}
		}
		evloop.Close(ec.fd)
		ec.fd = -1
	}
	if prev == evLinger {
		err = ec.endErr
	}
	clear(ec.pend)
	ec.pend, ec.own = nil, nil
	s.stats.clientConns.Add(-1)
	switch {
	case err == nil || errors.Is(err, io.EOF) || c.interrupted.Load():
		s.stats.clientEOF.Add(1)
	default:
		s.stats.clientErr.Add(1)
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			s.log.Debug("client connection closed", "remote", ec.conn.remote.String(), "err", err)
		}
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
	// The loop's timers may refer to ec until its deadline: let the
	// session and its buffers go now.
	ec.c = nil
}

// abort is Close's: the connection closes at once (after the window in
// flight, whose calls refer to the session).
func (ec *evClient) abort() { ec.closeNow(net.ErrClosed) }

// evConn is the session's net.Conn for a client of an event loop. Reads
// never block (they return syscall.EAGAIN, which the session's loop
// understands as "wait"), writes queue what the socket does not take, and
// deadlines are the loop's timers. Only the loop's goroutine uses it,
// except Close, which Server.Close calls.
type evConn struct {
	ec            *evClient
	local, remote net.Addr
}

func (a evConn) Read(p []byte) (int, error) { return a.ec.read(p) }

func (a evConn) Write(b []byte) (int, error) {
	if err := a.ec.send(b, nil); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close is Server.Close's, from its goroutine.
func (a evConn) Close() error {
	a.ec.l.post(a.ec.abort)
	return nil
}

// CloseWrite asks for the connection to linger once its replies are
// written (the output limit's cut-off).
func (a evConn) CloseWrite() error {
	a.ec.lingering = true
	return nil
}

func (a evConn) LocalAddr() net.Addr  { return a.local }
func (a evConn) RemoteAddr() net.Addr { return a.remote }

func (a evConn) SetDeadline(t time.Time) error {
	_ = a.SetReadDeadline(t)
	return a.SetWriteDeadline(t)
}

func (a evConn) SetReadDeadline(t time.Time) error {
	a.ec.rdl = unixNano(t)
	a.ec.timedOut = false
	return nil
}

func (a evConn) SetWriteDeadline(t time.Time) error {
	a.ec.wdl = unixNano(t)
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// A timer is a client's deadline in its loop's heap.
type timer struct {
	at int64
	c  *evClient
}

// timerHeap is a min-heap of timers by deadline. A client has at most one
// live entry (timerAt); entries it superseded are skipped when they come
// up.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}

func (h *timerHeap) pop() timer { return heap.Pop(h).(timer) }
