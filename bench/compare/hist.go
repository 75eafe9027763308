package main

import "math/bits"

// hist is a log-linear histogram of durations in nanoseconds: values below
// 2^subBits are counted exactly, larger ones in 2^subBits sub-buckets per
// power of two, so every recorded value is known to within 1/2^subBits
// (about 1.6%). It is not safe for concurrent use; each load-generating
// connection keeps its own and they are merged at the end of a row.
type hist struct {
	counts []uint64
	total  uint64
	max    uint64
}

const subBits = 6

func newHist() *hist { return &hist{counts: make([]uint64, (64-subBits+1)<<subBits)} }

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// lowOf returns the smallest value that falls in bucket i; the bucket's
// values are lowOf(i) to lowOf(i+1)-1.
func lowOf(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	return uint64(i&(1<<subBits-1)+1<<subBits) << shift
}

// record adds n observations of value v.
func (h *hist) record(v, n uint64) {
	h.counts[bucketOf(v)] += n
	h.total += n
	h.max = max(h.max, v)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value below or at which a fraction q of the
// observations lie, as the midpoint of its bucket (capped by the maximum).
func (h *hist) quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	if rank >= h.total {
		rank = h.total - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			lo, hi := lowOf(i), lowOf(i+1)
			return min(lo+(hi-lo)/2, h.max)
		}
	}
	return h.max
}
