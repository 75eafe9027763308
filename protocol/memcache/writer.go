package memcache

import "io"

const (
	// flushSize is how much a Writer buffers before it writes without
	// waiting for Flush.
	flushSize = 64 << 10
	// maxIdleWriteBuf is the largest buffer a Writer keeps after Flush.
	maxIdleWriteBuf = 64 << 10
)

// A Writer buffers memcached requests or responses for an io.Writer. Its
// methods encode with the Append functions; output reaches the underlying
// writer on Flush, or earlier once 64 KiB is buffered. After a write error
// a Writer discards everything it is given, and Flush returns that error
// (a sticky error, as in bufio.Writer). After Flush it drops a buffer that
// grew past 64 KiB.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	wr  io.Writer
	buf []byte
	err error
}

var _ io.Writer = (*Writer)(nil)

// NewWriter returns a Writer that writes to wr.
func NewWriter(wr io.Writer) *Writer {
	return &Writer{wr: wr}
}

// Reset discards buffered output and any error and makes w write to wr.
func (w *Writer) Reset(wr io.Writer) {
	w.wr, w.buf, w.err = wr, w.buf[:0], nil
	if cap(w.buf) > maxIdleWriteBuf {
		w.buf = nil
	}
}

// Buffered returns the number of bytes buffered and not yet written.
func (w *Writer) Buffered() int { return len(w.buf) }

// Write buffers p verbatim (for example a request's Raw or a framed
// response being forwarded). A p of 64 KiB or more is written through
// after the buffer is flushed, without being copied. It implements
// io.Writer; the error is the sticky error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) < flushSize {
		w.buf = append(w.buf, p...)
		w.flushIfFull()
		return len(p), w.err
	}
	if w.flush(); w.err != nil {
		return 0, w.err
	}
	n, err := w.wr.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	w.err = err
	return n, err
}

// WriteRequest buffers req as AppendRequest encodes it.
func (w *Writer) WriteRequest(req *Request) {
	if w.err == nil {
		w.buf = AppendRequest(w.buf, req)
		w.flushIfFull()
	}
}

// WriteValue buffers a VALUE block for v's Key, Flags, Data and, if
// HasCas, Cas.
func (w *Writer) WriteValue(v *Value) {
	if w.err != nil {
		return
	}
	if v.HasCas {
		w.buf = AppendValueCas(w.buf, v.Key, v.Flags, v.Data, v.Cas)
	} else {
		w.buf = AppendValue(w.buf, v.Key, v.Flags, v.Data)
	}
	w.flushIfFull()
}

// WriteResponse buffers a fixed-text response line (see AppendResponse).
func (w *Writer) WriteResponse(r Response) {
	if w.err == nil {
		w.buf = AppendResponse(w.buf, r)
		w.flushIfFull()
	}
}

// WriteClientError buffers "CLIENT_ERROR <msg>\r\n".
func (w *Writer) WriteClientError(msg string) {
	if w.err == nil {
		w.buf = AppendClientError(w.buf, msg)
		w.flushIfFull()
	}
}

// WriteServerError buffers "SERVER_ERROR <msg>\r\n".
func (w *Writer) WriteServerError(msg string) {
	if w.err == nil {
		w.buf = AppendServerError(w.buf, msg)
		w.flushIfFull()
	}
}

// Flush writes the buffered output and returns the sticky error, if any.
func (w *Writer) Flush() error {
	w.flush()
	if cap(w.buf) > maxIdleWriteBuf {
		w.buf = nil
	}
	return w.err
}

func (w *Writer) flushIfFull() {
	if len(w.buf) >= flushSize {
		w.flush()
	}
}

// flush writes w.buf, recording any error.
func (w *Writer) flush() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	n, err := w.wr.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	w.err = err
	w.buf = w.buf[:0]
}
