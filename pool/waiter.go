package pool

import (
	"os"
	"sync/atomic"
	"syscall"
)

// A Waiter is the goroutine that gave a batch of requests to Do and waits
// for them. It lets that goroutine write the batch itself, in one write
// per connection, and read the replies itself, instead of being woken by
// another goroutine that read them: with one request at a time on a
// connection, the caller writes the request, reads the reply and runs
// Done, and no other goroutine runs.
//
// Set Request.Waiter on the requests a goroutine gives to Do, then call
// Read (or Flush) once, after those Do calls and before blocking to wait
// for their Done calls, which Read may make itself. Until then the
// requests may not be written, and, after Read has written them, the
// replies on the connection it has undertaken to read are read by nobody
// else, so Read must follow promptly. Read returns once the waiter's
// requests on that connection are answered; the rest are answered by other
// goroutines as usual. A Waiter belongs to one goroutine; its zero value
// is ready to use.
type Waiter struct {
	flush []*link      // connections with requests of the waiter to write; owner-only
	link  *link        // the connection this waiter has undertaken to read; owner-only
	n     atomic.Int32 // its requests in flight on link
}

// addFlush records that l holds requests of w's to write in Read.
func (w *Waiter) addFlush(l *link) {
	for _, f := range w.flush {
		if f == l {
			return
		}
	}
	w.flush = append(w.flush, l)
}

// Read writes the requests given to Do with this waiter that nobody has
// written yet, then reads the replies of the connection it has thereby
// undertaken to read, if any, until this waiter's requests on it are
// answered, calling their Done (and other requests' Done) on the calling
// goroutine. See Waiter.
func (w *Waiter) Read() {
	w.write(true)
	l := w.link
	if l == nil {
		return
	}
	w.link = nil
	l.readFor(w)
}

// checkIdle reports whether an idle connection, which nobody reads, is
// still usable: the server has neither closed it nor sent anything
// unasked. It returns the failure's class and cause if not. Only the
// holder of writing calls it, on a link whose read role is free, so that
// no other goroutine reads the connection meanwhile.
func (l *link) checkIdle() (failClass, error) {
	l.peekN, l.peekErr = 0, nil
	if err := l.rc.Read(l.peekFn); err != nil {
		return failErr, err
	}
	switch err := l.peekErr; {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		return failNone, nil
	case err != nil:
		return failErr, os.NewSyscallError("recvfrom", err)
	case l.peekN == 0:
		return failEOF, errIdleEOF
	default:
		return failErr, errStray
	}
}

// Flush writes the requests given to Do with this waiter that nobody has
// written yet, and leaves their replies to be read by other goroutines.
// Call it instead of Read when the goroutine must stay free to stop
// waiting (a context), or when it sent a long batch whose replies others
// should not wait for it to read.
func (w *Waiter) Flush() { w.write(false) }

func (w *Waiter) write(reserve bool) {
	for i, l := range w.flush {
		w.flush[i] = nil
		// Only the last connection written may make w its reader: w
		// must not block writing while it holds a read role.
		l.writeInline(w, reserve && i == len(w.flush)-1)
	}
	w.flush = w.flush[:0]
}
