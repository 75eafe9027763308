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
