package pool

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// A Dedicated is a connection to the pool's server owned by one caller, for
// a conversation that cannot share the pipelined connections: a Redis
// transaction, a blocking command, a subscription. Its owner writes
// requests and reads replies one at a time; nothing else uses it.
//
// It is dialled as the pool's connections are (Options.Dial, DialTimeout)
// and its Init requests are sent first, their replies checked as on the
// pool's connections: an error reply is counted in ServerStats.InitErrors
// and logged, and the connection is used anyway, so that a Dedicated sees
// the database and authentication the pool's connections see. Options.Timeout
// does not apply: a read waits as long as its deadline says. It is not
// counted in ServerStats.ServerConnections (see Pool.DedicatedConns), but its
// failures count as the pool's: a failed dial or Init, or a read or write
// that fails before the owner closes it, counts towards ejection as the
// close of one of the pool's connections does.
//
// Closing the pool closes every Dedicated still open: its reads and writes
// then fail with ErrClosed.
type Dedicated struct {
	p     *Pool
	nc    net.Conn
	epoch uint64 // the server's failure epoch when the dial began
	buf   replyBuf
	req   Request // given to the Framer: no Tag

	mu     sync.Mutex
	closed bool  // Close was called, or the pool closed it
	why    error // ErrClosed when the pool closed it
	failed bool  // a failure was counted
}

// Dedicated dials a connection to the server for the caller alone and sends
// Options.Init on it. It fails at once with ErrEjected while the server is
// ejected and with ErrClosed once the pool is closed; otherwise with the
// errors a request on a failed connection gets (ErrConnRefused, ErrTimedOut,
// …). ctx bounds the dial and the Init replies, as does DialTimeout.
func (p *Pool) Dedicated(ctx context.Context) (*Dedicated, error) {
	s := p.srv
	if s.ejected.Load() {
		return nil, ErrEjected
	}
	if p.closed.Load() {
		return nil, ErrClosed
	}
	epoch := s.epoch.Load()
	dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()
	nc, err := p.dial(dctx, s.cfg.Network, s.cfg.Addr)
	if err != nil {
		if p.closed.Load() {
			return nil, ErrClosed
		}
		if ctx.Err() == nil {
			s.failure(epoch, failErr, err)
		}
		return nil, mapErr(err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	d := &Dedicated{p: p, nc: nc, epoch: epoch}
	if !s.addDedicated(d) {
		nc.Close()
		return nil, ErrClosed
	}
	if err := d.init(dctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// init sends the pool's Init requests and reads their replies.
func (d *Dedicated) init(ctx context.Context) error {
	p := d.p
	if len(p.init) == 0 {
		return nil
	}
	var out []byte
	for _, r := range p.init {
		out = append(out, r.Data...)
	}
	deadline, _ := ctx.Deadline()
	if err := d.nc.SetWriteDeadline(deadline); err != nil {
		return d.errFor(err)
	}
	if err := d.Write(out); err != nil {
		return err
	}
	for i, r := range p.init {
		reply, err := d.read(deadline, r)
		if err != nil {
			return err
		}
		if f := p.opts.IsFailure; f != nil && f(reply) {
			d.fail(errProbeFailure)
			return ErrInvalid
		}
		if f := p.opts.IsError; f != nil {
			p.srv.logInit(i, reply, f(reply))
		}
	}
	return d.nc.SetDeadline(time.Time{})
}

// Conn returns the connection, for its addresses or to wait on it; reads
// and writes go through ReadReply and Write.
func (d *Dedicated) Conn() net.Conn { return d.nc }

// Server returns the server it is connected to.
func (d *Dedicated) Server() Server { return d.p.srv.cfg }

// Write writes b whole. A failure closes the connection.
func (d *Dedicated) Write(b []byte) error {
	if _, err := d.nc.Write(b); err != nil {
		return d.errFor(err)
	}
	return nil
}

// SetWriteDeadline bounds the writes to come; zero: none.
func (d *Dedicated) SetWriteDeadline(t time.Time) error { return d.nc.SetWriteDeadline(t) }

// ReadReply reads the next whole reply, framed by Options.Framer (given a
// Request without a Tag, so the Framer must frame replies by themselves,
// as Redis replies are), and returns it. The reply aliases the
// connection's buffer and is valid until the next ReadReply. deadline
// bounds the wait; zero: none. A failure (ErrEOF when the server closed
// the connection, ErrTimedOut when deadline passed, ErrClosed after Close
// or the pool's Close, …) closes the connection.
func (d *Dedicated) ReadReply(deadline time.Time) ([]byte, error) {
	return d.read(deadline, &d.req)
}

// Buffered reports whether bytes of a next reply have already been read.
func (d *Dedicated) Buffered() bool { return d.buf.r < d.buf.w }

func (d *Dedicated) read(deadline time.Time, req *Request) ([]byte, error) {
	if err := d.nc.SetReadDeadline(deadline); err != nil {
		return nil, d.errFor(err)
	}
	b := &d.buf
	if b.buf == nil {
		b.room()
	}
	for {
		if b.ready() {
			n, err := b.next(d.p.opts.Framer, req)
			if err != nil {
				d.fail(err)
				return nil, ErrInvalid
			}
			if n > 0 {
				d.p.srv.ok()
				return b.buf[b.r-n : b.r], nil
			}
		}
		b.room()
		if _, err := b.fill(d.nc); err != nil {
			return nil, d.errFor(err)
		}
	}
}

// errFor closes the connection after err and returns the error for its
// owner, counting the failure unless the owner or the pool closed it.
func (d *Dedicated) errFor(err error) error {
	d.mu.Lock()
	closed, why := d.closed, d.why
	d.mu.Unlock()
	if closed {
		if why != nil {
			return why
		}
		return ErrClosed
	}
	d.fail(err)
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimedOut
	}
	return mapErr(err)
}

// fail counts a failure of the connection, once, and closes it.
func (d *Dedicated) fail(err error) {
	d.mu.Lock()
	counted := d.failed || d.closed
	d.failed = true
	d.mu.Unlock()
	if !counted {
		class := failErr
		switch {
		case errors.Is(err, ErrEOF), mapErr(err) == ErrEOF:
			class = failEOF
		case mapErr(err) == ErrTimedOut:
			class = failTimeout
		}
		d.p.srv.failure(d.epoch, class, err)
	}
	d.Close()
}

// Close closes the connection. It may be called from any goroutine, also
// to end a read or write in progress on another one, which then fails with
// ErrClosed; calling it again has no effect.
func (d *Dedicated) Close() error {
	return d.close(nil)
}

func (d *Dedicated) close(why error) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed, d.why = true, why
	d.mu.Unlock()
	d.p.srv.removeDedicated(d)
	return d.nc.Close()
}

// DedicatedConns returns how many Dedicated connections of the pool are
// open.
func (p *Pool) DedicatedConns() int {
	s := p.srv
	s.dedMu.Lock()
	defer s.dedMu.Unlock()
	return len(s.dedicated)
}

// addDedicated registers d, unless the pool is closing.
func (s *server) addDedicated(d *Dedicated) bool {
	s.dedMu.Lock()
	defer s.dedMu.Unlock()
	if s.p.closed.Load() {
		return false
	}
	if s.dedicated == nil {
		s.dedicated = make(map[*Dedicated]struct{})
	}
	s.dedicated[d] = struct{}{}
	return true
}

func (s *server) removeDedicated(d *Dedicated) {
	s.dedMu.Lock()
	delete(s.dedicated, d)
	s.dedMu.Unlock()
}

// closeDedicated closes every Dedicated; Close calls it.
func (s *server) closeDedicated() {
	s.dedMu.Lock()
	ds := make([]*Dedicated, 0, len(s.dedicated))
	for d := range s.dedicated {
		ds = append(ds, d)
	}
	s.dedMu.Unlock()
	for _, d := range ds {
		_ = d.close(ErrClosed)
	}
}
