package proxy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/shard"
)

// A generation is what one Config makes of a pool: its ring and its
// backends, in ring order. New makes the first; each Reload makes the next
// and retires the one before once no batch holds it any more.
type generation struct {
	cfg      Config
	lim      protocol.Limits
	base     *shard.Ring // the configured ring
	ring     atomic.Pointer[shard.Ring]
	backends []*backend        // ring order
	authSum  [sha256.Size]byte // SHA-256 of cfg.Auth, which AUTH compares with
	// refuse holds the replies to the commands cfg.RefuseCommands refuses,
	// by resp's name (see buildRefusals); nil when none.
	refuse map[string]string

	// refs counts the batches using the generation, plus one while it is
	// the server's. At zero it is retired.
	refs    atomic.Int64
	retired atomic.Bool
}

// A backend is one server's pipelined connections: a one-server pool.Pool.
// A Reload that keeps a server's name, address and connection settings
// keeps its backend, and with it the open connections, the ejection state
// and the counters.
type backend struct {
	key  backendKey // what must match for a Reload to keep the backend
	name string
	pool *pool.Pool
	live atomic.Bool
	rtt  histogram
}

// backendKey is what identifies a backend across a Reload: everything that
// shapes its connections.
type backendKey struct {
	server pool.Server
	proto  protocol.Kind
	opts   BackendOptions
	auth   string
	db     int
	lim    protocol.Limits
}

// newGeneration builds the generation of cfg, keeping the backends of old
// (the generation in force, or nil) whose key is unchanged. It must be
// called with genMu held. It changes nothing on error.
func (s *Server) newGeneration(cfg Config, old *generation) (*generation, error) {
	ring, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cfg.Servers = append([]shard.Server(nil), cfg.Servers...)
	cfg.RefuseCommands = slices.Clone(cfg.RefuseCommands)
	refuse, err := buildRefusals(cfg.RefuseCommands)
	if err != nil {
		return nil, err // validate has checked it
	}
	g := &generation{cfg: cfg, lim: cfg.Limits.WithDefaults(), base: ring, authSum: sha256.Sum256([]byte(cfg.Auth)), refuse: refuse}
	kept := make(map[backendKey]*backend)
	if old != nil {
		for _, b := range old.backends {
			kept[b.key] = b
		}
	}
	var made []*backend
	g.backends = make([]*backend, ring.Len())
	for i := range g.backends {
		network, addr := ring.Server(i).Network()
		if network == "" {
			network = "tcp"
		}
		srv := pool.Server{Network: network, Addr: addr, Name: ring.ID(i)}
		key := backendKey{server: srv, proto: cfg.Protocol, opts: cfg.Backend, auth: cfg.Auth, db: cfg.DB, lim: g.lim}
		if b := kept[key]; b != nil {
			delete(kept, key) // a key appears once: names are unique
			g.backends[i] = b
			continue
		}
		b := &backend{key: key, name: ring.ID(i)}
		b.live.Store(true)
		p, err := s.newBackendPool(&cfg, b, srv, g.lim)
		if err != nil {
			// Closed on another goroutine: a pool goroutine may be
			// waiting for genMu in backendChanged.
			s.retiring.Add(1)
			go func() {
				defer s.retiring.Done()
				for _, b := range made {
					b.pool.Close()
				}
			}()
			return nil, fmt.Errorf("proxy: pool %q: %w", cfg.Name, err)
		}
		b.pool = p
		made = append(made, b)
		g.backends[i] = b
	}
	for _, b := range g.backends {
		s.backends[b]++
	}
	g.refs.Store(1)
	g.ring.Store(g.liveRing())
	return g, nil
}

// liveRing returns the ring without the ejected backends. With no live
// server the full ring stays, so requests reach ejected servers and fail
// with "Connection refused", as in twemproxy.
func (g *generation) liveRing() *shard.Ring {
	live := make([]bool, len(g.backends))
	all := true
	for i, b := range g.backends {
		live[i] = b.live.Load()
		all = all && live[i]
	}
	if all {
		return g.base
	}
	r, err := g.base.WithLive(live)
	if err != nil {
		return g.base
	}
	return r
}

// backendChanged records a backend's ejection or reinstatement and swaps
// in the ring twemproxy would rebuild. It runs on a pool goroutine.
func (s *Server) backendChanged(b *backend, ejected bool) {
	s.genMu.Lock()
	b.live.Store(!ejected)
	g := s.gen.Load()
	if g != nil && slices.Contains(g.backends, b) {
		g.ring.Store(g.liveRing())
	}
	s.genMu.Unlock()
	if ejected {
		s.log.Warn("server ejected", "server", b.name)
	} else {
		s.log.Info("server reinstated", "server", b.name)
	}
}

// acquire returns the generation in force with a reference taken for one
// batch; release gives it back.
func (s *Server) acquire() *generation {
	for {
		g := s.gen.Load()
		g.refs.Add(1)
		if s.gen.Load() == g {
			// Still in force after the increment: the server's own
			// reference, dropped only after a swap, keeps it alive.
			return g
		}
		s.release(g)
	}
}

// release drops a reference taken by acquire. It may be called from a
// pool callback: retiring is done on another goroutine.
func (s *Server) release(g *generation) {
	if g.refs.Add(-1) == 0 {
		s.retire(g)
	}
}

// retire closes, on a new goroutine, the backends of g that no later
// generation kept. Requests on them have completed: g had no batch left.
func (s *Server) retire(g *generation) {
	if !g.retired.CompareAndSwap(false, true) {
		return
	}
	s.genMu.Lock()
	if s.closed {
		s.genMu.Unlock()
		return // Close closes every backend
	}
	var gone []*backend
	for _, b := range g.backends {
		if s.backends[b]--; s.backends[b] == 0 {
			delete(s.backends, b)
			gone = append(gone, b)
		}
	}
	if len(gone) == 0 {
		s.genMu.Unlock()
		return
	}
	s.retiring.Add(1)
	s.genMu.Unlock()
	go func() {
		defer s.retiring.Done()
		for _, b := range gone {
			b.pool.Close()
		}
	}()
}

// closeBackends closes every backend of every generation and waits for
// retirements in progress.
func (s *Server) closeBackends() {
	s.genMu.Lock()
	s.closed = true
	var all []*backend
	for b := range s.backends {
		all = append(all, b)
	}
	s.genMu.Unlock()
	for _, b := range all {
		b.pool.Close()
	}
	s.retiring.Wait()
}

// errReloadClosed is returned by Reload after Shutdown or Close.
var errReloadClosed = errors.New("proxy: reload of a closed server")

// Reload replaces the server's configuration with cfg while it serves.
// cfg.Name and cfg.Protocol must be those the server was made with; on
// any error Reload changes nothing.
//
// The new ring (servers added, removed or re-weighted, another hash or
// distribution) routes every batch of requests read from then on; batches
// already being answered finish with the configuration they started with.
// A server whose name, address and connection settings (Pool's fields,
// Auth, DB, Limits) are unchanged keeps its connections, its ejection
// state and its counters; the connections of servers no longer in the
// configuration, or changed, are closed once the requests on them are
// answered. Connected clients stay connected, and stay authenticated if
// the password changes. MaxClients and TCPKeepAlive apply to clients
// accepted afterwards, Limits to connections accepted afterwards;
// RefuseCommands to requests read afterwards.
//
// Network, Addr, SocketPerm and ReusePort are only stored: the next Listen
// uses them, and listeners already serving are not touched (close them to
// stop accepting on an old address).
func (s *Server) Reload(cfg Config) error {
	if cfg.Name != s.name {
		return fmt.Errorf("proxy: reload of pool %q with the configuration of pool %q", s.name, cfg.Name)
	}
	if cfg.Protocol != s.proto {
		return fmt.Errorf("proxy: pool %q: changing the protocol from %v to %v needs a new Server", s.name, s.proto, cfg.Protocol)
	}
	s.genMu.Lock()
	if s.closed {
		s.genMu.Unlock()
		return errReloadClosed
	}
	old := s.gen.Load()
	g, err := s.newGeneration(cfg, old)
	if err != nil {
		s.genMu.Unlock()
		return err
	}
	s.gen.Store(g)
	s.genMu.Unlock()
	s.release(old)
	s.log.Info("configuration reloaded", "servers", len(g.backends))
	return nil
}

// Config returns the configuration in force (the one New or the last
// Reload was given).
func (s *Server) Config() Config {
	cfg := s.gen.Load().cfg
	cfg.Servers = append([]shard.Server(nil), cfg.Servers...)
	return cfg
}
