// Package evloop is the thin layer over Linux's epoll that walnut's
// event-loop engine stands on: a Poller (an epoll instance with an eventfd
// to wake it), and the socket system calls a loop makes, all as raw
// system calls.
//
// Raw system calls (syscall.RawSyscall) do not tell the Go scheduler that
// the goroutine is in the kernel, so a loop keeps its P while it waits in
// epoll_wait and while it reads and writes. That is the point: an ordinary
// blocking system call lets the runtime's monitor take the P away and wake
// another thread to run it, and the loop then has to get a P back when the
// call returns; on a busy proxy that bookkeeping costs more than the
// proxy's own work. The runtime still gets the P back when it needs it:
// preemption (after 10 ms when other goroutines are waiting, or to stop
// the world for the garbage collector) sends the thread a signal, which
// interrupts epoll_wait with EINTR, and the goroutine is preempted at its
// next function call. So a process should keep a P free for its other
// goroutines (accepting, dialling, stats): run fewer loops than
// GOMAXPROCS.
package evloop

import (
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform has the event loop.
const Supported = true

// Event bits, as epoll reports them.
const (
	In    = unix.EPOLLIN
	Out   = unix.EPOLLOUT
	RdHup = unix.EPOLLRDHUP
	Hup   = unix.EPOLLHUP
	Err   = unix.EPOLLERR
)

// An Event is one ready file descriptor.
type Event = unix.EpollEvent

// A Poller is an epoll instance and an eventfd that wakes it.
type Poller struct {
	epfd int
	efd  int
}

// NewPoller returns a Poller.
func NewPoller() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	p := &Poller{epfd: epfd, efd: efd}
	if err := p.Add(efd); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// WakeFD is the eventfd's descriptor: an event on it means Wake was
// called.
func (p *Poller) WakeFD() int { return p.efd }

// Add registers fd, edge-triggered, for input, output and hang-up, once
// for its lifetime: there is no epoll_ctl per request. An edge for data
// that arrived before Add is reported, so nothing is lost.
func (p *Poller) Add(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// Del unregisters fd. Closing fd also unregisters it.
func (p *Poller) Del(fd int) {
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Wait waits up to msec milliseconds (-1: no limit, 0: just poll) for
// events, holding the P (see the package documentation). It returns 0
// events, not an error, when a signal interrupts it.
func (p *Poller) Wait(events []Event, msec int) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		if e == syscall.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(r), nil
}

// WaitBlocking is Wait as an ordinary blocking system call: the runtime
// may hand the P to another goroutine while the loop waits. A loop uses it
// when the process has no P to spare (GOMAXPROCS not above the number of
// loops), where holding the P would keep every other goroutine waiting for
// the runtime's preemption, 10 ms at a time.
func (p *Poller) WaitBlocking(events []Event, msec int) (int, error) {
	n, err := unix.EpollWait(p.epfd, events, msec)
	if err == unix.EINTR {
		return 0, nil
	}
	return n, err
}

// Wake makes a Wait in progress, or the next one, return. It is safe to
// call from any goroutine.
func (p *Poller) Wake() {
	one := [8]byte{1}
	_, _ = Write(p.efd, one[:])
}

// Drain resets the eventfd after a wake-up.
func (p *Poller) Drain() {
	var b [8]byte
	_, _ = Read(p.efd, b[:])
}

// Close closes the poller. The descriptors registered stay open.
func (p *Poller) Close() {
	if p.efd >= 0 {
		unix.Close(p.efd)
		p.efd = -1
	}
	if p.epfd >= 0 {
		unix.Close(p.epfd)
		p.epfd = -1
	}
}

// Read is read(2) on a non-blocking descriptor. It retries on EINTR and
// returns syscall.EAGAIN when nothing is buffered.
func Read(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// Write is write(2) on a non-blocking descriptor. It retries on EINTR and
// returns syscall.EAGAIN when the socket takes nothing.
func Write(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// maxIovecs is the most buffers one writev takes (Linux's IOV_MAX is
// 1024).
const maxIovecs = 1024

// Writev is writev(2) on a non-blocking descriptor: the buffers in order,
// as much as the socket takes. iov is scratch space, returned for reuse.
// It retries on EINTR and returns syscall.EAGAIN when the socket takes
// nothing.
func Writev(fd int, bufs [][]byte, iov []unix.Iovec) (int, []unix.Iovec, error) {
	iov = iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, iov, nil
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e == syscall.EINTR {
			continue
		}
		clear(iov) // no pointers kept into the buffers
		if e != 0 {
			return 0, iov, e
		}
		return int(r), iov, nil
	}
}

// SocketError returns the pending error of a socket (SO_ERROR), as after
// a non-blocking connect.
func SocketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

// Shutdown shuts down the writing side of a socket (FIN).
func Shutdown(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }

// Close closes a descriptor.
func Close(fd int) error { return unix.Close(fd) }

// SetNonblock puts fd in non-blocking mode.
func SetNonblock(fd int) error { return unix.SetNonblock(fd, true) }

// IsAgain reports whether err means the call would block.
func IsAgain(err error) bool { return errors.Is(err, syscall.EAGAIN) }
