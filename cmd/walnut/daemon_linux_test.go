package main

import (
	"errors"
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

// becomeSubreaper makes this test process adopt orphaned descendants, so
// that a daemon whose parent (walnut -d) has exited becomes its child and
// can be waited for, whatever PID 1 does with orphans.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	const prSetChildSubreaper = 36
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	require.Zero(t, errno, "prctl(PR_SET_CHILD_SUBREAPER)")
}

// procStat returns fields of /proc/PID/stat after the command name: state,
// ppid, pgrp, session, ….
func procStat(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// reap waits at most timeout for the adopted process pid to exit and
// returns its exit status. On timeout it kills the process and fails.
func reap(t *testing.T, pid int, timeout time.Duration) int {
	t.Helper()
	type result struct {
		ws  syscall.WaitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		for errors.Is(err, syscall.EINTR) {
			_, err = syscall.Wait4(pid, &ws, 0, nil)
		}
		done <- result{ws, err}
	}()
	select {
	case r := <-done:
		require.NoError(t, r.err)
		return r.ws.ExitStatus()
	case <-time.After(timeout):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
		t.Fatalf("daemon %d still running after %v", pid, timeout)
		return -1
	}
}

func TestDaemonize(t *testing.T) {
	becomeSubreaper(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	writeFile(t, dir, "nutcracker.yml", "alpha:\n  listen: "+addr+"\n  redis: true\n  servers:\n"+server(r.Addr)+
		"sock:\n  listen: "+filepath.Join(dir, "w.sock")+"\n  redis: true\n  servers:\n"+server(r.Addr))
	// Relative paths: the daemon stays in the directory it was started in.
	start := time.Now()
	p := startWalnut(t, dir, "-d", "-c", "nutcracker.yml", "-p", "walnut.pid", "-o", "walnut.log",
		"-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	require.Equal(t, 0, p.wait(t, 10*time.Second), "output: %s", p.output.String())
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Empty(t, p.output.String())

	// The parent has returned: the pid file names the daemon, which
	// already serves.
	pidText := readFile(filepath.Join(dir, "walnut.pid"))
	require.Regexp(t, `^[0-9]+\n$`, pidText)
	pid, err := strconv.Atoi(strings.TrimSpace(pidText))
	require.NoError(t, err)
	// Until the test reaps it, the daemon is stopped by PID at the end.
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	})
	assert.NotEqual(t, p.cmd.Process.Pid, pid)
	require.NoError(t, syscall.Kill(pid, 0), "daemon alive")
	stat := procStat(t, pid)
	assert.NotEqual(t, "Z", stat[0], "daemon not a zombie")
	assert.Equal(t, strconv.Itoa(os.Getpid()), stat[1], "adopted by the test (subreaper)")
	assert.Equal(t, strconv.Itoa(pid), stat[3], "own session (setsid)")
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	require.NoError(t, err)
	wantDir, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	assert.Equal(t, wantDir, cwd, "working directory unchanged")
	for fd := range 3 {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		require.NoError(t, err)
		assert.Equal(t, os.DevNull, target, "fd %d", fd)
	}
	_, err = os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, statusFD))
	assert.Error(t, err, "status pipe closed")
	status := readFile(fmt.Sprintf("/proc/%d/status", pid))
	assert.Contains(t, status, "\nUmask:\t0000\n")
	// umask 0: a unix socket without a permission is left rwx for all, as
	// nutcracker -d leaves it.
	fi, err := os.Stat(filepath.Join(dir, "w.sock"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o777), fi.Mode().Perm())

	rc := testserver.DialRedis(t, addr)
	got, err := rc.Do("SET", "daemon", "yes")
	require.NoError(t, err)
	assert.Equal(t, "+OK", got)
	got, err = rc.Do("GET", "daemon")
	require.NoError(t, err)
	assert.Equal(t, "yes", got)
	assert.Contains(t, readFile(filepath.Join(dir, "walnut.log")), `msg="walnut started" version=`+version+` pid=`+strconv.Itoa(pid))

	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	reaped = true // by reap, even when it fails
	code := reap(t, pid, 5*time.Second)
	assert.Equal(t, 0, code)
	assert.False(t, exists(filepath.Join(dir, "walnut.pid")), "pid file removed")
	assert.False(t, exists(filepath.Join(dir, "w.sock")), "unix socket removed")
	assert.Contains(t, readFile(filepath.Join(dir, "walnut.log")), `msg="walnut stopped" status=0`)
}

// TestDaemonizeFailure checks that walnut -d reports the daemon's startup
// error and exits 1.
func TestDaemonizeFailure(t *testing.T) {
	taken := hostPort(testserver.FreePort(t, "127.0.0.1"))
	l, err := net.Listen("tcp", taken)
	require.NoError(t, err)
	defer l.Close()
	tests := []struct {
		name      string
		conf      string
		wantLines []string
	}{
		{
			name:      "bind",
			conf:      "alpha:\n  listen: " + taken + "\n  servers:\n" + server("127.0.0.1:1"),
			wantLines: []string{`^walnut: bind on pool 'alpha' to addr '` + taken + `' failed: address already in use$`},
		},
		{
			name: "configuration",
			conf: "alpha:\n  listen: " + taken + "\n  timeout: soon\n  servers:\n" + server("127.0.0.1:1"),
			wantLines: []string{
				`^nutcracker\.yml:3: pool "alpha": key "timeout": `,
				`^walnut: configuration file 'nutcracker\.yml' syntax is invalid$`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "nutcracker.yml", tt.conf)
			code, out := runWalnut(t, dir, "-d", "-c", "nutcracker.yml", "-p", "walnut.pid",
				"-o", "walnut.log", "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
			assert.Equal(t, 1, code)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			require.Len(t, lines, len(tt.wantLines), out)
			for i, re := range tt.wantLines {
				assert.Regexp(t, re, lines[i])
			}
			assert.False(t, exists(filepath.Join(dir, "walnut.pid")))
			assert.Contains(t, readFile(filepath.Join(dir, "walnut.log")), `level=ERROR msg="startup failed"`)
		})
	}
}
