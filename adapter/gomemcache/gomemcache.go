package gomemcache

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

// ErrNotMemcache is returned by NewSelectorFromPool and NewFromPool for a
// redis pool ("redis: true").
var ErrNotMemcache = errors.New("gomemcache: not a memcached pool")

// maxKeyLen is the longest key memcached, nutcracker and gomemcache accept.
const maxKeyLen = 250

// A Selector is a memcache.ServerSelector that places each key on the server
// nutcracker (twemproxy) picks for it in a pool: same hash, distribution,
// hash tag, weights and server names, and the servers in nutcracker's order.
// Servers can be ejected with SetLive, as nutcracker's auto_eject_hosts
// ejects them.
//
// A Selector is safe for concurrent use. The zero value has no servers:
// PickServer returns memcache.ErrNoServers and Each calls nothing.
type Selector struct {
	addrs []net.Addr                 // by server index; one value per server, reused
	base  *shard.Ring                // every server live
	ring  atomic.Pointer[shard.Ring] // what PickServer uses
}

var _ memcache.ServerSelector = (*Selector)(nil)

// NewSelector returns a Selector over servers, placed under opts as
// shard.NewRing places them (and validated as it validates them), with every
// server live.
//
// Each server's address is resolved once, here, as memcache.ServerList
// resolves it: a TCP host name with net.ResolveTCPAddr (Go's resolver, which
// prefers an IPv4 address), a unix socket path with net.ResolveUnixAddr.
// A host name that does not resolve is an error naming the server, wrapping
// the resolver's error; nutcracker instead starts, resolves the name when it
// connects, and fails the requests for that server's keys. Later DNS changes
// are not followed: build a new Selector to pick them up. Addresses never
// change placement, which depends on the servers' IDs (shard.Server.ID) and
// weights.
func NewSelector(servers []shard.Server, opts shard.RingOptions) (*Selector, error) {
	s, err := newSelector(servers, opts)
	if err != nil {
		return nil, fmt.Errorf("gomemcache: %w", err)
	}
	return s, nil
}

// newSelector is NewSelector with errors not prefixed.
func newSelector(servers []shard.Server, opts shard.RingOptions) (*Selector, error) {
	ring, err := shard.NewRing(servers, opts)
	if err != nil {
		return nil, err
	}
	addrs := make([]net.Addr, ring.Len())
	for i := range addrs {
		a, err := resolve(ring.Server(i))
		if err != nil {
			return nil, fmt.Errorf("server %q: %w", ring.ID(i), err)
		}
		addrs[i] = a
	}
	s := &Selector{addrs: addrs, base: ring}
	s.ring.Store(ring)
	return s, nil
}

// resolve returns the address to dial srv at, resolved now.
func resolve(srv shard.Server) (net.Addr, error) {
	network, address := srv.Network()
	var a net.Addr
	if network == "unix" {
		ua, err := net.ResolveUnixAddr(network, address)
		if err != nil {
			return nil, err
		}
		a = ua
	} else {
		ta, err := net.ResolveTCPAddr(network, address)
		if err != nil {
			return nil, err
		}
		a = ta
	}
	return &staticAddr{network: a.Network(), str: a.String()}, nil
}

// staticAddr is a resolved address whose String, called by gomemcache on
// every request to key its idle connections, does not allocate.
type staticAddr struct {
	network, str string
}

func (a *staticAddr) Network() string { return a.network }
func (a *staticAddr) String() string  { return a.str }

// PickServer returns the address of the server nutcracker picks for key,
// among the servers live under the last SetLive. It implements
// memcache.ServerSelector and does not allocate. The address is the same
// net.Addr value for every key of a server.
//
// A key that gomemcache's Client refuses (longer than 250 bytes, or
// containing a byte up to and including ' ', or 0x7f) yields
// memcache.ErrMalformedKey, and so does the empty key, which memcached
// answers with an error. Every other key, including one with bytes of 0x80
// and above, is placed. A zero Selector returns memcache.ErrNoServers.
func (s *Selector) PickServer(key string) (net.Addr, error) {
	r := s.ring.Load()
	if r == nil {
		return nil, memcache.ErrNoServers
	}
	if !legalKey(key) {
		return nil, memcache.ErrMalformedKey
	}
	return s.addrs[r.PickString(key)], nil
}

// legalKey reports whether key is 1 to 250 bytes, none of them a space, a
// control byte or DEL: gomemcache's check, without the empty key it lets
// through.
func legalKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// Each calls f with the address of every server, live or ejected, in
// nutcracker's index order (the order of config.Pool.Servers), and stops at
// and returns the first error f returns. memcache.Client uses it for
// FlushAll and Ping, so those reach an ejected server too: FlushAll thereby
// also clears stale items from a server about to be restored, and Ping
// reports the server down while it is.
func (s *Selector) Each(f func(net.Addr) error) error {
	for _, a := range s.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// SetLive sets which servers receive keys: the server at index i (in
// nutcracker's order, see Ring) if live[i], as nutcracker rebuilds its
// distribution when auto_eject_hosts ejects or restores servers
// (shard.Ring.WithLive). Only the keys of the servers that change state
// move. len(live) must be the number of servers. At least one server must be
// live; otherwise SetLive returns an error wrapping shard.ErrNoLiveServers
// and leaves placement unchanged.
//
// The Selector does not watch servers itself: the caller decides when a
// server is out, for example after server_failure_limit consecutive errors,
// and when it is back, after server_retry_timeout. Each call replaces the
// whole set, so concurrent callers must agree on it. PickServer calls
// running meanwhile see either the old or the new placement.
func (s *Selector) SetLive(live []bool) error {
	if s.base == nil {
		return fmt.Errorf("gomemcache: %w", shard.ErrNoServers)
	}
	r, err := s.base.WithLive(live)
	if err != nil {
		return fmt.Errorf("gomemcache: %w", err)
	}
	s.ring.Store(r)
	return nil
}

// Ring returns the shard.Ring PickServer currently uses: the servers in
// nutcracker's index order, their IDs, which are live, and the placement
// itself, as of the last SetLive. It is immutable. A zero Selector returns
// nil.
func (s *Selector) Ring() *shard.Ring {
	return s.ring.Load()
}

// New returns a memcache.Client that talks to servers directly and finds
// every key where nutcracker puts it with ring (hash, distribution and hash
// tag): the Client of memcache.NewFromSelector over NewSelector(servers,
// ring). Timeout and MaxIdleConns are gomemcache's defaults; the caller may
// change them before using the Client. To eject servers, build the Client
// from a Selector instead: memcache.NewFromSelector(sel).
func New(servers []shard.Server, ring shard.RingOptions) (*memcache.Client, error) {
	s, err := NewSelector(servers, ring)
	if err != nil {
		return nil, err
	}
	return memcache.NewFromSelector(s), nil
}

// NewSelectorFromPool returns the Selector for pool p of a nutcracker.yml,
// as read by config.Load or config.Parse: NewSelector over its servers,
// hash, distribution and hash tag. It returns an error wrapping
// ErrNotMemcache for a redis pool; its errors name the pool.
//
// The pool's proxy settings (auto_eject_hosts, server_failure_limit,
// server_retry_timeout, server_connections, timeout…) do not affect
// placement and are not used; see SetLive for ejection.
func NewSelectorFromPool(p config.Pool) (*Selector, error) {
	if p.Redis {
		return nil, fmt.Errorf("%w: pool %q", ErrNotMemcache, p.Name)
	}
	s, err := newSelector(p.Servers, p.RingOptions())
	if err != nil {
		return nil, fmt.Errorf("gomemcache: pool %q: %w", p.Name, err)
	}
	return s, nil
}

// NewFromPool returns a memcache.Client that talks to the servers of pool p
// directly and finds every key where nutcracker puts it: the Client of
// memcache.NewFromSelector over NewSelectorFromPool(p). A positive pool
// timeout becomes Client.Timeout (nutcracker applies it to each server
// response); with none, gomemcache's default, memcache.DefaultTimeout,
// applies rather than waiting forever. MaxIdleConns is left at gomemcache's
// default: server_connections caps the connections a proxy shares among all
// its clients, not the idle connections of one process (its default, 1,
// would make concurrent callers dial and close connections). The caller may
// change both fields before using the Client.
//
// To eject servers, build the Client from a Selector instead:
// memcache.NewFromSelector(sel), then set Timeout as above.
func NewFromPool(p config.Pool) (*memcache.Client, error) {
	s, err := NewSelectorFromPool(p)
	if err != nil {
		return nil, err
	}
	c := memcache.NewFromSelector(s)
	if p.Timeout > 0 {
		c.Timeout = p.Timeout
	}
	return c, nil
}
