// Package rawio reads and writes sockets with raw system calls, outside the
// Go scheduler's system-call bookkeeping, while waiting for readiness
// through the runtime's network poller as net.Conn does.
//
// A socket read or write on a non-blocking descriptor never blocks, so the
// scheduler has nothing to gain from being told of it; being told costs,
// on every call, the bookkeeping of entering and leaving a system call and,
// when the process was idle, waking the runtime's monitor thread (sysmon),
// which then sleeps again: a futex wake and two context switches per
// request on an idle proxy. Wrap skips that for connections that have a
// file descriptor; deadlines, Close and the rest behave as net.Conn's.
package rawio

import (
	"io"
	"net"
	"syscall"
)

// Conn is a net.Conn whose Read and Write use raw system calls. It is not
// safe for concurrent Reads or concurrent Writes (a Read and a Write may
// run concurrently), which is how walnut uses its connections.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	rbuf   []byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
	tryFn   func(fd uintptr) bool

	pn     int
	perr   error
	peekFn func(fd uintptr) bool
}

// Wrap returns nc with raw-system-call Read and Write where supported
// (Linux, sockets), else nc itself.
func Wrap(nc net.Conn) net.Conn {
	rc := RawConn(nc)
	if !supported || rc == nil {
		return nc
	}
	c := &Conn{Conn: nc, rc: rc}
	c.readFn = c.read
	c.writeFn = c.write
	c.tryFn = c.try
	c.peekFn = c.peek
	return c
}

// Read reads into b as net.Conn's Read does.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = b, 0, nil
	err := c.rc.Read(c.readFn)
	n, rerr := c.rn, c.rerr
	c.rbuf = nil
	if err != nil {
		return n, c.opError("read", err)
	}
	if rerr != nil {
		return n, c.opError("read", rerr)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) read(fd uintptr) bool {
	n, err := rawRead(fd, c.rbuf)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return false // wait for readability (or retry)
	}
	if err != nil {
		c.rerr = err
		return true
	}
	c.rn = n
	return true
}

// Write writes all of b as net.Conn's Write does.
func (c *Conn) Write(b []byte) (int, error) { return c.writeWith(b, c.writeFn) }

// TryWrite writes as much of b as the socket takes now, without waiting
// for it to take more, and returns how much it wrote.
func (c *Conn) TryWrite(b []byte) (int, error) { return c.writeWith(b, c.tryFn) }

// writeWith writes b with f (write or try) for RawConn.Write.
func (c *Conn) writeWith(b []byte, f func(fd uintptr) bool) (int, error) {
	c.wbuf, c.wn, c.werr = b, 0, nil
	err := c.rc.Write(f)
	n, werr := c.wn, c.werr
	c.wbuf = nil
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, err := rawWrite(fd, c.wbuf[c.wn:])
		if n > 0 {
			c.wn += n
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for writability
		default:
			c.werr = err
			return true
		}
	}
	return true
}

// opError wraps err as net.Conn's methods do, so that errors.Is finds
// os.ErrDeadlineExceeded, net.ErrClosed and the errno.
func (c *Conn) opError(op string, err error) error {
	if _, ok := err.(syscall.Errno); ok {
		err = &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: syscallError(op, err)}
	}
	return err
}

// CloseWrite shuts down the writing side of the connection, if the
// wrapped connection can (TCP and Unix sockets can).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Err: syscall.ENOTSUP}
}

// Unwrap returns the wrapped connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

func (c *Conn) try(fd uintptr) bool {
	c.write(fd)
	return true
}

// RawConn returns nc's syscall.RawConn, or nil if it has none.
func RawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Peek looks at the connection without blocking or consuming anything: it
// reports whether the peer has sent bytes (data) or closed it (eof). The
// caller must be the only one reading the connection.
func (c *Conn) Peek() (data, eof bool, err error) {
	c.pn, c.perr = 0, nil
	if err := c.rc.Read(c.peekFn); err != nil {
		return false, false, c.opError("read", err)
	}
	switch c.perr {
	case nil:
		return c.pn > 0, c.pn == 0, nil
	case syscall.EAGAIN:
		return false, false, nil
	default:
		return false, false, c.opError("recvfrom", c.perr)
	}
}

func (c *Conn) peek(fd uintptr) bool {
	c.pn, c.perr = rawPeek(fd)
	return true
}
