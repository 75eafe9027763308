package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiffUsage(t *testing.T) {
	before := usage{cpu: 2 * time.Second, rss: 10 << 20, switches: map[int]uint64{
		100: 50, // main thread: +25
		101: 7,  // unchanged
		102: 30, // exits: its switches in the interval are lost
		103: 40, // exits and its TID is reused by a new thread that has made 5
	}}
	after := usage{cpu: 3 * time.Second, rss: 12 << 20, switches: map[int]uint64{
		100: 75,
		101: 7,
		103: 5,
		104: 12, // new thread
	}}
	d := diffUsage(before, after)
	assert.Equal(t, time.Second, d.cpu)
	assert.Equal(t, int64(12<<20), d.rss)
	assert.Equal(t, uint64(25+0+5+12), d.switches)
	assert.Equal(t, 1, d.threadsGone)
}

func TestTaskSwitches(t *testing.T) {
	status := []byte("Name:\tmemcached\nState:\tS (sleeping)\nTracerPid:\t0\nVmRSS:\t    5400 kB\nThreads:\t10\n" +
		"voluntary_ctxt_switches:\t301\nnonvoluntary_ctxt_switches:\t82\n")
	n, err := taskSwitches(status)
	require.NoError(t, err)
	assert.Equal(t, uint64(383), n)
	rss, err := statusField(status, "VmRSS")
	require.NoError(t, err)
	assert.Equal(t, int64(5400), rss)

	_, err = taskSwitches([]byte("Name:\tx\nvoluntary_ctxt_switches:\t1\n"))
	assert.ErrorContains(t, err, "no nonvoluntary_ctxt_switches line")
}

func TestParseStatCPU(t *testing.T) {
	// pid (comm) state ppid ... utime=fields 14, stime=15; a command name
	// with spaces and parentheses.
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 1000000 300 18446744073709551615\n"
	cpu, err := parseStatCPU([]byte(stat))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cpu)
	_, err = parseStatCPU([]byte("4242 (x) S 1 2"))
	assert.Error(t, err)
}

// TestReadUsageSelf reads this test process's own /proc entries: every
// thread appears, and context switches only grow.
func TestReadUsageSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	pid := os.Getpid()
	before, err := readUsage([]int{pid})
	require.NoError(t, err)
	assert.Contains(t, before.switches, pid, "the main thread")
	assert.Positive(t, before.rss)
	for range 20 {
		time.Sleep(time.Millisecond) // voluntary switches
	}
	after, err := readUsage([]int{pid})
	require.NoError(t, err)
	d := diffUsage(before, after)
	assert.GreaterOrEqual(t, d.cpu, time.Duration(0))
	assert.Positive(t, d.switches)
}
