package proxy

import (
	"errors"
	"time"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH.
//
// MULTI or WATCH pins the client (and takes a place of the pool's limit on
// pinned connections, held until the transaction ends). The transaction's
// server is that of its first key: WATCH's, or that of the first command
// with keys queued after MULTI; the proxy then dials a server connection
// of the client's own to it and sends MULTI there. Every later key of the
// transaction must live on that server: a command with a key elsewhere is
// answered -CROSSSLOT, and, inside MULTI, EXEC then answers -EXECABORT, as
// redis-server does for a command refused while queuing. So do the
// commands the proxy cannot queue on one server: those it refuses anyway,
// the commands over every server (KEYS, FLUSHALL, SCAN, …), subscriptions,
// and the commands it answers itself except PING and ECHO (AUTH, SELECT,
// HELLO, CLIENT SETNAME, …), whose effect would be the proxy's, not the
// server's.
//
// Commands without keys queued before the first key (PING, TIME, …) are
// answered +QUEUED by the proxy and sent after MULTI once the server is
// known; a transaction without any key runs on the server of
// placeholderKey, as keyless commands do. Between WATCH and MULTI the
// client's commands are served as usual (a read of a key on another
// server is fine outside MULTI); those on the transaction's server go on
// the shared connections, which modify watched keys as redis-server's own
// clients do.
//
// The transaction ends with EXEC, DISCARD, UNWATCH outside MULTI, RESET, or
// the client's going: the server connection is closed (which discards the
// server's MULTI and WATCH state), not reused. MULTI inside MULTI, WATCH
// inside MULTI, and EXEC or DISCARD without MULTI get redis-server's error
// replies. If the server connection fails, the command gets an error
// naming the server, and the transaction is lost: inside MULTI the
// commands that follow get that error and EXEC answers -EXECABORT; a lost
// WATCH makes the next transaction's EXEC answer -EXECABORT, so that a
// watch that can no longer be honoured never lets a transaction run.

// txState is a client's transaction in progress (see pinState).
type txState struct {
	be     *backend        // the transaction's server; nil until a key chooses it
	ded    *pool.Dedicated // its connection, once the server is known
	multi  bool            // inside MULTI
	dirty  bool            // a command was refused inside MULTI: EXEC aborts
	lost   error           // the server connection failed
	queued []byte          // keyless commands queued before the server was known
	nq     int             // how many
}

// Replies of redis-server's transactions.
const (
	replyNestedMulti = "ERR MULTI calls can not be nested"
	replyWatchInMult = "ERR WATCH inside MULTI is not allowed"
	replyExecNoMulti = "ERR EXEC without MULTI"
	replyDiscNoMulti = "ERR DISCARD without MULTI"
	replyExecAbort   = "EXECABORT Transaction discarded because of previous errors."
)

var (
	multiCmd = resp.AppendCommandString(nil, "MULTI")
	execCmd  = resp.AppendCommandString(nil, "EXEC")
)

// transaction serves request i of the batch: a transaction command, or
// any request of a client in a transaction. msg, if not empty, is the
// error reply redisCheck gave it.
func (c *session) transaction(i int, ci *resp.CommandInfo, msg string) (quit bool, err error) {
	cmd := &c.h.(*redisHandler).cmds[i]
	if c.pin == nil {
		// The first: MULTI, WATCH, EXEC, DISCARD or UNWATCH.
		switch ci.Name {
		case "exec":
			return false, c.txError(replyExecNoMulti)
		case "discard":
			return false, c.txError(replyDiscNoMulti)
		case "unwatch":
			return false, c.pinReply(append(c.out[:0], "+OK\r\n"...))
		}
		if err := c.s.pinAcquire(); err != nil {
			return false, c.txError(c.pinLimitReply())
		}
		c.pin = &pinState{kind: pinTransaction}
	}
	tx := &c.pin.tx
	if msg != "" {
		// Unknown, malformed, or refused by the pool: inside MULTI,
		// redis-server aborts the transaction at EXEC.
		tx.dirty = tx.dirty || tx.multi
		return false, c.txError(msg)
	}
	switch ci.Name {
	case "multi":
		if tx.multi {
			return false, c.txError(replyNestedMulti)
		}
		tx.multi = true
		if tx.ded == nil {
			tx.dirty = tx.lost != nil
			return false, c.pinReply(append(c.out[:0], "+OK\r\n"...))
		}
		return false, c.txForward(cmd)
	case "watch":
		if tx.multi {
			return false, c.txError(replyWatchInMult)
		}
		return false, c.txKeyed(cmd, ci)
	case "unwatch":
		if tx.multi {
			break // queued, as redis-server does
		}
		if tx.ded == nil {
			c.txEnd()
			return false, c.pinReply(append(c.out[:0], "+OK\r\n"...))
		}
		return false, c.txForwardEnd(cmd)
	case "exec":
		return false, c.txExec()
	case "discard":
		if !tx.multi {
			return false, c.txError(replyDiscNoMulti)
		}
		c.txEnd() // closing the connection discards the server's MULTI
		return false, c.pinReply(append(c.out[:0], "+OK\r\n"...))
	case "quit":
		c.txEnd()
		return c.runOne(i)
	case "reset":
		c.txEnd()
		return c.runOne(i)
	}
	if !tx.multi {
		// Between WATCH and MULTI: served as usual.
		switch rt := redisRouteOf(ci); {
		case rt.class != classPinned:
			was := c.resp3
			quit, err := c.runOne(i)
			if c.resp3 != was && tx.ded != nil {
				// HELLO switched the client's protocol: the watching
				// connection follows, so that EXEC answers in it.
				c.txHello()
			}
			return quit, err
		case rt.pin == pinBlocking:
			return c.blocking(i, ci)
		}
		return false, c.txError("ERR " + upperName(ci) + " is not supported through the proxy while the client has WATCHed keys; UNWATCH first")
	}
	rt := redisRouteOf(ci)
	switch rt.class {
	case classUnsupported:
		return false, c.txRefuse(rt.refusal)
	case classFanout:
		return false, c.txRefuse("ERR " + upperName(ci) + " is not supported inside MULTI through a sharding proxy: it runs on every server, and a transaction on one")
	case classLocal:
		if ci.Name != "ping" && ci.Name != "echo" {
			return false, c.txRefuse("ERR " + upperName(ci) + " is not supported inside MULTI through the proxy: the proxy answers it, not the transaction's server")
		}
		return false, c.txKeyless(cmd)
	case classKeyless:
		return false, c.txKeyless(cmd)
	case classPinned:
		if rt.pin == pinPubsub {
			return false, c.txRefuse("ERR " + upperName(ci) + " is not supported inside MULTI through the proxy")
		}
	}
	return false, c.txKeyed(cmd, ci)
}

// txHello switches the transaction's connection to the client's protocol;
// a failure loses the transaction.
func (c *session) txHello() {
	tx := &c.pin.tx
	proto := "2"
	if c.resp3 {
		proto = "3"
	}
	err := c.txSend(resp.AppendCommandString(nil, "HELLO", proto))
	if err == nil {
		var reply []byte
		if reply, err = tx.ded.ReadReply(c.txDeadline()); err == nil && isErrorReply(reply) {
			err = errors.New(string(trimCRLF(reply[1:])))
		}
	}
	if err != nil {
		_ = c.txLose(err)
	}
}

// txError writes the error reply msg.
func (c *session) txError(msg string) error {
	return c.pinReply(resp.AppendError(c.out[:0], msg))
}

// txRefuse answers a command the transaction cannot take with msg:
// inside MULTI, EXEC will abort. A client whose WATCH is refused before
// anything was watched is no longer in a transaction.
func (c *session) txRefuse(msg string) error {
	tx := &c.pin.tx
	if tx.multi {
		tx.dirty = true
	} else if tx.ded == nil && tx.lost == nil {
		c.txEnd()
	}
	return c.txError(msg)
}

// txKeyless queues a command without keys: on the server if it is known,
// else with the proxy until it is.
func (c *session) txKeyless(cmd *resp.Command) error {
	tx := &c.pin.tx
	switch {
	case tx.lost != nil:
		return c.txRefuse(c.txLostReply())
	case tx.ded != nil:
		return c.txForward(cmd)
	}
	tx.queued = appendRaw(tx.queued, cmd)
	tx.nq++
	return c.pinReply(append(c.out[:0], "+QUEUED\r\n"...))
}

// txKeyed sends a command with keys (WATCH, or one queued inside MULTI) to
// the transaction's server, choosing it if this is the first key.
func (c *session) txKeyed(cmd *resp.Command, ci *resp.CommandInfo) error {
	tx := &c.pin.tx
	srv, msg := c.commandServer(cmd, ci)
	switch {
	case msg != "":
		return c.txRefuse(msg)
	case srv < 0:
		return c.txKeyless(cmd)
	case tx.lost != nil:
		return c.txRefuse(c.txLostReply())
	case tx.be != nil && c.g.backends[srv] != tx.be:
		return c.txRefuse("CROSSSLOT Keys in request don't hash to the same server: the transaction runs on server " +
			tx.be.name + ", and '" + ci.Name + "' has a key on another (give the transaction's keys a common hash tag)")
	case tx.ded != nil:
		return c.txForward(cmd)
	}
	// The first key: connect, then send what the transaction holds.
	if err := c.txConnect(srv); err != nil {
		return c.txRefuse(c.pinError(srv, err))
	}
	return c.txForward(cmd)
}

// txConnect dials the transaction's server and sends it MULTI (if the
// client is inside MULTI) and the commands queued so far, whose replies
// are read and dropped: the client had +QUEUED for them. A MULTI the
// server refuses fails the transaction.
func (c *session) txConnect(srv int) error {
	tx := &c.pin.tx
	d, err := c.dedicated(srv)
	if err != nil {
		return err
	}
	tx.be, tx.ded = c.g.backends[srv], d
	if !tx.multi {
		return nil
	}
	b := append(multiCmd[:len(multiCmd):len(multiCmd)], tx.queued...)
	tx.queued = nil
	n := tx.nq + 1
	tx.nq = 0
	if err := c.txSend(b); err != nil {
		return c.txLose(err)
	}
	for k := range n {
		reply, err := tx.ded.ReadReply(c.txDeadline())
		if err != nil {
			return c.txLose(err)
		}
		if k == 0 && isErrorReply(reply) {
			return c.txLose(errors.New(string(trimCRLF(reply[1:]))))
		}
	}
	return nil
}

// txForward sends cmd on the transaction's connection and passes its
// reply on.
func (c *session) txForward(cmd *resp.Command) error {
	tx := &c.pin.tx
	if err := c.txSend(appendRaw(c.out[:0], cmd)); err != nil {
		return c.txFail(err)
	}
	reply, err := tx.ded.ReadReply(c.txDeadline())
	if err != nil {
		return c.txFail(err)
	}
	return c.pinWrite(reply)
}

// txForwardEnd sends cmd, the transaction's last, and passes its reply
// on, having ended the transaction first: a client that has the reply
// may begin another at once, within the pool's limit.
func (c *session) txForwardEnd(cmd *resp.Command) error {
	tx := &c.pin.tx
	err := c.txSend(appendRaw(c.out[:0], cmd))
	var reply []byte
	if err == nil {
		reply, err = tx.ded.ReadReply(c.txDeadline())
	}
	if err != nil {
		_ = c.txLose(err)
		msg := c.txLostReply()
		c.txEnd()
		return c.txError(msg)
	}
	c.txEnd() // the reply stays in the closed connection's buffer
	return c.pinWrite(reply)
}

func (c *session) txSend(b []byte) error {
	tx := &c.pin.tx
	if d := c.txDeadline(); !d.IsZero() {
		_ = tx.ded.SetWriteDeadline(d)
	}
	return tx.ded.Write(b)
}

// txDeadline bounds the wait for a transaction's reply as the pool's
// timeout bounds a request's.
func (c *session) txDeadline() time.Time {
	if t := c.g.cfg.Backend.Timeout; t > 0 {
		return time.Now().Add(t)
	}
	return time.Time{}
}

// txFail answers a command whose server connection failed with err.
func (c *session) txFail(err error) error {
	_ = c.txLose(err)
	return c.txRefuse(c.txLostReply())
}

// txLose records that the transaction's connection failed with err, and
// returns err.
func (c *session) txLose(err error) error {
	tx := &c.pin.tx
	if tx.ded != nil {
		tx.ded.Close()
		tx.ded = nil
	}
	tx.lost = err
	tx.dirty = tx.dirty || tx.multi
	return err
}

// txLostReply is the error reply to a command of a transaction whose
// server connection failed.
func (c *session) txLostReply() string {
	tx := &c.pin.tx
	if tx.be == nil {
		return "ERR " + pinErrText(tx.lost) + "; the transaction is lost"
	}
	return "ERR " + pinErrText(tx.lost) + " (server " + tx.be.name + "); the transaction is lost"
}

// txExec answers EXEC.
func (c *session) txExec() error {
	tx := &c.pin.tx
	if !tx.multi {
		if tx.ded == nil {
			return c.txError(replyExecNoMulti)
		}
		// WATCHed keys stay watched, as redis-server keeps them.
		return c.txForward(&resp.Command{Args: [][]byte{[]byte("EXEC")}, Raw: execCmd})
	}
	if tx.dirty {
		c.txEnd()
		return c.txError(replyExecAbort)
	}
	if tx.ded == nil {
		// No key at all: the server of placeholderKey.
		srv := c.ring().Pick(placeholderKey)
		if err := c.txConnect(srv); err != nil {
			msg := c.pinError(srv, err)
			c.txEnd()
			return c.txError(msg)
		}
	}
	return c.txForwardEnd(&resp.Command{Args: [][]byte{[]byte("EXEC")}, Raw: execCmd})
}

// txEnd ends the client's transaction, closing its server connection, and
// gives its place back.
func (c *session) txEnd() {
	if c.pin == nil || c.pin.kind != pinTransaction {
		return
	}
	if d := c.pin.tx.ded; d != nil {
		d.Close()
	}
	c.pin = nil
	c.s.pinRelease()
}

// commandServer returns the server of cmd's keys (ring order), -1 if it
// has none, or the error reply if they are on different servers or cmd's
// keys cannot be found.
func (c *session) commandServer(cmd *resp.Command, ci *resp.CommandInfo) (int, string) {
	args := cmd.Args
	r := c.ring()
	if ci.Name == "xread" || ci.Name == "xreadgroup" {
		k, _ := streamKeys(args)
		if k[0] == 0 {
			return -1, ""
		}
		srv := r.Pick(args[k[0]])
		for _, key := range args[k[0]+1 : k[1]] {
			if r.Pick(key) != srv {
				return 0, crossSlot(ci)
			}
		}
		return srv, ""
	}
	pos, err := ci.Keys(args, c.pos[:0])
	c.pos = pos
	if err != nil {
		var ce *resp.CommandError
		if errors.As(err, &ce) {
			return 0, ce.Reply
		}
		return 0, "ERR " + err.Error()
	}
	if len(pos) == 0 {
		return -1, ""
	}
	srv := r.Pick(args[pos[0]])
	for _, p := range pos[1:] {
		if r.Pick(args[p]) != srv {
			return 0, crossSlot(ci)
		}
	}
	return srv, ""
}

// appendRaw appends cmd as it is sent to a server.
func appendRaw(b []byte, cmd *resp.Command) []byte {
	if cmd.Inline {
		return resp.AppendCommand(b, cmd.Args...)
	}
	return append(b, cmd.Raw...)
}

// trimCRLF returns b without its final CRLF.
func trimCRLF(b []byte) []byte {
	if n := len(b); n >= 2 && b[n-2] == '\r' && b[n-1] == '\n' {
		return b[:n-2]
	}
	return b
}
