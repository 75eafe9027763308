package pool

//lint:file-ignore ST1005 the error texts are twemproxy's client-visible replies, verbatim.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Errors given to Request.Done (and returned by Call) when a request fails in
// the pool rather than being answered by the server.
//
// Unlike the rest of walnut's errors their texts carry no "pool:" prefix:
// each is exactly the strerror text twemproxy puts in the error reply it
// synthesises for a failed request, so the proxy answers a failed request with
// "-ERR " + err.Error() (Redis) or "SERVER_ERROR " + err.Error() (memcached)
// and the client sees what nutcracker would have sent. ErrClosed is the one
// exception: twemproxy has no such case.
//
// Compare with errors.Is. ErrEOF and ErrUnknown share the text "unknown",
// and ErrEjected shares "Connection refused" with ErrConnRefused, so that
// callers can tell the causes apart while clients see twemproxy's words.
var (
	// ErrConnRefused: the server refused the connection (ECONNREFUSED).
	ErrConnRefused = errors.New("Connection refused")
	// ErrEjected: the server is ejected (Options.AutoEject) and requests
	// to it fail without a connection being attempted. twemproxy answers
	// such requests with "Connection refused" too.
	ErrEjected = errors.New("Connection refused")
	// ErrTimedOut: the request was not answered within Options.Timeout
	// (its connection was closed), or the connection attempt timed out.
	ErrTimedOut = errors.New("Connection timed out")
	// ErrEOF: the server closed the connection while the request was
	// queued or in flight on it. twemproxy reports this errno-less case
	// as "unknown".
	ErrEOF = errors.New("unknown")
	// ErrUnknown: the connection failed with an error that is neither a
	// system error nor one of the cases above (for example an error
	// returned by a custom Options.Dial).
	ErrUnknown = errors.New("unknown")
	// ErrConnReset: the server reset the connection (ECONNRESET).
	ErrConnReset = errors.New("Connection reset by peer")
	// ErrHostDown: the server's host name did not resolve. twemproxy
	// reports resolution failures as EHOSTDOWN.
	ErrHostDown = errors.New("Host is down")
	// ErrInvalid: the server sent a reply the Framer rejected, a reply
	// with no request outstanding, or a reply Options.IsFailure reports as
	// a server failure (Redis -OOM, -BUSY, -LOADING). twemproxy answers
	// all three with EINVAL's text.
	ErrInvalid = errors.New("Invalid argument")
	// ErrClosed: the pool was closed before the request was answered.
	ErrClosed = errors.New("pool: closed")
)

// errnoError is a system error other than those with their own sentinel.
// Its text is the C library's strerror text (Go's, capitalised as glibc
// writes it, e.g. "Broken pipe"), and it matches its syscall.Errno with
// errors.Is.
type errnoError struct{ errno syscall.Errno }

func (e errnoError) Error() string {
	s := e.errno.Error()
	if s != "" && 'a' <= s[0] && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

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
