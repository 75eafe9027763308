package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// This file holds the helpers of the tests that run the walnut binary.

// A build is a walnut binary built once for the tests, in a directory
// TestMain removes.
type build struct {
	race bool
	once sync.Once
	dir  string
	path string
	err  error
}

var (
	testBuild  = build{race: raceEnabled} // what most tests run
	plainBuild = build{}                  // without -race, for the memory tests
)

// binary builds b once and returns the path of the executable.
func (b *build) binary(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "walnut-bin-")
		if b.err != nil {
			return
		}
		path := filepath.Join(b.dir, "walnut")
		args := []string{"build", "-o", path}
		if b.race {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		b.path = path
	})
	require.NoError(t, b.err)
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	for _, dir := range []string{testBuild.dir, plainBuild.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// walnutBinary builds walnut once (with -race when the tests run with it)
// and returns the path of the executable.
func walnutBinary(t *testing.T) string { return testBuild.binary(t) }

// A proc is a walnut process started by a test.
type proc struct {
	cmd    *exec.Cmd
	output *testserver.SyncBuffer // stdout and stderr
	done   chan struct{}
	code   int // exit status, valid after done is closed
}

// startWalnut starts the walnut binary in dir. The process is killed by
// PID, if it is still running, when the test ends.
func startWalnut(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return startBinary(t, walnutBinary(t), dir, args...)
}

// startBinary starts the walnut binary bin in dir, as startWalnut does.
func startBinary(t *testing.T, bin, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{
		cmd:    exec.Command(bin, args...),
		output: &testserver.SyncBuffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Dir = dir
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// runWalnut runs walnut in dir to completion (at most 10s) and returns its
// exit status and output.
func runWalnut(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	p := startWalnut(t, dir, args...)
	return p.wait(t, 10*time.Second), p.output.String()
}

// wait waits at most timeout for the process to exit and returns its exit
// status.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("walnut (pid %d) still running after %v; output:\n%s", p.cmd.Process.Pid, timeout, p.output.String())
		return -1
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(p.cmd.Process.Pid, sig))
}

// runNutcracker runs nutcracker in dir to completion (at most 10s) and
// returns its exit status and output.
func runNutcracker(t *testing.T, bin, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("nutcracker %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// readFile returns the contents of path, or "" if it cannot be read.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// waitStarted waits until walnut has logged that it serves, which it does
// after every listener is bound and the pid file written.
func waitStarted(t *testing.T, p *proc, logPath string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readFile(logPath), `msg="walnut started"`) {
		if p.exited() {
			t.Fatalf("walnut exited with status %d before it started; output:\n%s\nlog:\n%s", p.code, p.output.String(), readFile(logPath))
		}
		if time.Now().After(deadline) {
			t.Fatalf("walnut did not start within 10s; output:\n%s\nlog:\n%s", p.output.String(), readFile(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// respDo sends one command on a RESP connection (TCP or unix) and returns
// the reply: a bulk string's contents or another reply's line.
func respDo(t *testing.T, c net.Conn, r *bufio.Reader, args ...string) string {
	t.Helper()
	s, err := testserver.RESPDo(c, r, args...)
	require.NoError(t, err)
	return s
}

// readStats reads the stats document from addr.
func readStats(addr string) (map[string]any, error) {
	return testserver.ReadStats(addr, 5*time.Second)
}
