package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walnutproxy/walnut/internal/evloop"
	"github.com/walnutproxy/walnut/pool"
)

// An Engine is a set of event loops that serve the client connections of
// the Servers made with it (Config.Engine) without a goroutine per
// connection: each loop is one goroutine with its own epoll instance that
// owns the clients handed to it and its own connections to the backends
// (pool.LoopConn), and does every read and write itself. Each loop opens
// its own Backend.Conns connections to each server, so a server sees that
// many times the number of loops. When GOMAXPROCS is above the number of
// loops, a loop keeps its P while it waits for events (a raw system call,
// outside the scheduler's bookkeeping, which costs less than the hand-over
// of the P a blocking call brings), and the process's other goroutines
// (accepting, dialling, stats) run on the spare Ps; otherwise it waits
// with an ordinary blocking call. A Config.Dial used with an Engine must
// return sockets. Linux only: elsewhere NewEngine fails.
//
// How it works. A request then
// costs no goroutine hand-off at all: the loop reads a client, dispatches
// its requests (the session and handler code is the goroutine engine's),
// queues them on its backend connections, writes each backend once per
// loop iteration for every client read in it, and, when the replies come
// in, writes the client. The client's session is driven as a state machine
// (evClient.step) instead of by a goroutine that blocks.
//
// A loop: epoll_wait; handle each ready socket (read clients and run what
// they sent as far as it goes without waiting, read backends and complete
// their requests); run the sessions whose window completed (append their
// replies, write them, dispatch what comes next); write every backend
// connection with queued requests; fire due timers (client_timeout, the
// backends' request and dial deadlines). Other goroutines reach a loop
// only through post (new clients, dial results, Shutdown, Close, pools
// closed by a Reload), which wakes it through an eventfd.
type Engine struct {
	loops  []*eloop
	next   atomic.Uint64
	wg     sync.WaitGroup
	closed atomic.Bool
}

// NewEngine starts an Engine of n event loops.
func NewEngine(n int) (*Engine, error) {
	if n < 1 {
		return nil, fmt.Errorf("proxy: NewEngine: %d loops", n)
	}
	e := &Engine{}
	for i := range n {
		p, err := evloop.NewPoller()
		if err != nil {
			for _, l := range e.loops {
				l.p.Close()
			}
			return nil, err
		}
		l := &eloop{e: e, id: i, p: p, events: make([]evloop.Event, 256),
			pools: make(map[*pool.Pool]*lpool)}
		l.register(p.WakeFD(), fdRef{})
		e.loops = append(e.loops, l)
	}
	e.wg.Add(len(e.loops))
	for _, l := range e.loops {
		go func() {
			defer e.wg.Done()
			l.run()
		}()
	}
	return e, nil
}

// Loops returns the number of event loops.
func (e *Engine) Loops() int { return len(e.loops) }

// Close stops the loops and waits for them. Call it once every Server
// using the Engine has been shut down or closed: connections still open
// are closed.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	for _, l := range e.loops {
		l.post(func() { l.stopped = true })
	}
	e.wg.Wait()
	for _, l := range e.loops {
		l.mu.Lock()
		l.done = true // later posts are dropped
		l.p.Close()
		l.mu.Unlock()
	}
	return nil
}

// adopt takes over the client connection nc for a new session of s: a
// loop owns a duplicate of its descriptor and nc is closed.
func (e *Engine) adopt(s *Server, nc net.Conn) (*evClient, error) {
	if e.closed.Load() {
		return nil, errors.New("the engine is closed")
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errNotSocket
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, errNotSocket
	}
	fd := -1
	var derr error
	if cerr := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); cerr != nil {
		return nil, cerr
	}
	if derr != nil {
		return nil, derr
	}
	if err := evloop.SetNonblock(fd); err != nil {
		evloop.Close(fd)
		return nil, err
	}
	ec := &evClient{fd: fd, l: e.loops[e.next.Add(1)%uint64(len(e.loops))], needArm: true}
	ec.conn = evConn{ec: ec, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
	nc.Close()
	c := newSession(s, ec.conn)
	c.ev = ec
	c.replyAsync = false // the loop writes every reply itself
	ec.c = c
	return ec, nil
}

// errNotSocket is adopt's error for a connection that is not a socket.
var errNotSocket = errors.New("not a socket")

// An eloop is one event loop.
type eloop struct {
	e      *Engine
	id     int
	p      *evloop.Poller
	events []evloop.Event
	fds    []fdRef // by descriptor

	mu      sync.Mutex
	done    bool     // the Engine is closed: posts are dropped
	tasks   []func() // posted by other goroutines
	running []func()

	readyq []*evClient // sessions whose window completed
	// progressq: sessions a call of whose window completed, which may
	// have a prefix of replies to write (evClient.writePrefix)
	progressq []*evClient
	// lateq: sessions with a small prefix of replies complete, written if
	// their window is still in flight prefixDelay after it began (late)
	lateq []*evClient
	// heavy is the reply bytes expected of the heavy windows in flight
	// or admitted; parked are the clients whose heavy window waits for
	// them to drop (admit).
	heavy   int
	parked  []*evClient
	again   []*evClient // clients whose step stopped at its budget with input left
	dirty   []*bconn    // backend connections with requests to write
	pools   map[*pool.Pool]*lpool
	conns   []*bconn // every backend connection of the loop, for deadlines
	timers  timerHeap
	iov     []unix.Iovec
	segs    [][]byte // scratch for a client's write
	stopped bool
}

// fdRef says what a descriptor of the loop is: a client, a backend
// connection, or (both nil) the wake-up eventfd.
type fdRef struct {
	c *evClient
	b *bconn
}

func (l *eloop) register(fd int, ref fdRef) {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, make([]fdRef, len(l.fds)+64)...)
	}
	l.fds[fd] = ref
}

// post runs f on the loop. It may be called from any goroutine, the
// loop's included.
//
// It reports false, and f is not run, once the Engine is closed. The wake
// is written under the lock, so that Close cannot close the eventfd in
// between.
func (l *eloop) post(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return false
	}
	l.tasks = append(l.tasks, f)
	if len(l.tasks) == 1 {
		l.p.Wake()
	}
	return true
}

func (l *eloop) run() {
	spare := true // a P to spare for other goroutines: wait holding ours
	for iter := 0; !l.stopped; iter++ {
		if iter%16 == 0 {
			spare = runtime.GOMAXPROCS(0) > len(l.e.loops)
		}
		var n int
		var err error
		if spare {
			n, err = l.p.Wait(l.events, l.waitMillis())
		} else {
			n, err = l.p.WaitBlocking(l.events, l.waitMillis())
		}
		if n == 0 {
			// A timeout, or a signal: perhaps the runtime's preemption,
			// when GOMAXPROCS went down; look again next time.
			iter = -1
		}
		if err != nil {
			panic("proxy: event loop: epoll_wait: " + err.Error())
		}
		for i := range n {
			ev := l.events[i]
			fd := int(ev.Fd)
			if fd >= len(l.fds) {
				continue
			}
			ref := l.fds[fd]
			switch {
			case ref.c != nil:
				ref.c.event(ev.Events)
			case ref.b != nil:
				ref.b.event(ev.Events)
			case fd == l.p.WakeFD():
				l.p.Drain()
				l.runTasks()
			}
		}
		l.resume()
		l.settle()
		l.expire()
	}
	// Stopped: later posts are dropped; those already queued run, so that
	// what they hand over (a client, a dialled socket) is closed below.
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
	l.runTasks()
	l.shutdown()
}

// resume goes on with the clients whose step stopped at its budget with
// input left (see evClient.step), after the other ready sockets have had
// their turn.
func (l *eloop) resume() {
	q := l.again
	l.again = nil
	for i, ec := range q {
		q[i] = nil
		ec.queued = false
		if ec.st == evReading {
			ec.step()
		}
	}
	if l.again == nil {
		l.again = q[:0] // those queued again wait for the next epoll_wait
	}
}

// settle runs the sessions whose window completed and writes the backend
// connections with queued requests, until neither has work: a write may
// complete requests (noreply ones, or by failing), which may let sessions
// go on and queue more.
func (l *eloop) settle() {
	for len(l.readyq) > 0 || len(l.dirty) > 0 || len(l.progressq) > 0 {
		for len(l.readyq) > 0 {
			q := l.readyq
			l.readyq = nil
			for i, ec := range q {
				q[i] = nil
				ec.windowDone()
				ec.step()
			}
			if l.readyq == nil {
				l.readyq = q[:0]
			}
		}
		if len(l.progressq) > 0 {
			q := l.progressq
			l.progressq = nil
			now := nanotime()
			for i, ec := range q {
				q[i] = nil
				ec.progressed = false
				if ec.c != nil {
					ec.writePrefix(now)
				}
			}
			if l.progressq == nil {
				l.progressq = q[:0]
			}
		}
		d := l.dirty
		l.dirty = nil
		for i, b := range d {
			d[i] = nil
			b.dirty = false
			b.flush()
		}
		if l.dirty == nil {
			l.dirty = d[:0]
		}
	}
}

func (l *eloop) runTasks() {
	l.mu.Lock()
	l.running, l.tasks = l.tasks, l.running[:0]
	l.mu.Unlock()
	for i, f := range l.running {
		l.running[i] = nil
		f()
	}
	l.running = l.running[:0]
}

// waitMillis is how long the next epoll_wait may block: until the next
// timer, or without limit.
func (l *eloop) waitMillis() int {
	next := int64(0)
	if len(l.timers) > 0 {
		next = l.timers[0].at
	}
	for _, b := range l.conns {
		if t := b.lc.Next(); !t.IsZero() {
			if ns := t.UnixNano(); next == 0 || ns < next {
				next = ns
			}
		}
	}
	if len(l.again) > 0 {
		return 0 // clients have input left: just poll
	}
	if len(l.lateq) > 0 {
		// Small prefixes of replies wait for prefixDelay (late).
		if at := time.Now().Add(prefixDelay).UnixNano(); next == 0 || at < next {
			next = at
		}
	}
	if next == 0 {
		return -1
	}
	d := next - time.Now().UnixNano()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// late writes the small prefixes of replies whose window has been in
// flight prefixDelay (see writePrefix).
func (l *eloop) late() {
	q := l.lateq
	l.lateq = nil
	now := nanotime()
	for i, ec := range q {
		q[i] = nil
		ec.late = false
		if ec.c == nil || !ec.inflight {
			continue
		}
		if now-ec.c.t0 < int64(prefixDelay) {
			ec.late = true
			l.lateq = append(l.lateq, ec)
			continue
		}
		ec.writePrefix(now)
	}
	if l.lateq == nil {
		l.lateq = q[:0]
	}
}

// expire fires the timers that are due.
func (l *eloop) expire() {
	if len(l.lateq) > 0 {
		l.late()
	}
	if len(l.timers) == 0 && len(l.conns) == 0 {
		return
	}
	now := time.Now()
	ns := now.UnixNano()
	for len(l.timers) > 0 && l.timers[0].at <= ns {
		t := l.timers.pop()
		if t.c.timerAt != t.at {
			continue // superseded
		}
		t.c.timerAt = 0
		t.c.timer(ns)
	}
	for _, b := range l.conns {
		if t := b.lc.Next(); !t.IsZero() && !t.After(now) {
			if err := b.lc.Expire(now); err != nil {
				b.gone()
			}
		}
	}
	l.settle()
}

// do queues req on the loop's connection to p's server.
func (l *eloop) do(s *Server, p *pool.Pool, req *pool.Request) {
	lp := l.pools[p]
	if lp == nil {
		if p.Closed() {
			// A request of a batch that began before a Reload or Close
			// retired the pool: no connection is made for it.
			req.Done(nil, pool.ErrClosed)
			return
		}
		lp = l.newPool(s, p)
	}
	b := lp.conns[0]
	if n := len(lp.conns); n > 1 {
		b = lp.conns[lp.rr%n]
		lp.rr++
	}
	b.lc.Do(req)
	if b.fd < 0 {
		if !b.dialing && b.lc.NeedDial() {
			b.dial()
		}
		return
	}
	if !b.dirty {
		b.dirty = true
		l.dirty = append(l.dirty, b)
	}
}

// An lpool is a loop's connections to one server: as many as the
// backend's server_connections.
type lpool struct {
	conns []*bconn
	rr    int
}

func (l *eloop) newPool(s *Server, p *pool.Pool) *lpool {
	n := s.gen.Load().cfg.Backend.Conns
	if n < 1 {
		n = 1
	}
	lp := &lpool{}
	for range n {
		b := &bconn{l: l, s: s, p: p, fd: -1}
		b.lc = p.NewLoopConn(func() { l.post(b.poolClosed) })
		lp.conns = append(lp.conns, b)
		l.conns = append(l.conns, b)
		if b.lc.NeedDial() {
			b.dial() // Preconnect
		}
	}
	l.pools[p] = lp
	return lp
}

// shutdown closes what the loop still holds once it stops.
func (l *eloop) shutdown() {
	for _, ref := range l.fds {
		if c := ref.c; c != nil {
			// Servers are closed before their Engine; a client still
			// here (even with a window in flight) is closed as it is.
			c.inflight = false
			c.closeNow(net.ErrClosed)
		}
	}
	for _, b := range l.conns {
		b.closed = true
		b.lc.Close()
		b.gone()
	}
	l.conns = nil
	clear(l.fds)
}

// A bconn is a loop's connection to a backend: a pool.LoopConn and its
// socket.
type bconn struct {
	l       *eloop
	s       *Server
	p       *pool.Pool
	lc      *pool.LoopConn
	fd      int // -1 when not connected
	dialing bool
	dialSeq uint64
	dirty   bool
	closed  bool
	drained bool // the last read emptied the socket (see Read)
	hup     bool // the server hung up: read to EOF
	iov     []unix.Iovec
}

// Read and Writev are the socket as pool.LoopIO. A read shorter than its
// buffer has emptied the socket: the next one reports EAGAIN without a
// system call, until epoll reports new input (the edge for bytes that
// arrive later), unless the server hung up, when the FIN may have come
// with the last bytes and no edge will follow.
func (b *bconn) Read(p []byte) (int, error) {
	if b.drained && !b.hup {
		return 0, syscall.EAGAIN
	}
	n, err := evloop.Read(b.fd, p)
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	if err == nil && n < len(p) {
		b.drained = true
	}
	return n, err
}

func (b *bconn) Writev(bufs [][]byte) (int, error) {
	n, iov, err := evloop.Writev(b.fd, bufs, b.iov)
	b.iov = iov
	return n, err
}

func (b *bconn) event(ev uint32) {
	if ev&(evloop.In|evloop.RdHup|evloop.Hup|evloop.Err) != 0 {
		b.drained = false
		if ev&(evloop.RdHup|evloop.Hup|evloop.Err) != 0 {
			b.hup = true
		}
		if err := b.lc.Readable(); err != nil {
			b.gone()
			return
		}
	}
	if ev&evloop.Out != 0 && b.lc.Pending() {
		b.flush()
	}
}

func (b *bconn) flush() {
	if b.fd < 0 || b.closed {
		return
	}
	if err := b.lc.Flush(); err != nil {
		b.gone()
	}
}

// gone closes the socket of a connection the LoopConn has failed (or an
// attempt it gave up); a later request dials again.
func (b *bconn) gone() {
	if b.fd >= 0 {
		b.l.fds[b.fd] = fdRef{}
		evloop.Close(b.fd)
		b.fd = -1
	}
	if b.dialing {
		b.dialing = false
		b.dialSeq++ // the attempt's result is dropped
	}
	// A server that closed an idle connection leaves the requests queued
	// (not yet written) on the LoopConn, which wants a new connection at
	// once: nothing else would dial it.
	if !b.closed && b.lc.NeedDial() {
		b.dial()
	}
}

// dial starts connecting, on a goroutine of its own (name resolution and
// the connect may block); the result comes back through post.
func (b *bconn) dial() {
	b.dialing = true
	b.dialSeq++
	seq := b.dialSeq
	b.lc.Dialing(time.Now())
	go func() {
		nc, err := b.lc.Dial(context.Background())
		fd := -1
		if err == nil {
			fd, err = takeFD(nc)
		}
		if !b.l.post(func() { b.dialed(seq, fd, err) }) && fd >= 0 {
			evloop.Close(fd) // the Engine closed meanwhile
		}
	}()
}

// takeFD returns a non-blocking duplicate of nc's descriptor, with
// TCP_NODELAY, and closes nc.
func takeFD(nc net.Conn) (int, error) {
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("the event loop needs a socket: Config.Dial returned another kind of connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := evloop.SetNonblock(fd); err != nil {
		evloop.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (b *bconn) dialed(seq uint64, fd int, err error) {
	if seq != b.dialSeq || b.closed {
		if fd >= 0 {
			evloop.Close(fd)
		}
		return
	}
	b.dialing = false
	if err != nil {
		b.lc.DialFailed(err)
		b.l.settle()
		return
	}
	if err := b.l.p.Add(fd); err != nil {
		evloop.Close(fd)
		b.lc.DialFailed(err)
		b.l.settle()
		return
	}
	b.fd = fd
	b.drained, b.hup = false, false
	b.l.register(fd, fdRef{b: b})
	b.lc.Connected(b)
	b.flush()
	b.l.settle()
}

// poolClosed ends the connection of a pool that was closed.
func (b *bconn) poolClosed() {
	if b.closed {
		return
	}
	b.closed = true
	b.lc.Close()
	b.gone()
	l := b.l
	if lp := l.pools[b.p]; lp != nil {
		for i, x := range lp.conns {
			if x == b {
				lp.conns = append(lp.conns[:i], lp.conns[i+1:]...)
				break
			}
		}
		if len(lp.conns) == 0 {
			delete(l.pools, b.p)
		}
	}
	for i, x := range l.conns {
		if x == b {
			l.conns = append(l.conns[:i], l.conns[i+1:]...)
			break
		}
	}
	l.settle()
}

// Heavy windows. A client that pipelines requests with large replies
// (a window expected to bring heavyWindow bytes or more) shares the
// backend connections with every other client of the loop, and a server
// answers a connection's requests in order: were every such window sent at
// once, a small request of another client would wait behind all of their
// replies (100 clients pipelining 100 KB values put over 100 MB ahead of
// it). So a loop keeps at most heavyBudget bytes of heavy windows in
// flight, and always lets one go; the clients whose window would pass the
// budget wait their turn, in order, and requests with small replies are
// never held back. A small request then waits behind about heavyBudget
// bytes of replies at most.
const (
	heavyWindow = 64 << 10
	heavyBudget = 4 << 20
)

// admit reports whether ec may dispatch a window whose replies are expected
// to be est bytes; if not, ec is parked until heavy windows in flight are
// done. A client let go from the parked list was admitted then.
func (l *eloop) admit(ec *evClient, est int) bool {
	if ec.heavy > 0 || est < heavyWindow {
		return true
	}
	if l.heavy > 0 && (l.heavy+est > heavyBudget || len(l.parked) > 0) {
		ec.parked, ec.parkedEst = true, est
		l.parked = append(l.parked, ec)
		return false
	}
	ec.heavy = est
	l.heavy += est
	return true
}

// heavyDone gives back the share of the budget of ec's heavy window, once
// it is done (or ec closed before sending it), and lets the clients parked
// first go on, in order, while the budget allows.
func (l *eloop) heavyDone(ec *evClient) {
	if ec.heavy == 0 {
		return
	}
	l.heavy -= ec.heavy
	ec.heavy = 0
	for len(l.parked) > 0 {
		next := l.parked[0]
		if next.st != evClosed && next.parked {
			if l.heavy > 0 && l.heavy+next.parkedEst > heavyBudget {
				break
			}
			next.parked = false
			next.heavy = next.parkedEst
			l.heavy += next.heavy
			if !next.queued {
				next.queued = true
				l.again = append(l.again, next)
			}
		}
		l.parked[0] = nil
		l.parked = l.parked[1:]
	}
	if len(l.parked) == 0 {
		l.parked = nil
	}
}
