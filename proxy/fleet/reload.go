package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy"
)

// ErrConfig is matched, through errors.Is, by every reload error caused by
// the configuration itself: the file cannot be read or parsed, a pool is
// invalid, or a pool's protocol changes. The admin endpoint answers such an
// error with 400; other reload failures, such as an address that cannot be
// bound, with 500.
var ErrConfig = errors.New("fleet: configuration rejected")

// A configError is a reload rejected because of the configuration. Its
// text is its cause's.
type configError struct{ err error }

func (e *configError) Error() string        { return e.err.Error() }
func (e *configError) Unwrap() error        { return e.err }
func (e *configError) Is(target error) bool { return target == ErrConfig }

// errShuttingDown is the reload failure once Shutdown or Close has begun.
var errShuttingDown = errors.New("walnut is shutting down")

// ReloadFile re-reads the configuration file in force (config.Load of
// File().Name) and applies it as Reload does. trigger, such as "SIGHUP",
// says what asked for the reload; it is logged.
func (f *Fleet) ReloadFile(trigger string) error {
	return f.reload(nil, trigger)
}

// Reload makes file the configuration in force, applied to the running
// pools (see "Reloading" in the package documentation); if it is rejected
// nothing changes. trigger, such as "SIGHUP", says what asked for the
// reload. The outcome is logged with file.Name and trigger and counted in
// ReloadStats. It fails after Shutdown or Close has begun, without
// counting. Before Serve, the listeners of added and moved pools are bound
// and then served by Serve.
func (f *Fleet) Reload(file *config.File, trigger string) error {
	return f.reload(file, trigger)
}

// reload is Reload, or ReloadFile if file is nil.
func (f *Fleet) reload(file *config.File, trigger string) error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if f.closing {
		return errShuttingDown
	}
	name := f.File().Name
	if file != nil {
		name = file.Name
	}
	res, err := f.apply(file, name)
	f.mu.Lock()
	if err != nil {
		f.reloads.Failures++
		f.reloads.LastOK = false
	} else {
		f.reloads.Successes++
		f.reloads.LastOK = true
		f.reloads.LastSuccess = time.Now()
	}
	f.mu.Unlock()
	if err != nil {
		f.log.Error("configuration reload failed", "file", name, "trigger", trigger, "err", err)
		return err
	}
	f.log.Info("configuration reloaded", "file", name, "trigger", trigger,
		"added", res.added, "removed", res.removed, "changed", res.changed, "pools", f.Names())
	return nil
}

// reloadResult counts what a reload changed.
type reloadResult struct {
	added, removed, changed int
}

// An update is what a reload does to one pool of the new configuration.
type update struct {
	old  *servedPool // the pool of that name now served; nil if added
	conf config.Pool
	cfg  proxy.Config
	srv  *proxy.Server // an added pool's new server

	// ln is the pool's new listener, bound before anything changes; nil
	// if the pool keeps its listener or if its address is held by one of
	// walnut's own listeners (rebind), which is closed first.
	ln     net.Listener
	rebind bool
	// newLn is the listener the pool serves after the reload.
	newLn *listener
}

// changed reports whether a kept pool's configuration changed.
func (u *update) changed() bool { return u.old != nil && !samePool(u.old.conf, u.conf) }

// moved reports whether a kept pool's listen address changed, or whether
// it has no listener (a bind failed in an earlier reload).
func (u *update) moved() bool {
	return u.old != nil && (u.old.ln == nil || listenKey(u.old.conf) != listenKey(u.conf))
}

// server returns the pool's server.
func (u *update) server() *proxy.Server {
	if u.old != nil {
		return u.old.srv
	}
	return u.srv
}

// apply reloads the configuration: file, or if nil the file called name,
// loaded now. It must be called with reloadMu held.
//
// Everything that can fail is done first: loading the file, validating
// every pool, refusing a protocol change, creating the added pools and
// binding every new listen address that none of walnut's own listeners
// holds. If any of that fails, what was made is closed and nothing has
// changed. Then the kept pools whose configuration changed are reloaded
// (undoing those already done if one fails, which validation makes
// unlikely), the new listeners are served, the listeners of moved and
// removed pools are retired (closed, while their clients stay
// connected), the addresses those held are bound for the pools that take
// them over, and the removed pools are shut down in the background.
func (f *Fleet) apply(file *config.File, name string) (reloadResult, error) {
	var res reloadResult
	if file == nil {
		var err error
		if file, err = config.Load(name); err != nil {
			return res, &configError{err}
		}
	}
	ups, err := f.prepare(file)
	if err != nil {
		return res, err
	}

	// Reload the kept pools that changed; on failure, put back the
	// configurations already replaced.
	type undo struct {
		srv *proxy.Server
		cfg proxy.Config
	}
	var undos []undo
	for _, u := range ups {
		if !u.changed() {
			continue
		}
		prev := u.old.srv.Config()
		if err := u.old.srv.Reload(u.cfg); err != nil {
			for _, d := range undos {
				if uerr := d.srv.Reload(d.cfg); uerr != nil {
					f.log.Error("restoring a pool's configuration failed", "pool", d.srv.Name(), "err", uerr)
				}
			}
			discard(ups)
			return res, fmt.Errorf("pool '%s': %w", u.conf.Name, err)
		}
		undos = append(undos, undo{u.old.srv, prev})
		res.changed++
	}

	// From here on the new configuration is in force.
	names := make(map[string]bool, len(ups))
	for _, u := range ups {
		names[u.conf.Name] = true
		if u.old == nil {
			res.added++
		}
		if u.ln != nil {
			u.newLn = &listener{Listener: u.ln}
			if f.serving {
				f.servePool(u.server(), u.newLn)
			}
		}
	}
	for _, u := range ups {
		if u.old != nil && u.moved() && u.old.ln != nil {
			u.old.ln.retire()
		}
	}
	f.mu.Lock()
	current := f.pools
	f.mu.Unlock()
	for _, sp := range current {
		if names[sp.conf.Name] {
			continue
		}
		res.removed++
		if sp.ln != nil {
			sp.ln.retire()
		}
		f.retirePool(sp.srv)
	}
	var bindErrs []string
	for _, u := range ups {
		if !u.rebind {
			continue
		}
		l, err := listenFor(u.server(), u.cfg)
		if err != nil {
			bindErrs = append(bindErrs, fmt.Sprintf("bind on pool '%s' to addr '%s' failed: %v", u.conf.Name, u.conf.ListenAddr, cause(err)))
			continue
		}
		u.newLn = &listener{Listener: l}
		if f.serving {
			f.servePool(u.server(), u.newLn)
		}
	}

	next := make([]*servedPool, len(ups))
	for i, u := range ups {
		sp := &servedPool{srv: u.server(), conf: u.conf, ln: u.newLn}
		if u.old != nil && !u.moved() {
			sp.ln = u.old.ln
		}
		next[i] = sp
	}
	f.mu.Lock()
	f.pools = next
	f.file = file
	f.mu.Unlock()
	f.stats.SetPools(f.Pools())

	if len(bindErrs) > 0 {
		return res, fmt.Errorf("the new configuration is in force, but %s; the pool accepts no new clients until a reload binds it",
			strings.Join(bindErrs, "; "))
	}
	return res, nil
}

// prepare does the fallible steps of a reload to file (see apply) and
// returns the update of every pool of the new configuration, in its order.
// On error it has closed what it made.
func (f *Fleet) prepare(file *config.File) (ups []*update, err error) {
	confs := file.Pools
	f.mu.Lock()
	current := make(map[string]*servedPool, len(f.pools))
	held := make(map[string]bool, len(f.pools)) // listen keys of our listeners
	for _, sp := range f.pools {
		current[sp.conf.Name] = sp
		if sp.ln != nil {
			held[listenKey(sp.conf)] = true
		}
	}
	f.mu.Unlock()

	listens := make(map[string]string, len(confs)) // listen key -> pool
	for _, c := range confs {
		if c.ListenAddr == "" {
			return nil, &configError{fmt.Errorf("pool '%s' has no listen address", c.Name)}
		}
		cfg := proxy.FromPool(c, f.log)
		cfg.Engine = f.engine
		if err := cfg.Validate(); err != nil {
			return nil, &configError{fmt.Errorf("pool '%s': %w", c.Name, err)}
		}
		k := listenKey(c)
		if other, dup := listens[k]; dup {
			return nil, &configError{fmt.Errorf("pools '%s' and '%s' both listen on '%s'", other, c.Name, c.ListenAddr)}
		}
		listens[k] = c.Name
		u := &update{old: current[c.Name], conf: c, cfg: cfg}
		if u.old != nil && u.old.srv.Protocol() != cfg.Protocol {
			return nil, &configError{fmt.Errorf("pool '%s': changing the protocol needs a restart", c.Name)}
		}
		ups = append(ups, u)
	}

	defer func() {
		if err != nil {
			discard(ups)
		}
	}()
	for _, u := range ups {
		if u.old == nil {
			if u.srv, err = proxy.New(u.cfg); err != nil {
				return ups, fmt.Errorf("pool '%s': %w", u.conf.Name, err)
			}
		} else if !u.moved() {
			continue
		}
		if held[listenKey(u.conf)] {
			u.rebind = true
			continue
		}
		if u.ln, err = listenFor(u.server(), u.cfg); err != nil {
			return ups, fmt.Errorf("bind on pool '%s' to addr '%s' failed: %w", u.conf.Name, u.conf.ListenAddr, cause(err))
		}
	}
	return ups, nil
}

// discard closes what prepare made for ups: the listeners it bound and the
// servers of added pools.
func discard(ups []*update) {
	for _, u := range ups {
		if u.ln != nil {
			u.ln.Close()
			u.ln = nil
		}
		if u.srv != nil {
			u.srv.Close()
			u.srv = nil
		}
	}
}

// listenFor binds the listen address of cfg for s, whose own Listen binds
// the address of the configuration in force. An added pool's server has
// cfg in force; for a kept pool whose address changes, the address must
// be bound before the pool's configuration is replaced, so a throwaway
// Server of cfg, which connects nowhere, binds it exactly as s would
// (stale unix sockets, socket permission, reuseport).
func listenFor(s *proxy.Server, cfg proxy.Config) (net.Listener, error) {
	if cur := s.Config(); cur.Network == cfg.Network && cur.Addr == cfg.Addr &&
		cur.SocketPerm == cfg.SocketPerm && cur.ReusePort == cfg.ReusePort {
		return s.Listen()
	}
	cfg.Backend.Preconnect = false
	cfg.Logger = nil
	tmp, err := proxy.New(cfg)
	if err != nil {
		return nil, err
	}
	defer tmp.Close()
	return tmp.Listen()
}

// retirePool shuts down a pool removed by a reload, in the background:
// its clients receive the replies to what they have sent, for at most
// DrainTimeout, and are then disconnected.
func (f *Fleet) retirePool(s *proxy.Server) {
	f.retiring.Add(1)
	go func() {
		defer f.retiring.Done()
		ctx, cancel := context.WithTimeout(f.retireCtx, f.opts.DrainTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			f.log.Warn("removed pool's shutdown cut short: connections closed", "pool", s.Name(), "err", err)
			return
		}
		f.log.Info("removed pool stopped", "pool", s.Name())
	}()
}

// listenKey identifies the address a pool listens on.
func listenKey(p config.Pool) string { return p.ListenNetwork + " " + p.ListenAddr }

// samePool reports whether a and b configure a pool the same way, the
// lines of the file aside.
func samePool(a, b config.Pool) bool {
	norm := func(p config.Pool) config.Pool {
		p.Line = 0
		p.ServerLines = nil
		p.HashFunc = nil // named by Hash
		return p
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
