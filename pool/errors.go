package pool

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Errors given to Request.Done (and returned by Call) when a request fails in
// the pool rather than being answered by the server. Compare with errors.Is.
//
// A proxy that answers a failed request as twemproxy would must send
// twemproxy's words, not these texts: twemproxy puts the C library's
// strerror text of the failure in its error reply ("Connection refused",
// "Connection timed out", "unknown" for a connection the server closed, …).
// Package proxy holds that mapping.
var (
	// ErrConnRefused: the server refused the connection (ECONNREFUSED).
	ErrConnRefused = errors.New("pool: connection refused")
	// ErrEjected: the server is ejected (Options.AutoEject) and requests
	// to it fail without a connection being attempted.
	ErrEjected = errors.New("pool: server ejected")
	// ErrTimedOut: the request was not answered within Options.Timeout
	// (its connection was closed), or the connection attempt timed out.
	ErrTimedOut = errors.New("pool: timed out")
	// ErrEOF: the server closed the connection while the request was
	// queued or in flight on it.
	ErrEOF = errors.New("pool: connection closed by server")
	// ErrUnknown: the connection failed with an error that is neither a
	// system error nor one of the cases above (for example an error
	// returned by a custom Options.Dial).
	ErrUnknown = errors.New("pool: connection failed")
	// ErrConnReset: the server reset the connection (ECONNRESET).
	ErrConnReset = errors.New("pool: connection reset by peer")
	// ErrHostDown: the server's host name did not resolve, or its host is
	// down (EHOSTDOWN).
	ErrHostDown = errors.New("pool: host is down")
	// ErrInvalid: the server sent a reply the Framer rejected, a reply
	// with no request outstanding, or a reply Options.IsFailure reports as
	// a server failure (Redis -OOM, -BUSY, -LOADING).
	ErrInvalid = errors.New("pool: invalid reply")
	// ErrClosed: the pool was closed before the request was answered.
	ErrClosed = errors.New("pool: closed")
)

// errnoError is a system error other than those with their own sentinel,
// such as EPIPE. It matches its syscall.Errno with errors.Is and
// errors.As.
type errnoError struct{ errno syscall.Errno }

func (e errnoError) Error() string { return "pool: " + e.errno.Error() }

func (e errnoError) Unwrap() error { return e.errno }

// mapErr turns a dial, read or write error into the error given to the
// requests it fails.
func mapErr(err error) error {
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrEOF
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrConnRefused
	case errors.Is(err, syscall.ECONNRESET):
		return ErrConnReset
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return ErrTimedOut
	case errors.Is(err, syscall.EHOSTDOWN), errors.As(err, &dnsErr):
		return ErrHostDown
	case errors.As(err, &errno):
		return errnoError{errno}
	}
	return ErrUnknown
}
