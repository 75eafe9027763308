package pool

import (
	"syscall"
	"unsafe"
)

// peek looks, without blocking or consuming anything, for bytes or an EOF
// on the connection: checkIdle's function for RawConn.Read. It is a raw
// system call, like the connection's reads and writes (see internal/rawio).
func (l *link) peek(fd uintptr) bool {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	l.peekN, l.peekErr = int(n), nil
	if e != 0 {
		l.peekN, l.peekErr = 0, e
	}
	return true
}
