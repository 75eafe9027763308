package memcache

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"syscall"

	"github.com/walnutproxy/walnut/internal/bufgrow"

	"github.com/walnutproxy/walnut/protocol"
)

const (
	// idleBufSize is the size of a Reader's own buffer, which it reads
	// into first and returns to when idle.
	idleBufSize = 512
	// defaultBufSize is the size of the buffer a Reader takes, from
	// workPool, once its input does not fit in the idle buffer.
	defaultBufSize = 4 << 10
	// maxIdleBufSize is the largest buffer a Reader keeps once it has
	// nothing buffered; a larger one, grown for a big request, is
	// dropped.
	maxIdleBufSize = 64 << 10
	// keepQuiet is how many drains in a row that each read at most
	// idleBufSize give the taken buffer back, so that a client mixing
	// single requests with pipelined bursts keeps it.
	keepQuiet = 4
	// maxEmptyReads is how many successive (0, nil) reads are tolerated.
	maxEmptyReads = 100
)

// workPool holds the defaultBufSize buffers of busy Readers, as *[]byte.
var workPool = sync.Pool{New: func() any {
	b := make([]byte, defaultBufSize)
	return &b
}}

// errBadRead reports an io.Reader that returned an impossible count.
var errBadRead = errors.New("memcache: reader returned an invalid count")

// A Reader reads memcached requests (or responses) from an io.Reader. It
// reads into a buffer of its own, 512 bytes, while its input fits, then
// into a pooled 4 KiB one, which grows as far as the request being read
// needs, within its Limits. Once everything buffered has been consumed it
// goes back to its own buffer if at most 512 bytes arrived since it was
// last empty or if the buffer grew past 64 KiB: a client sending a request
// at a time idles on 512 bytes, one that pipelines keeps a larger buffer.
//
// The slices of what it returns alias the buffer and are valid only
// until the next call of a read method or Reset, like bufio.Reader.Peek;
// that call may hand the buffer to another Reader.
//
// The source may be non-blocking: a read error for which
// errors.Is(err, syscall.EAGAIN) holds is returned as it is, the partial
// request or reply stays buffered, and the next call resumes (it parses
// the buffered bytes again from the start of that request).
//
// A Reader is not safe for concurrent use.
type Reader struct {
	rd      io.Reader
	lim     protocol.Limits
	buf     []byte
	idle    []byte  // the Reader's own buffer, allocated at the first read
	work    *[]byte // the pooled buffer buf is, if any
	r, w    int     // buf[r:w] is buffered, unread input
	got     int     // bytes read since the buffer was last empty
	quiet   int     // drains in a row that read at most idleBufSize (see keepQuiet)
	err     error   // sticky error from rd
	discard int     // bytes still to throw away (after "object too large")
	// scan is how many bytes of buf[r:w] are known to hold no line end:
	// a long get line is searched once as it arrives, not from its start
	// after every read.
	scan int
}

// NewReader returns a Reader that reads from rd and enforces lim (zero
// fields mean protocol's defaults).
func NewReader(rd io.Reader, lim protocol.Limits) *Reader {
	return &Reader{rd: rd, lim: lim.WithDefaults()}
}

// Reset discards any buffered input and state and makes r read from rd,
// keeping its Limits and its idle buffer.
func (r *Reader) Reset(rd io.Reader) {
	r.release()
	*r = Reader{rd: rd, lim: r.lim, buf: r.idle, idle: r.idle}
}

// release gives back the pooled buffer, if r has one. buf must not be
// used afterwards.
func (r *Reader) release() {
	if r.work != nil {
		workPool.Put(r.work)
		r.work = nil
	}
}

// takeWork replaces the idle buffer by a pooled one, moving the unread
// input to its front.
func (r *Reader) takeWork() {
	r.work = workPool.Get().(*[]byte)
	r.w = copy(*r.work, r.buf[r.r:r.w])
	r.r = 0
	r.buf = *r.work
}

// Buffered returns the number of bytes read from the underlying reader
// but not yet consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// ReadRequest reads the next request into req, reusing the capacity of
// req.Keys. It reads from the underlying reader only when the buffer
// holds no complete request.
//
// A malformed request is reported as the *protocol.Error that
// ParseRequest returns. If req.Raw is not empty, the Reader has consumed
// the bad input the way memcached does and stays usable: send the Reply
// (unless req.Noreply), then read on. A too-large storage request's data
// block (req.Discard bytes) is skipped by the Reader as it arrives,
// without buffering it. If req.Raw is empty the stream is out of sync:
// send the Reply if wanted and close; further calls return the error
// again.
//
// At the end of input ReadRequest returns io.EOF, or
// io.ErrUnexpectedEOF if a request was cut short. Other errors of the
// underlying reader are returned as they are, and again by every later
// call.
func (r *Reader) ReadRequest(req *Request) error {
	r.shrink()
	for {
		if r.discard > 0 {
			if err := r.skip(); err != nil {
				return err
			}
		}
		b := r.buf[r.r:r.w]
		if bytes.IndexByte(b[r.scan:], '\n') < 0 {
			// No complete line: what parseRequest would find, without
			// searching the line again from its start.
			r.scan = len(b)
			*req = Request{Keys: req.Keys[:0]}
			if lineTooLong(b, len(b)+1, r.lim) {
				return newError(replyLineTooLong, true)
			}
			if err := r.fill(0); err != nil {
				return err
			}
			continue
		}
		n, need, err := parseRequest(b, r.lim, req)
		if n > 0 {
			r.consume(n)
			r.discard = req.Discard
			return err
		}
		if err != nil {
			return err
		}
		if err := r.fill(need); err != nil {
			return err
		}
	}
}

// consume marks the next n buffered bytes as read.
func (r *Reader) consume(n int) {
	r.r += n
	r.scan = 0
}

// ReadRequests reads a batch of requests: it waits for the first as
// ReadRequest does, then parses every further complete request already
// buffered, without reading again, and returns them in reqs (reused from
// len 0, including each element's Keys capacity). The requests alias the
// Reader's buffer until the next call.
//
// It stops before a malformed request, which the next call reports: the
// result is either one or more well-formed requests and a nil error, or
// exactly one rejected request and its *protocol.Error (treated as
// ReadRequest describes), or no request and an I/O error.
func (r *Reader) ReadRequests(reqs []Request) ([]Request, error) {
	reqs = nextRequest(reqs[:0])
	if err := r.ReadRequest(&reqs[0]); err != nil {
		if isProtocolError(err) {
			return reqs, err
		}
		return reqs[:0], err
	}
	for r.discard == 0 && r.r < r.w {
		reqs = nextRequest(reqs)
		n, _, err := parseRequest(r.buf[r.r:r.w], r.lim, &reqs[len(reqs)-1])
		if n == 0 || err != nil {
			return reqs[:len(reqs)-1], nil
		}
		r.consume(n)
	}
	return reqs, nil
}

// isProtocolError reports whether err is a *protocol.Error. It is apart
// so that the common errors (EAGAIN from a non-blocking source) cost no
// allocation.
func isProtocolError(err error) bool {
	if errors.Is(err, syscall.EAGAIN) {
		return false
	}
	var pe *protocol.Error
	return errors.As(err, &pe)
}

// nextRequest extends reqs by one element, reusing the one in its spare
// capacity if there is one.
func nextRequest(reqs []Request) []Request {
	if len(reqs) < cap(reqs) {
		return reqs[:len(reqs)+1]
	}
	return append(reqs, Request{})
}

// ReadResponse reads the complete response to a request of command cmd
// and returns it, framed by FrameResponse; it aliases the buffer until the
// next call. A *protocol.Error means the server's output is invalid and
// the connection must be closed. End of input is reported as io.EOF
// before a response, io.ErrUnexpectedEOF within one.
func (r *Reader) ReadResponse(cmd Command) ([]byte, error) {
	r.shrink()
	for {
		b := r.buf[r.r:r.w]
		n, need, err := frameResponse(b, cmd, r.lim)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			r.consume(n)
			return b[:n:n], nil
		}
		if err := r.fill(need); err != nil {
			return nil, err
		}
	}
}

// shrink returns to the idle buffer once everything buffered has been
// consumed, if at most idleBufSize bytes were read since the buffer was
// last empty or if the buffer grew past maxIdleBufSize.
func (r *Reader) shrink() {
	if r.r != r.w {
		return
	}
	got := r.got
	r.r, r.w, r.got, r.scan = 0, 0, 0, 0
	if got <= idleBufSize {
		r.quiet++
	} else {
		r.quiet = 0
	}
	// No other buffer has the idle buffer's length.
	if len(r.buf) != len(r.idle) && (r.quiet >= keepQuiet || cap(r.buf) > maxIdleBufSize) {
		r.release()
		r.buf = r.idle
	}
}

// fill reads more input, making room first: it moves unread input to the
// front and, if the buffer is full, grows it. need is the length of the
// frame being read, if known, else 0.
func (r *Reader) fill(need int) error {
	if r.err != nil {
		return r.readErr()
	}
	if r.idle == nil {
		r.idle = make([]byte, idleBufSize)
		r.buf = r.idle
	}
	if r.w == len(r.buf) && len(r.buf) == len(r.idle) {
		// The idle buffer is full: more input is likely waiting.
		r.takeWork()
	}
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.buf) {
		// Grow by doubling, up to the length of the request being read
		// if known: memory follows the input actually received, not the
		// length a request line announces, until a thirty-second of a
		// large request is in (see internal/bufgrow).
		size := bufgrow.Next(max(len(r.buf), defaultBufSize/2), r.w, need)
		buf := make([]byte, size)
		copy(buf, r.buf[:r.w])
		r.release()
		r.buf = buf
	}
	return r.read(r.buf[r.w:])
}

// read reads once into p, which must be r.buf[r.w:], and records the
// result.
func (r *Reader) read(p []byte) error {
	for i := 0; i < maxEmptyReads; i++ {
		n, err := r.rd.Read(p)
		if n < 0 || n > len(p) {
			r.err = errBadRead
			return r.err
		}
		r.w += n
		r.got += n
		if err != nil && errors.Is(err, syscall.EAGAIN) {
			// A non-blocking source has nothing more for now: not
			// sticky, the next call reads again.
			if n > 0 {
				return nil
			}
			return err
		}
		if err != nil {
			r.err = err
			if n > 0 {
				return nil // report the error once the data is used
			}
			return r.readErr()
		}
		if n > 0 {
			return nil
		}
	}
	r.err = io.ErrNoProgress
	return r.err
}

// readErr returns the sticky read error, turning io.EOF into
// io.ErrUnexpectedEOF when input is buffered or being discarded.
func (r *Reader) readErr() error {
	if r.err == io.EOF && (r.r < r.w || r.discard > 0) {
		return io.ErrUnexpectedEOF
	}
	return r.err
}

// skip throws away up to r.discard bytes, reading them if need be, without
// growing the buffer.
func (r *Reader) skip() error {
	for r.discard > 0 {
		if r.r == r.w {
			if r.err != nil {
				return r.readErr()
			}
			r.r, r.w, r.scan = 0, 0, 0
			if len(r.buf) < defaultBufSize {
				// Not through the idle buffer, 512 bytes a read.
				r.takeWork()
			}
			if err := r.read(r.buf); err != nil {
				return err
			}
			continue
		}
		k := min(r.discard, r.w-r.r)
		r.consume(k)
		r.discard -= k
	}
	return nil
}
