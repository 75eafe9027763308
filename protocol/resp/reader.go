package resp

import (
	"errors"
	"github.com/walnutproxy/walnut/internal/bufgrow"
	"io"
	"sync"

	"github.com/walnutproxy/walnut/protocol"
)

// DefaultReaderSize is the buffer size of a Reader made by NewReader. It is
// redis-server's own read size (PROTO_IOBUF_LEN).
const DefaultReaderSize = 16 << 10

// minBufferSize is the smallest buffer NewReaderSize and NewWriterSize
// accept.
const minBufferSize = 16

// idleBufferSize is the size of a Reader's own buffer, which a Reader
// starts with and returns to when idle. A Reader whose input does not fit
// in it takes a buffer of its full size (from workPool for
// DefaultReaderSize), and gives it back once everything buffered has been
// consumed, unless what it read since it was last idle was more than the
// idle buffer holds: a client that pipelines keeps its large buffer, so
// that its batches are not cut at 512 bytes, while one that sends a
// request at a time idles on 512 bytes, not 16 KiB.
const idleBufferSize = 512

// keepQuiet is how many drains in a row that each read no more than the
// idle buffer holds give the large buffer back: a client that mixes single
// requests with pipelined bursts keeps it, so that a burst after a single
// request is not cut at 512 bytes.
const keepQuiet = 4

// workPool holds the DefaultReaderSize buffers of busy Readers, as
// *[]byte.
var workPool = sync.Pool{New: func() any {
	b := make([]byte, DefaultReaderSize)
	return &b
}}

// keepFactor bounds how far a Reader's buffer may stay grown: one larger
// than keepFactor times the Reader's size is dropped as soon as the
// buffered bytes fit in a buffer of that size again.
const keepFactor = 4

// maxEmptyReads is how many reads returning nothing a Reader tolerates in
// a row before it gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// A Reader reads RESP commands (on a client connection) or replies (on a
// server connection) from an io.Reader through its own buffer. One type
// serves both directions because the buffering is the hard part and is
// the same; a connection simply uses only one family of methods.
//
// Results alias the buffer and are valid only until the next call to a
// Read method, as with bufio.Reader.Peek: that call may hand the buffer
// to another Reader.
//
// A Reader reads into a buffer of 512 bytes (its size, if smaller) while
// the input fits, and into one of its full size once it does not. The
// larger buffer is given back (to a pool, for DefaultReaderSize) at the
// next Read call that finds every buffered byte consumed, unless more
// than 512 bytes arrived since the buffer was last empty, so a Reader
// idle after requests of up to 512 bytes holds 512 bytes, and one that
// receives pipelined batches keeps its larger buffer. The buffer grows
// geometrically as one long command or reply arrives (not ahead of its
// bytes, whatever length a header announces, until a thirty-second of a
// frame of 1 MiB or more has arrived: then to the frame's length at once,
// so that a large value costs about its size, not twice it); a buffer that grew past
// four times the Reader's size is dropped at the next Read call once the
// bytes still buffered fit in one of that size. The Limits bound each
// line, bulk and count, not the total size of one frame: a command may be
// as large as MaxArgs bulks of MaxBulk bytes.
//
// A *protocol.Error from a Read method is sticky: the malformed bytes stay
// buffered and every later call reports them again. Send the error's Reply
// and close the connection, as redis-server does. I/O errors are returned
// once, as bufio returns them; io.ErrUnexpectedEOF reports a stream that
// ended inside a frame.
//
// The source may be non-blocking: a read error for which
// errors.Is(err, syscall.EAGAIN) holds is returned as it is, the partial
// request or reply stays buffered, and the next call resumes (it parses
// the buffered bytes again from the start of that request).
//
// A Reader is not safe for concurrent use.
type Reader struct {
	rd   io.Reader
	lim  protocol.Limits
	buf  []byte  // len(buf) is the capacity in use
	idle []byte  // the Reader's own buffer, min(size, idleBufferSize) bytes
	size int     // the size asked of NewReaderSize
	work *[]byte // the pooled buffer buf is, if any
	r, w int     // buf[r:w] is buffered and unread
	got  int     // bytes read since the buffer was last empty
	// quiet counts the drains in a row that read no more than the idle
	// buffer holds; the large buffer goes back after keepQuiet of them.
	quiet int
	err   error // read error to report once the buffered bytes are used

	cmd   cmdState
	frame *frameState // allocated by the first reply read: a Reader of commands never needs it
	mem   valueMem    // elements of the replies ReadReply builds
}

// NewReader returns a Reader with a DefaultReaderSize buffer that parses
// within lim (zero fields mean their defaults).
func NewReader(rd io.Reader, lim protocol.Limits) *Reader {
	return NewReaderSize(rd, lim, DefaultReaderSize)
}

// NewReaderSize returns a Reader that reads up to size bytes (at least
// 16) at a time, and keeps at most 512 of them while idle.
func NewReaderSize(rd io.Reader, lim protocol.Limits, size int) *Reader {
	size = max(size, minBufferSize)
	idle := make([]byte, min(size, idleBufferSize))
	return &Reader{rd: rd, lim: lim.WithDefaults(), buf: idle, idle: idle, size: size}
}

// Reset discards any buffered data and errors and makes r read from rd,
// with its idle buffer.
func (r *Reader) Reset(rd io.Reader) {
	r.mem.release()
	r.release()
	if r.frame != nil {
		*r.frame = frameState{more: r.frame.more}
	}
	*r = Reader{rd: rd, lim: r.lim, buf: r.idle, idle: r.idle, size: r.size, frame: r.frame, mem: r.mem}
}

// release gives back the pooled buffer, if r has one. buf must not be
// used afterwards.
func (r *Reader) release() {
	if r.work != nil {
		workPool.Put(r.work)
		r.work = nil
	}
}

// sized returns a buffer of r's size: a pooled one for DefaultReaderSize,
// recorded in r.work.
func (r *Reader) sized() []byte {
	if r.size != DefaultReaderSize {
		return make([]byte, r.size)
	}
	r.work = workPool.Get().(*[]byte)
	return *r.work
}

// Buffered returns the number of bytes buffered and not yet consumed.
func (r *Reader) Buffered() int {
	return r.w - r.r
}

// ReadCommand reads the next command into cmd, reusing cmd.Args. Input
// redis-server ignores (empty inline lines, "*0", "*-1") is skipped.
func (r *Reader) ReadCommand(cmd *Command) error {
	r.shrink()
	return r.readCommand(cmd)
}

// ReadCommands blocks until at least one command is complete, then
// returns every complete command already buffered, parsed into cmds[:0]
// (so the capacity of cmds and of each element's Args is reused). This is
// the batch a proxy dispatches before it flushes once. If a malformed
// command follows complete ones, those are returned with a nil error and
// the next call reports it.
func (r *Reader) ReadCommands(cmds []Command) ([]Command, error) {
	r.shrink()
	cmds = cmds[:0]
	cmds = grow(cmds)
	if err := r.readCommand(&cmds[0]); err != nil {
		return cmds[:0], err
	}
	for r.r < r.w {
		cmds = grow(cmds)
		c := &cmds[len(cmds)-1]
		// A fresh state for each command: a partial command at the end
		// of the buffer is dropped here and parsed again, from its
		// start, by the next call's readCommand, which then resumes
		// across reads. Keeping its state instead is not worth it: the
		// Args parsed so far live in an element of cmds, which the next
		// call may not be given back, and point into a buffer that
		// shrink or fill may move; the rescan covers only the bytes
		// already buffered (headers are parsed, bulk data skipped), so
		// the cost stays linear in the input.
		var st cmdState
		n, err := st.parse(r.buf[r.r:r.w], &r.lim, c)
		if n == 0 || err != nil {
			return cmds[:len(cmds)-1], nil
		}
		r.r += n
		if len(c.Args) == 0 {
			cmds = cmds[:len(cmds)-1]
		}
	}
	return cmds, nil
}

// grow extends cmds by one element, reusing one beyond len if there is one.
func grow(cmds []Command) []Command {
	if len(cmds) < cap(cmds) {
		return cmds[:len(cmds)+1]
	}
	return append(cmds, Command{})
}

func (r *Reader) readCommand(cmd *Command) error {
	r.cmd = cmdState{}
	for {
		n, err := r.cmd.parse(r.buf[r.r:r.w], &r.lim, cmd)
		if err != nil {
			return err
		}
		if n > 0 {
			r.r += n
			if len(cmd.Args) > 0 {
				return nil
			}
			continue // skipped input, as redis-server skips it
		}
		moved, err := r.fill(r.cmd.need)
		if moved {
			// Args point into the old place; parse again from the start.
			r.cmd = cmdState{}
		}
		if err != nil {
			return err
		}
	}
}

// ReadReply reads the next reply into v, as ParseReply does, except that
// the elements of aggregates live in memory the Reader reuses: v, like its
// strings, is valid only until the next call to a Read method.
func (r *Reader) ReadReply(v *Value) error {
	r.shrink()
	n, err := r.frameReply(true)
	if err != nil {
		return err
	}
	if err := v.build(r.buf[r.r:r.r+n], &r.lim, r.frame, &r.mem); err != nil {
		return err
	}
	r.r += n
	return nil
}

// ReadRawReply reads the next reply and returns its bytes, as FrameReply
// delimits them, for a proxy to forward unchanged.
func (r *Reader) ReadRawReply() ([]byte, error) {
	r.shrink()
	n, err := r.frameReply(false)
	if err != nil {
		return nil, err
	}
	b := r.buf[r.r : r.r+n : r.r+n]
	r.r += n
	return b, nil
}

// frameReply frames the next reply, reading as needed, and returns its
// length. Framing resumes where it stopped after each read, so a long
// reply costs time linear in its length.
func (r *Reader) frameReply(record bool) (int, error) {
	if r.frame == nil {
		r.frame = new(frameState)
	}
	r.frame.start(record)
	for {
		n, err := r.frame.frame(r.buf[r.r:r.w], &r.lim)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		if _, err := r.fill(r.frame.need); err != nil {
			return 0, err
		}
	}
}

// shrink returns to the idle buffer once every buffered byte has been
// consumed, if no more than the idle buffer holds was read since the
// buffer was last empty or if the buffer grew past keepFactor times r's
// size; a buffer that grew so far is also replaced by one of r's size as
// soon as the unread bytes fit in it. Callers must hold no slices of the
// buffer.
func (r *Reader) shrink() {
	if r.r == r.w {
		got := r.got
		r.r, r.w, r.got = 0, 0, 0
		if got <= len(r.idle) {
			r.quiet++
		} else {
			r.quiet = 0
		}
		// No other buffer has the idle buffer's length.
		if len(r.buf) != len(r.idle) && (r.quiet >= keepQuiet || len(r.buf) > keepFactor*r.size) {
			if r.work == nil {
				r.mem.release() // let the large buffer go
			}
			r.release()
			r.buf = r.idle
		}
		return
	}
	if len(r.buf) <= keepFactor*r.size || r.w-r.r > r.size {
		return
	}
	buf := r.idle
	if r.size > len(r.idle) {
		buf = r.sized()
	}
	r.w = copy(buf, r.buf[r.r:r.w])
	r.r = 0
	r.buf = buf
	r.mem.release() // let the large buffer go
}

// fill reads at least one more byte into the buffer. When the buffer is
// full it first makes room, by moving the unread bytes to the front or by
// growing, and reports that they moved. need is the length the current
// frame needs from r.r, if known: the buffer grows geometrically but never
// past it, so a header that announces a large bulk costs memory only as
// its bytes arrive, until a thirty-second of a large frame is in, when it
// grows to the frame's length at once (see internal/bufgrow).
func (r *Reader) fill(need int) (moved bool, err error) {
	if r.err != nil {
		err, r.err = r.err, nil
		return false, r.eofErr(err)
	}
	if r.w == len(r.buf) {
		moved = true
		n := r.w - r.r
		switch {
		case len(r.buf) < r.size:
			// The idle buffer is full: more input is likely waiting.
			buf := r.sized()
			copy(buf, r.buf[r.r:r.w])
			r.buf = buf
		case r.r > 0 && need <= len(r.buf):
			copy(r.buf, r.buf[r.r:r.w])
		default:
			size := bufgrow.Next(len(r.buf), n, need)
			buf := make([]byte, max(size, n+1))
			copy(buf, r.buf[r.r:r.w])
			r.release()
			r.buf = buf
		}
		r.r, r.w = 0, n
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return moved, errInvalidRead
		}
		r.w += n
		r.got += n
		if n > 0 {
			r.err = err
			return moved, nil
		}
		if err != nil {
			return moved, r.eofErr(err)
		}
	}
	return moved, io.ErrNoProgress
}

// eofErr turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func (r *Reader) eofErr(err error) error {
	if errors.Is(err, io.EOF) && r.w > r.r {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errInvalidRead reports an io.Reader that returned an impossible count.
var errInvalidRead = errors.New("resp: reader returned invalid count")
