package proxy

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// Blocking commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, and XREAD and XREADGROUP with BLOCK (without BLOCK
// they are ordinary reads, routed by the keys after STREAMS on the shared
// connections).
//
// Each is sent on a server connection of the client's own to the server of
// its keys, which must all live there (else -CROSSSLOT), or, without a key
// the proxy can find, to the server of placeholderKey, which answers the
// error. The pool's timeout does not apply: the command waits as long as
// its own timeout says. The connection is closed once the command is
// answered (it holds a place of the pool's limit on pinned connections
// meanwhile).
//
// While the command waits, the proxy watches the client: a client that
// closes its connection (or whose connection fails) has its server
// connection closed, so that redis-server stops waiting for it and hands
// nothing to a client that is gone. What the client sends meanwhile is
// kept, up to maxEarly bytes, and served after the reply (beyond that
// the proxy stops reading until then; it still sees the client close,
// without reading, on Linux, and Shutdown still ends the wait). client_timeout
// does not apply to a client waiting for a blocking command's reply;
// Shutdown ends the wait after its grace period with an error reply. A
// server connection that fails gets the client an error reply naming the
// server. The command does not hold the configuration while it waits: a
// Reload that removes its server closes that server's connections, its
// own included, and the client gets an error reply.

// maxEarly is the most a client may send while its blocking command
// waits that the proxy reads (and keeps) meanwhile.
const maxEarly = 64 << 10

// blocking serves request i of the batch, a blocking command.
func (c *session) blocking(i int, ci *resp.CommandInfo) (quit bool, err error) {
	cmd := &c.h.(*redisHandler).cmds[i]
	srv, msg := c.commandServer(cmd, ci)
	if msg != "" {
		return false, c.txError(msg)
	}
	if srv < 0 {
		srv = c.ring().Pick(placeholderKey)
	}
	if err := c.s.pinAcquire(); err != nil {
		return false, c.txError(c.pinLimitReply())
	}
	reply, msg, err := c.blockOn(srv, cmd)
	c.s.pinRelease() // before the reply: the client may block again at once
	switch {
	case err != nil:
		return false, err
	case msg != "":
		return false, c.txError(msg)
	}
	return false, c.pinWrite(reply)
}

// blockOn sends cmd on a new connection to server srv and waits for its
// reply, watching the client meanwhile. It returns the reply (kept in the
// closed connection's buffer), or the error reply to send instead, or the
// error of a client that went.
func (c *session) blockOn(srv int, cmd *resp.Command) (reply []byte, msg string, err error) {
	d, err := c.dedicated(srv)
	if err != nil {
		return nil, c.pinError(srv, err), nil
	}
	defer d.Close()
	if err := d.Write(appendRaw(c.out[:0], cmd)); err != nil {
		return nil, c.pinError(srv, err), nil
	}
	w := c.watchClient(d)
	c.pinUnhold() // a Reload may retire the server meanwhile, closing d
	reply, rerr := d.ReadReply(time.Time{})
	gone, interrupted := w.stop(c)
	switch {
	case gone != nil:
		return nil, "", gone // the client left: the session ends
	case rerr != nil && interrupted:
		return nil, "ERR the proxy is shutting down: the blocking command was interrupted", nil
	case rerr != nil:
		return nil, c.pinError(srv, rerr), nil
	}
	return reply, "", nil
}

// A clientWatch reads a client while its blocking command waits (see
// watchClient).
type clientWatch struct {
	done        chan struct{}
	quit        chan struct{} // closed by stop
	stopping    atomic.Bool
	buf         []byte
	err         error // the read error that ended the watch, if not stop's
	interrupted bool  // Shutdown's deadline ended it
}

// watchClient reads the client on a goroutine of its own until stop: the
// bytes it sends are kept for the session, and its going (or Shutdown)
// closes d, which ends the wait for the reply.
func (c *session) watchClient(d *pool.Dedicated) *clientWatch {
	w := &clientWatch{done: make(chan struct{}), quit: make(chan struct{})}
	// client_timeout does not apply while the client waits; Shutdown's
	// deadline does (interrupt sets interrupted before the deadline).
	_ = c.nc.SetReadDeadline(time.Time{})
	if c.interrupted.Load() {
		_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
	}
	nc := c.nc
	go func() {
		defer close(w.done)
		var b [4096]byte
		for len(w.buf) < maxEarly {
			n, err := nc.Read(b[:])
			w.buf = append(w.buf, b[:n]...)
			if err == nil {
				continue
			}
			if w.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && c.interrupted.Load() {
				w.interrupted = true
			} else {
				w.err = err
			}
			d.Close()
			return
		}
		// Full: the client is not read until the reply, but Shutdown
		// still ends the wait once its grace period is over, and so does
		// the client closing its connection (seen without reading, on
		// Linux), so that a client cannot hold a pinned connection, and
		// its place under max_pinned_connections, after it has gone.
		t := time.NewTicker(drainGrace / 4)
		defer t.Stop()
		for {
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
			if c.interrupted.Load() && time.Now().UnixNano() >= c.drainBy.Load() {
				w.interrupted = true
				d.Close()
				return
			}
			if peerGone(nc) {
				w.err = io.EOF
				d.Close()
				return
			}
		}
	}()
	return w
}

// stop ends the watch, once the reply is in: the bytes read go to the
// session's reader. It returns the error of a client that went
// meanwhile, and whether Shutdown ended the wait.
func (w *clientWatch) stop(c *session) (gone error, interrupted bool) {
	w.stopping.Store(true)
	close(w.quit)
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	<-w.done
	if c.interrupted.Load() {
		_ = c.nc.SetReadDeadline(time.Now().Add(drainGrace))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.readTimed = false
	}
	if len(w.buf) > 0 {
		c.early = append(c.early, w.buf...)
	}
	if w.err != nil {
		if errors.Is(w.err, io.EOF) {
			return io.EOF, w.interrupted
		}
		return w.err, w.interrupted
	}
	return nil, w.interrupted
}

// streamBlocks reports whether XREAD or XREADGROUP args has BLOCK.
func streamBlocks(args [][]byte) bool {
	_, block := streamKeys(args)
	return block
}

// streamKeys returns where the keys of XREAD or XREADGROUP args begin
// and end (after STREAMS: the first half of what follows), 0, 0 if the
// command is malformed, and whether it has the BLOCK option.
func streamKeys(args [][]byte) (keys [2]int, block bool) {
	i := 1
	if equalFold(args[0], "xreadgroup") {
		if len(args) < 4 || !equalFold(args[1], "group") {
			return keys, false
		}
		i = 4
	}
	for i < len(args) {
		a := args[i]
		switch {
		case equalFold(a, "streams"):
			rest := len(args) - i - 1
			if rest == 0 || rest%2 != 0 {
				return keys, block
			}
			return [2]int{i + 1, i + 1 + rest/2}, block
		case equalFold(a, "block"):
			block = true
			i += 2
		case equalFold(a, "count"):
			i += 2
		case equalFold(a, "noack"):
			i++
		default:
			return keys, block
		}
	}
	return keys, block
}

// routeStreamRead routes XREAD or XREADGROUP without BLOCK by the keys
// after STREAMS, which must share a server; a malformed one goes to the
// server of placeholderKey, which answers the error.
func (c *session) routeStreamRead(cmd *resp.Command, ci *resp.CommandInfo) {
	args := cmd.Args
	r := c.ring()
	k, _ := streamKeys(args)
	if k[0] == 0 {
		c.forward(cmd, r.Pick(placeholderKey))
		return
	}
	srv := r.Pick(args[k[0]])
	for _, key := range args[k[0]+1 : k[1]] {
		if r.Pick(key) != srv {
			c.addError(crossSlot(ci))
			return
		}
	}
	c.forward(cmd, srv)
}
