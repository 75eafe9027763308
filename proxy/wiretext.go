package proxy

import (
	"errors"
	"syscall"

	"github.com/walnutproxy/walnut/pool"
)

// wireTexts are the words twemproxy puts in the error reply of a request
// that failed on its way to or from a server ("-ERR Connection refused",
// "SERVER_ERROR Connection timed out"): the C library's strerror text of
// the failure, with "unknown" where there is no errno (the server closed
// the connection). walnut sends the same words for each of the pool's
// errors, so that clients and scripts written against nutcracker see what
// they expect.
var wireTexts = []struct {
	err  error
	text string
}{
	{pool.ErrConnRefused, "Connection refused"},
	{pool.ErrEjected, "Connection refused"}, // twemproxy refuses requests to an ejected server alike
	{pool.ErrTimedOut, "Connection timed out"},
	{pool.ErrEOF, "unknown"},
	{pool.ErrUnknown, "unknown"},
	{pool.ErrConnReset, "Connection reset by peer"},
	{pool.ErrHostDown, "Host is down"},
	{pool.ErrInvalid, "Invalid argument"},
	{pool.ErrClosed, "pool: closed"}, // a backend closed under its requests: walnut's own case
}

// wireText returns the text of the error reply to a request that failed
// with err, an error from package pool.
func wireText(err error) string {
	for _, w := range wireTexts {
		if err == w.err {
			return w.text
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		// Go's strerror texts are glibc's, but for the capital.
		s := errno.Error()
		if s != "" && 'a' <= s[0] && s[0] <= 'z' {
			s = string(s[0]-'a'+'A') + s[1:]
		}
		return s
	}
	return "unknown"
}
