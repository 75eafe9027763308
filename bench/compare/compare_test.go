package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// TestRun runs the tool in a tiny configuration against real binaries and
// checks that every target has figures in the table and that no process it
// started survives.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole benchmark tool against real servers: not part of the -short loop")
	}
	testserver.RequireBinary(t, "redis-server")
	testserver.RequireBinary(t, "memcached")
	targets := []string{"direct", "walnut"}
	if lookBinary("nutcracker") != "" {
		targets = []string{"direct", "nutcracker", "walnut"}
	} else {
		testserver.RequireBinary(t, "nutcracker") // fails with CI=true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "results.md")
	var stdout, stderr bytes.Buffer
	b := &bench{}
	err := runBench(ctx, []string{"-servers", "2", "-n", "2000", "-c", "4", "-t", "set,get,mcget", "-out", out}, &stdout, &stderr, b)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	table := stdout.String()
	t.Logf("\n%s", table)
	md, err := os.ReadFile(out)
	if err != nil || string(md) != table {
		t.Errorf("-out file differs from stdout (err %v)", err)
	}
	if _, err := os.Stat(strings.TrimSuffix(out, ".md") + ".svg"); err != nil {
		t.Errorf("no chart: %v", err)
	}
	for _, row := range []string{"set", "get", "mcget"} {
		for _, target := range targets {
			// Details: ops/s, p50, p99, p999, and then (direct has no added
			// latency) CPU µs/req, ctx sw/req, RSS MiB, ratios, error replies.
			re := regexp.MustCompile(`(?m)^\| ` + row + ` c=4 \| ` + target + ` \| [1-9][0-9]* \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| (—|-?[0-9.]+) \| (—|-?[0-9.]+) \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| .* \| 0 \|$`)
			if !re.MatchString(table) {
				t.Errorf("no figures for row %s, target %s", row, target)
			}
		}
		if !regexp.MustCompile(`(?m)^\| `+row+` c=4 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \([0-9.]+×\) \|$`).MatchString(table) && len(targets) == 3 {
			t.Errorf("no CPU ratio for row %s", row)
		}
	}
	pids := b.ps.pids()
	if want := 2*2 + len(targets) - 1; len(pids) != want {
		t.Errorf("started %d processes, want %d", len(pids), want)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after run (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s not removed: %v", b.dir, err)
	}
}

// TestRunCancelled checks that cancelling the context (as Ctrl-C does)
// stops the run and every process it started.
func TestRunCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole benchmark tool against real servers: not part of the -short loop")
	}
	testserver.RequireBinary(t, "redis-server")
	testserver.RequireBinary(t, "memcached")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	var stderr syncBuffer
	b := &bench{}
	go func() {
		// Cancel once the first row is under way.
		for ctx.Err() == nil && !strings.Contains(stderr.String(), "started walnut") {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	err := runBench(ctx, []string{"-servers", "1", "-n", "100000000", "-c", "2", "-t", "get", "-out", ""}, &stdout, &stderr, b)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled\nstderr:\n%s", err, stderr.String())
	}
	for _, pid := range b.ps.pids() {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after run (kill 0: %v)", pid, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunVariants runs two repetitions of a two-cell matrix against
// walnut variants, one of them two worker processes, with the strace
// pass when strace is installed, and checks that every target has
// figures and that no process the tool started survives.
func TestRunVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole benchmark tool against real servers: not part of the -short loop")
	}
	testserver.RequireBinary(t, "redis-server")
	testserver.RequireBinary(t, "memcached")
	args := []string{"-servers", "1", "-n", "1000", "-c", "1,3", "-t", "get", "-repeat", "2",
		"-walnut", "g1:GOMAXPROCS=1", "-walnut", "pf2:WORKERS=2", "-out", ""}
	withStrace := lookBinary("strace") != ""
	if withStrace {
		args = append(args, "-strace", "-strace-n", "200")
	}
	targets := []string{"direct", "walnut", "g1", "pf2"}
	if lookBinary("nutcracker") != "" {
		targets = []string{"direct", "nutcracker", "walnut", "g1", "pf2"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	b := &bench{}
	err := runBench(ctx, args, &stdout, &stderr, b)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	table := stdout.String()
	t.Logf("\n%s", table)
	if got := len(b.results); got != 2*2*len(targets) {
		t.Errorf("%d results, want %d", got, 2*2*len(targets))
	}
	for _, r := range b.results {
		if r.err != nil || r.ops <= 0 {
			t.Errorf("%s %s repetition %d: ops %v, err %v", r.cell.label(true), r.target, r.rep, r.ops, r.err)
		}
		if withStrace && (r.sysErr != nil || r.sys == nil || r.sys.total == 0) {
			t.Errorf("%s %s repetition %d: strace pass: %v", r.cell.label(true), r.target, r.rep, r.sysErr)
		}
	}
	for _, tg := range b.targets {
		if want := map[bool]int{true: 2, false: 1}[tg.name == "pf2"]; len(tg.redisPIDs) != want {
			t.Errorf("target %s has %d processes, want %d", tg.name, len(tg.redisPIDs), want)
		}
	}
	for _, c := range []string{"get c=1", "get c=3"} {
		for _, target := range targets {
			if !regexp.MustCompile(`(?m)^\| ` + c + ` \| ` + target + ` \| [1-9][0-9]*( \[[0-9]+–[0-9]+\])? \|`).MatchString(table) {
				t.Errorf("no details for %s, target %s", c, target)
			}
		}
	}
	if withStrace && !strings.Contains(table, "## System calls per request (strace pass)") {
		t.Errorf("no strace table")
	}
	for _, pid := range b.ps.pids() {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after run (kill 0: %v)", pid, err)
		}
	}
}

// TestRunStraceMissing checks that -strace without strace fails at once,
// with a message saying so.
func TestRunStraceMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	b := &bench{}
	err := runBench(context.Background(), []string{"-strace", "-out", ""}, &stdout, &stderr, b)
	if err == nil || !strings.Contains(err.Error(), "-strace: strace is not installed") {
		t.Fatalf("run = %v, want strace is not installed", err)
	}
	if b.ps != nil && len(b.ps.pids()) > 0 {
		t.Errorf("started processes: %v", b.ps.pids())
	}
}
