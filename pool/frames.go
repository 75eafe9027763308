package pool

import (
	"io"

	"github.com/walnutproxy/walnut/internal/bufgrow"
)

// replyBuf holds the bytes read from a server that are not yet handed out,
// starting at a reply boundary, and cuts them into replies with a Framer.
// It is the package's one framing loop: a connection's reader (read.go)
// and the probe (server.go) both read through it.
type replyBuf struct {
	buf  []byte // allocated by the first room
	r, w int    // unread bytes are buf[r:w]
	need int    // bytes from r the next reply needs before framing is worth trying
	hint bool   // need is the framer's size hint, not just one more byte
	// estimate is Options.Estimate: a guess at the whole length of a
	// large reply, to size the buffer once rather than element by element;
	// req is the request of the reply in progress (set by next).
	estimate func(b []byte, req *Request) int
	req      *Request
}

// ready reports whether framing is worth trying: some bytes are unread, and
// at least as many as the framer last asked for.
func (b *replyBuf) ready() bool { return b.r < b.w && b.w-b.r >= b.need }

// next frames the reply at the read position, the reply to req. It returns
// the reply's length m > 0, having moved the read position past it (the
// reply is buf[r-m:r]); 0 if only part of the reply is in, having noted
// how many bytes are needed before framing again (the framer's size hint,
// or one more byte); or an error if the bytes cannot be a reply.
func (b *replyBuf) next(framer Framer, req *Request) (int, error) {
	avail := b.w - b.r
	m, err := framer(b.buf[b.r:b.w], req)
	switch {
	case err != nil:
		return 0, err
	case m > avail:
		return 0, errFramerLength
	case m <= 0:
		b.need = max(avail+1, -m)
		b.hint = -m > avail+1
		b.req = req
		return 0, nil
	}
	b.need, b.hint, b.req = 0, false, nil
	b.r += m
	return m, nil
}

// room makes space for the next read: it moves the unread bytes to the
// front and grows the buffer towards what the next reply needs. A size hint
// grows it at once, but by at most maxReadAhead beyond the bytes already
// in, so that a server announcing a huge reply cannot make the pool
// allocate it before the bytes arrive; past that, and without a hint, the
// buffer doubles when full. An empty buffer larger than maxIdleReadBuf,
// grown for a large reply, is dropped for a new small one.
func (b *replyBuf) room() {
	if b.buf == nil {
		b.buf = make([]byte, readBufSize)
		return
	}
	buf := b.buf
	if b.r == b.w {
		b.r, b.w = 0, 0
		if len(buf) > maxIdleReadBuf {
			b.buf = make([]byte, readBufSize)
		}
		return
	}
	full := b.w == len(buf)
	if !full && (b.r == 0 || b.r+b.need <= len(buf)) {
		return // read on into the free space
	}
	size := len(buf)
	if full && (b.w-b.r == size || b.need > size) {
		// Grow, only once the buffer is full: growing ahead on every
		// read would allocate each step of the way to a large reply.
		if b.hint && bufgrow.Exact(b.w-b.r, b.need) {
			size = b.need // enough of a large reply is in: its length at once
			if b.estimate != nil {
				// Perhaps an array of large strings: its likely
				// length at once, up to maxEstimate times what is
				// known to come.
				if est := b.estimate(buf[b.r:b.w], b.req); est > size {
					size = min(est, maxEstimate*b.need)
				}
			}
		} else {
			size = max(2*size, min(b.need, b.w-b.r+maxReadAhead))
		}
	}
	if size != len(buf) {
		nb := make([]byte, size)
		b.w = copy(nb, buf[b.r:b.w])
		b.buf = nb
	} else {
		b.w = copy(buf, buf[b.r:b.w])
	}
	b.r = 0
}

// maxEstimate bounds the buffer an estimate sizes (Options.Estimate), as a
// multiple of the bytes the reply is known to need: an estimate that turns
// out too large (the array's later values are small or missing) costs at
// most that. An estimate is used only where the buffer grows to the
// length the server announced (bufgrow.Exact), once enough of it has
// arrived to take it seriously.
const maxEstimate = 8

// fill reads once from rd into the free space that room made.
func (b *replyBuf) fill(rd io.Reader) (int, error) {
	n, err := rd.Read(b.buf[b.w:])
	b.w += n
	return n, err
}
