package protocol

import (
	"errors"
	"fmt"
)

// Kind is a wire protocol.
type Kind uint8

// The protocols walnut speaks.
const (
	Redis    Kind = iota + 1 // RESP2, with RESP3 replies recognised
	Memcache                 // memcached ASCII (text) protocol
)

// String returns "redis" or "memcache".
func (k Kind) String() string {
	switch k {
	case Redis:
		return "redis"
	case Memcache:
		return "memcache"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Defaults used for zero Limits fields, matching redis-server 7's own
// limits where it has one.
const (
	// DefaultMaxArgs bounds the elements of one request (1M). Redis before
	// 7 had this limit; redis-server 7 accepts up to 2^31-1 elements, so a
	// caller proxying very large MSETs may raise it.
	DefaultMaxArgs = 1024 * 1024
	// DefaultMaxBulk is redis-server's proto-max-bulk-len (512 MiB).
	DefaultMaxBulk = 512 << 20
	// DefaultMaxLine is redis-server's limit on an inline command and on
	// any header line (64 KiB); memcached command lines use it too.
	DefaultMaxLine = 64 << 10
	// DefaultMaxDepth bounds the nesting of reply arrays, maps and sets.
	DefaultMaxDepth = 64
	// DefaultMaxRequest bounds a request that no other limit bounds
	// (64 MiB): the line of a memcached get, gets, gat or gats, which
	// memcached reads whatever its length.
	DefaultMaxRequest = 64 << 20

	// Ceilings: WithDefaults lowers larger values to these, so that length
	// arithmetic in the parsers (offset + length + CRLF) cannot overflow
	// even when a caller asks for "no limit" with math.MaxInt.
	CeilingMaxArgs    = 1<<31 - 1
	CeilingMaxBulk    = 1<<31 - 1
	CeilingMaxLine    = 1 << 30
	CeilingMaxDepth   = 1 << 16
	CeilingMaxRequest = 1<<31 - 1
)

// Limits bounds what a parser accepts. Each limit is checked before any
// memory is allocated for the frame it guards. The zero value of a field
// means its default.
type Limits struct {
	// MaxArgs is the most elements in a request (RESP array elements or
	// inline arguments; memcached keys in a get). If zero, DefaultMaxArgs.
	MaxArgs int
	// MaxBulk is the largest bulk string or memcached data block, in bytes.
	// If zero, DefaultMaxBulk.
	MaxBulk int
	// MaxLine is the longest line (inline command, RESP header line,
	// memcached command line) including its CRLF. If zero, DefaultMaxLine.
	MaxLine int
	// MaxDepth is the deepest nesting of aggregate replies. If zero,
	// DefaultMaxDepth.
	MaxDepth int
	// MaxRequest is the largest request, in bytes, that no other field
	// bounds: the line (CRLF included) of a memcached get, gets, gat or
	// gats, whose keys memcached reads without a limit on the line's
	// length. Such a line may be as long as the larger of MaxLine and
	// MaxRequest. If zero, DefaultMaxRequest.
	MaxRequest int
}

// WithDefaults returns l with every zero (or negative) field set to its
// default and every field above its ceiling lowered to the ceiling.
func (l Limits) WithDefaults() Limits {
	l.MaxArgs = resolve(l.MaxArgs, DefaultMaxArgs, CeilingMaxArgs)
	l.MaxBulk = resolve(l.MaxBulk, DefaultMaxBulk, CeilingMaxBulk)
	l.MaxLine = resolve(l.MaxLine, DefaultMaxLine, CeilingMaxLine)
	l.MaxDepth = resolve(l.MaxDepth, DefaultMaxDepth, CeilingMaxDepth)
	l.MaxRequest = resolve(l.MaxRequest, DefaultMaxRequest, CeilingMaxRequest)
	return l
}

func resolve(v, def, ceiling int) int {
	switch {
	case v <= 0:
		return def
	case v > ceiling:
		return ceiling
	}
	return v
}

// Sentinel errors, matched with errors.Is. Every *Error matches
// ErrProtocol; one raised by a limit also matches ErrTooLarge.
var (
	ErrProtocol = errors.New("protocol: malformed input")
	ErrTooLarge = errors.New("protocol: input exceeds a limit")
)

// An Error reports malformed input. Reply is the text to send back to the
// client without its type byte or CRLF, worded as the real server words it:
// "ERR Protocol error: invalid bulk length" for Redis (sent as "-" + Reply),
// "CLIENT_ERROR bad data chunk" or "ERROR" for memcached. After an Error the
// stream cannot be resynchronised: send Reply, then close the connection,
// as redis-server does.
type Error struct {
	Kind     Kind
	Reply    string
	TooLarge bool // a Limits bound was exceeded
}

// Error implements error.
func (e *Error) Error() string {
	return "protocol: " + e.Kind.String() + ": " + e.Reply
}

// Is reports whether target is ErrProtocol, or ErrTooLarge for an error
// raised by a limit.
func (e *Error) Is(target error) bool {
	return target == ErrProtocol || (e.TooLarge && target == ErrTooLarge)
}
