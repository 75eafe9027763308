package resp

import "github.com/walnutproxy/walnut/protocol"

// EstimateArray guesses how long the array of bulk strings at the start of
// b will be once complete, when b holds part of it and the string being
// read is the large one that made a buffer outgrow: the bytes up to the
// end of that string, plus, for each element still to come, as many
// bytes as the largest string seen so far (an MGET of values of one size
// is then sized at once, rather than growing element by element). It
// returns 0 when it has no estimate: b does not start with a RESP2 array
// of bulk strings and nils, the array is complete, or the string being
// read is not known yet. The estimate is a guess, not a bound: the
// elements to come may be smaller, or larger.
func EstimateArray(b []byte, lim protocol.Limits) int {
	lim = lim.WithDefaults()
	if len(b) == 0 || b[0] != TypeArray {
		return 0
	}
	count, p, err := numberLine(b, 0, &lim, false)
	if p == 0 || err != nil || count <= 0 {
		return 0
	}
	largest := 0
	for i := int64(0); i < count; i++ {
		if p >= len(b) || b[p] != TypeBulk {
			return 0
		}
		n, q, err := numberLine(b, p, &lim, false)
		if q == 0 || err != nil || n < -1 || n > int64(lim.MaxBulk) {
			return 0
		}
		if n == -1 {
			p = q
			continue
		}
		end := q + int(n) + 2
		header := q - p
		largest = max(largest, header+int(n)+2)
		if end > len(b) {
			// The string being read: the elements after it as large
			// as the largest so far.
			rest := count - i - 1
			if rest > int64(lim.MaxBulk)/int64(largest+estimateSlack) {
				return 0
			}
			// A later header may have more digits: estimateSlack
			// bytes more each.
			return end + int(rest)*(largest+estimateSlack)
		}
		p = end
	}
	return 0
}

// estimateSlack is what EstimateArray adds for each element to come beyond
// the largest so far: its header may have more digits.
const estimateSlack = 16
