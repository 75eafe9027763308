package pool

import "syscall"

// peek looks, without blocking or consuming anything, for bytes or an EOF
// on the connection: checkIdle's function for RawConn.Read.
func (l *link) peek(fd uintptr) bool {
	var b [1]byte
	l.peekN, _, l.peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}
