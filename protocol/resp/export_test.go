package resp

import "github.com/walnutproxy/walnut/protocol"

// ReaderBufferSizeForTest reports the size of r's buffer.
func ReaderBufferSizeForTest(r *Reader) int { return len(r.buf) }

// WriterBufferCapForTest reports the capacity of w's buffer.
func WriterBufferCapForTest(w *Writer) int { return cap(w.buf) }

// CheckFastPathsForTest runs each parser fast path on b and, where it
// accepts b, the general path too, and returns a description of the first
// disagreement, or "".
func CheckFastPathsForTest(b []byte, lim protocol.Limits) string {
	lim = lim.WithDefaults()
	if size, start := fastBulkHeader(b, 0, &lim); start > 0 {
		if size2, start2, err := bulkHeader(b, 0, &lim); err != nil || size2 != size || start2 != start {
			return "fastBulkHeader disagrees with bulkHeader"
		}
	}
	if len(b) > 0 && b[0] == '*' {
		if v, next, ok := fastLen(b, 0); ok && next <= lim.MaxLine {
			i := requestLine(b, 0, lim.MaxLine)
			if v2, ok2 := string2ll(b[1:max(i, 1)]); i < 0 || !ok2 || int(v2) != v || i+2 != next {
				return "fastLen disagrees with requestLine and string2ll"
			}
		}
	}
	if end, n := scalarEnd(b, 0, &lim); end > 0 {
		var t token
		err := nextToken(b, 0, &lim, &t)
		switch {
		case err != nil || t.end != end:
			return "scalarEnd disagrees with nextToken on the end"
		case t.typ == TypeBulk && (int(t.n) != n || len(t.str) != n):
			return "scalarEnd disagrees with nextToken on the bulk"
		case t.typ == TypeInt && t.n != int64(n):
			return "scalarEnd disagrees with nextToken on the integer"
		}
	}
	return ""
}
