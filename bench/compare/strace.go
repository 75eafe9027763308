package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysCounts is the summary strace -c prints: system calls by name.
type sysCounts struct {
	calls map[string]uint64
	total uint64
}

// parseStraceSummary parses the table strace -c writes when it detaches:
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 36.58    0.035440          17      2001           write
//	...
//	------ ----------- ----------- --------- --------- ----------------
//	100.00    0.096894          21      4524         3 total
//
// The errors column is blank for a call that never failed, so the calls
// column is found by its header and the name is the last field. Lines
// before the header (strace's own messages) are ignored. Without a total
// line, the total is the sum of the rows.
func parseStraceSummary(text string) (sysCounts, error) {
	sc := sysCounts{calls: map[string]uint64{}}
	callsCol := -1
	sawTotal := false
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if callsCol < 0 {
			for i, h := range f {
				if h == "calls" && f[len(f)-1] == "syscall" {
					callsCol = i
					if f[0] == "%" {
						callsCol-- // "% time" is two fields in the header, one in the rows
					}
				}
			}
			continue
		}
		if len(f) == 0 || strings.HasPrefix(f[0], "---") {
			continue
		}
		if len(f) <= callsCol+1 {
			return sc, fmt.Errorf("strace summary: short line %q", strings.TrimSpace(line))
		}
		n, err := strconv.ParseUint(f[callsCol], 10, 64)
		if err != nil {
			return sc, fmt.Errorf("strace summary: line %q: %w", strings.TrimSpace(line), err)
		}
		if name := f[len(f)-1]; name == "total" {
			sc.total, sawTotal = n, true
		} else {
			sc.calls[name] += n
		}
	}
	if callsCol < 0 {
		return sc, errors.New("strace summary: no header line")
	}
	if !sawTotal {
		for _, n := range sc.calls {
			sc.total += n
		}
	}
	return sc, nil
}

// top returns the names of the n most frequent system calls, most
// frequent first (ties by name).
func (sc sysCounts) top(n int) []string {
	names := make([]string, 0, len(sc.calls))
	for name := range sc.calls {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := sc.calls[names[i]], sc.calls[names[j]]
		if a != b {
			return a > b
		}
		return names[i] < names[j]
	})
	return names[:min(n, len(names))]
}

// attachTimeout bounds how long strace may take to attach to every thread.
const attachTimeout = 10 * time.Second

// strace runs f with strace -c -f attached to the processes pids and
// returns strace's summary. strace is started by the tool, f runs once
// every thread of pids has strace as its tracer, and strace is then
// stopped with SIGINT, which makes it detach and write its summary.
func (b *bench) strace(ctx context.Context, label string, pids []int, f func() error) (sysCounts, error) {
	b.straceSeq++
	name := fmt.Sprintf("strace-%d", b.straceSeq)
	summary := filepath.Join(b.dir, name+".txt")
	args := []string{"-c", "-f", "-q", "-o", summary}
	for _, pid := range pids {
		args = append(args, "-p", strconv.Itoa(pid))
	}
	p, err := b.ps.start(name, b.straceBin, nil, args...)
	if err != nil {
		return sysCounts{}, err
	}
	defer p.stopWith(syscall.SIGINT)
	if err := waitTraced(ctx, p, pids); err != nil {
		return sysCounts{}, fmt.Errorf("%s: %w", label, err)
	}
	if err := f(); err != nil {
		return sysCounts{}, err
	}
	p.stopWith(syscall.SIGINT)
	text, err := os.ReadFile(summary)
	if err != nil {
		return sysCounts{}, fmt.Errorf("strace wrote no summary (%w); output: %s", err, tailFile(p.log))
	}
	return parseStraceSummary(string(text))
}

// waitTraced waits until every thread of pids has the strace process p as
// its tracer (TracerPid in /proc/PID/task/TID/status).
func waitTraced(ctx context.Context, p *proc, pids []int) error {
	deadline := time.Now().Add(attachTimeout)
	for {
		ok, err := allTraced(pids, p.pid)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("strace exited before attaching: %s", strings.TrimSpace(tailFile(p.log)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("strace did not attach within %v: %s", attachTimeout, strings.TrimSpace(tailFile(p.log)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func allTraced(pids []int, tracer int) (bool, error) {
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/task", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return false, err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
			if err != nil {
				continue // the thread has exited
			}
			v, err := statusField(b, "TracerPid")
			if err != nil {
				return false, err
			}
			if int(v) != tracer {
				return false, nil
			}
		}
	}
	return true, nil
}
