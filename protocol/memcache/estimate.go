package memcache

import "github.com/walnutproxy/walnut/protocol"

// EstimateValues guesses how long the retrieval response at the start of
// b, the answer to a get of nkeys keys, will be once complete, when b
// holds part of it and the value being read is the large one that made a
// buffer outgrow: the bytes up to the end of that value's block, plus, for
// each key still to come, a block as large as the largest so far (and a
// little more, for a longer VALUE line), plus END. It returns 0 when it has no estimate: b does not start with VALUE
// blocks, the value being read is not known yet, or no key is left. The
// estimate is a guess, not a bound: keys may be missing, and values
// smaller or larger.
func EstimateValues(b []byte, nkeys int, lim protocol.Limits) int {
	lim = lim.WithDefaults()
	p, largest := 0, 0
	for i := range nkeys {
		var v Value
		n, need, err := parseValue(b[p:], lim, &v)
		switch {
		case err != nil:
			return 0
		case n > 0:
			largest = max(largest, n)
			p += n
			continue
		case need == 0:
			return 0 // the VALUE line is not complete
		}
		largest = max(largest, need)
		rest := nkeys - i - 1
		if rest > lim.MaxBulk/(largest+estimateSlack) {
			return 0
		}
		// Each block may have a longer VALUE line (a longer key, more
		// digits): estimateSlack bytes more each.
		return p + need + rest*(largest+estimateSlack) + len("END\r\n")
	}
	return 0
}

// estimateSlack is what EstimateValues adds for each block to come beyond
// the largest so far: a VALUE line may be longer by a key of up to
// MaxKeyLen bytes and more digits.
const estimateSlack = MaxKeyLen + 40

// CountKeys returns the number of keys of the retrieval request raw (get,
// gets, gat, gats), for EstimateValues; 0 for another request.
func CountKeys(raw []byte, cmd Command) int {
	skip := 1 // the command
	switch cmd {
	case Get, Gets:
	case Gat, Gats:
		skip = 2 // and the exptime
	default:
		return 0
	}
	n, in := 0, false
	for _, c := range raw {
		if c == '\r' || c == '\n' {
			break
		}
		if c == ' ' {
			in = false
			continue
		}
		if !in {
			in = true
			n++
		}
	}
	return max(0, n-skip)
}
