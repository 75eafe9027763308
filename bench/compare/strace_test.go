package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStraceSummary(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantCalls map[string]uint64
		wantTotal uint64
		wantTop   []string
	}{
		{
			name: "strace 6",
			give: `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 39.46    0.038238        4779         8         1 futex
 36.58    0.035440          17      2001           write
 18.38    0.017813           8      2019           read
  1.51    0.001459          29        50           epoll_pwait
  0.64    0.000621          11        53         2 accept4
------ ----------- ----------- --------- --------- ----------------
100.00    0.096894          21      4131         3 total
`,
			wantCalls: map[string]uint64{"futex": 8, "write": 2001, "read": 2019, "epoll_pwait": 50, "accept4": 53},
			wantTotal: 4131,
			wantTop:   []string{"read", "write", "accept4"},
		},
		{
			name: "messages before the header, no total line",
			give: `strace: Process 123 attached with 3 threads
strace: Process 123 detached
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 50.00    0.000010           1        10           write
 50.00    0.000010           1        10           read
`,
			wantCalls: map[string]uint64{"write": 10, "read": 10},
			wantTotal: 20,
			wantTop:   []string{"read", "write"},
		},
		{
			name:      "nothing traced",
			give:      "% time     seconds  usecs/call     calls    errors syscall\n------ ----------- ----------- --------- --------- ----------------\n------ ----------- ----------- --------- --------- ----------------\n100.00    0.000000           0         0           total\n",
			wantCalls: map[string]uint64{},
			wantTotal: 0,
			wantTop:   []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := parseStraceSummary(tt.give)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCalls, sc.calls)
			assert.Equal(t, tt.wantTotal, sc.total)
			assert.Equal(t, tt.wantTop, sc.top(3))
		})
	}
}

func TestParseStraceSummaryErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"empty", "", "no header line"},
		{"no header", " 50.00    0.000010           1        10           write\n", "no header line"},
		{"bad count", "% time     seconds  usecs/call     calls    errors syscall\n 50.00    0.000010           1        ten           write\n", `line "50.00`},
		{"short line", "% time     seconds  usecs/call     calls    errors syscall\n 50.00    0.000010\n", "short line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStraceSummary(tt.give)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
