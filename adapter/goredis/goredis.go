package goredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

// Errors returned by RingOptions, NewRing and their FromPool forms.
var (
	// ErrNotRedis is returned by the FromPool forms for a memcached pool
	// (no "redis: true").
	ErrNotRedis = errors.New("goredis: not a redis pool")
	// ErrHashTag is returned for a ring whose hash tag is not "{}" unless
	// Options.AllowMisplacedBraceKeys is set: go-redis would place keys
	// containing "{…}" by the part between the braces, not as nutcracker
	// does (see the package documentation).
	ErrHashTag = errors.New(`goredis: go-redis places keys containing "{…}" by the part between the braces, but the pool's hash_tag is not "{}"`)
)

// goRedisTag is the only hash tag under which go-redis's key extraction
// agrees with nutcracker's for every key.
const goRedisTag = "{}"

// A Placement places keys on the shards of a go-redis Ring as nutcracker
// places them on a pool's servers. The shards must be named after the
// servers' IDs (shard.Server.ID). A Placement is immutable and safe for
// concurrent use.
type Placement struct {
	ring  *shard.Ring
	index map[string]int // server ID -> index in ring
}

// NewPlacement returns the Placement of servers under opts, the settings
// shard.NewRing takes, validated as shard.NewRing validates them.
func NewPlacement(servers []shard.Server, opts shard.RingOptions) (*Placement, error) {
	ring, err := shard.NewRing(servers, opts)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, ring.Len())
	for i := range ring.Len() {
		index[ring.ID(i)] = i
	}
	return &Placement{ring: ring, index: index}, nil
}

// NewConsistentHash returns the ConsistentHash for a Ring whose live shards
// are named shards; its method value is what redis.RingOptions.NewConsistentHash
// takes. go-redis calls it with the names of the shards it considers up
// whenever that set changes.
//
// The ConsistentHash's Get(key) returns the ID of the server nutcracker
// picks for key when exactly the servers named in shards are live (the others
// ejected, as with shard.Ring.WithLive; with every server named, the full
// pool). Names that are not server IDs are ignored. When no server is named,
// Get returns "", which go-redis reports as "all ring shards are down".
// With the random distribution Get picks a live server at random, as
// nutcracker does.
func (p *Placement) NewConsistentHash(shards []string) redis.ConsistentHash {
	live := make([]bool, p.ring.Len())
	n := 0
	for _, name := range shards {
		if i, ok := p.index[name]; ok && !live[i] {
			live[i] = true
			n++
		}
	}
	switch n {
	case 0:
		return noServers{}
	case len(live):
		return p.ring
	}
	r, err := p.ring.WithLive(live)
	if err != nil { // unreachable: len(live) matches and one is live
		return noServers{}
	}
	return r
}

// noServers is the ConsistentHash of a Ring with no known live shard.
type noServers struct{}

func (noServers) Get(string) string { return "" }

// Addrs returns, for redis.RingOptions.Addrs, a new map from each server's
// ID to the address to dial: "host:port" (an IPv6 host bracketed) or a unix
// socket path, which go-redis dials over "unix".
func (p *Placement) Addrs() map[string]string {
	m := make(map[string]string, p.ring.Len())
	for i := range p.ring.Len() {
		_, addr := p.ring.Server(i).Network()
		m[p.ring.ID(i)] = addr
	}
	return m
}

// Exact reports whether a go-redis Ring using p places key where nutcracker
// places it, whichever servers are live. go-redis hands the ConsistentHash
// only the part of key it takes for a hash tag (see the package
// documentation); Exact reports whether nutcracker hashes that part and the
// whole key to the same value. It is true for every key when the hash tag is
// "{}", for every key without a '{' followed later by a '}' with at least
// one byte between, and for every key of a one-server pool.
func (p *Placement) Exact(key string) bool {
	k := goRedisKey(key)
	if len(k) == len(key) {
		return true
	}
	return p.ring.Hash([]byte(k)) == p.ring.Hash([]byte(key))
}

// goRedisKey returns the part of key go-redis v9's Ring hashes (its
// internal hashtag.Key): the bytes between the first '{' and the first '}'
// after it if there is at least one, otherwise the whole key.
func goRedisKey(key string) string {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e]
		}
	}
	return key
}

// Options configures RingOptions and NewRing: what go-redis needs to reach
// the servers as nutcracker reaches them, beyond placement. The zero value
// is a pool with nutcracker's defaults (no password, database 0, no
// timeout, no ejection), and accepts only rings in which go-redis places
// every key as nutcracker does.
//
// RingOptionsFromPool and NewRingFromPool fill Password, DB, Timeout and
// AutoEjectHosts from the pool; only AllowMisplacedBraceKeys is taken from
// the caller there.
type Options struct {
	// AllowMisplacedBraceKeys accepts a ring whose hash tag is not "{}"
	// (including one with no hash tag). Keys for which Placement.Exact
	// is false, such as "user:{42}:name" in a pool without a hash tag, may
	// then be placed on another server than nutcracker's; set it only if
	// the application has no such keys. If false, such a ring is refused
	// with ErrHashTag.
	AllowMisplacedBraceKeys bool

	// Password is sent with AUTH on every new connection: a pool's
	// redis_auth. Empty: none.
	Password string
	// DB, if positive, is selected on every new connection as nutcracker
	// selects a pool's redis_db: before AUTH, ignoring an error reply (see
	// RingOptions).
	DB int
	// Timeout, if positive, bounds dialling and each reply, as a pool's
	// timeout does in nutcracker. Zero: go-redis's defaults.
	Timeout time.Duration
	// AutoEjectHosts lets go-redis take a shard whose heartbeats fail out
	// of placement, as a pool's auto_eject_hosts lets nutcracker eject a
	// failing server. If false, no shard is ever taken out: the keys of a
	// dead server fail rather than move.
	AutoEjectHosts bool
}

// RingOptions returns the options of a go-redis Ring that places keys on
// servers as nutcracker places them with ring (hash, distribution and hash
// tag, see shard.NewRing): Addrs and NewConsistentHash from a Placement,
// and the rest from opts.
//
// opts.Password becomes Password. For opts.DB, nutcracker 0.5.0 sends
// SELECT on each new server connection before it authenticates (twemproxy
// issue #457), and goes on in database 0 if SELECT fails: with redis_auth
// and servers that require the password, its keys are in database 0, not
// redis_db. To put keys in the same database, RingOptions does the same:
// for a positive DB it sets a Dialer that sends SELECT first on every new
// connection and ignores an error reply, and leaves DB at 0. Replacing that
// Dialer (for example to add TLS, which nutcracker does not speak) loses
// this.
//
// A positive opts.Timeout becomes DialTimeout, ReadTimeout and WriteTimeout
// (nutcracker applies a pool's timeout to connecting and to each response);
// with none, go-redis's defaults apply rather than waiting forever. Without
// opts.AutoEjectHosts, HeartbeatFn always reports shards up, so a dead
// server's keys fail rather than move, as through nutcracker.
//
// The caller may change any other field before passing the options to
// redis.NewRing. It returns ErrHashTag for a ring whose hash tag is not
// "{}" (unless opts allows it), and shard.NewRing's error for servers it
// refuses.
func RingOptions(servers []shard.Server, ring shard.RingOptions, opts Options) (*redis.RingOptions, error) {
	return ringOptions(servers, ring, opts, "")
}

// RingOptionsFromPool returns RingOptions for the servers, hash,
// distribution and hash tag of pool, with opts.Password, DB, Timeout and
// AutoEjectHosts set from its redis_auth, redis_db, timeout and
// auto_eject_hosts. server_connections, server_retry_timeout and
// server_failure_limit are proxy settings with no Ring equivalent and are
// not used. It returns ErrNotRedis for a memcached pool; its errors name
// the pool.
func RingOptionsFromPool(pool config.Pool, opts Options) (*redis.RingOptions, error) {
	if !pool.Redis {
		return nil, fmt.Errorf("%w: pool %q", ErrNotRedis, pool.Name)
	}
	opts.Password = pool.RedisAuth
	opts.DB = pool.RedisDB
	opts.Timeout = pool.Timeout
	opts.AutoEjectHosts = pool.AutoEjectHosts
	return ringOptions(pool.Servers, pool.RingOptions(), opts, pool.Name)
}

// ringOptions is RingOptions; pool, if not empty, is the name of the pool
// the servers come from, for errors.
func ringOptions(servers []shard.Server, ring shard.RingOptions, opts Options, pool string) (*redis.RingOptions, error) {
	what, key := "the ring", "hash tag"
	if pool != "" {
		what, key = fmt.Sprintf("pool %q", pool), "hash_tag"
	}
	if ring.HashTag != goRedisTag && !opts.AllowMisplacedBraceKeys {
		tag := "no " + key
		if ring.HashTag != "" {
			tag = fmt.Sprintf("%s %q", key, ring.HashTag)
		}
		return nil, fmt.Errorf("%w: %s has %s (set Options.AllowMisplacedBraceKeys if no key contains {…})", ErrHashTag, what, tag)
	}
	p, err := NewPlacement(servers, ring)
	if err != nil {
		if pool != "" {
			return nil, fmt.Errorf("goredis: %s: %w", what, err)
		}
		return nil, fmt.Errorf("goredis: %w", err)
	}
	ro := &redis.RingOptions{
		Addrs:             p.Addrs(),
		NewConsistentHash: p.NewConsistentHash,
		Password:          opts.Password,
	}
	if opts.DB > 0 {
		ro.Dialer = selectFirst(opts.DB)
	}
	if opts.Timeout > 0 {
		ro.DialTimeout = opts.Timeout
		ro.ReadTimeout = opts.Timeout
		ro.WriteTimeout = opts.Timeout
	}
	if !opts.AutoEjectHosts {
		ro.HeartbeatFn = alwaysUp
	}
	return ro, nil
}

// alwaysUp is the heartbeat of a pool without auto_eject_hosts: no shard is
// ever taken out of the Ring.
func alwaysUp(context.Context, *redis.Client) bool { return true }

// selectFirst returns a go-redis Dialer that sends SELECT db on each new
// connection, before go-redis authenticates and negotiates the protocol,
// and ignores an error reply (such as NOAUTH), as nutcracker does.
func selectFirst(db int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	n := strconv.Itoa(db)
	cmd := []byte("*2\r\n$6\r\nSELECT\r\n$" + strconv.Itoa(len(n)) + "\r\n" + n + "\r\n")
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := selectDB(ctx, conn, cmd); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("goredis: SELECT on %s: %w", addr, err)
		}
		return conn, nil
	}
}

// selectTimeout bounds the SELECT exchange when ctx has no deadline.
const selectTimeout = 5 * time.Second

// selectDB writes cmd to conn and reads its one-line reply, byte by byte so
// that nothing after it is consumed. A simple-string or error reply is
// accepted; anything else is an error.
func selectDB(ctx context.Context, conn net.Conn, cmd []byte) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(selectTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.Write(cmd); err != nil {
		return err
	}
	var line []byte
	b := make([]byte, 1)
	for len(line) < 512 {
		if _, err := conn.Read(b); err != nil {
			return err
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			if line[0] != '+' && line[0] != '-' {
				return fmt.Errorf("unexpected reply %.40q", line)
			}
			return conn.SetDeadline(time.Time{})
		}
	}
	return fmt.Errorf("reply too long: %.40q", line)
}

// NewRing returns redis.NewRing(RingOptions(servers, ring, opts)). The Ring
// starts a heartbeat goroutine; Close it when done.
func NewRing(servers []shard.Server, ring shard.RingOptions, opts Options) (*redis.Ring, error) {
	ro, err := RingOptions(servers, ring, opts)
	if err != nil {
		return nil, err
	}
	return redis.NewRing(ro), nil
}

// NewRingFromPool returns redis.NewRing(RingOptionsFromPool(pool, opts)):
// a Ring for a redis pool of a nutcracker.yml. The Ring starts a heartbeat
// goroutine; Close it when done.
func NewRingFromPool(pool config.Pool, opts Options) (*redis.Ring, error) {
	ro, err := RingOptionsFromPool(pool, opts)
	if err != nil {
		return nil, err
	}
	return redis.NewRing(ro), nil
}
