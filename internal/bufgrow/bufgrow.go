// Package bufgrow is the growth policy of walnut's read buffers (the
// codecs' Readers and the pool's reply buffer): how large a full buffer
// becomes when the frame being read does not fit.
//
// A buffer doubles, so that memory follows the bytes received and not the
// length a header announces. Doubling alone costs a large frame twice its
// size in buffers left behind, plus the copy from the last one; so once
// enough of a large frame has arrived to take its announced length
// seriously (Exact), the buffer grows to that length at once. A peer that
// announces a frame of n bytes can then hold n bytes of memory by sending
// n/32 of them, and a frame of n bytes costs about 1.06 n.
package bufgrow

// ExactMin is the smallest frame for which the buffer grows to the
// frame's length at once: smaller frames only double.
const ExactMin = 1 << 20

// Next returns the new length of a full buffer of length cur that holds
// have bytes of a frame of need bytes (0 or less if unknown).
func Next(cur, have, need int) int {
	size := 2 * cur
	switch {
	case need <= cur:
		return size // unknown, or the frame fits once moved: grow anyway
	case need <= size:
		return need
	case Exact(have, need):
		return need
	}
	return size
}

// Exact reports whether a frame of need bytes of which have have arrived
// is large enough, and far enough along, to size its buffer to need.
func Exact(have, need int) bool {
	return need >= ExactMin && have >= max(ExactMin/16, need/32)
}
