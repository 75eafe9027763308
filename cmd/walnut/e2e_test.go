package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// TestOptionErrorsMatchNutcracker runs walnut and nutcracker with the same
// bad options: the exit status and the first line of output must be the
// same, with "nutcracker" read as "walnut".
func TestOptionErrorsMatchNutcracker(t *testing.T) {
	nutcracker := testserver.RequireBinary(t, "nutcracker")
	tests := []struct {
		give []string
		// differs, if not empty, is walnut's first line where it
		// deliberately differs from nutcracker's.
		differs string
	}{
		{give: []string{"-v", "x"}},
		{give: []string{"-s", "0"}},
		{give: []string{"-s", "70000"}},
		{give: []string{"-s", "x"}},
		{give: []string{"-m", "100"}},
		{give: []string{"-m", "0"}},
		{give: []string{"-m"}},
		{give: []string{"-i", "-1"}},
		{give: []string{"-x"}},
		{give: []string{"-c"}},
		{give: []string{"-o"}},
		{give: []string{"-a"}},
		{give: []string{"--verbose=x"}},
		{give: []string{"--pid-file"}},
		// nutcracker prints the option character, NUL for a long
		// option: "invalid option -- '\x00'".
		{give: []string{"--bogus"}, differs: "walnut: unrecognized option '--bogus'"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			dir := t.TempDir()
			nutCode, nutOut := runNutcracker(t, nutcracker, dir, tt.give...)
			code, out := runWalnut(t, dir, tt.give...)
			nutFirst, _, _ := strings.Cut(nutOut, "\n")
			first, rest, _ := strings.Cut(out, "\n")
			assert.Equal(t, 1, nutCode, "nutcracker: %s", nutOut)
			assert.Equal(t, nutCode, code)
			assert.True(t, strings.HasPrefix(rest, "Usage: walnut "), "usage follows: %s", out)
			if tt.differs != "" {
				assert.Equal(t, "nutcracker: invalid option -- '\x00'", nutFirst)
				assert.Equal(t, tt.differs, first)
				return
			}
			assert.Equal(t, strings.ReplaceAll(nutFirst, "nutcracker", "walnut"), first)
		})
	}
}

func TestInformationalBinary(t *testing.T) {
	dir := t.TempDir()
	code, out := runWalnut(t, dir, "-V")
	assert.Equal(t, 0, code)
	assert.Equal(t, "This is walnut-"+version+"\n", out)

	code, out = runWalnut(t, dir, "-h")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "This is walnut-"+version+"\n\nUsage: walnut [-?hVdDt]"), out)

	code, out = runWalnut(t, dir, "-D")
	assert.Equal(t, 0, code)
	for _, f := range statsFields {
		assert.Contains(t, out, "\n  "+f+" ")
	}
}

// hostPort is "127.0.0.1:port".
func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// server is a nutcracker.yml server entry of weight 1 for addr.
func server(addr string) string { return "    - " + addr + ":1\n" }

// TestRun runs walnut in front of real redis-server and memcached processes:
// traffic through TCP and unix pools, stats, log rotation, the log level
// signals and a clean SIGTERM.
func TestRun(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	m1 := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	m2 := testserver.StartMemcached(t, testserver.MemcachedOptions{})

	dir := t.TempDir()
	sock := filepath.Join(dir, "walnut.sock")
	require.Less(t, len(sock), 100, "unix socket path too long")
	redisAddr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	mcAddr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	statsPort := testserver.FreePort(t, "127.0.0.1")
	conf := writeFile(t, dir, "nutcracker.yml",
		"alpha:\n  listen: "+redisAddr+"\n  redis: true\n  servers:\n"+server(r1.Addr)+server(r2.Addr)+
			"mc:\n  listen: "+mcAddr+"\n  servers:\n"+server(m1.Addr)+server(m2.Addr)+
			"sock:\n  listen: "+sock+" 0600\n  redis: true\n  servers:\n"+server(r1.Addr)+server(r2.Addr))
	pidFile := filepath.Join(dir, "walnut.pid")
	logFile := filepath.Join(dir, "walnut.log")

	p := startWalnut(t, dir, "-c", conf, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1",
		"-p", pidFile, "-o", logFile, "-i", "100")
	waitStarted(t, p, logFile)

	// The pid file, the unix socket and its permission.
	assert.Equal(t, strconv.Itoa(p.cmd.Process.Pid)+"\n", readFile(pidFile))
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSocket)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Redis through TCP: keys spread over both servers.
	rc := testserver.DialRedis(t, redisAddr)
	for i := range 20 {
		k, v := fmt.Sprintf("key:%d", i), fmt.Sprintf("value:%d", i)
		got, err := rc.Do("SET", k, v)
		require.NoError(t, err)
		require.Equal(t, "+OK", got)
		got, err = rc.Do("GET", k)
		require.NoError(t, err)
		require.Equal(t, v, got)
	}
	// Redis through the unix socket.
	uc, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer uc.Close()
	ur := bufio.NewReader(uc)
	assert.Equal(t, "+OK", respDo(t, uc, ur, "SET", "unix-key", "unix-value"))
	assert.Equal(t, "unix-value", respDo(t, uc, ur, "GET", "unix-key"))
	assert.Equal(t, "value:3", respDo(t, uc, ur, "GET", "key:3"), "same servers and hash behind both pools")
	// memcached.
	mc := testserver.DialMemcache(t, mcAddr)
	for i := range 10 {
		k := fmt.Appendf(nil, "mkey:%d", i)
		require.NoError(t, mc.Set(k, []byte("mvalue")))
		got, err := mc.Get(k)
		require.NoError(t, err)
		require.Equal(t, "mvalue", string(got[string(k)]))
	}

	// Stats: every pool and server, and the requests counted.
	statsAddr := hostPort(statsPort)
	servers := map[string][]string{
		"alpha": {r1.Addr, r2.Addr},
		"mc":    {m1.Addr, m2.Addr},
		"sock":  {r1.Addr, r2.Addr},
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		doc, err := readStats(statsAddr)
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, "walnut", doc["service"])
		assert.Equal(c, version, doc["version"])
		for pool, names := range servers {
			ps, ok := doc[pool].(map[string]any)
			if !assert.True(c, ok, "pool %s in %v", pool, doc) {
				continue
			}
			var requests float64
			for _, name := range names {
				ss, ok := ps[name].(map[string]any)
				if assert.True(c, ok, "server %s in pool %s: %v", name, pool, ps) {
					n, _ := ss["requests"].(float64)
					requests += n
				}
			}
			assert.Positive(c, requests, "requests of pool %s", pool)
		}
	}, 5*time.Second, 50*time.Millisecond)

	// Log rotation: rename, SIGHUP, a new file.
	require.NoError(t, os.Rename(logFile, logFile+".1"))
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool { return strings.Contains(readFile(logFile), `msg="log file reopened"`) },
		5*time.Second, 10*time.Millisecond, "new log file; old one:\n%s", readFile(logFile+".1"))
	assert.Contains(t, readFile(logFile+".1"), `msg="signal received, reopening log file" signal=SIGHUP`)
	assert.NotContains(t, readFile(logFile+".1"), "log file reopened")

	// SIGUSR1 reloads (the file is unchanged) without reopening the log.
	p.signal(t, syscall.SIGUSR1)
	require.Eventually(t, func() bool {
		return strings.Contains(readFile(logFile), `trigger=SIGUSR1 added=0 removed=0 changed=0`)
	}, 5*time.Second, 10*time.Millisecond, "log:\n%s", readFile(logFile))
	assert.Contains(t, readFile(logFile), `msg="signal received, reloading configuration" signal=SIGUSR1`)
	assert.Equal(t, 1, strings.Count(readFile(logFile), "log file reopened"), "SIGUSR1 does not reopen the log")

	// Log level signals.
	p.signal(t, syscall.SIGTTIN)
	require.Eventually(t, func() bool {
		return strings.Contains(readFile(logFile), `msg="signal received, up logging level" signal=SIGTTIN verbosity=6`)
	}, 5*time.Second, 10*time.Millisecond, "log:\n%s", readFile(logFile))
	// One at a time: the kernel merges a signal sent while the same one
	// is pending.
	for _, want := range []string{"signal=SIGTTOU verbosity=5", "signal=SIGTTOU verbosity=4"} {
		p.signal(t, syscall.SIGTTOU)
		require.Eventually(t, func() bool { return strings.Contains(readFile(logFile), want) },
			5*time.Second, 10*time.Millisecond, "log:\n%s", readFile(logFile))
	}
	p.signal(t, syscall.SIGUSR2)
	require.Eventually(t, func() bool { return strings.Contains(readFile(logFile), `msg="signal received" signal=SIGUSR2`) },
		5*time.Second, 10*time.Millisecond, "log:\n%s", readFile(logFile))
	require.False(t, p.exited(), "walnut exited on a signal it should only log: %s", p.output.String())

	// SIGTERM with clients still connected: exit 0, everything removed.
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(t, 5*time.Second), "output: %s", p.output.String())
	assert.False(t, exists(pidFile), "pid file removed")
	assert.False(t, exists(sock), "unix socket removed")
	log := readFile(logFile)
	assert.Contains(t, log, `msg="signal received, exiting" signal=SIGTERM`)
	assert.Contains(t, log, `msg="walnut stopped" status=0`)
	assert.Empty(t, p.output.String(), "nothing on stderr with -o")
}

// TestRunSIGINT checks that SIGINT exits with status 1, as nutcracker does,
// but cleans up, which nutcracker does not.
func TestRunSIGINT(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	sock := filepath.Join(dir, "w.sock")
	addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	conf := writeFile(t, dir, "nutcracker.yml",
		"alpha:\n  listen: "+addr+"\n  redis: true\n  servers:\n"+server(r.Addr)+
			"beta:\n  listen: "+sock+"\n  redis: true\n  servers:\n"+server(r.Addr))
	pidFile := filepath.Join(dir, "walnut.pid")
	logFile := filepath.Join(dir, "walnut.log")
	p := startWalnut(t, dir, "-c", conf, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")),
		"-p", pidFile, "-o", logFile)
	waitStarted(t, p, logFile)
	require.True(t, exists(sock))
	got, err := testserver.DialRedis(t, addr).Do("PING")
	require.NoError(t, err)
	assert.Equal(t, "+PONG", got)

	p.signal(t, syscall.SIGINT)
	assert.Equal(t, 1, p.wait(t, 5*time.Second))
	assert.False(t, exists(pidFile), "pid file removed")
	assert.False(t, exists(sock), "unix socket removed")
	assert.Contains(t, readFile(logFile), `msg="walnut stopped" status=1`)
}

// TestRunLogsToStderr checks the default log destination and the verbosity
// option.
func TestRunLogsToStderr(t *testing.T) {
	dir := t.TempDir()
	addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	conf := writeFile(t, dir, "nutcracker.yml", "alpha:\n  listen: "+addr+"\n  servers:\n"+server("127.0.0.1:1"))
	pidFile := filepath.Join(dir, "walnut.pid")
	p := startWalnut(t, dir, "-c", conf, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")), "-p", pidFile, "-v", "0")
	require.Eventually(t, func() bool { return strings.Contains(p.output.String(), "walnut started") || p.exited() },
		10*time.Second, 10*time.Millisecond)
	require.False(t, p.exited(), p.output.String())
	assert.Contains(t, p.output.String(), "level=INFO msg=\"walnut started\" version="+version+" pid="+strconv.Itoa(p.cmd.Process.Pid)+" pools=[alpha] conf="+conf)
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.wait(t, 5*time.Second))
	assert.Contains(t, p.output.String(), `msg="walnut stopped" status=0`)
}

// TestStartupFailures checks that walnut stops with status 1 and a message
// when it cannot start, leaving nothing behind.
func TestStartupFailures(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenAddr := taken.Addr().String()
	_, takenPort, _ := net.SplitHostPort(takenAddr)

	tests := []struct {
		name string
		// conf is the configuration; LISTEN is replaced by a free
		// address, TAKEN by takenAddr and DIR by the test's directory.
		conf      string
		args      []string // after -c, -p and -s; "TAKENPORT" is replaced
		wantLines []string // regular expressions, one per line of output
	}{
		{
			name: "pool port taken",
			conf: "u:\n  listen: DIR/u.sock\n  servers:\n" + server("127.0.0.1:1") +
				"alpha:\n  listen: TAKEN\n  servers:\n" + server("127.0.0.1:1"),
			wantLines: []string{`^walnut: bind on pool 'alpha' to addr '` + takenAddr + `' failed: address already in use$`},
		},
		{
			name:      "stats port taken",
			conf:      "alpha:\n  listen: LISTEN\n  servers:\n" + server("127.0.0.1:1"),
			args:      []string{"-s", "TAKENPORT"},
			wantLines: []string{`^walnut: bind on stats server addr '127.0.0.1:` + takenPort + `' failed: address already in use$`},
		},
		{
			name:      "stats addr not local",
			conf:      "alpha:\n  listen: LISTEN\n  servers:\n" + server("127.0.0.1:1"),
			args:      []string{"-a", "192.0.2.1"},
			wantLines: []string{`^walnut: bind on stats server addr '192\.0\.2\.1:\d+' failed: cannot assign requested address$`},
		},
		{
			name:      "admin port taken",
			conf:      "alpha:\n  listen: LISTEN\n  servers:\n" + server("127.0.0.1:1"),
			args:      []string{"--admin-addr", "TAKEN"},
			wantLines: []string{`^walnut: bind on admin server addr '` + takenAddr + `' failed: address already in use$`},
		},
		{
			name: "invalid configuration",
			conf: "alpha:\n  listen: LISTEN\n  distribution: sideways\n  servers:\n" + server("127.0.0.1:1"),
			wantLines: []string{
				`^.*nutcracker\.yml:3: pool "alpha": key "distribution": `,
				`^walnut: configuration file '.*nutcracker\.yml' syntax is invalid$`,
			},
		},
		{
			name:      "pid file not writable",
			conf:      "alpha:\n  listen: LISTEN\n  servers:\n" + server("127.0.0.1:1"),
			args:      []string{"-p", "DIR/missing/walnut.pid"},
			wantLines: []string{`^walnut: opening pid file '.*/missing/walnut\.pid' failed: no such file or directory$`},
		},
		{
			name:      "log file not writable",
			conf:      "alpha:\n  listen: LISTEN\n  servers:\n" + server("127.0.0.1:1"),
			args:      []string{"-o", "DIR/missing/walnut.log"},
			wantLines: []string{`^walnut: opening log file '.*/missing/walnut\.log' failed: no such file or directory$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := strings.NewReplacer(
				"LISTEN", hostPort(testserver.FreePort(t, "127.0.0.1")),
				"TAKEN", takenAddr,
				"DIR", dir,
			).Replace(tt.conf)
			confPath := writeFile(t, dir, "nutcracker.yml", conf)
			pidFile := filepath.Join(dir, "walnut.pid")
			args := []string{"-c", confPath, "-p", pidFile, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1"))}
			for _, a := range tt.args {
				args = append(args, strings.NewReplacer("TAKENPORT", takenPort, "TAKEN", takenAddr, "DIR", dir).Replace(a))
			}
			code, out := runWalnut(t, dir, args...)
			assert.Equal(t, 1, code)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			require.Len(t, lines, len(tt.wantLines), out)
			for i, re := range tt.wantLines {
				assert.Regexp(t, re, lines[i])
			}
			assert.False(t, exists(pidFile), "no pid file")
			assert.False(t, exists(filepath.Join(dir, "u.sock")), "unix socket removed")
		})
	}
}

// TestStartupFailureLogged checks that with -o a startup error is also in
// the log.
func TestStartupFailureLogged(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	dir := t.TempDir()
	conf := writeFile(t, dir, "nutcracker.yml", "alpha:\n  listen: "+taken.Addr().String()+"\n  servers:\n"+server("127.0.0.1:1"))
	logFile := filepath.Join(dir, "walnut.log")
	code, out := runWalnut(t, dir, "-c", conf, "-o", logFile, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "walnut: bind on pool 'alpha'")
	assert.Contains(t, readFile(logFile), `level=ERROR msg="startup failed" err="bind on pool 'alpha'`)
}

// TestShutdownWaitsForReplies checks that SIGTERM lets a client receive the
// reply to a request in flight, and that a second SIGTERM stops waiting.
func TestShutdownWaitsForReplies(t *testing.T) {
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprintf("second signal %v", second), func(t *testing.T) {
			// A backend that answers only when the test says so.
			backend, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer backend.Close()
			dir := t.TempDir()
			addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
			conf := writeFile(t, dir, "nutcracker.yml",
				"alpha:\n  listen: "+addr+"\n  redis: true\n  servers:\n"+server(backend.Addr().String()))
			logFile := filepath.Join(dir, "walnut.log")
			p := startWalnut(t, dir, "-c", conf, "-o", logFile, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
			waitStarted(t, p, logFile)

			client, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer client.Close()
			_, err = client.Write([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
			require.NoError(t, err)
			require.NoError(t, backend.(*net.TCPListener).SetDeadline(time.Now().Add(5*time.Second)))
			bc, err := backend.Accept()
			require.NoError(t, err)
			defer bc.Close()
			require.NoError(t, bc.SetDeadline(time.Now().Add(5*time.Second)))
			req := make([]byte, 64)
			n, err := bc.Read(req)
			require.NoError(t, err)
			require.Contains(t, string(req[:n]), "GET")

			p.signal(t, syscall.SIGTERM)
			require.Eventually(t, func() bool { return strings.Contains(readFile(logFile), "signal=SIGTERM") },
				5*time.Second, 10*time.Millisecond)
			time.Sleep(200 * time.Millisecond)
			require.False(t, p.exited(), "walnut waits for the reply in flight")

			if second {
				p.signal(t, syscall.SIGTERM)
				assert.Equal(t, 0, p.wait(t, 5*time.Second))
				assert.Contains(t, readFile(logFile), `msg="signal received again, closing connections now" signal=SIGTERM`)
				assert.Contains(t, readFile(logFile), `msg="pool shutdown cut short: connections closed" pool=alpha`)
				return
			}
			_, err = bc.Write([]byte("$1\r\nv\r\n"))
			require.NoError(t, err)
			require.NoError(t, client.SetDeadline(time.Now().Add(5*time.Second)))
			reply, err := bufio.NewReader(client).ReadString('v')
			require.NoError(t, err)
			assert.Equal(t, "$1\r\nv", reply)
			assert.Equal(t, 0, p.wait(t, 5*time.Second))
			assert.NotContains(t, readFile(logFile), "cut short")
		})
	}
}
