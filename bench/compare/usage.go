package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is a snapshot of what the processes of one target have consumed
// so far, read from /proc (Linux only).
//
// CPU time comes from /proc/PID/stat, whose utime and stime cover every
// thread of the process, including threads that have exited.
//
// Context switches have no such whole-process counter: the
// voluntary_ctxt_switches and nonvoluntary_ctxt_switches lines of
// /proc/PID/status count the main thread alone (with memcached's worker
// threads, that misses almost all of them). They are therefore read per
// thread from /proc/PID/task/TID/status and kept per TID, so that
// diffUsage can match threads across two snapshots: a thread that
// appears between them counts in full, and one that disappears between
// them is counted as gone, its switches since the first snapshot being
// lost.
type usage struct {
	cpu      time.Duration  // utime+stime, summed over the processes
	rss      int64          // VmRSS in bytes, summed over the processes
	switches map[int]uint64 // TID → voluntary+nonvoluntary context switches
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// readUsage takes a snapshot of the processes pids.
func readUsage(pids []int) (usage, error) {
	u := usage{switches: map[int]uint64{}}
	for _, pid := range pids {
		cpu, rss, err := readProcStat(pid)
		if err != nil {
			return u, err
		}
		u.cpu += cpu
		u.rss += rss
		if err := readTaskSwitches(pid, u.switches); err != nil {
			return u, err
		}
	}
	return u, nil
}

// usageDelta is what a target consumed between two snapshots.
type usageDelta struct {
	cpu         time.Duration
	rss         int64  // at the second snapshot
	switches    uint64 // context switches, summed over threads
	threadsGone int    // threads of the first snapshot missing from the second
}

// diffUsage returns what was consumed from before to after, matching
// threads by TID (see usage).
func diffUsage(before, after usage) usageDelta {
	d := usageDelta{cpu: after.cpu - before.cpu, rss: after.rss}
	for tid, n := range after.switches {
		if b, ok := before.switches[tid]; ok && b <= n {
			d.switches += n - b
		} else {
			// A new thread, or (with a smaller count) a TID reused by a
			// new thread: everything it has counted is in the interval.
			d.switches += n
		}
	}
	for tid := range before.switches {
		if _, ok := after.switches[tid]; !ok {
			d.threadsGone++
		}
	}
	return d
}

// readProcStat returns utime+stime from /proc/PID/stat and VmRSS from
// /proc/PID/status.
func readProcStat(pid int) (cpu time.Duration, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	if cpu, err = parseStatCPU(b); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	kb, err := statusField(b, "VmRSS")
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return cpu, kb << 10, nil
}

// parseStatCPU returns utime+stime from the text of /proc/PID/stat.
func parseStatCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) may contain spaces; fields resume after
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// statusField returns the leading number of the line "name:" of a
// /proc status file.
func statusField(b []byte, name string) (int64, error) {
	for line := range strings.Lines(string(b)) {
		rest, found := strings.CutPrefix(line, name+":")
		if !found {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("empty %s", name)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no %s line", name)
}

// taskSwitches returns voluntary_ctxt_switches + nonvoluntary_ctxt_switches
// from the text of a /proc status file.
func taskSwitches(b []byte) (uint64, error) {
	v, err1 := statusField(b, "voluntary_ctxt_switches")
	nv, err2 := statusField(b, "nonvoluntary_ctxt_switches")
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return uint64(v + nv), nil
}

// readTaskSwitches adds the context switches of every thread of pid to
// m, by TID. A thread that exits while the directory is read is skipped.
func readTaskSwitches(pid int, m map[int]uint64) error {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name() + "/status")
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return err
		}
		n, err := taskSwitches(b)
		if err != nil {
			return fmt.Errorf("%s/%d/status: %w", dir, tid, err)
		}
		m[tid] = n
	}
	return nil
}
