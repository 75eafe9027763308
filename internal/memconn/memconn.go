// Package memconn is a connection that exists only in memory: two
// net.Conns joined back to back, each writing into a buffer the other
// reads from.
//
// Unlike net.Pipe, whose writes wait for the other side to read, a Write
// here copies the bytes into the reader's buffer and returns at once: the
// buffers grow as needed, so neither side ever waits for the other to
// read. A client can therefore write a pipeline of any length before it
// reads a reply, and a server write a reply of any size, as they could
// over TCP with unbounded socket buffers; the price is that a side that
// never reads lets the other's writes pile up in memory.
//
// Deadlines, Close and CloseWrite behave as on a TCP connection: a Read
// past its deadline fails with an error wrapping os.ErrDeadlineExceeded
// (Timeout reports true); after one side's Close or CloseWrite the other
// reads what was written before it and then io.EOF; after a side's Close,
// its own calls fail with an error wrapping net.ErrClosed and the other
// side's writes with one wrapping syscall.EPIPE (bytes still unread are
// dropped). A Conn starts no goroutine.
package memconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Network is the network name of a Conn's addresses.
const Network = "memconn"

// Addr is the address of one side of a Conn: a name for logs.
type Addr string

// Network returns "memconn".
func (Addr) Network() string { return Network }

// String returns the name.
func (a Addr) String() string { return string(a) }

// shrinkAbove is the capacity above which a drained buffer is let go
// rather than kept for the next writes.
const shrinkAbove = 256 << 10

// A stream is one direction of a pipe: the bytes written by one side and
// not yet read by the other.
type stream struct {
	mu      sync.Mutex
	buf     []byte // unread bytes are buf[r:]
	r       int
	eof     bool // the writer closed (Close or CloseWrite)
	gone    bool // the reader closed: writes fail, nothing is kept
	readyCh chan struct{}
}

func newStream() *stream { return &stream{readyCh: make(chan struct{}, 1)} }

// signal wakes a reader waiting for data or a change of state.
func (s *stream) signal() {
	select {
	case s.readyCh <- struct{}{}:
	default:
	}
}

// Conn is one side of a pipe made by Pipe. It is safe for concurrent use.
type Conn struct {
	in, out       *stream
	local, remote net.Addr
	rd, wd        deadline

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

var _ net.Conn = (*Conn)(nil)

// Pipe returns the two sides of a new in-memory connection: what one
// writes, the other reads. a's LocalAddr is aAddr and its RemoteAddr
// bAddr; b's the reverse.
func Pipe(aAddr, bAddr net.Addr) (a, b *Conn) {
	ab, ba := newStream(), newStream()
	a = &Conn{in: ba, out: ab, local: aAddr, remote: bAddr, closed: make(chan struct{})}
	b = &Conn{in: ab, out: ba, local: bAddr, remote: aAddr, closed: make(chan struct{})}
	a.rd.init()
	a.wd.init()
	b.rd.init()
	b.wd.init()
	return a, b
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: Network, Source: c.local, Addr: c.remote, Err: err}
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Read reads what the other side has written, waiting until there is
// something, the other side closes (io.EOF once everything is read), the
// read deadline passes or c is closed.
func (c *Conn) Read(b []byte) (int, error) {
	s := c.in
	for {
		if c.isClosed() {
			return 0, c.opError("read", net.ErrClosed)
		}
		if len(b) == 0 {
			return 0, nil
		}
		s.mu.Lock()
		if s.r < len(s.buf) {
			n := copy(b, s.buf[s.r:])
			s.r += n
			more := s.r < len(s.buf)
			if !more {
				if cap(s.buf) > shrinkAbove {
					s.buf = nil
				} else {
					s.buf = s.buf[:0]
				}
				s.r = 0
			}
			s.mu.Unlock()
			if more {
				s.signal() // for another reader
			}
			return n, nil
		}
		eof := s.eof
		s.mu.Unlock()
		if eof {
			return 0, io.EOF
		}
		expired := c.rd.wait()
		select {
		case <-expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		default:
		}
		select {
		case <-s.readyCh:
		case <-expired:
		case <-c.closed:
		}
	}
}

// Write copies b into the other side's buffer and returns len(b), nil,
// without waiting for the other side to read. It fails if c is closed or
// closed for writing, if the write deadline has passed, or if the other
// side has closed.
func (c *Conn) Write(b []byte) (int, error) {
	if c.isClosed() {
		return 0, c.opError("write", net.ErrClosed)
	}
	select {
	case <-c.wd.wait():
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	default:
	}
	s := c.out
	s.mu.Lock()
	switch {
	case s.eof:
		s.mu.Unlock()
		return 0, c.opError("write", net.ErrClosed)
	case s.gone:
		s.mu.Unlock()
		return 0, c.opError("write", syscall.EPIPE)
	}
	s.buf = append(s.buf, b...)
	s.mu.Unlock()
	s.signal()
	return len(b), nil
}

// TryWrite is Write, which never waits; it lets a writer that must not
// block (one that would otherwise hand a write that cannot complete at
// once to a goroutine) write to c directly.
func (c *Conn) TryWrite(b []byte) (int, error) { return c.Write(b) }

// Close closes c: its blocked and later calls fail with net.ErrClosed,
// the other side reads what c wrote and then io.EOF, and its later writes
// fail with syscall.EPIPE. Close returns an error wrapping net.ErrClosed
// if c was already closed.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
		c.in.mu.Lock()
		c.in.gone = true
		c.in.buf, c.in.r = nil, 0
		c.in.mu.Unlock()
		c.in.signal()
		c.closeWrite()
		c.rd.stop()
		c.wd.stop()
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// CloseWrite closes c for writing, as TCP's shutdown does: the other side
// reads what c wrote and then io.EOF, while c can still read.
func (c *Conn) CloseWrite() error {
	if c.isClosed() {
		return c.opError("close", net.ErrClosed)
	}
	c.closeWrite()
	return nil
}

func (c *Conn) closeWrite() {
	c.out.mu.Lock()
	c.out.eof = true
	c.out.mu.Unlock()
	c.out.signal()
}

// LocalAddr returns this side's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other side's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline: a Read waiting when it passes,
// and any later Read, fails with os.ErrDeadlineExceeded, until the
// deadline is moved. The zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline: a Write after it passes fails
// with os.ErrDeadlineExceeded. (A Write never waits, so none is
// interrupted.) The zero time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// A deadline is a channel closed when a time passes. Waiters take the
// channel with wait; moving the deadline keeps the channel while it is
// open, so a waiter sees the new time, and replaces it once closed.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
}

func (d *deadline) init() { d.expired = make(chan struct{}) }

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired: its function closes expired
	}
	d.timer = nil
	open := true
	select {
	case <-d.expired:
		open = false
	default:
	}
	if t.IsZero() {
		if !open {
			d.expired = make(chan struct{})
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if open {
			close(d.expired)
		}
		return
	}
	if !open {
		d.expired = make(chan struct{})
	}
	ch := d.expired
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

// stop stops the timer, so a closed Conn holds none.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
