package main

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

// A configError is a reload rejected because of the configuration file
// itself: it cannot be read or parsed, a pool is invalid, or a pool's
// protocol changes. The admin endpoint answers it with 400; other reload
// failures, such as an address that cannot be bound, with 500.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// errShuttingDown is the reload failure once shutdown has begun.
var errShuttingDown = errors.New("walnut is shutting down")

// reload re-reads the configuration file and applies it to the running
// pools (see "Reloading the configuration" in doc.go). If the new
// configuration is rejected nothing changes. trigger, such as "SIGHUP",
// is logged. The outcome is logged and counted in the reload statistics.
func (px *proxies) reload(trigger string) error {
	px.reloadMu.Lock()
	defer px.reloadMu.Unlock()
	if px.closing {
		return errShuttingDown
	}
	res, err := px.apply()
	px.mu.Lock()
	if err != nil {
		px.reloads.Failures++
		px.reloads.LastOK = false
	} else {
		px.reloads.Successes++
		px.reloads.LastOK = true
		px.reloads.LastSuccess = time.Now()
	}
	px.mu.Unlock()
	if err != nil {
		px.log.Error("configuration reload failed", "file", px.confFile, "trigger", trigger, "err", err)
		return err
	}
	px.log.Info("configuration reloaded", "file", px.confFile, "trigger", trigger,
		"added", res.added, "removed", res.removed, "changed", res.changed, "pools", px.names())
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

// apply reloads the configuration. It must be called with reloadMu held.
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
func (px *proxies) apply() (reloadResult, error) {
	var res reloadResult
	ups, err := px.prepare()
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
					px.log.Error("restoring a pool's configuration failed", "pool", d.srv.Name(), "err", uerr)
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
			px.servePool(u.server(), u.newLn)
		}
	}
	for _, u := range ups {
		if u.old != nil && u.moved() && u.old.ln != nil {
			u.old.ln.retire()
		}
	}
	px.mu.Lock()
	current := px.pools
	px.mu.Unlock()
	for _, sp := range current {
		if names[sp.conf.Name] {
			continue
		}
		res.removed++
		if sp.ln != nil {
			sp.ln.retire()
		}
		px.retirePool(sp.srv)
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
		px.servePool(u.server(), u.newLn)
	}

	next := make([]*servedPool, len(ups))
	for i, u := range ups {
		sp := &servedPool{srv: u.server(), conf: u.conf, ln: u.newLn}
		if u.old != nil && !u.moved() {
			sp.ln = u.old.ln
		}
		next[i] = sp
	}
	px.mu.Lock()
	px.pools = next
	px.mu.Unlock()
	px.stats.SetPools(px.servers())

	if len(bindErrs) > 0 {
		return res, fmt.Errorf("the new configuration is in force, but %s; the pool accepts no new clients until a reload binds it",
			strings.Join(bindErrs, "; "))
	}
	return res, nil
}

// prepare does the fallible steps of a reload (see apply) and returns the
// update of every pool of the new configuration, in its order. On error
// it has closed what it made.
func (px *proxies) prepare() (ups []*update, err error) {
	f, err := config.Load(px.confFile)
	if err != nil {
		return nil, &configError{err}
	}
	confs := f.Pools
	px.mu.Lock()
	current := make(map[string]*servedPool, len(px.pools))
	held := make(map[string]bool, len(px.pools)) // listen keys of our listeners
	for _, sp := range px.pools {
		current[sp.conf.Name] = sp
		if sp.ln != nil {
			held[listenKey(sp.conf)] = true
		}
	}
	px.mu.Unlock()

	listens := make(map[string]string, len(confs)) // listen key -> pool
	for _, c := range confs {
		cfg := proxy.FromPool(c, px.log)
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
	cfg.Pool.Preconnect = false
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
// shutdownTimeout, and are then disconnected.
func (px *proxies) retirePool(s *proxy.Server) {
	px.retiring.Add(1)
	go func() {
		defer px.retiring.Done()
		ctx, cancel := context.WithTimeout(px.retireCtx, shutdownTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			px.log.Warn("removed pool's shutdown cut short: connections closed", "pool", s.Name(), "err", err)
			return
		}
		px.log.Info("removed pool stopped", "pool", s.Name())
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
