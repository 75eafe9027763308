package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/metrics"
	"github.com/walnutproxy/walnut/proxy"
)

// version is printed by -V, -h and -D and reported by the stats server.
const version = "0.0.0-dev"

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
	if _, err := config.Load(file); err != nil {
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
}

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
	defer signal.Stop(sigs)
	// nutcracker ignores SIGPIPE; Go already does for sockets, this also
	// covers a closed stderr.
	signal.Ignore(syscall.SIGPIPE)

	f, err := config.Load(o.confFile)
	if err != nil {
		// The reason first, as -t prints it, then nutcracker's line.
		fmt.Fprintln(errOut, err)
		if lf != nil {
			log.Error("configuration file rejected", "err", err)
		}
		return fail(fmt.Errorf("configuration file '%s' syntax is invalid", o.confFile))
	}
	px, err := open(f.Pools, o, log)
	if err != nil {
		return fail(err)
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile); err != nil {
			px.close()
			return fail(fmt.Errorf("opening pid file '%s' failed: %w", o.pidFile, cause(err)))
		}
	}
	px.serve()
	attrs := []any{"version", version, "pid", os.Getpid(),
		"pools", px.names(), "conf", o.confFile, "stats", px.statsAddr}
	if o.adminAddr != "" {
		attrs = append(attrs, "admin", o.adminAddr)
	}
	always(log, "walnut started", attrs...)
	started = true
	ds.ready()

	code := waitForExit(sigs, px.errs, log, verb, lf, px.reload)
	px.shutdown(sigs, log)
	if o.pidFile != "" {
		if err := os.Remove(o.pidFile); err != nil {
			log.Warn("removing pid file failed", "file", o.pidFile, "err", err)
		}
	}
	always(log, "walnut stopped", "status", code)
	return code
}

// proxies are the pools and the stats and admin servers walnut serves.
type proxies struct {
	confFile  string
	log       *slog.Logger
	stats     *proxy.StatsServer
	statsL    net.Listener
	statsAddr string
	admin     *http.Server // nil without --admin-addr
	adminL    net.Listener

	// reloadMu serialises reloads and the start of shutdown; the metrics
	// hold it for reading while they read the pools (metrics.Source.Lock).
	reloadMu sync.RWMutex
	closing  bool // set by shutdown; guarded by reloadMu

	mu      sync.Mutex    // guards pools and reloads
	pools   []*servedPool // in the configuration's order
	reloads metrics.ReloadStats

	serving  sync.WaitGroup // the Serve goroutines
	retiring sync.WaitGroup // the Shutdowns of pools removed by reloads
	// retireCtx bounds the Shutdowns of removed pools; shutdown cancels
	// it when its own deadline passes or a second signal cuts it short.
	retireCtx    context.Context
	retireCancel context.CancelFunc
	errs         chan error // the first Serve error other than ErrServerClosed
}

// A servedPool is one pool of the configuration and what serves it.
type servedPool struct {
	srv  *proxy.Server
	conf config.Pool // the configuration srv was made or last reloaded with
	ln   *listener   // nil only after a reload failed to bind the pool's new address
}

// A listener is a pool's listener. A reload that moves or removes a pool
// retires its listener: it sets retired, then closes it, so that Serve
// returning is not taken for a failure.
type listener struct {
	net.Listener
	retired atomic.Bool
}

// retire closes l on purpose.
func (l *listener) retire() {
	l.retired.Store(true)
	l.Close()
}

// open creates a proxy.Server for every pool and binds every listener,
// including the stats server's, without serving. Binding everything
// first stops walnut before it accepts a client if any bind fails, as
// nutcracker stops. On error, what was opened is closed.
func open(pools []config.Pool, o options, log *slog.Logger) (*proxies, error) {
	px := &proxies{confFile: o.confFile, log: log, errs: make(chan error, 1)}
	px.retireCtx, px.retireCancel = context.WithCancel(context.Background())
	for _, p := range pools {
		s, err := proxy.New(proxy.FromPool(p, log))
		if err != nil {
			px.close()
			return nil, fmt.Errorf("pool '%s': %w", p.Name, err)
		}
		px.pools = append(px.pools, &servedPool{srv: s, conf: p})
	}
	for _, sp := range px.pools {
		l, err := sp.srv.Listen()
		if err != nil {
			px.close()
			return nil, fmt.Errorf("bind on pool '%s' to addr '%s' failed: %w", sp.conf.Name, sp.conf.ListenAddr, cause(err))
		}
		sp.ln = &listener{Listener: l}
	}
	px.statsAddr = net.JoinHostPort(o.statsAddr, strconv.Itoa(o.statsPort))
	l, err := net.Listen("tcp", px.statsAddr)
	if err != nil {
		px.close()
		return nil, fmt.Errorf("bind on stats server addr '%s' failed: %w", px.statsAddr, cause(err))
	}
	px.statsL = l
	if o.adminAddr != "" {
		l, err := net.Listen("tcp", o.adminAddr)
		if err != nil {
			px.close()
			return nil, fmt.Errorf("bind on admin server addr '%s' failed: %w", o.adminAddr, cause(err))
		}
		px.adminL = l
		px.admin = newAdminServer(metrics.Source{
			Pools:   px.servers,
			Reloads: px.reloadStats,
			Lock:    px.reloadMu.RLocker(),
		}, px.reload)
	}
	px.stats = &proxy.StatsServer{
		Pools:    px.servers(),
		Service:  "walnut",
		Version:  version,
		Start:    time.Now(),
		Interval: time.Duration(o.statsInterval) * time.Millisecond,
		Logger:   log,
	}
	// The start is the first successful load.
	px.reloads = metrics.ReloadStats{LastSuccess: time.Now(), LastOK: true}
	return px, nil
}

// close closes what open opened, for a failed start. Closing a unix
// listener removes its socket file.
func (px *proxies) close() {
	for _, sp := range px.pools {
		if sp.ln != nil {
			sp.ln.Close()
		}
	}
	if px.statsL != nil {
		px.statsL.Close()
	}
	if px.adminL != nil {
		px.adminL.Close()
	}
	for _, sp := range px.pools {
		sp.srv.Close()
	}
	px.retireCancel()
}

// servers returns the pools' servers, in order.
func (px *proxies) servers() []*proxy.Server {
	px.mu.Lock()
	defer px.mu.Unlock()
	out := make([]*proxy.Server, len(px.pools))
	for i, sp := range px.pools {
		out[i] = sp.srv
	}
	return out
}

// reloadStats returns the reload counts, for the metrics.
func (px *proxies) reloadStats() metrics.ReloadStats {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.reloads
}

// serve serves every listener, each in a goroutine that shutdown waits for.
func (px *proxies) serve() {
	for _, sp := range px.pools {
		px.servePool(sp.srv, sp.ln)
	}
	px.serving.Add(1)
	go func() {
		defer px.serving.Done()
		if err := px.stats.Serve(px.statsL); !errors.Is(err, proxy.ErrServerClosed) {
			px.fail(fmt.Errorf("stats server: %w", err))
		}
	}()
	if px.admin != nil {
		px.serving.Add(1)
		go func() {
			defer px.serving.Done()
			if err := px.admin.Serve(px.adminL); !errors.Is(err, http.ErrServerClosed) {
				px.fail(fmt.Errorf("admin server: %w", err))
			}
		}()
	}
}

// servePool serves s on l in a goroutine that shutdown waits for. It is
// called at the start and by reloads, never after shutdown has begun.
func (px *proxies) servePool(s *proxy.Server, l *listener) {
	px.serving.Add(1)
	go func() {
		defer px.serving.Done()
		err := s.Serve(l.Listener)
		if errors.Is(err, proxy.ErrServerClosed) || l.retired.Load() {
			return
		}
		px.fail(fmt.Errorf("pool '%s': %w", s.Name(), err))
	}()
}

// fail reports a Serve error, which makes walnut exit. Only the first is
// passed on; the others are logged.
func (px *proxies) fail(err error) {
	select {
	case px.errs <- err:
	default:
		px.log.Error("serving failed", "err", err)
	}
}

// names returns the pool names.
func (px *proxies) names() []string {
	servers := px.servers()
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.Name()
	}
	return names
}

// shutdown stops reloads and accepting, and lets clients receive the
// replies to what they have sent, for at most shutdownTimeout or until
// another SIGTERM or SIGINT arrives on sigs; then it closes everything and
// waits for the Serve goroutines. Pools removed by a reload and still
// draining get no more time than the others.
func (px *proxies) shutdown(sigs <-chan os.Signal, log *slog.Logger) {
	px.reloadMu.Lock()
	px.closing = true
	px.reloadMu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	context.AfterFunc(ctx, px.retireCancel)
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGINT || sig == syscall.SIGTERM {
					always(log, "signal received again, closing connections now", "signal", signalNames[sig])
					cancel()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	var pools sync.WaitGroup
	for _, s := range px.servers() {
		pools.Add(1)
		go func() {
			defer pools.Done()
			if err := s.Shutdown(ctx); err != nil {
				log.Warn("pool shutdown cut short: connections closed", "pool", s.Name(), "err", err)
			}
		}()
	}
	pools.Wait()
	px.retiring.Wait()
	px.stats.Close()
	if px.admin != nil {
		// Requests in progress (a CPU profile, a scrape) may finish
		// within what is left of the deadline.
		if err := px.admin.Shutdown(ctx); err != nil {
			px.admin.Close()
		}
	}
	px.serving.Wait()
	cancel()
	watcher.Wait()
}

// waitForExit handles signals until SIGTERM (status 0) or SIGINT (status
// 1, as nutcracker), or until a server fails (status 1). SIGHUP reopens
// the log file and then reloads the configuration with reload.
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
			default: // SIGUSR1, SIGUSR2: logged only, as by nutcracker
				always(log, "signal received", "signal", name)
			}
		}
	}
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

// cause returns the system error under err, such as "address already in
// use", for messages that already name the operation and the address, as
// nutcracker's strerror messages do.
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
