package main

import (
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

// TestFatalSignalIsLogged sends SIGSEGV, SIGBUS and SIGFPE to walnut: each
// is logged, with the goroutines' stacks, before walnut dies of it without
// cleaning up, as nutcracker does for SIGSEGV (nutcracker does not catch
// SIGBUS or SIGFPE).
func TestFatalSignalIsLogged(t *testing.T) {
	tests := []struct {
		sig     syscall.Signal
		name    string
		runtime string // the Go runtime's line on stderr
	}{
		{syscall.SIGSEGV, "SIGSEGV", "SIGSEGV: segmentation violation"},
		{syscall.SIGBUS, "SIGBUS", "SIGBUS: bus error"},
		{syscall.SIGFPE, "SIGFPE", "SIGFPE: floating-point exception"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
			conf := writeFile(t, dir, "nutcracker.yml", "alpha:\n  listen: "+addr+"\n  servers:\n"+server("127.0.0.1:1"))
			pidFile := filepath.Join(dir, "walnut.pid")
			logFile := filepath.Join(dir, "walnut.log")
			p := startWalnut(t, dir, "-c", conf, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")),
				"-p", pidFile, "-o", logFile)
			waitStarted(t, p, logFile)

			p.signal(t, tt.sig)
			assert.Equal(t, 2, p.wait(t, 10*time.Second))
			log := readFile(logFile)
			assert.Contains(t, log, `level=INFO msg="signal received, crashing" signal=`+tt.name)
			stacks, _, _ := strings.Cut(log, `msg="signal received, crashing"`)
			assert.Contains(t, stacks, "goroutine 1 [", "the stacks are logged first")
			assert.Contains(t, stacks, "main.waitForExit(")
			assert.NotContains(t, log, "walnut stopped", "no graceful shutdown")
			assert.True(t, exists(pidFile), "the pid file is left behind, as by nutcracker")
			out := p.output.String()
			assert.Contains(t, out, tt.runtime)
			assert.Contains(t, out, "\ngoroutine ", "the runtime writes every goroutine's stack")
		})
	}
}

// TestNutcrackerLogsSIGSEGV pins what walnut's crash mirrors: nutcracker
// writes its stack and "signal 11 (SIGSEGV) received, core dumping" to its
// log and dies of the signal.
func TestNutcrackerLogsSIGSEGV(t *testing.T) {
	addr := hostPort(testserver.FreePort(t, "127.0.0.1"))
	n := testserver.StartNutcracker(t, "alpha:\n  listen: "+addr+"\n  servers:\n"+server("127.0.0.1:1"),
		testserver.NutcrackerOptions{Listen: []string{addr}})
	require.NoError(t, syscall.Kill(n.PID, syscall.SIGSEGV))
	require.Eventually(t, n.Exited, 10*time.Second, 10*time.Millisecond)
	log := n.Log()
	assert.Contains(t, log, "signal_handler+")
	assert.Contains(t, log, "] signal 11 (SIGSEGV) received, core dumping\n")
}
