package pool

import (
	"sync/atomic"
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
// replies on the connections it has undertaken to read (those that had
// nothing in flight) are read by nobody else, so Read must follow
// promptly. Read returns once the waiter's requests on those connections
// are answered; the rest are answered by other goroutines as usual. A
// Waiter belongs to one goroutine; its zero value is ready to use.
type Waiter struct {
	flush  []*link     // connections with requests of the waiter's to write; owner-only
	reads  []*waitRead // reads[:nreads]: the connections it has undertaken to read; owner-only
	nreads int
}

// A waitRead is one connection a Waiter has undertaken to read, and the
// count of the Waiter's requests in flight on it.
type waitRead struct {
	l *link
	n atomic.Int32
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

// addRead records that w has undertaken to read l, and returns the count
// of its requests there.
func (w *Waiter) addRead(l *link) *waitRead {
	if w.nreads == len(w.reads) {
		w.reads = append(w.reads, &waitRead{})
	}
	r := w.reads[w.nreads]
	w.nreads++
	r.l = l
	return r
}

// Read writes the requests given to Do with this waiter that nobody has
// written yet, then reads the replies of each connection it has thereby
// undertaken to read, until this waiter's requests there are answered,
// calling their Done (and other requests' Done) on the calling goroutine.
// See Waiter.
func (w *Waiter) Read() {
	w.write(true)
	for i := 0; i < w.nreads; i++ {
		r := w.reads[i]
		l := r.l
		res := l.readFor(r, i < w.nreads-1)
		if res == readSlow {
			// No reply for a while: the connections still to read go to
			// their reader goroutines, so that their other clients are
			// not held up by this one's server; this one is read to the
			// end. Their counts are dropped: requests of w's there are
			// taken off them later.
			for j := i + 1; j < w.nreads; j++ {
				w.reads[j].l.release()
				w.reads[j] = &waitRead{}
			}
			w.nreads = i + 1
			res = l.readFor(r, false)
		}
		r.l = nil
		if res == readBroken {
			// Requests of w's may still be failing on other goroutines,
			// which take them off r's count: the next batch counts on a
			// new one.
			w.reads[i] = &waitRead{}
		}
	}
	w.nreads = 0
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
		l.writeInline(w, reserve)
	}
	w.flush = w.flush[:0]
}

// checkIdle reports whether an idle connection, which nobody reads, is
// still usable: the server has neither closed it nor sent anything
// unasked. It returns the failure's class and cause if not. It is called
// on a link whose read role is free, by the holder of writing or by
// watchIdle under the queue lock with nobody writing, so that no other
// goroutine reads the connection meanwhile.
func (l *link) checkIdle() (failClass, error) {
	data, eof, err := l.raw.Peek()
	switch {
	case err != nil:
		return failErr, err
	case eof:
		return failEOF, errIdleEOF
	case data:
		return failErr, errStray
	}
	return failNone, nil
}
