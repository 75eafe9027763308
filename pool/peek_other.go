//go:build !linux

package pool

import "syscall"

// peek reports nothing where a non-blocking peek is not implemented: an
// idle connection is taken as usable.
func (l *link) peek(fd uintptr) bool {
	l.peekN, l.peekErr = 0, syscall.EAGAIN
	return true
}
