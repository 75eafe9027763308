package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a started process may take to answer.
	startTimeout = 10 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout = 5 * time.Second
	// pollInterval is the pause between readiness probes.
	pollInterval = 20 * time.Millisecond
	// probeTimeout bounds one readiness probe.
	probeTimeout = 500 * time.Millisecond
	// startAttempts is how many ports a starter tries when the process
	// fails to bind a port it was given by FreePort.
	startAttempts = 3
	// wakeInterval is how often stop pokes a process that has a wake
	// function while waiting for it to exit.
	wakeInterval = 50 * time.Millisecond
	// outputTail is how much captured output is shown in failure messages.
	outputTail = 4 << 10
)

// sbinDirs returns the directories searched after PATH: Debian installs
// nutcracker in /usr/sbin, which a non-root PATH often lacks.
func sbinDirs() []string { return []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} }

// errAddrInUse marks a start attempt that failed because its address was
// taken, so a starter that chose the port itself may retry on another.
var errAddrInUse = errors.New("testserver: address already in use")

// errExited marks a start attempt whose process exited before answering.
var errExited = errors.New("testserver: process exited before it was ready")

// inCI reports whether the environment variable CI is true.
func inCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// skipOrFail skips the test, or fails it when CI is true.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format+" (CI=true: the CI job must provide this)", args...)
		return
	}
	t.Skipf(format, args...)
}

// RequireBinary returns the path of the executable name, searching PATH and
// then /usr/sbin, /usr/local/sbin and /sbin. If it is not found the test is
// skipped with a message naming the binary, or fails when the environment
// variable CI is true.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	if !strings.ContainsRune(name, filepath.Separator) {
		for _, dir := range sbinDirs() {
			path := filepath.Join(dir, name)
			if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				return path
			}
		}
	}
	skipOrFail(t, "testserver: %s not found in PATH, %s; install it to run this test",
		name, strings.Join(sbinDirs(), ", "))
	return ""
}

// FreePort returns a TCP port on host that was free a moment ago. It picks
// random ports below Linux's ephemeral range (32768-60999), so that the
// kernel will not hand the port to an outgoing connection, such as a test's
// own client socket, before the caller binds it; it checks each by
// listening on it and closing the listener.
//
// The port is not reserved. Another process may take it before the caller
// binds it; the Start helpers detect a failed bind and retry on a new port
// when they chose the port themselves. host must be a loopback address
// such as "127.0.0.1".
func FreePort(t testing.TB, host string) int {
	t.Helper()
	var lastErr error
	for range 100 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		if !handOut(port) {
			continue // given to another caller of this process already
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		if err := l.Close(); err != nil {
			t.Fatalf("testserver: free port on %s: %v", host, err)
		}
		return port
	}
	t.Fatalf("testserver: no free port on %s in [%d, %d): %v", host, freePortLow, freePortHigh, lastErr)
	return 0
}

// handedOut records the ports FreePort has returned in this process, so
// that it never returns one twice: the ports are not reserved, and two
// callers that each ask for a port before binding either (such as a test
// writing a config with several listen addresses) must get different ones.
// This is test support code; the state lives as long as the test binary.
var handedOut struct {
	mu    sync.Mutex
	ports map[int]bool
}

// handOut marks port as handed out and reports whether it was free to
// hand out. Once most of the range is used it stops refusing.
func handOut(port int) bool {
	handedOut.mu.Lock()
	defer handedOut.mu.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	if handedOut.ports[port] && len(handedOut.ports) < (freePortHigh-freePortLow)/2 {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// The range FreePort draws from: below the ephemeral range, above the
// well-known service ports walnut's tests might meet (6379, 11211, 22121,
// 22222).
const (
	freePortLow  = 23000
	freePortHigh = 32000
)

// startWithRetry runs start on host (default "127.0.0.1") and port. When
// port is zero it picks a free port and, if the process fails to bind it,
// tries a new one, up to startAttempts times. Other failures fail the test.
func startWithRetry(t testing.TB, name, host string, port int, start func(host string, port int) (*Server, error)) *Server {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			p = FreePort(t, host)
		}
		s, err := start(host, p)
		if err == nil {
			return s
		}
		if port != 0 || attempt == startAttempts || !errors.Is(err, errAddrInUse) {
			t.Fatalf("%v", err)
			return nil
		}
		t.Logf("testserver: retrying %s on a new port: %v", name, err)
	}
}

// A Server is a running redis-server or memcached process. Its methods are
// safe for concurrent use.
type Server struct {
	Host string // listen host, such as "127.0.0.1"
	Port int    // listen port
	Addr string // "Host:Port"
	PID  int    // process id

	proc *process
}

// Stop stops the server: SIGTERM, then SIGKILL if it has not exited after
// 5s, and waits for the process to be reaped. Only the server's own PID is
// signalled. An idle memcached notices SIGTERM only on its once-a-second
// clock tick, so Stop also connects to it every 50ms until it exits, which
// makes Stop return within milliseconds. Stop may be called more than once and from any goroutine; it
// is also called from t.Cleanup.
func (s *Server) Stop() { s.proc.stop() }

// Output returns what the process has written to stdout and stderr so far.
func (s *Server) Output() string { return s.proc.output() }

// Exited reports whether the process has exited, for any reason.
func (s *Server) Exited() bool { return s.proc.exited() }

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of os/exec's
// stdout and stderr copiers and reads by the test.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process owns one started child. A goroutine waits for it and closes done
// when it has been reaped; stop waits for that goroutine.
type process struct {
	name     string
	cmd      *exec.Cmd
	out      *SyncBuffer
	done     chan struct{}
	waitErr  error // written before done is closed
	stopOnce sync.Once
	// wake, if set, is called repeatedly after SIGTERM until the process
	// exits, to make it notice the signal sooner.
	wake func()
}

// startProcess starts path with args in dir, capturing stdout and stderr.
func startProcess(path string, args []string, dir string) (*process, error) {
	out := &SyncBuffer{}
	// Not CommandContext: the process must outlive any test context and
	// is stopped by stop, from t.Cleanup.
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	// Bound Wait if a grandchild were to keep the output pipe open.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testserver: start %s: %w", filepath.Base(path), err)
	}
	p := &process{
		name: filepath.Base(path),
		cmd:  cmd,
		out:  out,
		done: make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) output() string { return p.out.String() }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop terminates the process and waits for it to be reaped. It is
// idempotent; concurrent callers all return after the process is gone.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		// Signal is a no-op error (os.ErrProcessDone) once the process
		// has been reaped, and never reaches a recycled PID.
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		var wakeTick <-chan time.Time
		if p.wake != nil {
			ticker := time.NewTicker(wakeInterval)
			defer ticker.Stop()
			wakeTick = ticker.C
			p.wake()
		}
		for {
			select {
			case <-p.done:
				return
			case <-wakeTick:
				p.wake()
			case <-timer.C:
				_ = p.cmd.Process.Kill()
				<-p.done
				return
			}
		}
	})
}

// wakeByConnecting returns a wake function that opens and closes a TCP
// connection to addr. memcached only checks for SIGTERM when its event
// loop turns, which an idle server does once a second; a connection
// turns it at once.
func wakeByConnecting(addr string) func() {
	return func() {
		if c, err := net.DialTimeout("tcp", addr, wakeInterval); err == nil {
			_ = c.Close()
		}
	}
}

// exitError describes a process that exited before it was ready. It wraps
// errExited, and errAddrInUse when the output says the bind failed.
func (p *process) exitError() error {
	<-p.done
	out := p.output()
	err := fmt.Errorf("%w: %s pid %d: %v", errExited, p.name, p.pid(), p.waitErr)
	if mentionsAddrInUse(out) {
		err = fmt.Errorf("%w (%w)", err, errAddrInUse)
	}
	return err
}

// mentionsAddrInUse reports whether a server's output or log says that it
// could not bind because the address was taken.
func mentionsAddrInUse(s string) bool {
	return strings.Contains(s, "Address already in use")
}

// waitReady polls probe until it succeeds, the process exits or
// startTimeout passes.
func (p *process) waitReady(probe func() error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if p.exited() {
			return p.exitError()
		}
		err := probe()
		if err == nil {
			if p.exited() {
				return p.exitError()
			}
			return nil
		}
		if errors.Is(err, errAddrInUse) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testserver: %s pid %d not ready after %v: %w", p.name, p.pid(), startTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// logOnFailure arranges for the tail of what p wrote to its output, and
// to the file extraLog if not empty, to be logged if the test fails.
func logOnFailure(t testing.TB, p *process, extraLog string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if out := p.output(); out != "" {
			t.Logf("testserver: %s pid %d output:\n%s", p.name, p.pid(), tail(out))
		}
		if extraLog != "" {
			if b, err := os.ReadFile(extraLog); err == nil && len(b) > 0 {
				t.Logf("testserver: %s pid %d log %s:\n%s", p.name, p.pid(), extraLog, tail(string(b)))
			}
		}
	})
}

// tail returns at most the last outputTail bytes of s.
func tail(s string) string {
	if len(s) <= outputTail {
		return s
	}
	return "…" + s[len(s)-outputTail:]
}

// accepting reports whether something accepts TCP connections on addr.
func accepting(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// checkFree returns an error wrapping errAddrInUse if addr already accepts
// connections, so a readiness probe cannot be answered by a stranger.
func checkFree(addr string) error {
	if accepting(addr) {
		return fmt.Errorf("%w: %s already accepts connections", errAddrInUse, addr)
	}
	return nil
}

// isRoot reports whether the test runs with effective uid 0.
func isRoot() bool { return os.Geteuid() == 0 }
