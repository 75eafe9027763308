//go:build !linux

package rawio

import (
	"os"
	"syscall"
)

const supported = false

func rawRead(fd uintptr, b []byte) (int, error)  { return 0, syscall.ENOSYS }
func rawWrite(fd uintptr, b []byte) (int, error) { return 0, syscall.ENOSYS }
func rawPeek(fd uintptr) (int, error)            { return 0, syscall.ENOSYS }

func syscallError(op string, err error) error { return os.NewSyscallError(op, err) }
