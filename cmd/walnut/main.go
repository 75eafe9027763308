package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/proxy/fleet"
)

// shutdownTimeout bounds how long SIGTERM or SIGINT waits for clients to
// receive the replies to the requests they have sent before connections
// are closed.
const shutdownTimeout = 10 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is walnut with the command-line arguments args (without the program
// name). It returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintf(stderr, "walnut: %v\n", err)
		writeUsage(stderr)
		return 1
	}
	switch {
	case o.help || o.describeStats:
		// As nutcracker: -h and -D imply -V, all on stderr.
		writeVersion(stderr)
		if o.help {
			fmt.Fprintln(stderr)
			writeUsage(stderr)
		}
		if o.describeStats {
			fmt.Fprintln(stderr)
			io.WriteString(stderr, proxy.DescribeStats)
		}
		return 0
	case o.version:
		writeVersion(stdout)
		return 0
	case o.testConf:
		return testConf(o.confFile, stderr)
	case o.daemonize && !isDaemonChild():
		return daemonize(args, stderr)
	}
	if o.daemonize {
		ds := newDaemonStatus()
		_ = os.Unsetenv(daemonEnv)
		// The daemon's stderr is /dev/null: startup errors go to the
		// process waiting in daemonize instead; the log (without -o)
		// goes where nutcracker's goes, to /dev/null.
		errOut := stderr
		if ds.pipe != nil {
			errOut = &ds.errs
		}
		return serve(o, errOut, stderr, ds)
	}
	return serve(o, stderr, stderr, nil)
}

// testConf is -t: it reports whether the configuration file is valid, and
// if not, why (nutcracker -t does not say why).
func testConf(file string, stderr io.Writer) int {
	f, err := config.Load(file)
	if err == nil {
		// What the proxy checks beyond the file's syntax, such as the
		// command names of redis_refuse_commands.
		for _, p := range f.Pools {
			if err = proxy.FromPool(p, nil).Validate(); err != nil {
				err = fmt.Errorf("%s:%d: %w", file, p.Line, err)
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "walnut: configuration file '%s' syntax is invalid\n", file)
		return 1
	}
	fmt.Fprintf(stderr, "walnut: configuration file '%s' syntax is ok\n", file)
	return 0
}

// signalNames are the names logged for the signals walnut handles.
var signalNames = map[os.Signal]string{
	syscall.SIGHUP:  "SIGHUP",
	syscall.SIGINT:  "SIGINT",
	syscall.SIGTERM: "SIGTERM",
	syscall.SIGTTIN: "SIGTTIN",
	syscall.SIGTTOU: "SIGTTOU",
	syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGSEGV: "SIGSEGV",
	syscall.SIGBUS:  "SIGBUS",
	syscall.SIGFPE:  "SIGFPE",
}

// fatalSignals are the signals that, sent to walnut, are logged and then
// crash it. A real fault (a bad memory access in walnut) is reported by
// the Go runtime itself and never reaches the signal channel.
var fatalSignals = []os.Signal{syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE}

// serve runs the proxy until SIGTERM or SIGINT and returns the exit status.
// Startup errors are written to errOut; the log goes to logOut unless -o
// names a file. ds, if not nil, is told when walnut serves or why it could
// not start.
func serve(o options, errOut, logOut io.Writer, ds *daemonStatus) int {
	started := false
	defer func() {
		if !started {
			ds.failed()
		}
	}()

	var lf *logFile
	if o.output != "" {
		var err error
		if lf, err = newLogFile(o.output); err != nil {
			fmt.Fprintf(errOut, "walnut: opening log file '%s' failed: %v\n", o.output, cause(err))
			return 1
		}
		defer lf.Close()
		logOut = lf
	}
	verb := newVerbosity(o.verbosity)
	log := newLogger(logOut, verb)
	// fail reports a startup error on errOut, and in the log when that is
	// a file (otherwise both would be stderr).
	fail := func(err error) int {
		fmt.Fprintf(errOut, "walnut: %v\n", err)
		if lf != nil {
			log.Error("startup failed", "err", err)
		}
		return 1
	}
	if ds != nil {
		// As nutcracker's daemon does, after opening the log file.
		syscall.Umask(0)
	}

	// Registered before anything slow, so that a signal arriving during
	// startup is handled once walnut serves rather than killing it.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1, syscall.SIGUSR2)
	signal.Notify(sigs, fatalSignals...)
	defer signal.Stop(sigs)
	// nutcracker ignores SIGPIPE; Go already does for sockets, this also
	// covers a closed stderr.
	signal.Ignore(syscall.SIGPIPE)

	file, err := config.Load(o.confFile)
	if err != nil {
		// The reason first, as -t prints it, then nutcracker's line.
		fmt.Fprintln(errOut, err)
		if lf != nil {
			log.Error("configuration file rejected", "err", err)
		}
		return fail(fmt.Errorf("configuration file '%s' syntax is invalid", o.confFile))
	}
	f, err := open(file, o, log)
	if err != nil {
		return fail(err)
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile); err != nil {
			f.Close()
			return fail(fmt.Errorf("opening pid file '%s' failed: %w", o.pidFile, cause(err)))
		}
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- f.Serve() }()
	attrs := []any{"version", version, "pid", os.Getpid(),
		"pools", f.Names(), "conf", o.confFile, "stats", statsAddr(o)}
	if o.adminAddr != "" {
		attrs = append(attrs, "admin", o.adminAddr)
	}
	always(log, "walnut started", attrs...)
	started = true
	ds.ready()

	code := waitForExit(sigs, serveErr, log, verb, lf, f.ReloadFile)
	shutdown(f, sigs, log, lf)
	if o.pidFile != "" {
		if err := os.Remove(o.pidFile); err != nil {
			log.Warn("removing pid file failed", "file", o.pidFile, "err", err)
		}
	}
	always(log, "walnut stopped", "status", code)
	return code
}

// statsAddr is the stats server's address, -a and -s.
func statsAddr(o options) string {
	return net.JoinHostPort(o.statsAddr, strconv.Itoa(o.statsPort))
}

// open creates the fleet of file's pools with the stats server and, with
// --admin-addr, the admin server, and binds every listener without
// serving. Binding everything first stops walnut before it accepts a
// client if any bind fails, as nutcracker stops. On error, what was opened
// is closed.
func open(file *config.File, o options, log *slog.Logger) (*fleet.Fleet, error) {
	f, err := fleet.New(file, fleet.Options{
		Logger:        log,
		StatsAddr:     statsAddr(o),
		StatsInterval: time.Duration(o.statsInterval) * time.Millisecond,
		Service:       "walnut",
		Version:       version,
		AdminAddr:     o.adminAddr,
		DrainTimeout:  shutdownTimeout,
		Loops:         o.loops,
	})
	if err != nil {
		return nil, err
	}
	if err := f.Listen(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// shutdown stops reloads and accepting, and lets clients receive the
// replies to what they have sent, for at most shutdownTimeout or until
// another SIGTERM or SIGINT arrives on sigs; then it closes everything and
// waits for the serving goroutines. Pools removed by a reload and still
// draining get no more time than the others.
func shutdown(f *fleet.Fleet, sigs <-chan os.Signal, log *slog.Logger, lf *logFile) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		for {
			select {
			case sig := <-sigs:
				if isFatal(sig) {
					crash(log, lf, sig)
				}
				if sig == syscall.SIGINT || sig == syscall.SIGTERM {
					always(log, "signal received again, closing connections now", "signal", signalNames[sig])
					cancel()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	// The pools cut short are logged by the fleet.
	_ = f.Shutdown(ctx)
	cancel()
	watcher.Wait()
}

// waitForExit handles signals until SIGTERM (status 0) or SIGINT (status
// 1, as nutcracker), or until a server fails (status 1). SIGHUP reopens
// the log file and then reloads the configuration with reload; SIGUSR1
// only reloads. SIGSEGV, SIGBUS and SIGFPE crash walnut (see crash).
func waitForExit(sigs <-chan os.Signal, serveErr <-chan error, log *slog.Logger, verb *verbosity, lf *logFile, reload func(trigger string) error) int {
	for {
		select {
		case err := <-serveErr:
			log.Error("serving failed, exiting", "err", err)
			return 1
		case sig := <-sigs:
			name := signalNames[sig]
			switch sig {
			case syscall.SIGHUP:
				// Written to the old file, then the new one starts.
				always(log, "signal received, reopening log file", "signal", name)
				if lf != nil {
					if err := lf.Reopen(); err != nil {
						log.Error("reopening log file failed", "file", lf.path, "err", err)
					} else {
						always(log, "log file reopened", "file", lf.path)
					}
				}
				// reload logs the outcome; walnut serves on either way.
				_ = reload("SIGHUP")
			case syscall.SIGUSR1:
				// The reload signal twemproxy planned (it never shipped):
				// the configuration only, the log file stays open.
				always(log, "signal received, reloading configuration", "signal", name)
				_ = reload("SIGUSR1")
			case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE:
				crash(log, lf, sig)
			case syscall.SIGTTIN:
				always(log, "signal received, up logging level", "signal", name, "verbosity", verb.add(1))
			case syscall.SIGTTOU:
				always(log, "signal received, down logging level", "signal", name, "verbosity", verb.add(-1))
			case syscall.SIGTERM:
				always(log, "signal received, exiting", "signal", name)
				return 0
			case syscall.SIGINT:
				always(log, "signal received, exiting", "signal", name)
				return 1
			default: // SIGUSR2: logged only, as by nutcracker
				always(log, "signal received", "signal", name)
			}
		}
	}
}

func isFatal(sig os.Signal) bool {
	return sig == syscall.SIGSEGV || sig == syscall.SIGBUS || sig == syscall.SIGFPE
}

// crash handles SIGSEGV, SIGBUS or SIGFPE sent to walnut as nutcracker
// handles SIGSEGV: it logs the signal, then dies of it without any
// cleanup. With a log file (lf not nil) the stacks of every goroutine are
// written to it first, as nutcracker writes its stack to its log. The
// signal is then given back to the Go runtime, which writes the stacks to
// stderr and exits with status 2, or, with GOTRACEBACK=crash, aborts with
// a core dump. crash does not return.
func crash(log *slog.Logger, lf *logFile, sig os.Signal) {
	if lf != nil {
		buf := make([]byte, 1<<20)
		_, _ = lf.Write(buf[:runtime.Stack(buf, true)])
	}
	always(log, "signal received, crashing", "signal", signalNames[sig])
	debug.SetTraceback("all")
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	// The runtime handles the signal on another thread; should it not end
	// the process, exit as it would have.
	time.Sleep(5 * time.Second)
	os.Exit(2)
}

// writePidFile writes the process id, in decimal and a newline, to path.
func writePidFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// cause returns the system error under a file operation's err, such as
// "permission denied", for messages that already name the operation and
// the file, as nutcracker's strerror messages do.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
