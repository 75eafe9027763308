package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpread(t *testing.T) {
	tests := []struct {
		name string
		give []float64
		want spread
		text string
	}{
		{"none", nil, spread{}, "—"},
		{"one", []float64{12.345}, spread{med: 12.345, min: 12.345, max: 12.345, n: 1}, "12.3"},
		{"odd", []float64{3, 1, 2}, spread{med: 2, min: 1, max: 3, n: 3}, "2.00 [1.00–3.00]"},
		{"even", []float64{4, 1, 2, 10}, spread{med: 3, min: 1, max: 10, n: 4}, "3.00 [1.00–10.0]"},
		{"equal when formatted", []float64{1500.2, 1500.4}, spread{med: 1500.3, min: 1500.2, max: 1500.4, n: 2}, "1500"},
		{"negative", []float64{-5, 20}, spread{med: 7.5, min: -5, max: 20, n: 2}, "7.50 [-5.00–20.0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spreadOf(tt.give)
			assert.InDelta(t, tt.want.med, got.med, 1e-9)
			assert.Equal(t, tt.want.min, got.min)
			assert.Equal(t, tt.want.max, got.max)
			assert.Equal(t, tt.want.n, got.n)
			assert.Equal(t, tt.text, got.format(num))
		})
	}
	assert.Equal(t, "1.25×", times(1.25))
	assert.Equal(t, "12346", whole(12345.6))
}

// syntheticBench is a finished run of one cell (get c=1) against direct,
// nutcracker and walnut over two repetitions, with figures chosen so that
// every derived figure is easy to check.
func syntheticBench(t *testing.T) (*bench, cell) {
	o, err := parseFlags([]string{"-c", "1", "-t", "get", "-repeat", "2", "-strace"}, io.Discard)
	require.NoError(t, err)
	c := cell{row: "get", conns: 1, pipeline: 1}
	us := func(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }
	r := func(target string, rep int, ops, p50, p99, cpu, sw float64) result {
		return result{cell: c, target: target, rep: rep, ops: ops, p50: us(p50), p99: us(p99), p999: us(p99 * 2),
			cpu: time.Duration(cpu) * time.Millisecond, cpuPerReq: cpu, switchesPerReq: sw, rss: 8 << 20}
	}
	b := &bench{opts: o, cells: []cell{c}}
	for _, name := range []string{"direct", "nutcracker", "walnut"} {
		b.targets = append(b.targets, target{name: name, desc: name + " target"})
	}
	b.results = []result{
		r("direct", 0, 30000, 30, 60, 10, 1),
		r("nutcracker", 0, 10000, 70, 160, 40, 2),
		r("walnut", 0, 8000, 90, 260, 60, 6),
		r("direct", 1, 32000, 32, 70, 12, 1),
		r("nutcracker", 1, 12000, 72, 170, 50, 2),
		r("walnut", 1, 9000, 102, 170, 50, 4),
	}
	b.results[2].sys = &sysCounts{calls: map[string]uint64{"read": 300, "write": 200, "futex": 100}, total: 600}
	b.results[2].sysRequests = 100
	return b, c
}

func TestDerivedFigures(t *testing.T) {
	b, c := syntheticBench(t)
	p50 := func(r *result) time.Duration { return r.p50 }
	p99 := func(r *result) time.Duration { return r.p99 }

	// Added latency: target minus direct in the same repetition.
	assert.Equal(t, spread{med: 65, min: 60, max: 70, n: 2}, b.spread(b.added(p50), c, "walnut"))
	assert.Equal(t, spread{med: 40, min: 40, max: 40, n: 2}, b.spread(b.added(p50), c, "nutcracker"))
	assert.Equal(t, 0, b.spread(b.added(p50), c, "direct").n, "direct adds nothing to itself")

	// Ratios to nutcracker, per repetition.
	cpu := b.spread(toNutcracker(b.cpu()), c, "walnut") // 60/40, 50/50
	assert.InDelta(t, 1.25, cpu.med, 1e-9)
	assert.InDelta(t, 1.0, cpu.min, 1e-9)
	assert.InDelta(t, 1.5, cpu.max, 1e-9)
	added := b.spread(toNutcracker(b.added(p50)), c, "walnut") // 60/40, 70/40
	assert.InDelta(t, 1.625, added.med, 1e-9)
	ops := b.spread(toNutcracker(b.ops()), c, "walnut") // 0.8, 0.75
	assert.InDelta(t, 0.775, ops.med, 1e-9)
	assert.Equal(t, 0, b.spread(toNutcracker(b.cpu()), c, "nutcracker").n)
	assert.Equal(t, 0, b.spread(toNutcracker(b.cpu()), c, "direct").n)

	// Added p99 of walnut in repetition 1 is 100, nutcracker's 100.
	assert.Equal(t, spread{med: 150, min: 100, max: 200, n: 2}, b.spread(b.added(p99), c, "walnut"))

	// A ratio needs a positive figure on both sides.
	b.results[4].p50 = b.results[3].p50 - time.Microsecond // nutcracker faster than direct
	assert.Equal(t, 1, b.spread(toNutcracker(b.added(p50)), c, "walnut").n)

	// A failed pass drops out of every figure of its repetition.
	b.results[3].err = assert.AnError
	assert.Equal(t, 1, b.spread(b.added(p50), c, "walnut").n)
	assert.Equal(t, 2, b.spread(b.cpu(), c, "walnut").n)

	// Strace: per request.
	assert.Equal(t, spread{med: 6, min: 6, max: 6, n: 1}, b.spread(b.sysPerReq(""), c, "walnut"))
	assert.Equal(t, spread{med: 3, min: 3, max: 3, n: 1}, b.spread(b.sysPerReq("read"), c, "walnut"))
	assert.Equal(t, 0, b.spread(b.sysPerReq(""), c, "nutcracker").n)
}

func TestMarkdown(t *testing.T) {
	b, _ := syntheticBench(t)
	md := b.markdown()
	for _, want := range []string{
		"| cell | direct | nutcracker | walnut |",
		"| get c=1 | 11.0 | 45.0 | 55.0 (1.25×) |", // CPU µs per request
		"| cell | nutcracker | walnut |",
		"| get c=1 | 40.0 | 65.0 (1.62×) |", // added p50 (1.625 rounds to even)
		"| get c=1 | 31000 | 11000 | 8500 (0.78×) |",
		"| get c=1 | walnut | 8500 [8000–9000] | 96.0 [90.0–102] |",
		"| 55.0 [50.0–60.0] | 5.00 [4.00–6.00] | 8.00 | 0.78× [0.75×–0.80×] | 1.25× [1.00×–1.50×] | 1.62× [1.50×–1.75×] |",
		"## System calls per request (strace pass)",
		"| cell | target | requests | total | read | write | futex |",
		"| get c=1 | walnut | 100 (1 of 2) | 6.00 (1 of 2) | 3.00 (1 of 2) | 2.00 (1 of 2) | 1.00 (1 of 2) |", // one traced repetition
		"- **walnut**: walnut target",
	} {
		assert.Contains(t, md, want)
	}
	assert.NotContains(t, md, "## Failures")
	assert.Contains(t, md, "The least CPU time measured in one pass was 10ms (1 clock tick(s)), so the CPU figures of the cheapest passes may be off by up to 100%")

	b.results[5].err = assert.AnError
	md = b.markdown()
	assert.Contains(t, md, "## Failures\n\n- get c=1 P=1, walnut, repetition 2: "+assert.AnError.Error())
	assert.Contains(t, md, "| get c=1 | 11.0 | 45.0 | 60.0 (1.50×) |", "the failed repetition is left out")
	assert.True(t, strings.HasSuffix(md, "\n"))
}

func TestDetailPartial(t *testing.T) {
	b, c := syntheticBench(t)
	b.results[4].p50 = b.results[3].p50 // nutcracker adds nothing in repetition 2
	p50 := func(r *result) time.Duration { return r.p50 }
	assert.Equal(t, "1.50× (1 of 2)", b.detail(toNutcracker(b.added(p50)), c, "walnut", times))
	assert.Equal(t, "55.0 [50.0–60.0]", b.detail(b.cpu(), c, "walnut", num))
	assert.Equal(t, "—", b.detail(b.cpu(), c, "nobody", num))
	assert.Contains(t, b.markdown(), "| 1.50× (1 of 2) | ")
}
