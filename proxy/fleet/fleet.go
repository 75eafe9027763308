package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/proxy/metrics"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close, and by Listen after them. It is proxy.ErrServerClosed.
var ErrServerClosed = proxy.ErrServerClosed

// DefaultDrainTimeout is the Options.DrainTimeout used when it is zero.
const DefaultDrainTimeout = 10 * time.Second

// Options configure a Fleet beyond its configuration file. The zero value
// serves the pools only: no stats server, no admin server, no log.
type Options struct {
	// Logger receives the fleet's messages (reloads, serving failures,
	// pools stopping) and those of every pool's proxy.Server. If nil,
	// nothing is logged.
	Logger *slog.Logger

	// StatsAddr, if not empty, is the "host:port" the stats server
	// (proxy.StatsServer, nutcracker's stats JSON) listens on.
	StatsAddr string
	// StatsInterval is how often the stats document is recomputed
	// (nutcracker's -i); zero: on every read.
	StatsInterval time.Duration
	// Service and Version are the "service" and "version" values of the
	// stats document; an empty Service reads "walnut".
	Service, Version string

	// AdminAddr, if not empty, is the "host:port" an HTTP server serving
	// AdminHandler listens on.
	AdminAddr string

	// Loops, if not zero, serves the clients of every pool with one
	// proxy.Engine of that many event loops, instead of a goroutine per
	// client (see proxy.Engine; Linux only). The Fleet makes it in New
	// and closes it after Shutdown or Close.
	Loops int

	// DrainTimeout bounds how long a pool removed by a reload may take to
	// answer what its clients have sent before they are disconnected. If
	// zero, DefaultDrainTimeout.
	DrainTimeout time.Duration
}

// A Fleet serves the pools of one nutcracker.yml, with the stats and admin
// servers of Options, and reloads them as a whole. Its methods are safe for
// concurrent use.
type Fleet struct {
	opts  Options
	log   *slog.Logger
	stats *proxy.StatsServer

	// reloadMu serialises reloads, Listen, the start of Serve and the start
	// of Shutdown and Close; the metrics hold it for reading while they
	// read the pools (metrics.Source.Lock).
	reloadMu sync.RWMutex
	closing  bool // set by Shutdown and Close; guarded by reloadMu
	listened bool // Listen succeeded; guarded by reloadMu
	serving  bool // Serve was called; guarded by reloadMu

	mu      sync.Mutex // guards file, pools, reloads and the two listeners below
	file    *config.File
	pools   []*servedPool // in the configuration's order
	reloads metrics.ReloadStats
	statsL  net.Listener
	adminL  net.Listener
	admin   *http.Server // nil without Options.AdminAddr

	goroutines sync.WaitGroup // the Serve goroutines
	retiring   sync.WaitGroup // the Shutdowns of pools removed by reloads
	// retireCtx bounds the Shutdowns of removed pools; Shutdown cancels
	// it when its own context ends, Close at once.
	retireCtx    context.Context
	retireCancel context.CancelFunc
	engine       *proxy.Engine // Options.Loops; nil without
	errs         chan error    // the first Serve error other than ErrServerClosed
	done         chan struct{} // closed by Shutdown or Close
	doneOnce     sync.Once
}

// A servedPool is one pool of the configuration and what serves it.
type servedPool struct {
	srv  *proxy.Server
	conf config.Pool // the configuration srv was made or last reloaded with
	ln   *listener   // nil before Listen, and after a reload failed to bind the pool's new address
}

// A listener is a pool's listener. A reload that moves or removes a pool
// retires its listener: it sets retired, then closes it, so that Serve
// returning is not taken for a failure.
type listener struct {
	net.Listener
	retired atomic.Bool
	served  bool // a Serve goroutine accepts on it; guarded by Fleet.reloadMu
}

// retire closes l on purpose.
func (l *listener) retire() {
	l.retired.Store(true)
	l.Close()
}

// New returns a Fleet serving the pools of file, one proxy.Server each
// (proxy.FromPool), logging to opts.Logger. It binds nothing; a pool
// without a listen address (read with config.Loader.ListenOptional) is
// refused. Call Close (or Shutdown) to release the pools' backends.
func New(file *config.File, opts Options) (*Fleet, error) {
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{opts: opts, log: log, file: file, errs: make(chan error, 1), done: make(chan struct{})}
	f.retireCtx, f.retireCancel = context.WithCancel(context.Background())
	if opts.Loops != 0 {
		e, err := proxy.NewEngine(opts.Loops)
		if err != nil {
			return nil, err
		}
		f.engine = e
	}
	for _, p := range file.Pools {
		if p.ListenAddr == "" {
			f.Close()
			return nil, fmt.Errorf("pool '%s' has no listen address", p.Name)
		}
		cfg := proxy.FromPool(p, log)
		cfg.Engine = f.engine
		s, err := proxy.New(cfg)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("pool '%s': %w", p.Name, err)
		}
		f.pools = append(f.pools, &servedPool{srv: s, conf: p})
	}
	f.stats = &proxy.StatsServer{
		Pools:    f.Pools(),
		Service:  opts.Service,
		Version:  opts.Version,
		Start:    time.Now(),
		Interval: opts.StatsInterval,
		Logger:   log,
	}
	// The start is the first successful load.
	f.reloads = metrics.ReloadStats{LastSuccess: time.Now(), LastOK: true}
	return f, nil
}

// Listen binds the listen address of every pool (but those a reload has
// bound already), then Options.StatsAddr and Options.AdminAddr, without
// serving, so that a caller can report a bind error before accepting any
// client, as nutcracker does. On error nothing stays bound. Calling it again
// after it succeeded does nothing.
//
// Bind errors read "bind on pool 'NAME' to addr 'ADDR' failed: REASON"
// (or "bind on stats server addr …", "bind on admin server addr …"), REASON
// being the system's error, such as "address already in use".
func (f *Fleet) Listen() (err error) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if f.closing {
		return ErrServerClosed
	}
	if f.listened {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		if err != nil {
			f.closeListeners()
		}
	}()
	for _, sp := range f.pools {
		if sp.ln != nil {
			continue // bound by a reload
		}
		l, err := sp.srv.Listen()
		if err != nil {
			return fmt.Errorf("bind on pool '%s' to addr '%s' failed: %w", sp.conf.Name, sp.conf.ListenAddr, cause(err))
		}
		sp.ln = &listener{Listener: l}
	}
	if f.opts.StatsAddr != "" {
		if f.statsL, err = net.Listen("tcp", f.opts.StatsAddr); err != nil {
			return fmt.Errorf("bind on stats server addr '%s' failed: %w", f.opts.StatsAddr, cause(err))
		}
	}
	if f.opts.AdminAddr != "" {
		if f.adminL, err = net.Listen("tcp", f.opts.AdminAddr); err != nil {
			return fmt.Errorf("bind on admin server addr '%s' failed: %w", f.opts.AdminAddr, cause(err))
		}
		f.admin = &http.Server{Handler: f.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	f.listened = true
	return nil
}

// closeListeners closes every listener the fleet holds. Closing a unix
// listener removes its socket file. It must be called with mu held.
func (f *Fleet) closeListeners() {
	for _, sp := range f.pools {
		if sp.ln != nil {
			sp.ln.Close()
			sp.ln = nil
		}
	}
	if f.statsL != nil {
		f.statsL.Close()
		f.statsL = nil
	}
	if f.adminL != nil {
		f.adminL.Close()
		f.adminL = nil
	}
}

// ListenAndServe calls Listen, then Serve.
func (f *Fleet) ListenAndServe() error {
	if err := f.Listen(); err != nil {
		return err
	}
	return f.Serve()
}

// Serve serves every listener bound by Listen, each in a goroutine, and
// blocks until Shutdown or Close, returning ErrServerClosed, or until a
// listener fails, returning that error (prefixed "pool 'NAME': ", "stats
// server: " or "admin server: "); the rest then serve on until Shutdown or
// Close. A listener closed by a reload is no failure. Serve may be called
// once, after Listen.
func (f *Fleet) Serve() error {
	f.reloadMu.Lock()
	switch {
	case f.closing:
		f.reloadMu.Unlock()
		return ErrServerClosed
	case !f.listened:
		f.reloadMu.Unlock()
		return errors.New("fleet: Serve called before Listen")
	case f.serving:
		f.reloadMu.Unlock()
		return errors.New("fleet: Serve called twice")
	}
	f.serving = true
	f.mu.Lock()
	for _, sp := range f.pools {
		if sp.ln != nil && !sp.ln.served {
			f.servePool(sp.srv, sp.ln)
		}
	}
	statsL, adminL, admin := f.statsL, f.adminL, f.admin
	f.mu.Unlock()
	if statsL != nil {
		f.goroutines.Add(1)
		go func() {
			defer f.goroutines.Done()
			if err := f.stats.Serve(statsL); !errors.Is(err, proxy.ErrServerClosed) {
				f.fail(fmt.Errorf("stats server: %w", err))
			}
		}()
	}
	if adminL != nil {
		f.goroutines.Add(1)
		go func() {
			defer f.goroutines.Done()
			if err := admin.Serve(adminL); !errors.Is(err, http.ErrServerClosed) {
				f.fail(fmt.Errorf("admin server: %w", err))
			}
		}()
	}
	f.reloadMu.Unlock()

	select {
	case err := <-f.errs:
		return err
	case <-f.done:
		return ErrServerClosed
	}
}

// servePool serves s on l in a goroutine that Shutdown waits for. It is
// called by Serve and by reloads after Serve, with reloadMu held, never
// after Shutdown or Close has begun.
func (f *Fleet) servePool(s *proxy.Server, l *listener) {
	l.served = true
	f.goroutines.Add(1)
	go func() {
		defer f.goroutines.Done()
		err := s.Serve(l.Listener)
		if errors.Is(err, proxy.ErrServerClosed) || l.retired.Load() {
			return
		}
		f.fail(fmt.Errorf("pool '%s': %w", s.Name(), err))
	}()
}

// fail reports a Serve error. Only the first is returned by Serve; the
// others are logged.
func (f *Fleet) fail(err error) {
	select {
	case f.errs <- err:
	default:
		f.log.Error("serving failed", "err", err)
	}
}

// beginClose stops reloads and makes Serve return. It reports whether the
// fleet was already closing.
func (f *Fleet) beginClose() bool {
	f.reloadMu.Lock()
	was := f.closing
	f.closing = true
	f.reloadMu.Unlock()
	f.doneOnce.Do(func() { close(f.done) })
	return was
}

// Shutdown stops reloads and accepting, and lets clients receive the
// replies to what they have sent until ctx ends; then it closes every
// connection and the stats and admin servers and waits for the Serve
// goroutines. Pools removed by a reload and still draining get no more
// time than ctx gives. A pool cut short by ctx is logged, and Shutdown
// returns the first such error (ctx's). After Shutdown, Serve returns
// ErrServerClosed.
func (f *Fleet) Shutdown(ctx context.Context) error {
	f.beginClose()
	stop := context.AfterFunc(ctx, f.retireCancel)
	defer stop()

	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for _, s := range f.Pools() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				f.log.Warn("pool shutdown cut short: connections closed", "pool", s.Name(), "err", err)
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	f.retiring.Wait()
	f.stats.Close()
	f.mu.Lock()
	admin := f.admin
	f.closeListeners() // those never served
	f.mu.Unlock()
	if admin != nil {
		// Requests in progress (a CPU profile, a scrape) may finish
		// within what is left of ctx.
		if err := admin.Shutdown(ctx); err != nil {
			admin.Close()
		}
	}
	f.goroutines.Wait()
	f.retireCancel()
	if f.engine != nil {
		f.engine.Close()
	}
	return firstErr
}

// Close closes every listener and every connection at once, and waits for
// the Serve goroutines. After Close, Serve returns ErrServerClosed.
func (f *Fleet) Close() error {
	f.beginClose()
	f.mu.Lock()
	f.closeListeners()
	admin := f.admin
	pools := f.pools
	f.mu.Unlock()
	for _, sp := range pools {
		sp.srv.Close()
	}
	f.retireCancel()
	if f.stats != nil {
		f.stats.Close()
	}
	if admin != nil {
		admin.Close()
	}
	f.retiring.Wait()
	f.goroutines.Wait()
	if f.engine != nil {
		f.engine.Close()
	}
	return nil
}

// Pools returns the pools' servers, in the configuration's order (by name,
// the twemproxy way).
func (f *Fleet) Pools() []*proxy.Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*proxy.Server, len(f.pools))
	for i, sp := range f.pools {
		out[i] = sp.srv
	}
	return out
}

// Names returns the pool names, in the order of Pools.
func (f *Fleet) Names() []string {
	servers := f.Pools()
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = s.Name()
	}
	return names
}

// File returns the configuration in force: the one given to New or to the
// last successful reload.
func (f *Fleet) File() *config.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.file
}

// Addr returns the address pool's listener is bound to, or nil if there is
// no such pool or it has no listener (before Listen, or after a reload
// failed to bind its new address).
func (f *Fleet) Addr(pool string) net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sp := range f.pools {
		if sp.conf.Name == pool && sp.ln != nil {
			return sp.ln.Addr()
		}
	}
	return nil
}

// StatsAddr returns the address the stats server is bound to, or nil.
func (f *Fleet) StatsAddr() net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statsL == nil {
		return nil
	}
	return f.statsL.Addr()
}

// AdminAddr returns the address the admin server is bound to, or nil.
func (f *Fleet) AdminAddr() net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.adminL == nil {
		return nil
	}
	return f.adminL.Addr()
}

// ReloadStats returns the counts of reloads, for the metrics.
func (f *Fleet) ReloadStats() metrics.ReloadStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
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
