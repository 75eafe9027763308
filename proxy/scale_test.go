package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// The scale test runs the proxy in a child process, this test binary run
// again with scaleChildEnv set, so that the proxy's memory can be measured
// without the 10,000 client sockets of the test itself. The child serves a
// proxy.Server and answers each line on its stdin with one memReport line
// on its stdout; "gc" first runs runtime.GC and debug.FreeOSMemory.
const (
	scaleChildEnv    = "WALNUT_SCALE_CHILD"    // "redis" or "memcache"
	scaleBackendsEnv = "WALNUT_SCALE_BACKENDS" // comma-separated addresses
	scalePrefix      = "scale: "
)

// memReport is the child's memory, as reported on its stdout.
type memReport struct {
	RSS        int64  // VmRSS from /proc/self/status, bytes
	HeapInuse  uint64 // runtime.MemStats
	StackInuse uint64
	Sys        uint64
	Goroutines int
	Clients    int64 // proxy.Server's ClientConnections
}

// TestScaleChild is the child process of TestScale10kConnections; run
// directly, it does nothing.
func TestScaleChild(t *testing.T) {
	kind := os.Getenv(scaleChildEnv)
	if kind == "" {
		t.Skip("helper process of TestScale10kConnections")
	}
	cfg := proxy.Config{Name: "scale", Protocol: protocol.Redis}
	if kind == "memcache" {
		cfg.Protocol = protocol.Memcache
	}
	for _, a := range strings.Split(os.Getenv(scaleBackendsEnv), ",") {
		cfg.Servers = append(cfg.Servers, shard.Server{Addr: a})
	}
	cfg.Backend.Timeout = 10 * time.Second
	s, err := proxy.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	fmt.Printf("%saddr %s\n", scalePrefix, l.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "gc" {
			runtime.GC()
			debug.FreeOSMemory()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, err := readRSS(os.Getpid())
		require.NoError(t, err)
		b, err := json.Marshal(memReport{
			RSS: rss, HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys,
			Goroutines: runtime.NumGoroutine(), Clients: s.Stats().ClientConnections,
		})
		require.NoError(t, err)
		fmt.Printf("%s%s\n", scalePrefix, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.ErrorIs(t, <-done, proxy.ErrServerClosed)
}

// readRSS returns VmRSS of process pid in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

// scaleChild is a running child proxy.
type scaleChild struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	addr  string
}

func startScaleChild(t *testing.T, kind protocol.Kind, backends []string) *scaleChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), scaleChildEnv+"="+kind.String(), scaleBackendsEnv+"="+strings.Join(backends, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &scaleChild{t: t, cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})
	line := c.line()
	addr, ok := strings.CutPrefix(line, "addr ")
	require.True(t, ok, "child said %q", line)
	c.addr = addr
	return c
}

// line returns the next line the child prints with scalePrefix.
func (c *scaleChild) line() string {
	c.t.Helper()
	for c.out.Scan() {
		if s, ok := strings.CutPrefix(c.out.Text(), scalePrefix); ok {
			return s
		}
	}
	c.t.Fatalf("child exited: %v", c.out.Err())
	return ""
}

// mem asks the child for its memory; with gc, after a GC that returns free
// memory to the system.
func (c *scaleChild) mem(gc bool) memReport {
	c.t.Helper()
	req := "mem\n"
	if gc {
		req = "gc\n"
	}
	_, err := io.WriteString(c.stdin, req)
	require.NoError(c.t, err)
	var m memReport
	require.NoError(c.t, json.Unmarshal([]byte(c.line()), &m))
	return m
}

// stop ends the child (it shuts its proxy down) and checks that it passed.
func (c *scaleChild) stop() {
	c.t.Helper()
	require.NoError(c.t, c.stdin.Close())
	require.NoError(c.t, c.cmd.Wait(), "the child's proxy shut down cleanly and leaked no goroutine")
}

// raiseNoFile raises the soft limit on open files to the hard limit and
// skips the test if that leaves fewer than need.
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Max < need {
		// Raising the hard limit takes privilege; try.
		want := syscall.Rlimit{Cur: need, Max: need}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			t.Skipf("RLIMIT_NOFILE hard limit is %d, this test needs %d open files (raise it with ulimit -Hn): %v", lim.Max, need, err)
		}
		return
	}
	lim.Cur = lim.Max
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
}

// scaleConns is how many client connections TestScale10kConnections opens:
// fewer with -race, whose runtime allows at most 8128 live goroutines.
func scaleConns() int {
	if raceEnabled {
		return 1000
	}
	return 10_000
}

// TestScale10kConnections opens 10,000 client connections to one proxy,
// all open at once, and sends a few requests on each; every request must
// succeed. It reports the memory each idle connection costs the proxy
// process, right after connecting and after the traffic, before and after
// a GC, and fails if that exceeds maxIdleConnKiB once idle after the
// traffic and a GC.
func TestScale10kConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 client connections: a scale test, not part of the -short loop")
	}
	n := scaleConns()
	// The child holds n client sockets and the test n more, in separate
	// processes; leave room for backends, pipes and the test binary.
	raiseNoFile(t, uint64(n)+256)
	for _, kind := range []protocol.Kind{protocol.Redis, protocol.Memcache} {
		t.Run(kind.String(), func(t *testing.T) { testScale(t, kind, n) })
	}
}

// scaleOps are the requests each connection sends, one per round, with
// the reply each must get. %d is the connection's number.
func scaleOps(kind protocol.Kind) [][2]string {
	if kind == protocol.Redis {
		return [][2]string{
			{"*3\r\n$3\r\nSET\r\n$7\r\nk%06d\r\n$7\r\nv%06d\r\n", "+OK\r\n"},
			{"*2\r\n$3\r\nGET\r\n$7\r\nk%06d\r\n", "$7\r\nv%06d\r\n"},
			{"PING\r\n", "+PONG\r\n"},
			{"*2\r\n$3\r\nGET\r\n$7\r\nk%06d\r\n", "$7\r\nv%06d\r\n"},
		}
	}
	return [][2]string{
		{"set k%06d 0 0 7\r\nv%06d\r\n", "STORED\r\n"},
		{"get k%06d\r\n", "VALUE k%06d 0 7\r\nv%06d\r\nEND\r\n"},
		{"mn\r\n", "MN\r\n"},
		{"get k%06d\r\n", "VALUE k%06d 0 7\r\nv%06d\r\nEND\r\n"},
	}
}

func testScale(t *testing.T, kind protocol.Kind, n int) {
	bs := startBackends(t, kind, 2)
	var addrs []string
	for _, b := range bs {
		addrs = append(addrs, b.Addr)
	}
	child := startScaleChild(t, kind, addrs)
	ops := scaleOps(kind)

	// Warm up: backend connections open, code paths run once.
	warm := dialScale(t, child.addr, 1)
	require.NoError(t, scaleRound(warm, ops, 0, 1))
	require.NoError(t, scaleRound(warm, ops, 1, 1))
	warm[0].Close()
	require.Eventually(t, func() bool { return child.mem(false).Clients == 0 }, 10*time.Second, 10*time.Millisecond)
	// The backend connections, idle now, are handed to their watchers
	// after 10 ms by a timer whose callback runs on a goroutine of its
	// own: let that happen before counting goroutines, so that the base
	// count holds none that vanishes later.
	time.Sleep(200 * time.Millisecond)
	base := child.mem(true)

	start := time.Now()
	conns := dialScale(t, child.addr, n)
	// Every connection is accepted and waiting for a request: with a
	// goroutine of its own, unless an event loop serves it.
	require.Eventually(t, func() bool {
		m := child.mem(false)
		return m.Clients == int64(n) && (proxy.EngineLoopsForTest() > 0 || m.Goroutines >= base.Goroutines+n)
	}, 30*time.Second, 20*time.Millisecond)
	dialed := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let the last ones reach their read
	connected, connectedGC := child.mem(false), child.mem(true)

	start = time.Now()
	for round := range ops {
		require.NoError(t, scaleRound(conns, ops, round, 64))
	}
	traffic := time.Since(start)
	idle, idleGC := child.mem(false), child.mem(true)

	per := func(m memReport, f func(memReport) int64) float64 {
		return float64(f(m)-f(base)) / float64(n) / 1024
	}
	rss := func(m memReport) int64 { return m.RSS }
	heap := func(m memReport) int64 { return int64(m.HeapInuse) }
	stack := func(m memReport) int64 { return int64(m.StackInuse) }
	t.Logf("%s: %d connections dialed in %v, %d requests in %v (%.0f/s)", kind, n, dialed.Round(time.Millisecond),
		n*len(ops), traffic.Round(time.Millisecond), float64(n*len(ops))/traffic.Seconds())
	t.Logf("%s: proxy process before: RSS %d KiB, heap %d KiB, stacks %d KiB", kind, base.RSS>>10, base.HeapInuse>>10, base.StackInuse>>10)
	for _, r := range []struct {
		name string
		m    memReport
	}{
		{"after connect", connected}, {"after connect, GC", connectedGC},
		{"idle after traffic", idle}, {"idle after traffic, GC", idleGC},
	} {
		t.Logf("%s: KiB per idle connection, %-23s RSS %5.1f  (heap %5.1f + stacks %5.1f)",
			kind, r.name+":", per(r.m, rss), per(r.m, heap), per(r.m, stack))
	}
	// The figure is for 4 KiB pages and a runtime without -race.
	if !raceEnabled && os.Getpagesize() == 4096 {
		assert.LessOrEqual(t, per(idleGC, rss), maxIdleConnKiB,
			"RSS per idle connection after GC (goal %.0f KiB)", maxIdleConnKiB)
	}

	// Every connection is still open and answers.
	require.NoError(t, scaleRound(conns, ops, len(ops)-1, 64))
	for _, c := range conns {
		c.Close()
	}
	require.Eventually(t, func() bool { return child.mem(false).Clients == 0 }, 30*time.Second, 20*time.Millisecond)
	child.stop()
}

// maxIdleConnKiB is the most RSS, in KiB, an idle client connection may
// cost the proxy process after a GC.
const maxIdleConnKiB = 8.0

// dialScale opens n connections to addr, a few at a time so that the
// listen backlog never overflows.
func dialScale(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = nc
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	require.NoError(t, <-errs)
	return conns
}

// scaleRound sends request ops[round] on every connection, from workers
// goroutines, each connection once, and checks each reply.
func scaleRound(conns []net.Conn, ops [][2]string, round, workers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				req, want := scaleOp(ops[round], i)
				if err := scaleDo(conns[i], req, want, &buf); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("connection %d, round %d: %w", i, round, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// scaleOp fills the connection number into op.
func scaleOp(op [2]string, i int) (req, want string) {
	fill := func(s string) string {
		args := make([]any, strings.Count(s, "%06d"))
		for j := range args {
			args[j] = i
		}
		return fmt.Sprintf(s, args...)
	}
	return fill(op[0]), fill(op[1])
}

func scaleDo(nc net.Conn, req, want string, buf *[]byte) error {
	if err := nc.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(nc, req); err != nil {
		return err
	}
	if cap(*buf) < len(want) {
		*buf = make([]byte, len(want))
	}
	b := (*buf)[:len(want)]
	if _, err := io.ReadFull(nc, b); err != nil {
		return err
	}
	if string(b) != want {
		return fmt.Errorf("request %q: reply %q, want %q", req, b, want)
	}
	return nil
}

// TestMaxClientsConcurrent: with client_connections 250, 300 clients
// connecting at once leave exactly 250 served and 50 refused with the
// error reply, which TestMaxClients checks word for word.
func TestMaxClientsConcurrent(t *testing.T) {
	const limit, n = 250, 300
	bs := startBackends(t, protocol.Redis, 1)
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { c.MaxClients = limit })
	conns := dialScale(t, addr, n)
	require.Eventually(t, func() bool {
		st := s.Stats()
		return st.ClientConnections == limit && st.ClientErr == n-limit
	}, 10*time.Second, 5*time.Millisecond)
	// A refused client has its reply waiting; a served one has nothing to
	// read until it sends (sending first could reset a refused connection
	// before its reply is read).
	refusal := fmt.Sprintf("-ERR max number of clients reached (client_connections: %d)\r\n", limit)
	var served, refused atomic.Int64
	var wg sync.WaitGroup
	for _, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := bufio.NewReader(nc)
			_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			line, err := rd.ReadString('\n')
			switch {
			case err == nil && line == refusal:
				refused.Add(1)
				return
			case err == nil || !errors.Is(err, os.ErrDeadlineExceeded):
				t.Errorf("unexpected %q, %v", line, err)
				return
			}
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, "PING\r\n"); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			if line, err := rd.ReadString('\n'); err != nil || line != "+PONG\r\n" {
				t.Errorf("PING: %q, %v", line, err)
				return
			}
			served.Add(1)
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(limit), served.Load())
	assert.Equal(t, int64(n-limit), refused.Load())
}
