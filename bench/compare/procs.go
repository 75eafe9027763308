package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	host         = "127.0.0.1"
)

// proc is a child process started by the tool. Every proc is registered
// with a procSet and stopped by PID when the tool ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when the process has been reaped
	log  string        // path of its stdout+stderr
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to stopTimeout, then SIGKILL, and waits
// until the process has been reaped.
func (p *proc) stop() { p.stopWith(syscall.SIGTERM) }

// stopWith is stop with sig instead of SIGTERM.
func (p *proc) stopWith(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// procSet holds every process the tool started, in start order.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
	dir   string
}

// start starts bin with args, with env (KEY=VAL pairs) added to the
// tool's own environment.
func (s *procSet) start(name, bin string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(s.dir, name+".out")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Not in our process group's foreground: a Ctrl-C reaches only the tool,
	// which then stops its children itself, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// stopAll stops the processes in reverse start order (proxies before
// their backends).
func (s *procSet) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
}

func (s *procSet) pids() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, p := range s.procs {
		out = append(out, p.pid)
	}
	return out
}

// lookBinary finds name in PATH or in the sbin directories (Debian installs
// nutcracker in /usr/sbin, which a user's PATH often lacks).
func lookBinary(name string) string {
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return path
		}
	}
	return ""
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a loopback port that was free a moment ago, below
// Linux's ephemeral range so that no outgoing connection takes it first.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var last error
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if portsUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			last = err
			continue
		}
		_ = l.Close()
		portsUsed[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port on %s: %v", host, last)
}

func addrOf(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// waitReady polls probe until it succeeds, the process exits or the
// timeout passes.
func waitReady(ctx context.Context, p *proc, probe func() error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready: %s", p.name, tailFile(p.log))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v; output: %s", p.name, startTimeout, err, tailFile(p.log))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// exchange sends req to addr and checks that the reply starts with want.
func exchange(addr, req, want string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("%q answered %q, want %q", req, line, want)
	}
	return nil
}

// probeRedis sends PING as a RESP array: nutcracker does not parse inline
// commands.
func probeRedis(addr string) error { return exchange(addr, "*1\r\n$4\r\nPING\r\n", "+PONG") }

// probeMemcached sends a get, not "version", which nutcracker does not
// proxy (it closes the connection).
func probeMemcached(addr string) error { return exchange(addr, "get walnut-compare-probe\r\n", "END") }

// startWithPort starts a server on a free port, retrying on a new port
// when the process exits before it is ready (typically a lost bind race).
func startWithPort(ctx context.Context, ps *procSet, name string, start func(port int) (*proc, error), probe func(addr string) error) (*proc, int, error) {
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		p, err := start(port)
		if err != nil {
			return nil, 0, err
		}
		err = waitReady(ctx, p, func() error { return probe(addrOf(port)) })
		if err == nil {
			return p, port, nil
		}
		p.stop()
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		last = err
	}
	return nil, 0, fmt.Errorf("%s: %w", name, last)
}

// probeStats reads the first byte of the stats document that a
// nutcracker-compatible stats server writes to every connection.
func probeStats(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if b[0] != '{' {
		return fmt.Errorf("stats server %s sent %q, want a JSON object", addr, b[0])
	}
	return nil
}
