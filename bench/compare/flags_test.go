package main

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlagsLists(t *testing.T) {
	tests := []struct {
		give          []string
		wantConns     []int
		wantPipelines []int
	}{
		{give: nil, wantConns: []int{50}, wantPipelines: []int{1}},
		{give: []string{"-c", "1,10,50"}, wantConns: []int{1, 10, 50}, wantPipelines: []int{1}},
		{give: []string{"-c", "8"}, wantConns: []int{8}, wantPipelines: []int{1}},
		{give: []string{"-c", " 10, 1 ,10", "-P", "1,16"}, wantConns: []int{10, 1}, wantPipelines: []int{1, 16}},
		{give: []string{"-P", "16", "-P", "4"}, wantConns: []int{50}, wantPipelines: []int{4}},
	}
	for _, tt := range tests {
		t.Run(fmtArgs(tt.give), func(t *testing.T) {
			o, err := parseFlags(tt.give, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, tt.wantConns, o.conns)
			assert.Equal(t, tt.wantPipelines, o.pipelines)
		})
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags([]string{"-n", "20000"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 1, o.repeat)
	assert.False(t, o.strace)
	assert.Equal(t, 2000, o.straceRequests, "-strace-n defaults to -n/10")
	assert.Equal(t, []variant{{name: "walnut"}}, o.variants)

	o, err = parseFlags([]string{"-n", "5", "-strace", "-strace-n", "0"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 1, o.straceRequests, "at least one request")

	o, err = parseFlags([]string{"-strace", "-strace-n", "300", "-repeat", "3"}, io.Discard)
	require.NoError(t, err)
	assert.True(t, o.strace)
	assert.Equal(t, 300, o.straceRequests)
	assert.Equal(t, 3, o.repeat)
}

func TestParseFlagsVariants(t *testing.T) {
	tests := []struct {
		give []string
		want []variant
	}{
		{
			give: []string{"-walnut", "gmp1:GOMAXPROCS=1"},
			want: []variant{{name: "walnut"}, {name: "gmp1", env: []string{"GOMAXPROCS=1"}}},
		},
		{
			give: []string{"-walnut", "v1:WALNUT_IOPATH=v1,GOGC=400", "-walnut", "plain"},
			want: []variant{{name: "walnut"}, {name: "v1", env: []string{"WALNUT_IOPATH=v1", "GOGC=400"}}, {name: "plain"}},
		},
		{
			// A value may hold '=' and may be empty.
			give: []string{"-walnut", "dbg:GODEBUG=gctrace=1,EMPTY="},
			want: []variant{{name: "walnut"}, {name: "dbg", env: []string{"GODEBUG=gctrace=1", "EMPTY="}}},
		},
		{
			give: []string{"-walnut", "pf2:WORKERS=2"},
			want: []variant{{name: "walnut"}, {name: "pf2", workers: 2}},
		},
		{
			give: []string{"-walnut", "gor:LOOPS=0", "-walnut", "ev2:LOOPS=2"},
			want: []variant{{name: "walnut"}, {name: "gor", loopsSet: true}, {name: "ev2", loops: 2, loopsSet: true}},
		},
		{
			give: []string{"-walnut-bin", "old=/tmp/walnut-old"},
			want: []variant{{name: "walnut"}, {name: "old", bin: "/tmp/walnut-old"}},
		},
		{
			// Flags naming the same variant combine.
			give: []string{"-walnut-bin", "old=/tmp/w", "-walnut", "old:GOMAXPROCS=1", "-walnut", "old:WORKERS=3"},
			want: []variant{{name: "walnut"}, {name: "old", bin: "/tmp/w", env: []string{"GOMAXPROCS=1"}, workers: 3}},
		},
		{
			give: []string{"-walnut", "old:BIN=/tmp/w"},
			want: []variant{{name: "walnut"}, {name: "old", bin: "/tmp/w"}},
		},
		{
			// A variant named walnut changes the default column.
			give: []string{"-walnut", "b:GOGC=off", "-walnut", "walnut:GOMAXPROCS=2"},
			want: []variant{{name: "walnut", env: []string{"GOMAXPROCS=2"}}, {name: "b", env: []string{"GOGC=off"}}},
		},
	}
	for _, tt := range tests {
		t.Run(fmtArgs(tt.give), func(t *testing.T) {
			o, err := parseFlags(tt.give, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, tt.want, o.variants)
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		give []string
		want string
	}{
		{give: []string{"-c", "0"}, want: `"0" is not a positive integer`},
		{give: []string{"-c", "1,,2"}, want: `"" is not a positive integer`},
		{give: []string{"-P", "x"}, want: `"x" is not a positive integer`},
		{give: []string{"-repeat", "0"}, want: "-repeat must be at least 1"},
		{give: []string{"-strace-n", "-1"}, want: "-strace-n must not be negative"},
		{give: []string{"-t", "nope"}, want: `unknown row "nope"`},
		{give: []string{"-walnut", "direct:A=1"}, want: `variant name "direct" is reserved`},
		{give: []string{"-walnut", "nutcracker"}, want: `variant name "nutcracker" is reserved`},
		{give: []string{"-walnut", "a b:A=1"}, want: `bad variant name "a b"`},
		{give: []string{"-walnut", ":A=1"}, want: `bad variant name ""`},
		{give: []string{"-walnut", "v:A"}, want: `"A" is not KEY=VAL`},
		{give: []string{"-walnut", "v:1A=2"}, want: `bad key "1A"`},
		{give: []string{"-walnut", "v:A=1,A=2"}, want: "A given twice"},
		{give: []string{"-walnut", "v:WORKERS=0"}, want: "WORKERS=\"0\""},
		{give: []string{"-walnut", "v:WORKERS=two"}, want: "WORKERS=\"two\""},
		{give: []string{"-walnut", "v:LOOPS=-1"}, want: "LOOPS=\"-1\""},
		{give: []string{"-walnut", "v:LOOPS=65"}, want: "LOOPS=\"65\""},
		{give: []string{"-walnut", "v:BIN="}, want: "empty BIN"},
		{give: []string{"-walnut-bin", "v"}, want: `"v" is not NAME=PATH`},
		{give: []string{"-walnut-bin", "v=/a", "-walnut-bin", "v=/b"}, want: "BIN given twice"},
		{give: []string{"extra"}, want: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(fmtArgs(tt.give), func(t *testing.T) {
			_, err := parseFlags(tt.give, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestVariantProcessEnv(t *testing.T) {
	tests := []struct {
		name string
		give variant
		want []string
	}{
		{"plain", variant{name: "a"}, nil},
		{"env", variant{name: "a", env: []string{"X=1"}}, []string{"X=1"}},
		{"workers", variant{name: "a", workers: 2, env: []string{"X=1"}}, []string{"X=1", "GOMAXPROCS=1"}},
		{"workers with GOMAXPROCS", variant{name: "a", workers: 2, env: []string{"GOMAXPROCS=2"}}, []string{"GOMAXPROCS=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.give.processEnv())
		})
	}
	assert.Equal(t, "walnut binary /x, 2 worker processes on shared ports (reuseport: true), figures summed over them, environment GOMAXPROCS=1",
		variant{workers: 2}.describe("walnut binary /x"))
}

func TestMatrixAndLabels(t *testing.T) {
	o, err := parseFlags([]string{"-c", "1,10", "-P", "1,16", "-t", "get,mcget,set"}, io.Discard)
	require.NoError(t, err)
	b := &bench{opts: o}
	cells := b.matrix(true)
	var labels []string
	for _, c := range cells[:5] {
		labels = append(labels, c.label(true))
	}
	assert.Equal(t, []string{"get c=1 P=1", "mcget c=1 P=1", "set c=1 P=1", "rb-get c=1 P=1", "rb-set c=1 P=1"}, labels)
	assert.Len(t, cells, 2*2*5)
	assert.Equal(t, "get c=10", cell{row: "get", conns: 10, pipeline: 16}.label(false))

	// The report reads a row down its client counts.
	b.cells = b.matrix(false)
	labels = nil
	for _, c := range b.reportCells()[:4] {
		labels = append(labels, c.label(true))
	}
	assert.Equal(t, []string{"get c=1 P=1", "get c=10 P=1", "mcget c=1 P=1", "mcget c=10 P=1"}, labels)
}

func TestRotate(t *testing.T) {
	ts := []string{"direct", "nutcracker", "walnut"}
	assert.Equal(t, ts, rotate(ts, 0))
	assert.Equal(t, []string{"nutcracker", "walnut", "direct"}, rotate(ts, 1))
	assert.Equal(t, []string{"walnut", "direct", "nutcracker"}, rotate(ts, 5))
	assert.Equal(t, []string{"direct", "nutcracker", "walnut"}, ts, "the argument is not modified")
	assert.Empty(t, rotate([]string(nil), 3))
}

func fmtArgs(args []string) string {
	if len(args) == 0 {
		return "none"
	}
	return strings.Join(args, " ")
}
