package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MemcachedOptions configures StartMemcached. The zero value starts
// memcached on 127.0.0.1 and a free port.
type MemcachedOptions struct {
	// Host is the address to listen on, any 127.x.y.z. If empty,
	// "127.0.0.1" is used.
	Host string
	// Port is the TCP port. If zero, a free port is chosen, and a new one
	// is tried if the bind fails. A fixed port is not retried.
	Port int
	// Args are appended to the command line after the defaults (for
	// example "-I", "2m" or "-vv").
	Args []string
}

// StartMemcached starts memcached with
//
//	-l HOST -p PORT -U 0 -m 16
//
// (plus -u root when running as root, which memcached otherwise refuses)
// and opts.Args, and waits until it answers "version" and reports its own
// pid in "stats". The server is stopped at the end of the test. If
// memcached is not installed, the test is skipped (failed with CI=true).
func StartMemcached(t testing.TB, opts MemcachedOptions) *Server {
	t.Helper()
	bin := RequireBinary(t, "memcached")
	return startWithRetry(t, "memcached", opts.Host, opts.Port, func(host string, port int) (*Server, error) {
		return startMemcachedOnce(t, bin, host, port, opts.Args)
	})
}

// memcachedDefaultPort is memcached's and nutcracker's default port.
const memcachedDefaultPort = 11211

// StartMemcachedOn11211 starts memcached on port 11211 of the first of
// 127.0.0.2, 127.0.0.3, … 127.0.0.20 where that port can be bound, leaving
// 127.0.0.1:11211 to a system memcached. Use the returned Server's Host or
// Addr. If no host has the port free (for example because something
// listens on 0.0.0.0:11211), the test is skipped, or fails when CI is true.
func StartMemcachedOn11211(t testing.TB) *Server {
	t.Helper()
	bin := RequireBinary(t, "memcached")
	var last error
	for i := 2; i <= 20; i++ {
		host := "127.0.0." + strconv.Itoa(i)
		addr := net.JoinHostPort(host, strconv.Itoa(memcachedDefaultPort))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			last = err
			continue
		}
		if err := l.Close(); err != nil {
			t.Fatalf("testserver: close probe listener %s: %v", addr, err)
			return nil
		}
		s, err := startMemcachedOnce(t, bin, host, memcachedDefaultPort, nil)
		if err == nil {
			return s
		}
		if !errors.Is(err, errAddrInUse) {
			t.Fatalf("%v", err)
			return nil
		}
		last = err
	}
	skipOrFail(t, "testserver: no host in 127.0.0.2-127.0.0.20 has port %d free: %v", memcachedDefaultPort, last)
	return nil
}

func startMemcachedOnce(t testing.TB, bin, host string, port int, extra []string) (*Server, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if err := checkFree(addr); err != nil {
		return nil, fmt.Errorf("testserver: memcached on %s: %w", addr, err)
	}
	args := []string{"-l", host, "-p", strconv.Itoa(port), "-U", "0", "-m", "16"}
	if isRoot() {
		args = append(args, "-u", "root")
	}
	args = append(args, extra...)
	p, err := startProcess(bin, args, "")
	if err != nil {
		return nil, err
	}
	p.wake = wakeByConnecting(addr)
	t.Cleanup(p.stop)
	if err := p.waitReady(func() error { return probeMemcached(addr, p.pid()) }); err != nil {
		p.stop()
		return nil, fmt.Errorf("testserver: memcached on %s: %w\noutput:\n%s", addr, err, tail(p.output()))
	}
	logOnFailure(t, p, "")
	return &Server{Host: host, Port: port, Addr: addr, PID: p.pid(), proc: p}, nil
}

// probeMemcached checks that the memcached at addr answers "version" and
// that "stats" reports pid. An answer from another process wraps
// errAddrInUse.
func probeMemcached(addr string, pid int) error {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("version replied %q", line)
	}
	if _, err := c.Write([]byte("stats\r\n")); err != nil {
		return err
	}
	want := "STAT pid " + strconv.Itoa(pid) + "\r\n"
	found := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		switch {
		case line == want:
			found = true
		case line == "END\r\n":
			if !found {
				return fmt.Errorf("%w: %s is answered by another memcached, not pid %d", errAddrInUse, addr, pid)
			}
			return nil
		case !strings.HasPrefix(line, "STAT "):
			return fmt.Errorf("stats replied %q", line)
		}
	}
}
