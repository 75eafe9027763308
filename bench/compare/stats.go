package main

import (
	"fmt"
	"math"
	"slices"
)

// spread summarises one figure over the repetitions of a run.
type spread struct {
	med, min, max float64
	n             int // repetitions with a value; 0: none
}

// spreadOf returns the median, minimum and maximum of vals (the median of
// an even count is the mean of the middle two).
func spreadOf(vals []float64) spread {
	if len(vals) == 0 {
		return spread{}
	}
	s := slices.Sorted(slices.Values(vals))
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{med: med, min: s[0], max: s[n-1], n: n}
}

// format writes s as "med [min–max]" with f formatting each number: "—"
// without values, and the median alone when every repetition agrees (as
// with one repetition).
func (s spread) format(f func(float64) string) string {
	if s.n == 0 {
		return "—"
	}
	med, lo, hi := f(s.med), f(s.min), f(s.max)
	if lo == hi {
		return med
	}
	return fmt.Sprintf("%s [%s–%s]", med, lo, hi)
}

// num formats a figure with three significant digits or more: 1234,
// 123, 12.3, 1.23, 0.12.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// whole formats a figure rounded to an integer (throughput).
func whole(v float64) string { return fmt.Sprintf("%.0f", v) }

// times formats a ratio.
func times(v float64) string { return fmt.Sprintf("%.2f×", v) }
