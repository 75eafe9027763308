package resp

import (
	"io"

	"github.com/walnutproxy/walnut/internal/bytesconv"
)

// DefaultWriterSize is the buffer size of a Writer made by NewWriter.
const DefaultWriterSize = 16 << 10

// A Writer encodes replies and commands into a buffer and writes the
// buffer to an io.Writer when it fills and on Flush, so a batch of replies
// costs one write. Bulk strings and raw writes as large as the buffer skip
// it and go straight to the io.Writer, so the buffer never grows to hold
// them; should it grow anyway (a large Value, many small writes between
// checks), Flush drops it once it is more than twice its size.
//
// The error is sticky, as in bufio.Writer: after a write fails, the Writer
// discards everything it is given and Flush returns that error, until
// Reset. Only Flush and Write report it; the typed methods return nothing,
// so a batch is written and then checked once with Flush.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	w    io.Writer
	buf  []byte
	size int
	err  error
}

// NewWriter returns a Writer with a DefaultWriterSize buffer.
func NewWriter(w io.Writer) *Writer {
	return NewWriterSize(w, DefaultWriterSize)
}

// NewWriterSize returns a Writer whose buffer holds size bytes (at least
// 16).
func NewWriterSize(w io.Writer, size int) *Writer {
	size = max(size, minBufferSize)
	return &Writer{w: w, size: size}
}

// Reset discards buffered data and any error and makes w write to dst.
func (w *Writer) Reset(dst io.Writer) {
	w.w = dst
	w.err = nil
	w.release()
}

// Buffered returns the number of bytes written into the buffer and not
// yet flushed.
func (w *Writer) Buffered() int {
	return len(w.buf)
}

// Flush writes the buffered data to the io.Writer and returns the sticky
// error, if any.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	w.send(w.buf)
	w.release()
	return w.err
}

// release empties the buffer, dropping it if it grew past twice its size.
func (w *Writer) release() {
	if cap(w.buf) > 2*w.size {
		w.buf = nil
		return
	}
	w.buf = w.buf[:0]
}

// send writes p to the io.Writer, recording the first error.
func (w *Writer) send(p []byte) {
	n, err := w.w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
	}
}

// begin readies the buffer for appending; it reports false once the
// Writer has failed.
func (w *Writer) begin() bool {
	if w.err != nil {
		return false
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, w.size)
	}
	return true
}

// end flushes the buffer if it is full.
func (w *Writer) end() {
	if len(w.buf) >= w.size {
		w.send(w.buf)
		w.release()
	}
}

// large writes the buffer and then p straight to the io.Writer, if p is as
// large as the buffer; it reports whether it did.
func (w *Writer) large(p []byte) bool {
	if len(p) < w.size {
		return false
	}
	if len(w.buf) > 0 {
		w.send(w.buf)
		w.release()
	}
	if w.err == nil {
		w.send(p)
	}
	return true
}

// Write writes p unchanged, for forwarding frames that are already
// encoded. It implements io.Writer; after a failure it returns 0 and the
// sticky error.
func (w *Writer) Write(p []byte) (int, error) {
	if !w.begin() {
		return 0, w.err
	}
	if !w.large(p) {
		w.buf = append(w.buf, p...)
		w.end()
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteArrayHeader writes the header of an array of n elements; the n
// elements must follow.
func (w *Writer) WriteArrayHeader(n int) {
	if w.begin() {
		w.buf = AppendArrayHeader(w.buf, n)
		w.end()
	}
}

// WriteBulk writes b as a bulk string.
func (w *Writer) WriteBulk(b []byte) {
	if !w.begin() {
		return
	}
	w.buf = appendHeader(w.buf, TypeBulk, int64(len(b)))
	if !w.large(b) {
		w.buf = append(w.buf, b...)
	} else if !w.begin() {
		return
	}
	w.buf = append(w.buf, '\r', '\n')
	w.end()
}

// WriteBulkString writes s as a bulk string.
func (w *Writer) WriteBulkString(s string) {
	w.WriteBulk(bytesconv.StringToBytes(s))
}

// WriteNullBulk writes a nil bulk string.
func (w *Writer) WriteNullBulk() {
	if w.begin() {
		w.buf = AppendNullBulk(w.buf)
		w.end()
	}
}

// WriteNullArray writes a nil array.
func (w *Writer) WriteNullArray() {
	if w.begin() {
		w.buf = AppendNullArray(w.buf)
		w.end()
	}
}

// WriteInt writes an integer reply.
func (w *Writer) WriteInt(n int64) {
	if w.begin() {
		w.buf = AppendInt(w.buf, n)
		w.end()
	}
}

// WriteSimple writes a simple string reply; see AppendSimple.
func (w *Writer) WriteSimple(s string) {
	if w.begin() {
		w.buf = AppendSimple(w.buf, s)
		w.end()
	}
}

// WriteError writes an error reply; see AppendError.
func (w *Writer) WriteError(msg string) {
	if w.begin() {
		w.buf = AppendError(w.buf, msg)
		w.end()
	}
}

// WriteCommand writes a command as an array of bulk strings.
func (w *Writer) WriteCommand(args ...[]byte) {
	w.WriteArrayHeader(len(args))
	for _, a := range args {
		w.WriteBulk(a)
	}
}

// WriteCommandString is WriteCommand for string arguments.
func (w *Writer) WriteCommandString(args ...string) {
	w.WriteArrayHeader(len(args))
	for _, a := range args {
		w.WriteBulkString(a)
	}
}

// WriteValue writes v; see AppendValue.
func (w *Writer) WriteValue(v Value) {
	if w.begin() {
		w.buf = AppendValue(w.buf, v)
		w.end()
	}
}
