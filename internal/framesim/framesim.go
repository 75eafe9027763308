// Package framesim simulates, for benchmarks, how the pool's reader loop
// (pool/link.go) frames one reply that arrives in pieces, so that the
// codecs' framers can be measured with and without size hints in the loop
// they serve. It is test support: only _test.go files import it.
package framesim

import "testing"

// PoolRead reads one reply delivered in chunk-byte reads as the pool's
// reader does: it frames only once the bytes an earlier attempt asked for
// have arrived (-n of a hint, else one more byte), and grows its 16 KiB
// buffer as the pool does: to the hint at once if there is one, else by
// doubling. It returns how many times frame was called, and fails tb if
// frame errs or frames anything but the whole reply.
func PoolRead(tb testing.TB, frame func([]byte) (int, error), reply []byte, chunk int) (calls int) {
	buf := make([]byte, 16<<10)
	r, w, need, in := 0, 0, 0, 0
	for {
		if in == len(reply) {
			tb.Fatalf("reply of %d bytes not framed", len(reply))
		}
		n := copy(buf[w:], reply[in:min(in+chunk, len(reply))])
		in += n
		w += n
		if n > 0 && w-r >= need {
			calls++
			m, err := frame(buf[r:w])
			if err != nil {
				tb.Fatal(err)
			}
			if m > 0 {
				if m != len(reply) {
					tb.Fatalf("framed %d bytes of %d", m, len(reply))
				}
				return calls
			}
			need = max(w-r+1, -m)
		}
		if w == len(buf) || r+need > len(buf) {
			size := len(buf)
			if w-r == size || need > size {
				size = max(2*size, need)
			}
			if size != len(buf) {
				nb := make([]byte, size)
				w = copy(nb, buf[r:w])
				buf = nb
			} else {
				w = copy(buf, buf[r:w])
			}
			r = 0
		}
	}
}
