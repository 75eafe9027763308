package testserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisOptions configures StartRedis. The zero value starts an
// unauthenticated redis-server on 127.0.0.1 and a free port, without
// persistence.
type RedisOptions struct {
	// Host is the address to bind. If empty, "127.0.0.1" is used.
	Host string
	// Port is the port to bind. If zero, a free port is chosen, and a new
	// one is tried if the bind fails.
	Port int
	// Password, if not empty, is passed as --requirepass and used by the
	// readiness probe.
	Password string
	// Args are appended to the command line, after the defaults, so they
	// may override them (for example "--maxmemory", "1mb").
	Args []string
}

// StartRedis starts redis-server with
//
//	--port P --bind HOST --save "" --appendonly no --daemonize no
//	--protected-mode no --dir <t.TempDir()>
//
// plus opts.Args, and waits until it answers PING and reports its own
// process id. The server is stopped at the end of the test. If
// redis-server is not installed, the test is skipped (failed with CI=true).
func StartRedis(t testing.TB, opts RedisOptions) *Server {
	t.Helper()
	bin := RequireBinary(t, "redis-server")
	return startWithRetry(t, "redis-server", opts.Host, opts.Port, func(host string, port int) (*Server, error) {
		return startRedisOnce(t, bin, host, port, opts)
	})
}

func startRedisOnce(t testing.TB, bin, host string, port int, opts RedisOptions) (*Server, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if err := checkFree(addr); err != nil {
		return nil, fmt.Errorf("testserver: redis-server on %s: %w", addr, err)
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", host,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--dir", t.TempDir(),
	}
	if opts.Password != "" {
		args = append(args, "--requirepass", opts.Password)
	}
	args = append(args, opts.Args...)
	p, err := startProcess(bin, args, "")
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.stop)
	if err := p.waitReady(func() error { return probeRedis(addr, opts.Password, p.pid()) }); err != nil {
		p.stop()
		return nil, fmt.Errorf("testserver: redis-server on %s: %w\noutput:\n%s", addr, err, tail(p.output()))
	}
	logOnFailure(t, p, "")
	return &Server{Host: host, Port: port, Addr: addr, PID: p.pid(), proc: p}, nil
}

// probeRedis checks that the redis-server at addr answers PING and that
// INFO reports process id pid. An answer from another process wraps
// errAddrInUse. When the server demands a password the caller did not
// give, a -NOAUTH reply to PING counts as ready.
func probeRedis(addr, password string, pid int) error {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	do := func(args ...string) (string, error) {
		if _, err := c.Write(appendRESPCommand(nil, args...)); err != nil {
			return "", err
		}
		return readRESPReply(r)
	}
	if password != "" {
		if reply, err := do("AUTH", password); err != nil {
			return err
		} else if reply != "+OK" {
			return fmt.Errorf("AUTH replied %q", reply)
		}
	}
	reply, err := do("PING")
	switch {
	case err != nil:
		return err
	case password == "" && strings.HasPrefix(reply, "-NOAUTH"):
		return nil // up, but INFO needs a password we do not have
	case reply != "+PONG":
		return fmt.Errorf("PING replied %q", reply)
	}
	info, err := do("INFO", "server")
	if err != nil {
		return err
	}
	want := "process_id:" + strconv.Itoa(pid) + "\r\n"
	if !strings.Contains(info, want) {
		return fmt.Errorf("%w: %s is answered by another redis-server, not pid %d", errAddrInUse, addr, pid)
	}
	return nil
}

// appendRESPCommand appends args encoded as a RESP array of bulk strings.
func appendRESPCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// readRESPReply reads one reply. A bulk string is returned as its
// contents; any other reply as its first line without CRLF. Only the
// replies the probe expects (simple, error, bulk) are understood.
func readRESPReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < -1 || n > 1<<20 {
		return "", fmt.Errorf("bad bulk header %q", line)
	}
	if n == -1 {
		return "", nil
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
