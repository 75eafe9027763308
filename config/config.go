package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// Pool is one pool of a nutcracker.yml, defaults applied.
type Pool struct {
	// Name is the pool's name, the key it is written under.
	Name string
	// Line is the line of the pool's name in the file (1-based).
	Line int

	// Listen is the listen value as written, such as "127.0.0.1:22121" or
	// "/tmp/x.sock 0666".
	Listen string
	// ListenNetwork is "tcp" or "unix".
	ListenNetwork string
	// ListenAddr is the address to pass to net.Listen: "host:port" with the
	// host as written, except that an IPv6 host is bracketed
	// ("::1:22121" becomes "[::1]:22121") and the port is in plain decimal;
	// or the socket path, without the permission.
	ListenAddr string
	// ListenPerm is the permission to chmod a unix socket to after
	// creating it. 0 means leave it as created (nutcracker does the same).
	// It is always 0 for TCP.
	ListenPerm os.FileMode

	// Hash is the hash's configuration name; default "fnv1a_64".
	Hash string
	// HashFunc is the function Hash names.
	HashFunc hashkit.Func
	// HashTag is "" (none) or exactly two bytes, such as "{}".
	HashTag string
	// Distribution is the distribution DistributionName names.
	Distribution shard.Distribution
	// DistributionName is "ketama" (the default), "modula" or "random".
	DistributionName string

	// Timeout is how long a request may wait for its server. 0 means no
	// timeout: the key absent (nutcracker's -1, wait forever) or
	// "timeout: 0", which nutcracker also treats as no timeout, as it arms
	// a request timer only for a positive value.
	Timeout time.Duration
	// Backlog is the listen(2) backlog; default 512.
	Backlog int
	// ClientConnections is the maximum number of client connections;
	// 0 (the default) means unlimited. walnut enforces it; nutcracker
	// parses it and ignores it.
	ClientConnections int

	// Redis is true for a redis pool, false (the default) for memcached.
	Redis bool
	// RedisAuth is the password clients must AUTH with and that is sent
	// to the servers; "" for none. Only a redis pool may have one.
	RedisAuth string
	// RedisDB is the database selected on every server connection when
	// greater than 0; default 0.
	RedisDB int

	// Preconnect makes the proxy connect to every server at startup.
	Preconnect bool
	// AutoEjectHosts makes the proxy take a failing server out of the
	// distribution for ServerRetryTimeout.
	AutoEjectHosts bool
	// ServerConnections is the number of connections to each server;
	// default 1, at least 1.
	ServerConnections int
	// ServerRetryTimeout is how long an ejected server stays out;
	// default 30s.
	ServerRetryTimeout time.Duration
	// ServerFailureLimit is the number of consecutive failures that
	// eject a server; default 2.
	ServerFailureLimit int
	// TCPKeepalive sets SO_KEEPALIVE on accepted client connections.
	TCPKeepalive bool
	// Reuseport sets SO_REUSEPORT on the listener. The key exists in
	// twemproxy after 0.5.0; nutcracker 0.5.0 rejects it.
	Reuseport bool
	// ClientTimeout closes a client that takes longer than this to send
	// a complete request or to accept its replies; 0 (the default):
	// never. walnut's key client_timeout, in milliseconds.
	ClientTimeout time.Duration
	// ClientOutputWatermark bounds the bytes of replies held for one
	// client that pipelines: past it, the proxy sends no more of its
	// requests until the client has taken the replies; 0 (the default):
	// 1 MiB. walnut's key client_output_watermark.
	ClientOutputWatermark int
	// ClientOutputLimit is an optional hard cap on the replies held for
	// one client: past it the client gets an error reply and is closed;
	// 0 (the default): none. walnut's key client_output_limit.
	ClientOutputLimit int
	// ClientRequestLimit bounds, in bytes, the requests that no other
	// limit bounds: in a memcached pool, the line of a get, gets, gat or
	// gats, which memcached reads whatever its length (a multi-get of
	// thousands of keys); other memcached lines stay within 64 KiB. Not
	// used by redis pools. 0 (the default): 64 MiB. walnut's key
	// client_request_limit.
	ClientRequestLimit int
	// MaxPinnedConnections limits the server connections the pool's
	// clients hold for themselves (transactions, blocking commands,
	// subscriptions); 0 (the default): 1024. Not used by memcached pools.
	// walnut's key max_pinned_connections.
	MaxPinnedConnections int
	// RedisRefuseCommands lists the Redis commands the proxy refuses,
	// beyond those it refuses anyway, as written under the key
	// redis_refuse_commands, in lower case, a subcommand after '|'
	// ("flushall", "script|flush"); nil (the default): none. Only a redis
	// pool may have it. walnut's key; the proxy checks the names
	// (proxy.Config.RefuseCommands).
	RedisRefuseCommands []string

	// Servers are the pool's servers sorted as twemproxy sorts them: by
	// ID, shorter first, then bytewise. Indexes into Servers are
	// twemproxy's server indexes.
	Servers []shard.Server
	// ServerLines holds the line of each server's entry in the file, in
	// the order of Servers.
	ServerLines []int
}

// RingOptions returns the shard.RingOptions of the pool: its hash function,
// distribution and hash tag.
func (p *Pool) RingOptions() shard.RingOptions {
	return shard.RingOptions{Hash: p.HashFunc, Distribution: p.Distribution, HashTag: p.HashTag}
}

// ErrInvalid is matched (through errors.Is) by every *Error: the
// configuration was read but rejected.
var ErrInvalid = errors.New("config: invalid configuration")

// Error is a rejected configuration: where the problem is and what it is.
type Error struct {
	File string // the file name given to Parse or Load
	Line int    // 1-based line; 0 if no line applies, as for an empty file
	Pool string // the pool's name; "" if the problem is not inside a pool
	Key  string // the key, such as "hash"; "" if not about one key
	Msg  string // what is wrong, in plain words
}

// Error formats e as "FILE:LINE: pool "P": key "K": MSG", leaving out the
// parts that do not apply.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Pool != "" {
		fmt.Fprintf(&b, "pool %q: ", e.Pool)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// A File is a nutcracker.yml as read by Load or Parse.
type File struct {
	// Name is the file name given to Load or Parse, as used in errors.
	Name string
	// Pools are the file's pools, sorted by name the twemproxy way:
	// shorter names first, then bytewise. There is at least one.
	Pools []Pool
}

// Pool returns the pool named name and true, or the zero Pool and false if
// the file has no such pool. Look pools up by name: Pools is sorted by
// name, so Pools[0] is not the file's first pool.
func (f *File) Pool(name string) (Pool, bool) {
	for i := range f.Pools {
		if f.Pools[i].Name == name {
			return f.Pools[i], true
		}
	}
	return Pool{}, false
}

// Names returns the pool names, in the order of Pools.
func (f *File) Names() []string {
	names := make([]string, len(f.Pools))
	for i := range f.Pools {
		names[i] = f.Pools[i].Name
	}
	return names
}

// Load reads the file at path and returns Parse(path, data): the file as
// nutcracker validates it, ready to be proxied. An error reading the file
// is returned wrapped (errors.Is(err, fs.ErrNotExist) works); it is not an
// *Error.
func Load(path string) (*File, error) {
	return Loader{}.Load(path)
}

// Parse validates data as the contents of the nutcracker.yml named filename
// (used only in messages) and returns it, its pools sorted by name the
// twemproxy way: shorter names first, then bytewise. A rejected
// configuration yields an *Error. Listen host names that are not IP
// literals are resolved with net.DefaultResolver, waiting at most 5 seconds
// for each.
func Parse(filename string, data []byte) (*File, error) {
	return Loader{}.Parse(filename, data)
}

// A Loader reads nutcracker.yml files with rules other than nutcracker's.
// The zero Loader is what Load and Parse use.
type Loader struct {
	// ListenOptional accepts pools without a listen key, for a file that
	// only tells Go clients (adapter/goredis, adapter/gomemcache,
	// proxy.Client) where the keys are. Such a pool has Listen,
	// ListenNetwork and ListenAddr empty, and a proxy refuses to listen
	// for it. Everything else is checked as nutcracker checks it, and no
	// two pools that do have a listen key may share its value.
	ListenOptional bool

	// ListenUnresolved leaves listen host names unresolved: a listen value
	// is still checked as nutcracker checks it (a host, a port from 1 to
	// 65535, or a unix socket path), but a host that is not an IP literal
	// is not looked up, so reading the file neither waits for DNS nor
	// fails where the proxy's host name does not resolve. ListenAddr then
	// holds the name as written. For a file read by Go clients, which
	// never listen; a proxy reading the file this way would only find out
	// when it listens.
	ListenUnresolved bool

	// lookup resolves listen host names; nil means
	// net.DefaultResolver.LookupHost.
	lookup lookupFunc
}

// ClientLoader is the Loader for a file read only by Go clients
// (proxy.Client, adapter/goredis, adapter/gomemcache, a shard.Ring of one's
// own): listen may be absent and is not resolved (ListenOptional and
// ListenUnresolved). Everything that decides where a key goes (servers,
// hash, hash_tag, distribution) and every other key is checked as
// nutcracker checks it.
func ClientLoader() Loader {
	return Loader{ListenOptional: true, ListenUnresolved: true}
}

// ErrNoPool is wrapped by the error LoadClientPool returns when the file
// has no pool of the name asked for.
var ErrNoPool = errors.New("config: no such pool")

// LoadClientPool reads the file at path for a Go client, as ClientLoader
// does, and returns its pool called name: the one-line way to get the pool
// a client (proxy.NewClient(proxy.FromPool(pool, log)), a shard.Ring over
// pool.Servers with pool.RingOptions(), an adapter) is built from. If the
// file has no such pool the error wraps ErrNoPool and lists the pools it
// has. Pools are looked up by name, never by position: File.Pools is
// sorted by name, not in the file's order.
func LoadClientPool(path, name string) (Pool, error) {
	f, err := ClientLoader().Load(path)
	if err != nil {
		return Pool{}, err
	}
	p, ok := f.Pool(name)
	if !ok {
		return Pool{}, fmt.Errorf("%w %q in %s (its pools: %s)", ErrNoPool, name, path, strings.Join(f.Names(), ", "))
	}
	return p, nil
}

// Load reads the file at path and returns l.Parse(path, data). An error
// reading the file is returned wrapped (errors.Is(err, fs.ErrNotExist)
// works); it is not an *Error.
func (l Loader) Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return l.Parse(path, data)
}

// Parse is the package's Parse under l's rules.
func (l Loader) Parse(filename string, data []byte) (*File, error) {
	lookup := l.lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	p := &parser{file: filename, lookup: lookup, listenOptional: l.ListenOptional, listenUnresolved: l.ListenUnresolved}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	pools, err := p.pools(root)
	if err != nil {
		return nil, err
	}
	return &File{Name: filename, Pools: pools}, nil
}

// resolveTimeout bounds each listen host lookup.
const resolveTimeout = 5 * time.Second

// lookupFunc resolves a host name, as net.Resolver.LookupHost does.
type lookupFunc func(ctx context.Context, host string) ([]string, error)

// parser holds what every step of a parse needs.
type parser struct {
	file             string
	src              *source
	lookup           lookupFunc
	listenOptional   bool
	listenUnresolved bool
}

// errorf returns an *Error at line about pool and key.
func (p *parser) errorf(line int, pool, key, format string, args ...any) *Error {
	return &Error{File: p.file, Line: line, Pool: pool, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// lessName orders names as twemproxy's string_compare does: shorter
// first, then bytewise.
func lessName(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// parseNumber parses a nutcracker number: ASCII digits only, at most
// math.MaxInt32. It returns a message saying what is wrong, or "".
func parseNumber(s string) (int, string) {
	if s == "" {
		return 0, "is empty"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Sprintf("%q is not a number: write decimal digits only, with no sign, unit, point or space", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Sprintf("%q is too large: the maximum is 2147483647 (nutcracker would silently wrap it)", s)
	}
	return int(n), ""
}
