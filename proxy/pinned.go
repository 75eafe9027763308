package proxy

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"syscall"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// Pinned connections.
//
// Transactions (MULTI, EXEC, DISCARD, WATCH, UNWATCH), blocking commands
// (BLPOP and the like, XREAD and XREADGROUP with BLOCK) and subscriptions
// cannot share the pipelined server connections: their state lives on the
// server connection, or they hold it for as long as they wait. The proxy
// serves them on a server connection of the client's own, a
// pool.Dedicated, dialled for the purpose and closed when it is no longer
// needed (after EXEC, DISCARD or UNWATCH, once a blocking command is
// answered, after the last unsubscription, or when the client goes):
// a pinned connection is never reused by another client, so nothing of
// one client's server-side state can leak to the next.
//
// A command whose route is classPinned is served alone: the replies to the
// requests before it are written first, then the pinned code has the
// client until it is done, one request at a time (session.pinned), and the
// ordinary loop goes on. While a client is pinned (c.pin), every request
// it sends goes to the pinned code, which decides what to do with it.
//
// A client of an event loop that sends a pinned command leaves its loop
// before the command is dispatched (evClient.leave): its socket becomes an
// ordinary connection served by a goroutine of its own, exactly as the
// goroutine engine serves its clients, for the rest of the connection's
// life. Pinned commands are rare in a sharded deployment, and a client that
// uses them usually keeps doing so; a goroutine is what blocking on a
// server connection needs.
//
// Each pool has a limit on its pinned server connections (Config.MaxPinned,
// the nutcracker.yml key max_pinned_connections); a command that would
// pass it is answered with an error, never made to wait. A transaction
// holds its place from MULTI or WATCH to its end, even before its first
// key has chosen the server. The in-process Client has no connection of
// its own to pin, and answers these commands with an error.

// A pinKind says what a classPinned command is.
type pinKind uint8

const (
	pinNone        pinKind = iota
	pinTransaction         // MULTI, EXEC, DISCARD, WATCH, UNWATCH (transaction.go)
	pinBlocking            // BLPOP, …, XREAD BLOCK (blocking.go)
	pinPubsub              // SUBSCRIBE and the like (pubsub.go)
)

// DefaultMaxPinned is the limit on the pinned server connections of a
// pool when Config.MaxPinned is 0.
const DefaultMaxPinned = 1024

// pinState is a client's pinned conversation in progress.
type pinState struct {
	kind pinKind
	tx   txState     // a transaction's (transaction.go)
	ps   pubsubState // a subscription's (pubsub.go)
}

// pinFirst holds, by name length, a bit mask of the first letters (lower
// case, 'a' = bit 0) of the pinned commands' names, which spares nearly
// every other command a lookup in pinKindOf.
var pinFirst = func() (m [len("punsubscribe") + 1]uint32) {
	for name, rt := range redisDecisions {
		if rt.class == classPinned {
			m[len(name)] |= 1 << (name[0] - 'a')
		}
	}
	return m
}()

// pinKindOf returns the kind of a pinned command, or pinNone for any
// other command (and for XREAD or XREADGROUP without BLOCK, which are
// routed by their keys on the shared connections).
func pinKindOf(args [][]byte) pinKind {
	if len(args) == 0 || len(args[0]) == 0 || len(args[0]) >= len(pinFirst) {
		return pinNone
	}
	if b := args[0][0] | 0x20; b < 'a' || b > 'z' || pinFirst[len(args[0])]&(1<<(b-'a')) == 0 {
		return pinNone
	}
	ci, ok := resp.LookupCommand(args[0])
	if !ok {
		return pinNone
	}
	rt := redisRouteOf(ci)
	if rt.class != classPinned {
		return pinNone
	}
	if rt.pin == pinBlocking && (ci.Name == "xread" || ci.Name == "xreadgroup") && !streamBlocks(args) {
		return pinNone
	}
	return rt.pin
}

// pinCut returns where a window of requests lo to hi must end so that a
// pinned command comes first in its own window (see session.pinned).
func (h *redisHandler) pinCut(lo, hi int) int {
	for i := lo + 1; i < hi; i++ {
		if pinKindOf(h.cmds[i].Args) != pinNone {
			return i
		}
	}
	return hi
}

// pinNext reports whether request i goes to the pinned code: the client
// is pinned, or the request is a pinned command. Only a Redis client
// connection pins; the in-process Client answers pinned commands with an
// error (redisDispatch).
func (c *session) pinNext(i int) bool {
	rh, ok := c.h.(*redisHandler)
	if !ok || c.nc == nil {
		return false
	}
	return c.pin != nil || pinKindOf(rh.cmds[i].Args) != pinNone
}

// windowCut returns where a window of requests lo to hi must end for the
// pinned code (see pinCut).
func (c *session) windowCut(lo, hi int) int {
	if rh, ok := c.h.(*redisHandler); ok && c.nc != nil {
		return rh.pinCut(lo, hi)
	}
	return hi
}

// pinned serves request i of the batch, which pinNext sent here, alone:
// the replies to the requests before it have been written. It reports a
// QUIT, and an error that ends the session.
func (c *session) pinned(i int) (quit bool, err error) {
	if err := c.awaitAsync(); err != nil {
		return false, err
	}
	c.g = c.s.acquire()
	c.pinGen = c.g
	defer c.pinUnhold()
	cmd := &c.h.(*redisHandler).cmds[i]
	ci, msg := c.redisCheck(cmd)
	kind := pinNone
	if c.pin != nil {
		kind = c.pin.kind
	} else if msg == "" {
		kind = redisRouteOf(ci).pin
	}
	switch kind {
	case pinTransaction:
		return c.transaction(i, ci, msg)
	case pinBlocking:
		return c.blocking(i, ci)
	case pinPubsub:
		return c.pubsub(i, ci, msg)
	}
	if msg != "" {
		return false, c.pinReply(resp.AppendError(c.out[:0], msg))
	}
	return c.runOne(i)
}

// pinUnhold releases the configuration pinned took for its request,
// if it still holds it. A blocking command releases it before it waits,
// so that a Reload that removes its server can close that server's
// connections, its own included, without waiting for it; c.g is still
// read for its immutable fields.
func (c *session) pinUnhold() {
	if g := c.pinGen; g != nil {
		c.pinGen = nil
		c.s.release(g)
	}
}

// runOne serves request i of the batch the ordinary way, as a window of
// its own, and writes its reply.
func (c *session) runOne(i int) (quit bool, err error) {
	quit, _ = c.run(i, i+1, nil)
	if c.overflow.Load() {
		return false, c.cutOff()
	}
	return quit, c.write(c.appendReplies(c.out[:0], false))
}

// pinReply writes b, the reply of a pinned request, to the client.
func (c *session) pinReply(b []byte) error {
	err := c.pinWrite(b)
	if cap(b) > maxKeptBuffer {
		b = nil
	}
	c.out = b[:0]
	return err
}

// pinWrite writes b to the client. It may be called from any goroutine
// of the pinned code (subscriptions write messages as they arrive):
// writes are serialised.
func (c *session) pinWrite(b []byte) error {
	c.pinMu.Lock()
	defer c.pinMu.Unlock()
	c.armWrite(c.s.gen.Load())
	_, err := c.nc.Write(b)
	return err
}

// unpin ends whatever pinned conversation the client has, closing its
// server connections: the session is ending.
func (c *session) unpin() {
	if c.pin == nil {
		return
	}
	switch c.pin.kind {
	case pinTransaction:
		c.txEnd()
	case pinPubsub:
		c.pubsubEnd()
	}
	c.pin = nil
}

// errPinLimit is the error of a pinned connection over the pool's limit.
var errPinLimit = errors.New("max pinned connections reached")

// pinAcquire takes one of the pool's pinned connections, or reports
// errPinLimit if all are taken. pinRelease gives it back.
func (s *Server) pinAcquire() error {
	limit := int64(s.gen.Load().cfg.MaxPinned)
	if limit == 0 {
		limit = DefaultMaxPinned
	}
	if s.stats.pinned.Add(1) > limit {
		s.stats.pinned.Add(-1)
		s.stats.pinRefused.Add(1)
		return errPinLimit
	}
	return nil
}

func (s *Server) pinRelease() { s.stats.pinned.Add(-1) }

// pinLimitReply is the error reply to a command refused by the pool's
// limit on pinned connections.
func (c *session) pinLimitReply() string {
	limit := c.g.cfg.MaxPinned
	if limit == 0 {
		limit = DefaultMaxPinned
	}
	return "ERR max pinned connections reached (" + strconv.Itoa(limit) +
		", max_pinned_connections): transactions, blocking commands and subscriptions each hold a server connection of their own; retry later"
}

// dedicated dials a server connection of the client's own to server srv
// (ring order) of the batch's configuration, in the client's protocol. The
// caller holds a place of the pool's limit (pinAcquire).
func (c *session) dedicated(srv int) (*pool.Dedicated, error) {
	b := c.g.backends[srv]
	p := b.pool
	if c.resp3 {
		var err error
		if p, err = c.s.resp3Pool(b); err != nil {
			return nil, err
		}
	}
	return p.Dedicated(context.Background())
}

// pinError returns the error reply for a failure of a pinned server
// connection to server srv.
func (c *session) pinError(srv int, err error) string {
	c.s.stats.forwardError.Add(1)
	if errors.Is(err, pool.ErrClosed) {
		return "ERR " + pinErrText(err)
	}
	return "ERR " + pinErrText(err) + " (server " + c.g.backends[srv].name + ")"
}

// pinErrText returns the words for a failure of a pinned server
// connection.
func pinErrText(err error) string {
	switch {
	case errors.Is(err, pool.ErrEOF):
		return "Connection closed by server"
	case errors.Is(err, pool.ErrClosed):
		return "Connection closed by the proxy (server removed, or the proxy is closing)"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) || isPoolError(err) {
		return wireText(err)
	}
	return err.Error() // a server's error reply
}

// isPoolError reports whether err is one of package pool's errors.
func isPoolError(err error) bool {
	for _, w := range wireTexts {
		if errors.Is(err, w.err) {
			return true
		}
	}
	return false
}

// clientSource is what a Redis session's reader reads from: the bytes a
// pinned wait took from the client while watching it (see blocking.go),
// then the connection.
type clientSource struct{ c *session }

func (s clientSource) Read(p []byte) (int, error) {
	c := s.c
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		if len(c.early) == 0 {
			c.early = nil
		}
		return n, nil
	}
	return c.nc.Read(p)
}

var _ io.Reader = clientSource{}

// pinFields are the session's fields for pinned conversations.
type pinFields struct {
	pin   *pinState
	pinMu sync.Mutex // serialises writes to the client while pinned (pinWrite)
	early []byte     // client bytes read while watching it (clientSource)
	// pinGen is the configuration pinned holds for its request, until
	// pinUnhold.
	pinGen *generation

	// A session that left an event loop resumes its batch at request
	// resumeI of resumeN (evClient.leave).
	resumeI, resumeN int
}
