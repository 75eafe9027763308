package shard

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
)

// ketamaPort is the port twemproxy (after libmemcached) leaves out of a
// server's name.
const ketamaPort = 11211

// A Server is one placement target of a Ring.
type Server struct {
	// Addr is the server's address as a twemproxy config writes it:
	// "host:port" (host may be a name, an IPv4 literal, a bare IPv6 literal
	// such as "::1", or a bracketed one), or an absolute unix socket path.
	Addr string
	// Weight is the server's share of keys relative to the others.
	// If zero, 1 is used. It must not be negative.
	Weight int
	// Name is the server's configured name (the text after the space in
	// "host:port:weight name"). If empty, the name is derived from Addr as
	// twemproxy derives it; see ID.
	Name string
}

// ID returns the name twemproxy gives the server, which is what ketama hashes
// into the continuum, what orders the servers of a pool, and what keys the
// stats: the configured Name if set; otherwise Addr, except that a TCP
// address on port 11211 is reduced to its host (libmemcached compatibility)
// and a unix socket path gets a trailing ':'. The weight is never part of it.
func (s Server) ID() string {
	if s.Name != "" {
		return s.Name
	}
	if strings.HasPrefix(s.Addr, "/") {
		return s.Addr + ":"
	}
	if host, port, ok := splitLast(s.Addr, ':'); ok {
		if n, ok := atoi(port); ok && n == ketamaPort {
			return host
		}
	}
	return s.Addr
}

// Network returns the network and address to dial the server with: "unix"
// and the path for an address starting with '/', else "tcp" and host:port
// with an IPv6 host bracketed as net.Dial expects.
func (s Server) Network() (network, address string) {
	if strings.HasPrefix(s.Addr, "/") {
		return "unix", s.Addr
	}
	host, port, ok := splitLast(s.Addr, ':')
	if !ok {
		return "tcp", s.Addr
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return "tcp", net.JoinHostPort(host, port)
}

func (s Server) weight() int {
	if s.Weight == 0 {
		return 1
	}
	return s.Weight
}

// ErrInvalidServer is wrapped by the errors ParseServer returns.
var ErrInvalidServer = errors.New("shard: invalid server")

// Reasons ParseServer reports, in twemproxy's words so that an operator who
// knows nutcracker's log recognises them.
const (
	reasonFormat     = `has an invalid "hostname:port:weight [name]"or "/path/unix_socket:weight [name]" format string`
	reasonWeight     = `has an invalid weight in "hostname:port:weight [name]" format string`
	reasonZeroWeight = `has a zero weight in "hostname:port:weight [name]" format string`
	reasonPort       = `has an invalid port in "hostname:port:weight [name]" format string`
	reasonEmptyName  = `has an empty name after the space in "hostname:port:weight [name]" format string`
)

// ParseServer parses one entry of a twemproxy "servers:" list,
// "host:port:weight [name]" or "/path/to/unix.sock:weight [name]". Like
// twemproxy it parses from the right: the name is the text after the last
// space, the weight the text after the last ':' before it, then for TCP the
// port after the next ':'; the rest is the host (so "127.0.0.1:6379:1:2" is
// host "127.0.0.1:6379", port 1, weight 2). The weight must be a positive
// decimal and the port 1..65535. Errors wrap ErrInvalidServer and use
// twemproxy's wording. Unlike twemproxy, an empty name after a trailing space
// is rejected instead of naming the server "".
func ParseServer(entry string) (Server, error) {
	fail := func(reason string) (Server, error) {
		return Server{}, fmt.Errorf("%w %q: %s", ErrInvalidServer, entry, reason)
	}
	if entry == "" {
		return fail(reasonFormat)
	}
	rest, name := entry, ""
	if i := strings.LastIndexByte(entry, ' '); i >= 0 {
		rest, name = entry[:i], entry[i+1:]
		if name == "" {
			return fail(reasonEmptyName)
		}
	}
	addr, weightText, ok := splitLast(rest, ':')
	if !ok {
		return fail(reasonFormat)
	}
	unix := strings.HasPrefix(entry, "/")
	_, port, hasPort := splitLast(addr, ':')
	if unix == hasPort { // a unix path has no ':' left; host:port has one
		return fail(reasonFormat)
	}
	// twemproxy checks the weight before the port.
	w, ok := atoi(weightText)
	switch {
	case !ok:
		return fail(reasonWeight)
	case w == 0:
		return fail(reasonZeroWeight)
	}
	if !unix {
		if n, ok := atoi(port); !ok || n < 1 || n > 65535 {
			return fail(reasonPort)
		}
	}
	return Server{Addr: addr, Weight: w, Name: name}, nil
}

// splitLast splits s at the last sep.
func splitLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// atoi parses a non-empty string of ASCII digits that fits in an int32, the
// numbers twemproxy accepts.
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			return 0, false
		}
	}
	return n, true
}
