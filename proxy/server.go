package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/internal/rawio"
	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/shard"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("proxy: server closed")

// Config describes one proxied pool: one pool of a nutcracker.yml. See
// FromPool for the mapping from package config.
type Config struct {
	// Name names the pool in stats and logs.
	Name string

	// Network and Addr are where ListenAndServe listens: "tcp" (the
	// default when empty) with "host:port", or "unix" with a socket path.
	// With Addr empty (a pool read with config.Loader.ListenOptional and
	// no listen key) Listen and ListenAndServe refuse to listen; Serve
	// serves any listener.
	// A stale socket file at a unix path is removed first, as twemproxy
	// does, but not one that a running process accepts on.
	Network, Addr string
	// SocketPerm, if not zero, is applied to a unix socket with chmod.
	SocketPerm os.FileMode

	// Protocol is protocol.Redis or protocol.Memcache. Required.
	Protocol protocol.Kind

	// Servers are the backends, in any order (the ring orders them by
	// name as twemproxy does). At least one is required.
	Servers []shard.Server
	// Ring chooses the hash, distribution and hash tag.
	Ring shard.RingOptions

	// Backend configures the connections to each backend server.
	Backend BackendOptions
	// Dial opens backend connections. If nil, a net.Dialer is used.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Auth is the password clients must send with AUTH before anything
	// else (twemproxy's redis_auth); it is also sent to every backend
	// connection. Redis only. Empty: no password.
	Auth string
	// DB, if not zero, is selected on every backend connection
	// (twemproxy's redis_db), before AUTH as nutcracker does: with a
	// password the servers require, that SELECT fails and keys live in
	// database 0, where nutcracker puts them. Clients always see database 0.
	DB int

	// MaxClients, if not zero, caps the client connections of this pool
	// (twemproxy's client_connections, which twemproxy ignores). A client
	// over the cap gets an error reply and is closed.
	MaxClients int
	// TCPKeepAlive enables SO_KEEPALIVE on client connections
	// (twemproxy's tcpkeepalive). If false, keep-alives are disabled.
	TCPKeepAlive bool
	// ReusePort sets SO_REUSEPORT on a TCP listener (twemproxy's
	// reuseport, after 0.5.0), so that several processes, such as an old
	// and a new walnut during a restart, can accept on one port.
	ReusePort bool

	// RefuseCommands lists Redis commands the pool refuses, which it would
	// otherwise serve, such as FLUSHALL and FLUSHDB (which fan out to
	// every server): each is answered "-ERR <NAME> is refused by this
	// pool's configuration (redis_refuse_commands)" and the connection
	// stays open. An entry is a command ("flushall"; a container such as
	// "client" refuses each of its subcommands) or a command and one of
	// its subcommands ("script flush" or "script|flush"), in any case.
	// Redis only; empty (the default): none beyond those walnut refuses
	// anyway. walnut's key redis_refuse_commands.
	RefuseCommands []string

	// Limits bound what clients may send. Zero fields take
	// protocol's defaults. Limits.MaxRequest, the longest memcached get,
	// gets, gat or gats line, is walnut's client_request_limit.
	Limits protocol.Limits

	// ClientTimeout, if not zero, closes a client that takes longer than
	// this to send a complete request, whether it sends nothing or holds
	// half a request (slowloris), or to accept the replies to its
	// requests (walnut's client_timeout; twemproxy has none). Zero: never.
	ClientTimeout time.Duration
	// OutputWatermark bounds the replies the proxy holds for one client
	// that pipelines: the requests read together are sent to the
	// backends in windows of as many as this many bytes of replies (at
	// the client's average reply size so far), each window written to the
	// client before the next is sent. A client that does not read is
	// therefore slowed, never cut off, and holds about this much memory
	// (plus one window's worth when its replies grow). If zero,
	// DefaultOutputWatermark is used. walnut's client_output_watermark.
	OutputWatermark int
	// OutputLimit, if not zero, is a hard cap on the bytes of replies of
	// one window: a client whose window's replies exceed it gets an error
	// reply and is closed. Off by default: the watermark bounds memory
	// without cutting clients off, and one reply is bounded by Limits.
	// walnut's client_output_limit.
	OutputLimit int

	// MaxPinned limits the server connections the pool's clients hold
	// for themselves: one per transaction (from MULTI or WATCH to its
	// end), per blocking command while it waits, per server a subscribed
	// client subscribes on. A command that would pass it is answered
	// "-ERR max pinned connections reached …". If zero, DefaultMaxPinned
	// (1024). Redis only. walnut's key max_pinned_connections.
	MaxPinned int

	// Engine, if not nil, serves the client connections with its event
	// loops instead of a goroutine per connection (see Engine). Servers
	// may share one. Reload keeps the Engine a Server was made with.
	Engine *Engine

	// Logger receives connection errors (debug), refused clients (warn),
	// ring changes (warn/info) and the pool's own messages. If nil,
	// nothing is logged.
	Logger *slog.Logger
}

// defaultEngine is Config.Engine when it is nil.
var defaultEngine *Engine

// BackendOptions configure the connections to each backend server: the
// settings of a nutcracker.yml pool that shape them. Zero fields take the
// defaults noted. BackendOptions are comparable: a Reload keeps the
// connections of a server whose options, address and name are unchanged.
type BackendOptions struct {
	// Conns is the number of pipelined connections to each server
	// (server_connections). Requests are spread over them round robin.
	// If zero, 1 is used.
	Conns int
	// DialTimeout bounds each connection attempt. If zero,
	// pool.DefaultDialTimeout is used.
	DialTimeout time.Duration
	// Timeout bounds each request, from when it is read to its reply
	// (timeout). When it passes, the request's backend connection is
	// closed and every request on it fails, as in twemproxy. If zero,
	// requests wait as long as the connection lasts.
	Timeout time.Duration
	// AutoEject takes a server out of the ring after FailureLimit
	// consecutive failures and probes it every RetryTimeout until it
	// answers (auto_eject_hosts).
	AutoEject bool
	// FailureLimit is server_failure_limit. If zero,
	// pool.DefaultFailureLimit is used.
	FailureLimit int
	// RetryTimeout is server_retry_timeout. If zero,
	// pool.DefaultRetryTimeout is used.
	RetryTimeout time.Duration
	// Preconnect connects to every server when the pool is created
	// (preconnect) rather than on first use.
	Preconnect bool
}

// DefaultOutputWatermark is the OutputWatermark used when
// Config.OutputWatermark is 0.
const DefaultOutputWatermark = 1 << 20

// A Server proxies one pool: it accepts clients, routes each request to
// the backend its key maps to, splits multi-key requests, and writes the
// replies back in request order. It is safe for concurrent use. Its
// lifecycle follows net/http's: Serve or ListenAndServe, then Shutdown or
// Close. Reload replaces its configuration while it serves.
type Server struct {
	name  string
	proto protocol.Kind
	log   *slog.Logger

	// gen is the configuration in force. Each client batch holds a
	// reference to the generation it started with (see acquire), so that
	// Reload can swap in a new one while requests are in flight.
	gen   atomic.Pointer[generation]
	genMu sync.Mutex // serialises Reload, ring rebuilds and backend accounting
	// backends are every backend of a generation not yet retired, with
	// the number of such generations holding each; guarded by genMu.
	backends map[*backend]int
	retiring sync.WaitGroup // retire goroutines; Add under genMu while !closed
	closed   bool           // under genMu: backends are closed, none are made

	stats    poolCounters
	lat      *commandLatencies
	detached atomic.Int64 // memcached noreply requests in flight, which no client waits for

	asyncCalls sync.Pool // of *call, for clients' async calls (see async.go)

	// eng is Config.Engine, kept from New: the event loops that serve the
	// clients; nil for a goroutine per client.
	eng *Engine

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*session]struct{}
	closing   bool
	done      chan struct{} // closed by Shutdown or Close
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New validates cfg and builds the server and its backend pool. It starts
// no goroutine unless cfg.Backend.Preconnect is set; in any case Close (or
// Shutdown) must be called to release the backends.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		cfg.Engine = defaultEngine
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		eng:       cfg.Engine,
		name:      cfg.Name,
		proto:     cfg.Protocol,
		log:       log.With("pool", cfg.Name),
		backends:  make(map[*backend]int),
		lat:       newCommandLatencies(cfg.Protocol),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*session]struct{}),
		done:      make(chan struct{}),
	}
	s.asyncCalls.New = newAsyncCall
	s.genMu.Lock()
	defer s.genMu.Unlock()
	g, err := s.newGeneration(cfg, nil)
	if err != nil {
		return nil, err
	}
	s.gen.Store(g)
	return s, nil
}

// Validate reports whether New would accept cfg, and Reload too if the
// name and protocol are those of the server.
func (cfg Config) Validate() error {
	_, err := cfg.validate()
	return err
}

// validate checks cfg and builds its ring.
func (cfg *Config) validate() (*shard.Ring, error) {
	if cfg.Protocol != protocol.Redis && cfg.Protocol != protocol.Memcache {
		return nil, fmt.Errorf("proxy: pool %q: unknown protocol %v", cfg.Name, cfg.Protocol)
	}
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("proxy: pool %q has no servers", cfg.Name)
	}
	if cfg.Protocol == protocol.Memcache && (cfg.Auth != "" || cfg.DB != 0) {
		return nil, fmt.Errorf("proxy: pool %q: redis_auth and redis_db need a redis pool", cfg.Name)
	}
	if len(cfg.RefuseCommands) > 0 {
		if cfg.Protocol != protocol.Redis {
			return nil, fmt.Errorf("proxy: pool %q: RefuseCommands (redis_refuse_commands) needs a redis pool", cfg.Name)
		}
		if _, err := buildRefusals(cfg.RefuseCommands); err != nil {
			return nil, fmt.Errorf("proxy: pool %q: redis_refuse_commands: %w", cfg.Name, err)
		}
	}
	if cfg.MaxClients < 0 || cfg.DB < 0 {
		return nil, fmt.Errorf("proxy: pool %q: negative MaxClients or DB", cfg.Name)
	}
	if cfg.MaxPinned < 0 {
		return nil, fmt.Errorf("proxy: pool %q: negative MaxPinned", cfg.Name)
	}
	if cfg.OutputWatermark < 0 || cfg.OutputLimit < 0 {
		return nil, fmt.Errorf("proxy: pool %q: negative OutputWatermark or OutputLimit", cfg.Name)
	}
	switch o := &cfg.Backend; {
	case o.Conns < 0, o.FailureLimit < 0:
		return nil, fmt.Errorf("proxy: pool %q: negative Backend.Conns or Backend.FailureLimit", cfg.Name)
	case o.DialTimeout < 0, o.Timeout < 0, o.RetryTimeout < 0:
		return nil, fmt.Errorf("proxy: pool %q: negative duration in Backend", cfg.Name)
	}
	ring, err := shard.NewRing(cfg.Servers, cfg.Ring)
	if err != nil {
		return nil, fmt.Errorf("proxy: pool %q: %w", cfg.Name, err)
	}
	for i := range ring.Len() {
		network, addr := ring.Server(i).Network()
		switch network {
		case "", "tcp", "tcp4", "tcp6", "unix":
		default:
			return nil, fmt.Errorf("proxy: pool %q: server %s: unsupported network %q", cfg.Name, ring.ID(i), network)
		}
		if addr == "" {
			return nil, fmt.Errorf("proxy: pool %q: server %s: empty address", cfg.Name, ring.ID(i))
		}
	}
	return ring, nil
}

// newBackendPool makes the one-server pool.Pool of backend b of cfg.
func (s *Server) newBackendPool(cfg *Config, b *backend, srv pool.Server, lim protocol.Limits) (*pool.Pool, error) {
	o := &cfg.Backend
	opts := pool.Options{
		Conns:        o.Conns,
		DialTimeout:  o.DialTimeout,
		Timeout:      o.Timeout,
		AutoEject:    o.AutoEject,
		FailureLimit: o.FailureLimit,
		RetryTimeout: o.RetryTimeout,
		Preconnect:   o.Preconnect,
		Logger:       s.log,
		OnChange:     func(ejected bool) { s.backendChanged(b, false, ejected) },
	}
	dial := cfg.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	opts.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); network != "unix" && err == nil && host == "" {
			// ":6379:1" is a valid servers entry, but nutcracker's lookup
			// of the empty host fails (Host is down) where Go would dial
			// the local machine.
			return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
		}
		c, err := dial(ctx, network, addr)
		if err == nil {
			s.stats.serverDials.Add(1)
		}
		return c, err
	}
	switch cfg.Protocol {
	case protocol.Redis:
		opts.Framer = func(b []byte, _ *pool.Request) (int, error) { return resp.FrameReplyHint(b, lim) }
		opts.Estimate = func(b []byte, _ *pool.Request) int { return resp.EstimateArray(b, lim) }
		opts.IsError = func(reply []byte) bool { return len(reply) > 0 && reply[0] == '-' }
		opts.IsFailure = isRedisFailure
		opts.Probe = []byte("*1\r\n$4\r\nPING\r\n")
		// nutcracker 0.5.0 sends SELECT before AUTH (twemproxy issue
		// #457), so against servers that require the password its SELECT
		// fails and keys live in database 0. walnut keeps that order so
		// that it finds the keys nutcracker wrote; errors are ignored.
		if cfg.DB > 0 {
			opts.Init = append(opts.Init, resp.AppendCommandString(nil, "SELECT", fmt.Sprint(cfg.DB)))
		}
		if cfg.Auth != "" {
			opts.Init = append(opts.Init, resp.AppendCommandString(nil, "AUTH", cfg.Auth))
		}
		// The backend's RESP3 pool, for RESP3 clients, is made from the
		// same options when first needed (resp3.go).
		b.resp3.srv, b.resp3.opts = srv, opts
	case protocol.Memcache:
		opts.Framer = func(b []byte, req *pool.Request) (int, error) {
			cmd := memcache.Command(req.Tag)
			if cmd == memcache.Unknown {
				// The pool's own probe ("version"), the one request
				// without a Tag: memcached pools have no Init.
				cmd = memcache.Version
			}
			return memcache.FrameResponseHint(b, cmd, lim)
		}
		opts.Estimate = func(b []byte, req *pool.Request) int {
			if req == nil {
				return 0
			}
			cmd := memcache.Command(req.Tag)
			return memcache.EstimateValues(b, memcache.CountKeys(req.Data, cmd), lim)
		}
		opts.Probe = []byte("version\r\n")
	}
	return pool.New(srv, opts)
}

// isRedisFailure reports the replies twemproxy treats as a failed server:
// -OOM, -BUSY and -LOADING (not -BUSYKEY).
func isRedisFailure(reply []byte) bool {
	if len(reply) < 4 || reply[0] != '-' {
		return false
	}
	for _, w := range [...]string{"OOM", "BUSY", "LOADING"} {
		if len(reply) > len(w)+1 && string(reply[1:1+len(w)]) == w {
			c := reply[1+len(w)]
			if c == ' ' || c == '\r' {
				return true
			}
		}
	}
	return false
}

// Live reports whether server i (in ring order, as in Stats) is in
// service: false while the pool has it ejected. Unlike Ring().Live, it is
// false for every ejected server even when all of them are ejected and the
// full ring is routed with.
func (s *Server) Live(i int) bool {
	g := s.gen.Load()
	return i >= 0 && i < len(g.backends) && g.backends[i].live.Load()
}

// Ring returns the ring the server routes with now: the configured one,
// or the one rebuilt without the ejected servers.
func (s *Server) Ring() *shard.Ring { return s.gen.Load().ring.Load() }

// Name returns the pool name.
func (s *Server) Name() string { return s.name }

// Protocol returns the pool's protocol.
func (s *Server) Protocol() protocol.Kind { return s.proto }

// Listen opens the listener ListenAndServe would use, so a caller can
// report bind errors before serving (as nutcracker fails at start).
func (s *Server) Listen() (net.Listener, error) {
	cfg := &s.gen.Load().cfg
	if cfg.Addr == "" {
		return nil, fmt.Errorf("proxy: pool %q has no listen address", s.name)
	}
	network := cfg.Network
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		// A stale socket file is removed, as nutcracker does, but not one
		// a running process still accepts on.
		if fi, err := os.Lstat(cfg.Addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", cfg.Addr, time.Second); err == nil {
				c.Close()
				return nil, &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: cfg.Addr, Net: "unix"}, Err: syscall.EADDRINUSE}
			}
			_ = os.Remove(cfg.Addr)
		}
	}
	var lc net.ListenConfig
	if cfg.ReusePort && network != "unix" {
		if soReusePort < 0 {
			return nil, fmt.Errorf("proxy: pool %q: reuseport is not supported on this platform", s.name)
		}
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	l, err := lc.Listen(context.Background(), network, cfg.Addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" && cfg.SocketPerm != 0 {
		if err := os.Chmod(cfg.Addr, cfg.SocketPerm); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// ListenAndServe listens on Config.Network and Config.Addr and calls Serve.
func (s *Server) ListenAndServe() error {
	if s.isClosing() {
		return ErrServerClosed
	}
	l, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(l)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Serve accepts clients on l until Shutdown or Close, which close l. It
// always returns a non-nil error: ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.stats.listeners.Add(1)
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		s.stats.listeners.Add(-1)
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors or a transient error: back off as
				// net/http does.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				s.log.Warn("accept failed", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

func (s *Server) accept(nc net.Conn) {
	if !s.admit(nc, false) {
		return
	}
	if s.eng != nil && s.acceptEv(nc) {
		return
	}
	if c := s.register(nc); c != nil {
		go s.run(c)
	}
}

// admit counts a new client connection nc and applies MaxClients: a client
// over the cap gets an error reply and is closed, on a goroutine of its own
// unless inline, and admit reports false.
func (s *Server) admit(nc net.Conn, inline bool) bool {
	cfg := &s.gen.Load().cfg
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(cfg.TCPKeepAlive)
		_ = tc.SetNoDelay(true)
	}
	s.stats.clientTotal.Add(1)
	n := s.stats.clientConns.Add(1)
	if cfg.MaxClients <= 0 || n <= int64(cfg.MaxClients) {
		return true
	}
	s.stats.clientConns.Add(-1)
	s.stats.clientErr.Add(1)
	s.log.Warn("client refused: client_connections reached", "limit", cfg.MaxClients, "remote", nc.RemoteAddr().String())
	refuse := func() {
		msg := fmt.Sprintf("max number of clients reached (client_connections: %d)", cfg.MaxClients)
		var b []byte
		if s.proto == protocol.Redis {
			b = resp.AppendError(nil, "ERR "+msg)
		} else {
			b = memcache.AppendServerError(nil, msg)
		}
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write(b)
		nc.Close()
	}
	if inline {
		refuse()
		return false
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		refuse()
	}()
	return false
}

// resetClose closes a client connection accepted while the server shuts
// down, before anything was read from it, with a reset rather than FIN:
// the client sees that nothing it sent was taken (a retry is safe), not a
// server that ended the conversation.
func resetClose(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	nc.Close()
}

// register makes the session of an admitted client connection nc, to be
// served by a goroutine (run), and registers it for Shutdown and Close. It
// returns nil, having closed nc, if the server is closing.
func (s *Server) register(nc net.Conn) *session {
	c := newSession(s, rawio.Wrap(nc))
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.stats.clientConns.Add(-1)
		resetClose(nc)
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	return c
}

// run serves a registered session until it ends.
func (s *Server) run(c *session) {
	defer s.wg.Done()
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting clients, lets every client finish the requests
// it has sent (see the package documentation), closes the client
// connections and then the backends. If ctx ends first, Shutdown closes everything at once
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	// Wake clients blocked reading so that they exit after their current
	// batch.
	s.mu.Lock()
	for c := range s.conns {
		c.interrupt()
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		// noreply requests still queued are sent before the backends
		// close.
		for s.detached.Load() > 0 {
			select {
			case <-ctx.Done():
				s.Close()
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		s.closeBackends()
		return nil
	case <-ctx.Done():
		s.Close()
		<-finished
		return ctx.Err()
	}
}

// acceptEv hands a client connection to the event-loop engine. It reports
// false, leaving nc to a goroutine of its own, if nc is not a socket the
// loop can own (a listener that wraps its connections).
func (s *Server) acceptEv(nc net.Conn) bool {
	ec, err := s.eng.adopt(s, nc)
	if errors.Is(err, errNotSocket) {
		return false
	}
	if err != nil {
		s.log.Warn("client refused: the event loop cannot take it", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		s.stats.clientConns.Add(-1)
		s.stats.clientErr.Add(1)
		return true
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.stats.clientConns.Add(-1)
		ec.resetFD()
		return true
	}
	s.conns[ec.c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if !ec.l.post(ec.start) {
		// The Engine was closed under the Server.
		ec.closeFD()
		s.mu.Lock()
		delete(s.conns, ec.c)
		s.mu.Unlock()
		s.stats.clientConns.Add(-1)
		s.wg.Done()
	}
	return true
}

// Close closes the listeners, every client connection and the backends
// at once. Requests in flight fail.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	// Fail requests still waiting on backends so client goroutines end.
	s.closeBackends()
	s.wg.Wait()
	return nil
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	s.closeOnce.Do(func() { close(s.done) })
	for l := range s.listeners {
		l.Close()
	}
}

var _ io.Closer = (*Server)(nil)
