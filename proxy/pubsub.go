package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// Pub/Sub through the proxy.
//
// A channel is routed like a key: by its hash on the pool's ring, with the
// pool's hash tag, so a publisher and a subscriber meet on one server.
// PUBLISH and SPUBLISH are ordinary commands on the shared connections,
// sent to their channel's server, whose reply (the receivers there) counts
// every subscriber of the channel. SUBSCRIBE, UNSUBSCRIBE, SSUBSCRIBE and
// SUNSUBSCRIBE go to the server of each channel; PSUBSCRIBE and
// PUNSUBSCRIBE go to every server, and since a message is published on
// its channel's server only, a pattern subscriber receives it once. A
// channel matched by both a subscription and a pattern gives two frames,
// as on one redis-server. PUBSUB's subcommands ask every server of the
// ring and merge the replies (pubsubIntrospect).
//
// A client's first SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE pins it (pinned.go):
// it is served here, one request at a time, until its last subscription
// ends (or RESET, QUIT, a closed connection), and then the ordinary way
// again. It has a connection of its own to each server it subscribes on
// (pool.Dedicated, in the client's protocol), each counted by the pool's
// limit of pinned connections and closed when the client leaves subscribed
// mode, and a reader goroutine per connection. The client's output is one
// ordered stream: the replies to its commands in the order of the
// commands, and the messages in the order they arrive, each placed before
// the first reply its server still owes. So a message follows the
// confirmation of its subscription, and none follows the confirmation
// that ends it, as on one server.
//
// The confirmations are written by the proxy, with the count of
// subscriptions one redis-server would report for the client at that
// point of its stream (channels and patterns together; shard channels on
// their own), not one server's count. A PSUBSCRIBE or PUNSUBSCRIBE is
// confirmed once, when every server has confirmed it. UNSUBSCRIBE,
// PUNSUBSCRIBE or SUNSUBSCRIBE without arguments confirms each
// subscription of its kind (in an unspecified order, as redis-server's is
// a hash table's), or the nil channel when there is none; an unsubscribe
// outside subscribed mode is answered the same way, by the proxy. A
// server's error reply to a subscription command takes the place of the
// confirmations that server owed for it.
//
// In subscribed mode a RESP2 client may send what redis-server 7 allows
// there: the subscribe and unsubscribe commands, PING (answered
// "*2 pong <msg>"), QUIT, and RESET (which ends the subscriptions on the
// servers without confirmations, answers +RESET and closes the
// connections); any other command gets redis-server's error. A RESP3
// client (HELLO 3) gets the confirmations and messages as push frames, as
// redis-server sends them, and may send other commands, which run on the
// shared connections as anyone's, their replies in order with the
// confirmations; messages arriving while such a command runs are written
// after its reply. Messages and replies come from different server
// connections, so a message published by the subscriber itself may come
// after the reply to its PUBLISH (one redis-server sends it first). HELLO
// and the commands that pin (MULTI, BLPOP, …) are refused on a subscribed
// RESP3 connection: HELLO 2 would leave RESP3 connections under the
// subscriptions.
//
// A subscribed client is not closed by client_timeout (redis-server does
// not time out Pub/Sub clients either); writes to it still are. A client
// that does not read its messages is bounded by the servers'
// client-output-buffer-limit for Pub/Sub, which closes the dedicated
// connection. When a dedicated connection fails (its server stopped or
// closed it, or the pool was closed by a Reload that dropped the server),
// the client gets the error reply "-ERR walnut: the connection to server
// <name> that carries this client's subscriptions failed (…)" and its
// connection is closed: it cannot know which subscriptions were lost, so it
// reconnects and subscribes again, as after a redis-server restart. Other
// clients are not affected. A channel stays on the server it was
// subscribed on even if the ring changes (auto_eject_hosts), while
// PUBLISH follows the ring; a pattern is not subscribed on a server that
// is ejected when it is subscribed.

// Subscription families: channels, patterns and shard channels.
const (
	psChannels = iota
	psPatterns
	psShards
)

// A psEntry is one item of the client's ordered output: a reply to one of
// its commands (a local reply, or a confirmation awaited from servers), or
// a message held behind a reply still awaited.
type psEntry struct {
	out  []byte // the bytes to write, if not a confirmation
	verb string // a confirmation: "subscribe", "punsubscribe", …
	name []byte // its channel or pattern; nil: the nil channel
	need int    // confirmations still awaited from servers
	fail []byte // an error reply a server sent instead, written in its place
	skip bool   // answered by another entry's error
}

// A psConn is the dedicated connection to one server.
type psConn struct {
	srv  int
	conn *pool.Dedicated
	// expect are the confirmations the server owes, in order; last marks
	// the last of each command.
	expect []*psEntry
	last   []bool
}

// pubsub is a subscribed client's state.
type pubsub struct {
	c     *session
	g     *generation
	resp3 bool

	mu    sync.Mutex // guards what follows, and writes to the client
	conns []*psConn  // by server index; nil: no connection yet
	queue []*psEntry // the client's output not written yet, in order
	// told holds the subscriptions the client has been confirmed, by
	// family, from which the counts of confirmations are computed.
	told [3]map[string]struct{}
	// asked holds the subscriptions the client has asked for so far (its
	// commands read), by family, with the server of each (-1: every
	// server).
	asked   [3]map[string]int
	failed  error // a dedicated connection failed: the client is closed
	werr    error // a write to the client failed
	closing bool  // leaving: connection errors are expected
	// last is set when the client has asked for its last subscription
	// to end: once its replies are ready, the connections' places under
	// max_pinned_connections are given back (released) before the last
	// reply is written, so that a client that has it can pin again.
	last, released bool
	idle           chan struct{}
	wg             sync.WaitGroup
	buf            []byte
}

// pubsubState is a subscribed client's state (see pinState).
type pubsubState struct{ p *pubsub }

// pubsub serves request i of the batch, a Pub/Sub command (ci), or any
// request of a subscribed client; msg, if not empty, is the error reply
// redisCheck gave it. It writes its replies itself and reports a QUIT, and
// an error that ends the session. The first SUBSCRIBE, PSUBSCRIBE or
// SSUBSCRIBE pins the client; it is unpinned when it leaves subscribed
// mode, once the replies to its commands so far are written.
func (c *session) pubsub(i int, ci *resp.CommandInfo, msg string) (quit bool, err error) {
	if c.pin == nil {
		c.pin = &pinState{kind: pinPubsub, ps: pubsubState{p: newPubsub(c)}}
	}
	ps := c.pin.ps.p
	leave, quit, err := ps.command(i, ci, msg)
	if err != nil {
		return false, err
	}
	if !leave && !quit {
		return false, ps.failure()
	}
	err = ps.drain()
	ps.close()
	c.pin = nil
	if err != nil {
		return false, err
	}
	return quit, nil
}

// pubsubEnd ends a subscribed client's subscriptions: the session ends.
func (c *session) pubsubEnd() {
	if c.pin.ps.p != nil {
		c.pin.ps.p.close()
	}
}

// newPubsub returns the state of a client entering subscribed mode.
func newPubsub(c *session) *pubsub {
	// The configuration in force, for routing and dialling; not held
	// (acquire) for the life of the subscriptions, so that a Reload that
	// drops a server closes its pool, and with it the connections to it.
	ps := &pubsub{c: c, g: c.s.gen.Load(), resp3: c.resp3, idle: make(chan struct{}, 1)}
	for i := range ps.told {
		ps.told[i] = map[string]struct{}{}
		ps.asked[i] = map[string]int{}
	}
	ps.conns = make([]*psConn, len(ps.g.backends))
	return ps
}

// pubsubBeforeRead prepares a subscribed client's next read: no deadline
// (subscribers wait for messages, and redis-server does not time them
// out either), unless a dedicated connection failed meanwhile, which ends
// the session.
func (c *session) pubsubBeforeRead() {
	ps := c.pin.ps.p
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.failed != nil || ps.werr != nil {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		return
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.readTimed = false
	if c.interrupted.Load() {
		// Shutdown's interrupt came meanwhile: keep its deadline.
		_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
	}
}

// pubsubFramingError answers a subscribed client's malformed request with
// reply, after the replies it is owed, in its stream; it reports false if
// the client is not subscribed.
func (c *session) pubsubFramingError(reply string) bool {
	if c.pin == nil || c.pin.kind != pinPubsub {
		return false
	}
	ps := c.pin.ps.p
	ps.enqueueError(reply)
	_ = ps.drain()
	return true
}

// command runs one command of a subscribed client. It reports whether the
// client leaves subscribed mode after it (no subscription left, or RESET),
// and a QUIT.
func (ps *pubsub) command(i int, ci *resp.CommandInfo, msg string) (leave, quit bool, err error) {
	c := ps.c
	args := c.h.(*redisHandler).cmds[i].Args
	if msg != "" {
		ps.enqueueError(msg)
		return ps.subscriptions() == 0, false, nil
	}
	switch ci.Name {
	case "subscribe":
		ps.subscribe(psChannels, "subscribe", args[1:])
	case "ssubscribe":
		ps.subscribe(psShards, "ssubscribe", args[1:])
	case "psubscribe":
		ps.subscribe(psPatterns, "psubscribe", args[1:])
	case "unsubscribe":
		ps.unsubscribe(psChannels, "unsubscribe", args[1:])
	case "sunsubscribe":
		ps.unsubscribe(psShards, "sunsubscribe", args[1:])
	case "punsubscribe":
		ps.unsubscribe(psPatterns, "punsubscribe", args[1:])
	case "ping":
		switch {
		case len(args) > 2:
			ps.enqueueError(ci.ArityError().Reply)
		case ps.resp3 && len(args) == 2:
			ps.enqueue(resp.AppendBulk(nil, args[1]))
		case ps.resp3:
			ps.enqueue([]byte("+PONG\r\n"))
		default:
			b := resp.AppendArrayHeader(nil, 2)
			b = resp.AppendBulkString(b, "pong")
			if len(args) == 2 {
				b = resp.AppendBulk(b, args[1])
			} else {
				b = resp.AppendBulkString(b, "")
			}
			ps.enqueue(b)
		}
	case "quit":
		ps.enqueue([]byte("+OK\r\n"))
		return false, true, nil
	case "reset":
		// As redis-server: the subscriptions end without confirmations,
		// before +RESET is written (a message published after it does
		// not count the client).
		for fam, verb := range [...]string{"unsubscribe", "punsubscribe", "sunsubscribe"} {
			if len(ps.asked[fam]) > 0 {
				ps.unsubscribe(fam, verb, nil)
			}
		}
		c.name = c.name[:0]
		c.resp3 = false // nothing of the client is in flight on shared connections
		if c.g.cfg.Auth != "" && !c.trusted {
			c.authed = false
		}
		ps.enqueue([]byte("+RESET\r\n"))
		return true, false, nil
	default:
		switch {
		case !ps.resp3:
			ps.enqueueError("ERR Can't execute '" + ci.Name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		case ci.Name == "hello" || redisRouteOf(ci).class == classPinned:
			// HELLO could switch the client to RESP2 under its
			// subscriptions, whose connections speak RESP3.
			ps.enqueueError("ERR Can't execute '" + ci.Name + "' on a subscribed connection through walnut: only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET and commands that need no server connection of their own are")
		default:
			return false, false, ps.runShared(i)
		}
		return false, false, nil
	}
	return ps.subscriptions() == 0, false, nil
}

// runShared runs request i of a RESP3 subscribed client, an ordinary
// command, on the shared connections as any client's, and writes its
// reply after the replies before it; messages arriving meanwhile wait
// until it is written.
func (ps *pubsub) runShared(i int) error {
	if err := ps.drain(); err != nil {
		return err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	_, err := ps.c.runOne(i)
	if aerr := ps.c.awaitAsync(); err == nil {
		err = aerr
	}
	if err != nil {
		ps.werr = err
	}
	return err
}

// subscriptions returns how many subscriptions the client has asked for.
func (ps *pubsub) subscriptions() int {
	return len(ps.asked[psChannels]) + len(ps.asked[psPatterns]) + len(ps.asked[psShards])
}

// servers returns the servers a subscription of family fam to name lives
// on: one for a channel, every server for a pattern.
func (ps *pubsub) servers(fam int, name []byte) []int {
	if fam != psPatterns {
		return []int{ps.g.ring.Load().Pick(name)}
	}
	all := make([]int, len(ps.g.backends))
	for i := range all {
		all[i] = i
	}
	return all
}

// A psSend is the command to send to one server.
type psSend struct {
	srv     int
	names   [][]byte
	entries []*psEntry
}

// subscribe runs SUBSCRIBE, SSUBSCRIBE or PSUBSCRIBE: each name is sent to
// its server(s) and confirmed, in order, when they have confirmed it.
func (ps *pubsub) subscribe(fam int, verb string, names [][]byte) {
	var sends []*psSend
	bySrv := map[int]*psSend{}
	entries := make([]*psEntry, len(names))
	for i, name := range names {
		srvs := ps.servers(fam, name)
		e := &psEntry{verb: verb, name: name}
		entries[i] = e
		for _, srv := range srvs {
			sends = addSend(bySrv, sends, srv, name, e)
		}
	}
	sends, err := ps.dial(sends)
	if err != nil {
		ps.enqueueError(err.Error())
		return
	}
	for i, name := range names {
		srv := -1
		if fam != psPatterns {
			srv = ps.g.ring.Load().Pick(name)
		}
		ps.asked[fam][string(name)] = srv
		entries[i].name = append([]byte(nil), name...) // names alias the read buffer
	}
	ps.send(verb, sends, entries)
}

// unsubscribe runs UNSUBSCRIBE, SUNSUBSCRIBE or PUNSUBSCRIBE. A name not
// subscribed to is confirmed by the proxy, the others by their servers;
// without names every subscription of the family ends, or the nil channel
// is confirmed if there is none.
func (ps *pubsub) unsubscribe(fam int, verb string, names [][]byte) {
	silent := names == nil
	if len(names) == 0 {
		if len(ps.asked[fam]) == 0 {
			ps.enqueueEntry(&psEntry{verb: verb})
			return
		}
		for name := range ps.asked[fam] {
			names = append(names, []byte(name))
		}
	}
	var sends []*psSend
	bySrv := map[int]*psSend{}
	entries := make([]*psEntry, len(names))
	for i, name := range names {
		e := &psEntry{verb: verb, name: append([]byte(nil), name...)}
		entries[i] = e
		at, ok := ps.asked[fam][string(name)]
		if !ok {
			continue // confirmed by the proxy
		}
		delete(ps.asked[fam], string(name))
		srvs := []int{at} // where it was sent, even if the ring has changed since
		if at < 0 {
			srvs = ps.servers(fam, name)
		}
		for _, srv := range srvs {
			if ps.conns[srv] == nil {
				continue // an ejected server the pattern was not sent to
			}
			sends = addSend(bySrv, sends, srv, name, e)
		}
	}
	if silent { // RESET: ends them all without confirmations
		for _, e := range entries {
			e.skip = true
		}
	}
	ps.send(verb, sends, entries)
}

// send queues entries, the client's confirmations in order, and sends each
// server its command, recording the confirmations it owes.
func (ps *pubsub) send(verb string, sends []*psSend, entries []*psEntry) {
	ps.mu.Lock()
	for _, s := range sends {
		pc := ps.conns[s.srv]
		for i, e := range s.entries {
			e.need++
			pc.expect = append(pc.expect, e)
			pc.last = append(pc.last, i == len(s.entries)-1)
		}
	}
	ps.queue = append(ps.queue, entries...)
	ps.last = ps.subscriptions() == 0
	ps.flushLocked()
	ps.mu.Unlock()
	for _, s := range sends {
		b := resp.AppendArrayHeader(nil, 1+len(s.names))
		b = resp.AppendBulkString(b, verb)
		for _, n := range s.names {
			b = resp.AppendBulk(b, n)
		}
		if err := ps.conns[s.srv].conn.Write(b); err != nil {
			ps.lost(ps.conns[s.srv], err)
		}
	}
}

// dial makes the dedicated connections sends need. A pattern is not sent
// to an ejected server (no channel is published there); any other failure
// fails the command, which is then sent nowhere.
func (ps *pubsub) dial(sends []*psSend) ([]*psSend, error) {
	var kept []*psSend
	for _, s := range sends {
		if ps.conns[s.srv] != nil {
			kept = append(kept, s)
			continue
		}
		conn, err := ps.dialServer(s.srv)
		if err != nil {
			if errors.Is(err, pool.ErrEjected) && len(sends) > 1 && ps.patternsOnly(s) {
				continue
			}
			if errors.Is(err, errPinLimit) {
				return nil, errors.New(ps.c.pinLimitReply())
			}
			return nil, errors.New("ERR " + wireText(err) + " (server " + ps.g.backends[s.srv].name + ")")
		}
		pc := &psConn{srv: s.srv, conn: conn}
		ps.mu.Lock()
		ps.conns[s.srv] = pc
		ps.mu.Unlock()
		ps.wg.Add(1)
		go ps.read(pc)
		kept = append(kept, s)
	}
	return kept, nil
}

// patternsOnly reports whether every confirmation of s is a pattern's.
func (ps *pubsub) patternsOnly(s *psSend) bool {
	for _, e := range s.entries {
		if e.verb != "psubscribe" {
			return false
		}
	}
	return true
}

// dialServer makes a dedicated connection to server srv, in the client's
// protocol, counted by the pool's limit of pinned connections.
func (ps *pubsub) dialServer(srv int) (*pool.Dedicated, error) {
	s := ps.c.s
	if err := s.pinAcquire(); err != nil {
		return nil, err
	}
	b := ps.g.backends[srv]
	p := b.pool
	if ps.resp3 {
		var err error
		if p, err = s.resp3Pool(b); err != nil {
			s.pinRelease()
			return nil, err
		}
	}
	d, err := p.Dedicated(context.Background())
	if err != nil {
		s.pinRelease()
		return nil, err
	}
	return d, nil
}

// read passes what server connection pc receives to the client until it
// fails or is closed.
func (ps *pubsub) read(pc *psConn) {
	defer ps.wg.Done()
	for {
		f, err := pc.conn.ReadReply(time.Time{})
		if err != nil {
			ps.lost(pc, err)
			return
		}
		if err := ps.frame(pc, f); err != nil {
			ps.lost(pc, err)
			return
		}
	}
}

// frame takes one frame from server connection pc: a message, a
// confirmation or an error reply.
func (ps *pubsub) frame(pc *psConn, f []byte) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closing || ps.failed != nil {
		return nil
	}
	if isErrorReply(f) {
		if len(pc.expect) == 0 {
			return fmt.Errorf("unexpected reply %q", truncateReply(f))
		}
		first := true
		for len(pc.expect) > 0 {
			e, last := pc.expect[0], pc.last[0]
			pc.expect, pc.last = pc.expect[1:], pc.last[1:]
			e.need--
			if first && e.fail == nil {
				e.fail = append([]byte(nil), f...)
			} else if !first {
				e.skip = true
			}
			first = false
			if last {
				break
			}
		}
		ps.flushLocked()
		return nil
	}
	kind, ok := pushKind(f)
	if !ok {
		return fmt.Errorf("unexpected reply %q", truncateReply(f))
	}
	switch kind {
	case "message", "pmessage", "smessage":
		// The server sent it after the confirmations it has sent and
		// before those it still owes: it goes before the first reply
		// this server still owes, after the others queued.
		at := len(ps.queue)
		if len(pc.expect) > 0 {
			at = slices.Index(ps.queue, pc.expect[0])
		}
		if at == 0 {
			ps.writeLocked(f)
			return nil
		}
		ps.queue = slices.Insert(ps.queue, at, &psEntry{out: append([]byte(nil), f...)})
		return nil
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
		if len(pc.expect) == 0 {
			return fmt.Errorf("unexpected %s confirmation", kind)
		}
		e := pc.expect[0]
		pc.expect, pc.last = pc.expect[1:], pc.last[1:]
		e.need--
		ps.flushLocked()
		return nil
	}
	return fmt.Errorf("unexpected push %q", kind)
}

// pushKind returns the first element of a RESP2 array or RESP3 push frame
// of bulk strings, the kind of a Pub/Sub frame.
func pushKind(f []byte) (string, bool) {
	if len(f) == 0 || (f[0] != resp.TypeArray && f[0] != resp.TypePush) {
		return "", false
	}
	n, p := parseHeader(f, f[0])
	if p <= 0 || n < 1 || p >= len(f) || f[p] != resp.TypeBulk {
		return "", false
	}
	m, q := parseHeader(f[p:], resp.TypeBulk)
	if q <= 0 || m < 0 || p+q+int(m) > len(f) {
		return "", false
	}
	return string(f[p+q : p+q+int(m)]), true
}

func truncateReply(f []byte) []byte {
	if len(f) > 64 {
		return f[:64]
	}
	return f
}

// enqueue queues a reply of the proxy's own.
func (ps *pubsub) enqueue(b []byte) { ps.enqueueEntry(&psEntry{out: b}) }

func (ps *pubsub) enqueueError(msg string) { ps.enqueue(resp.AppendError(nil, msg)) }

func (ps *pubsub) enqueueEntry(e *psEntry) {
	ps.mu.Lock()
	ps.queue = append(ps.queue, e)
	ps.last = ps.subscriptions() == 0
	ps.flushLocked()
	ps.mu.Unlock()
}

// flushLocked writes the entries at the head of the queue that are ready.
func (ps *pubsub) flushLocked() {
	b := ps.buf[:0]
	n := 0
	for n < len(ps.queue) && ps.queue[n].need == 0 {
		b = ps.appendEntry(b, ps.queue[n])
		ps.queue[n] = nil
		n++
	}
	ps.queue = ps.queue[n:]
	if len(ps.queue) == 0 {
		ps.queue = nil
		if ps.last {
			ps.releaseLocked()
		}
	}
	if len(b) > 0 {
		ps.writeLocked(b)
	}
	if cap(b) <= maxKeptBuffer {
		ps.buf = b[:0]
	}
	if len(ps.queue) == 0 {
		select {
		case ps.idle <- struct{}{}:
		default:
		}
	}
}

// appendEntry appends e's bytes; a confirmation updates what the client
// has been told and carries the count that follows.
func (ps *pubsub) appendEntry(b []byte, e *psEntry) []byte {
	switch {
	case e.skip:
		return b
	case e.fail != nil:
		return append(b, e.fail...)
	case e.verb == "":
		return append(b, e.out...)
	}
	fam := psChannels
	switch e.verb {
	case "psubscribe", "punsubscribe":
		fam = psPatterns
	case "ssubscribe", "sunsubscribe":
		fam = psShards
	}
	if e.name != nil {
		switch e.verb {
		case "subscribe", "psubscribe", "ssubscribe":
			ps.told[fam][string(e.name)] = struct{}{}
		default:
			delete(ps.told[fam], string(e.name))
		}
	}
	count := len(ps.told[psChannels]) + len(ps.told[psPatterns])
	if fam == psShards {
		count = len(ps.told[psShards])
	}
	if ps.resp3 {
		b = append(b, ">3\r\n"...)
	} else {
		b = append(b, "*3\r\n"...)
	}
	b = resp.AppendBulkString(b, e.verb)
	switch {
	case e.name != nil:
		b = resp.AppendBulk(b, e.name)
	case ps.resp3:
		b = append(b, "_\r\n"...)
	default:
		b = append(b, "$-1\r\n"...)
	}
	return resp.AppendInt(b, int64(count))
}

// writeLocked writes b to the client.
func (ps *pubsub) writeLocked(b []byte) {
	if ps.werr != nil {
		return
	}
	ps.c.armWrite(ps.c.s.gen.Load())
	if _, err := ps.c.nc.Write(b); err != nil {
		ps.werr = err
		ps.wake()
	}
}

// wake makes the client's goroutine return from its read.
func (ps *pubsub) wake() {
	_ = ps.c.nc.SetReadDeadline(time.Unix(1, 0))
	select {
	case ps.idle <- struct{}{}:
	default:
	}
}

// lost handles the failure of server connection pc: unless the client is
// leaving, it gets an error reply and its connection is closed.
func (ps *pubsub) lost(pc *psConn, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closing || ps.failed != nil {
		return
	}
	name := ps.g.backends[pc.srv].name
	ps.failed = fmt.Errorf("pubsub: connection to server %s lost: %w", name, err)
	ps.writeLocked(resp.AppendError(nil, "ERR walnut: the connection to server "+name+
		" that carries this client's subscriptions failed ("+psErrText(err)+"); the client connection is closed, subscribe again"))
	ps.wake()
}

func psErrText(err error) string {
	switch {
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// failure returns why the client must be closed: a failed dedicated
// connection, or a failed write.
func (ps *pubsub) failure() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.failed != nil {
		return ps.failed
	}
	return ps.werr
}

// drain waits until the client's output queue is written.
func (ps *pubsub) drain() error {
	for {
		ps.mu.Lock()
		n := len(ps.queue)
		err := ps.failed
		if err == nil {
			err = ps.werr
		}
		ps.mu.Unlock()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		<-ps.idle
	}
}

// releaseLocked gives back the places of the client's connections under
// the pool's max_pinned_connections, once.
func (ps *pubsub) releaseLocked() {
	if ps.released {
		return
	}
	ps.released = true
	for _, pc := range ps.conns {
		if pc != nil {
			ps.c.s.pinRelease()
		}
	}
}

// close leaves subscribed mode: the dedicated connections are closed and
// their readers waited for.
func (ps *pubsub) close() {
	ps.mu.Lock()
	if ps.closing {
		ps.mu.Unlock()
		return
	}
	ps.closing = true
	conns := ps.conns
	ps.releaseLocked()
	ps.mu.Unlock()
	for _, pc := range conns {
		if pc != nil {
			pc.conn.Close()
		}
	}
	ps.wg.Wait()
}

// pubsubIntrospect dispatches PUBSUB, whose subcommands ask every server
// of the ring and merge their replies:
//   - CHANNELS [pattern] and SHARDCHANNELS [pattern]: the channels
//     united (a channel subscribed through the proxy lives on one server);
//   - NUMSUB and SHARDNUMSUB channel …: each channel's subscribers added
//     over the servers;
//   - NUMPAT: the largest count of any server, as a pattern subscribed
//     through the proxy is subscribed on every server (patterns
//     subscribed on the servers directly may make it differ from the
//     number of distinct patterns).
//
// HELP, other subcommands and wrong arities go to one server, whose reply
// (or error) is redis-server's.
func (c *session) pubsubIntrospect(cmd *resp.Command) {
	args := cmd.Args
	switch sub := args[1]; {
	case (equalFold(sub, "channels") || equalFold(sub, "shardchannels")) && len(args) <= 3:
		c.fanOut(cmd, true, mergeUnion)
	case equalFold(sub, "numsub") || equalFold(sub, "shardnumsub"):
		c.fanOut(cmd, true, mergeNumSub)
	case equalFold(sub, "numpat") && len(args) == 2:
		c.fanOut(cmd, true, mergeMax)
	default:
		c.forward(cmd, c.ring().Pick(placeholderKey))
	}
}

// appendMax appends the largest of the calls' integer replies.
func appendMax(out []byte, calls []*call) ([]byte, bool) {
	var most int64
	for _, cl := range calls {
		n, hdr := parseHeader(cl.reply, resp.TypeInt)
		if hdr != len(cl.reply) {
			return out, false
		}
		most = max(most, n)
	}
	return resp.AppendInt(out, most), true
}

// appendNumSub appends the merge of PUBSUB NUMSUB replies (arrays of
// channel and count, in the order asked, the same for every server): the
// channels with their counts added.
func appendNumSub(out []byte, calls []*call) ([]byte, bool) {
	var names [][]byte
	var counts []int64
	for i, cl := range calls {
		b := cl.reply
		n, hdr := parseHeader(b, resp.TypeArray)
		if hdr <= 0 || n < 0 || n%2 != 0 || (i > 0 && int(n/2) != len(names)) {
			return out, false
		}
		b = b[hdr:]
		for j := range int(n / 2) {
			name, m := parseBulk(b)
			if m == 0 || name == nil {
				return out, false
			}
			b = b[m:]
			k, h := parseHeader(b, resp.TypeInt)
			if h <= 0 {
				return out, false
			}
			b = b[h:]
			if i == 0 {
				names = append(names, name)
				counts = append(counts, k)
			} else {
				counts[j] += k
			}
		}
		if len(b) != 0 {
			return out, false
		}
	}
	out = resp.AppendArrayHeader(out, 2*len(names))
	for j, name := range names {
		out = resp.AppendBulk(out, name)
		out = resp.AppendInt(out, counts[j])
	}
	return out, true
}

// addSend adds name, confirmed by e, to the send of server srv (made and
// appended to sends if it has none yet) and returns sends.
func addSend(bySrv map[int]*psSend, sends []*psSend, srv int, name []byte, e *psEntry) []*psSend {
	s := bySrv[srv]
	if s == nil {
		s = &psSend{srv: srv}
		bySrv[srv] = s
		sends = append(sends, s)
	}
	s.names = append(s.names, name)
	s.entries = append(s.entries, e)
	return sends
}
