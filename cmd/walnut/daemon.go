package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// daemonEnv marks the process walnut -d re-executes as the daemon. It is an
// environment variable rather than a flag so that the daemon's command line
// is the one the user typed.
const daemonEnv = "WALNUT_DAEMONIZED"

// statusFD is the descriptor on which the daemon reports to the process
// that started it: the first of exec.Cmd.ExtraFiles.
const statusFD = 3

// statusReady is the one byte the daemon writes once it serves. Anything
// else it writes is the text of the error that stopped it.
const statusReady = 0

// isDaemonChild reports whether this process is the daemon started by
// walnut -d.
func isDaemonChild() bool { return os.Getenv(daemonEnv) == "1" }

// daemonize runs walnut -d: Go cannot fork, so it starts this executable
// again with the same arguments and daemonEnv set, in a new session
// (setsid), with standard input, output and error on /dev/null and the same
// working directory. It then waits until the daemon reports that it serves
// (exit status 0) or why it failed (the message is printed, status 1).
func daemonize(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "walnut: daemonize failed: %v\n", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "walnut: daemonize failed: %v\n", err)
		return 1
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "walnut: daemonize failed: %v\n", err)
		return 1
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w} // statusFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		fmt.Fprintf(stderr, "walnut: daemonize failed: %v\n", err)
		return 1
	}
	// The read ends when the daemon closes its end: after reporting, or
	// when it exits.
	status, _ := io.ReadAll(r)
	if len(status) == 1 && status[0] == statusReady {
		_ = cmd.Process.Release()
		return 0
	}
	werr := cmd.Wait()
	if len(status) == 0 {
		fmt.Fprintf(stderr, "walnut: daemon exited before it was ready: %v\n", werr)
		return 1
	}
	stderr.Write(status)
	return 1
}

// daemonStatus is the daemon's side of the report to daemonize. A zero
// value (not a daemon) does nothing.
type daemonStatus struct {
	pipe *os.File
	// errs collects what walnut would print on stderr, which is
	// /dev/null in a daemon, to be sent on failure.
	errs bytes.Buffer
}

// newDaemonStatus returns the reporter of the daemon, or nil for a process
// that is not one. A daemon started without the status pipe (by hand,
// with daemonEnv set) reports nothing.
func newDaemonStatus() *daemonStatus {
	// Checked before os.NewFile: an *os.File closes its descriptor when
	// collected, and descriptor 3 may be something else's.
	var st syscall.Stat_t
	if err := syscall.Fstat(statusFD, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return &daemonStatus{}
	}
	syscall.CloseOnExec(statusFD)
	return &daemonStatus{pipe: os.NewFile(statusFD, "walnut-status")}
}

// ready reports success and closes the pipe. d may be nil.
func (d *daemonStatus) ready() {
	if d == nil {
		return
	}
	d.send([]byte{statusReady})
}

// failed reports what was written to d.errs and closes the pipe. d may be
// nil.
func (d *daemonStatus) failed() {
	if d == nil {
		return
	}
	msg := d.errs.Bytes()
	if len(msg) == 0 || msg[0] == statusReady {
		msg = append([]byte("walnut: daemon failed to start\n"), msg...)
	}
	d.send(msg)
}

func (d *daemonStatus) send(b []byte) {
	if d.pipe == nil {
		return
	}
	// An error means the parent is gone: there is no one left to tell.
	_, _ = d.pipe.Write(b)
	d.pipe.Close()
	d.pipe = nil
}
