package testserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statsHost is the address nutcracker's stats server binds.
const statsHost = "127.0.0.1"

// statsTimeout bounds one read of the stats server by Stats.
const statsTimeout = 5 * time.Second

// NutcrackerOptions configures StartNutcracker.
type NutcrackerOptions struct {
	// Listen lists the pool listen addresses in the configuration, such as
	// "127.0.0.1:22121". StartNutcracker waits until each one accepts a
	// TCP connection. They are fixed by the configuration, so a failed
	// bind on one of them is not retried.
	Listen []string
	// Args are appended to the command line after the defaults; a later
	// flag overrides an earlier one (for example "-m", "512" or "-i",
	// "1000"). The Debian build has no debug logging, so -v above 5 adds
	// little.
	Args []string
}

// A Nutcracker is a running nutcracker (twemproxy) process. Its methods
// are safe for concurrent use, except Stats, which must be called from
// the goroutine running the test.
type Nutcracker struct {
	PID        int      // process id
	ConfigPath string   // the generated nutcracker.yml
	LogPath    string   // the log file given with -o
	StatsAddr  string   // "127.0.0.1:P", the stats server given with -a and -s
	Listen     []string // a copy of NutcrackerOptions.Listen

	proc *process
}

// StartNutcracker writes yml to nutcracker.yml in a new t.TempDir() and
// runs
//
//	nutcracker -c FILE -s STATSPORT -a 127.0.0.1 -i 100 -o LOGFILE -v 5
//
// plus opts.Args. -o is always given because the Debian build logs to
// /var/log/nutcracker by default; -d is never given (the pid file is only
// written in daemon mode, and a daemon could not be stopped by PID). It
// waits until every address in opts.Listen accepts a connection and the
// stats port returns JSON. A failed start reports the log file. The
// process is stopped at the end of the test. If nutcracker is not
// installed, the test is skipped (failed with CI=true).
func StartNutcracker(t testing.TB, yml string, opts NutcrackerOptions) *Nutcracker {
	t.Helper()
	bin := RequireBinary(t, "nutcracker")
	for attempt := 1; ; attempt++ {
		n, err := startNutcrackerOnce(t, bin, yml, opts)
		if err == nil {
			return n
		}
		if attempt == startAttempts || !errors.Is(err, errAddrInUse) {
			t.Fatalf("%v", err)
			return nil
		}
		t.Logf("testserver: retrying nutcracker on a new stats port: %v", err)
	}
}

func startNutcrackerOnce(t testing.TB, bin, yml string, opts NutcrackerOptions) (*Nutcracker, error) {
	dir := t.TempDir()
	n := &Nutcracker{
		ConfigPath: filepath.Join(dir, "nutcracker.yml"),
		LogPath:    filepath.Join(dir, "nutcracker.log"),
		Listen:     slices.Clone(opts.Listen),
	}
	if err := os.WriteFile(n.ConfigPath, []byte(yml), 0o644); err != nil {
		return nil, fmt.Errorf("testserver: nutcracker: %w", err)
	}
	statsPort := FreePort(t, statsHost)
	n.StatsAddr = net.JoinHostPort(statsHost, strconv.Itoa(statsPort))
	if err := checkFree(n.StatsAddr); err != nil {
		return nil, fmt.Errorf("testserver: nutcracker stats: %w", err)
	}
	for _, addr := range n.Listen {
		if accepting(addr) {
			return nil, fmt.Errorf("testserver: nutcracker: listen address %s already accepts connections before nutcracker started", addr)
		}
	}
	args := []string{
		"-c", n.ConfigPath,
		"-s", strconv.Itoa(statsPort),
		"-a", statsHost,
		"-i", "100",
		"-o", n.LogPath,
		"-v", "5",
	}
	args = append(args, opts.Args...)
	p, err := startProcess(bin, args, dir)
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.stop)
	n.proc = p
	n.PID = p.pid()
	if err := p.waitReady(n.probe); err != nil {
		p.stop()
		log := n.Log()
		if strings.Contains(log, "stats server addr") && mentionsAddrInUse(log) {
			err = fmt.Errorf("%w (%w)", err, errAddrInUse)
		}
		return nil, fmt.Errorf("testserver: nutcracker -c %s: %w\nlog %s:\n%s\noutput:\n%s",
			n.ConfigPath, err, n.LogPath, tail(log), tail(p.output()))
	}
	logOnFailure(t, p, n.LogPath)
	return n, nil
}

// probe checks that every listen address accepts and that the stats
// server returns a JSON object.
func (n *Nutcracker) probe() error {
	for _, addr := range n.Listen {
		c, err := net.DialTimeout("tcp", addr, probeTimeout)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	_, err := n.readStats(probeTimeout)
	return err
}

// Stop stops nutcracker: SIGTERM, then SIGKILL if it has not exited after
// 5s, and waits for the process to be reaped. It may be called more than
// once and from any goroutine; it is also called from t.Cleanup.
func (n *Nutcracker) Stop() { n.proc.stop() }

// Exited reports whether the process has exited, for any reason.
func (n *Nutcracker) Exited() bool { return n.proc.exited() }

// Log returns the current contents of the log file, or a note saying why
// it could not be read.
func (n *Nutcracker) Log() string {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// Stats connects to the stats server, reads its JSON document to EOF and
// returns it decoded: pools are keys holding nested maps, and numbers are
// float64. Stats are aggregated every 100ms (-i 100), so a counter may lag
// the traffic that changes it. A read or decode error fails the test.
func (n *Nutcracker) Stats(t testing.TB) map[string]any {
	t.Helper()
	stats, err := n.readStats(statsTimeout)
	if err != nil {
		t.Fatalf("testserver: nutcracker stats %s: %v", n.StatsAddr, err)
	}
	return stats
}

func (n *Nutcracker) readStats(timeout time.Duration) (map[string]any, error) {
	return ReadStats(n.StatsAddr, timeout)
}

// ReadStats reads one stats document (nutcracker's or walnut's) from the
// stats server at addr, waiting at most timeout, and decodes it.
func ReadStats(addr string, timeout time.Duration) (map[string]any, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	var stats map[string]any
	if err := json.Unmarshal(b, &stats); err != nil {
		return nil, fmt.Errorf("decode %.100q: %w", b, err)
	}
	return stats, nil
}
