package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// Replies the proxy writes itself. twemproxy's wording where it has one.
const (
	replyNoAuth        = "NOAUTH Authentication required"
	replyNoPassword    = "ERR Client sent AUTH, but no password is set"
	replyBadPassword   = "ERR invalid password"
	replyWrongPass     = "WRONGPASS invalid username-password pair or user is disabled."
	replyHelloNoAuth   = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	replyNoProto       = "NOPROTO unsupported protocol version"
	replySyntax        = "ERR syntax error"
	replyInvalidReply  = "ERR Invalid argument"
	replyBadClientName = "ERR Client names cannot contain spaces, newlines or special characters."
)

// readerSize is the initial size of a client's read buffer.
const readerSize = 16 << 10

// redisHandler is the Redis protocol's part of a session.
type redisHandler struct {
	rd   *resp.Reader   // a connection's reader, made by the first read
	cmds []resp.Command // the batch's commands
}

func (h *redisHandler) read(c *session) (int, error) {
	if h.rd == nil {
		h.rd = resp.NewReaderSize(clientSource{c}, c.g.lim, readerSize)
	}
	if cap(h.cmds) > maxKeptCalls {
		h.cmds = nil // a large batch's commands are not kept
	}
	var err error
	h.cmds, err = h.rd.ReadCommands(h.cmds)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) {
			return 0, err // an event loop's client has sent nothing more yet
		}
		return 0, h.readFailed(c, err)
	}
	return len(h.cmds), nil
}

// readFailed ends a session whose read failed with err, answering
// malformed framing first.
func (h *redisHandler) readFailed(c *session, err error) error {
	if aerr := c.awaitAsync(); aerr != nil {
		return aerr
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		// Malformed framing: answer as redis-server does, then close.
		if c.pubsubFramingError(pe.Reply) {
			return err
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.nc.Write(resp.AppendError(c.out[:0], pe.Reply))
	}
	return err
}

// parse parses the commands of in, which end at ends.
func (h *redisHandler) parse(c *session, in []byte, ends []int) error {
	h.cmds = h.cmds[:0]
	lim := c.s.gen.Load().lim
	start := 0
	for i, end := range ends {
		b := in[start:end]
		if len(h.cmds) < cap(h.cmds) {
			h.cmds = h.cmds[:len(h.cmds)+1]
		} else {
			h.cmds = append(h.cmds, resp.Command{})
		}
		cmd := &h.cmds[len(h.cmds)-1]
		m, err := resp.ParseCommand(b, lim, cmd)
		switch {
		case err != nil:
			return err
		case m == 0:
			return ErrIncomplete
		case m != len(b):
			return errTrailing(i)
		case len(cmd.Args) == 0:
			return fmt.Errorf("proxy: request %d is empty", i)
		}
		start = end
	}
	return nil
}

func (h *redisHandler) dispatch(c *session, i int) bool { return c.redisDispatch(&h.cmds[i]) }

func (h *redisHandler) appendReply(c *session, out []byte, i int) []byte {
	return c.appendRedisReply(out, &c.slots[i])
}

func (h *redisHandler) appendError(out []byte, msg string) []byte {
	return resp.AppendError(out, "ERR "+msg)
}

func (h *redisHandler) size(lo, hi int) int {
	n := 0
	for i := lo; i < hi; i++ {
		n += len(h.cmds[i].Raw)
	}
	return n
}

func (h *redisHandler) reset() {
	// Parsed commands point into the request bytes: drop those
	// references but keep the capacity of their argument slices.
	for i := range h.cmds {
		clear(h.cmds[i].Args)
		h.cmds[i].Raw = nil
	}
	h.cmds = h.cmds[:0]
	if cap(h.cmds) > maxKeptCalls {
		h.cmds = nil
	}
}

// redisDispatch routes one command. It reports whether the command was QUIT.
func (c *session) redisDispatch(cmd *resp.Command) (quit bool) {
	args := cmd.Args
	ci, msg := c.redisCheck(cmd)
	if ci != nil {
		c.cmdIDs = append(c.cmdIDs, int16(ci.Index()))
	}
	if msg != "" {
		c.addError(msg)
		return false
	}
	switch rt := redisRouteOf(ci); rt.class {
	case classUnsupported:
		c.addError(rt.refusal)
	case classLocal:
		return c.redisLocal(ci, args)
	case classKeyless:
		c.forward(cmd, c.ring().Pick(placeholderKey))
	case classSingleKey, classFirstKey, classNumKeys:
		pos, err := ci.Keys(args, c.pos[:0])
		c.pos = pos
		if err != nil {
			c.addCommandError(err)
			return false
		}
		r := c.ring()
		if len(pos) == 0 {
			c.forward(cmd, r.Pick(placeholderKey))
			return false
		}
		srv := r.Pick(args[pos[0]])
		for _, p := range pos[1:] {
			if r.Pick(args[p]) != srv {
				c.addError(crossSlot(ci))
				return false
			}
		}
		c.forward(cmd, srv)
	case classFanout:
		c.redisFanout(cmd, ci, rt.fan)
	case classChannel:
		c.forward(cmd, c.ring().Pick(args[1]))
	case classPinned:
		if c.nc == nil && pinKindOf(args) != pinNone {
			c.addError("ERR " + strings.ToUpper(ci.Name) + " is not supported by proxy.Client: it needs a server connection of its own, which the in-process Client does not keep; use a client connection to the proxy")
			return false
		}
		// XREAD or XREADGROUP without BLOCK (pinKindOf): routed by the
		// keys after STREAMS.
		c.routeStreamRead(cmd, ci)
	case classMultiKey, classMultiKeyValue:
		pos, err := ci.Keys(args, c.pos[:0])
		c.pos = pos
		if err != nil {
			c.addCommandError(err)
			return false
		}
		kind := slotSum
		step := 1
		if rt.class == classMultiKeyValue {
			kind, step = slotMSet, 2
		} else if ci.Name == "mget" {
			kind = slotMGet
		}
		c.redisFragment(cmd, ci.Name, pos, step, kind)
	default:
		c.addError("ERR unknown subcommand or wrong number of arguments for '" + ci.Name + "'")
	}
	return false
}

// crossSlot returns the error reply to command ci whose keys do not all
// live on one server.
func crossSlot(ci *resp.CommandInfo) string {
	return "CROSSSLOT Keys in request don't hash to the same server: '" + ci.Name +
		"' needs all its keys on one server (give them a common hash tag)"
}

// upperName returns the name of ci in upper case, "CLIENT KILL" for a
// subcommand.
func upperName(ci *resp.CommandInfo) string {
	return strings.ToUpper(strings.ReplaceAll(ci.Name, "|", " "))
}

// redisCheck resolves cmd and checks that the client may send it: it
// returns the command and "", or the error reply to send instead (ci nil
// if the command is unknown or malformed).
func (c *session) redisCheck(cmd *resp.Command) (ci *resp.CommandInfo, msg string) {
	ci, err := resp.ResolveCommand(cmd.Args)
	if err != nil {
		var ce *resp.CommandError
		if errors.As(err, &ce) {
			return nil, ce.Reply
		}
		return nil, "ERR " + err.Error()
	}
	if c.g.cfg.Auth != "" && !c.authed {
		switch ci.Name {
		case "auth", "hello", "quit":
		default:
			return ci, replyNoAuth
		}
	}
	if c.g.refuse != nil {
		if msg, ok := c.g.refuse[ci.Name]; ok {
			return ci, msg
		}
	}
	return ci, ""
}

// forward sends the command whole to server srv.
func (c *session) forward(cmd *resp.Command, srv int) {
	if c.asyncFor(cmd.Raw) {
		cl := c.asyncCall(srv)
		if cmd.Inline {
			cl.buf = resp.AppendCommand(cl.buf, cmd.Args...)
		} else {
			cl.buf = append(cl.buf, cmd.Raw...) // the read buffer moves on
		}
		c.sendAsync(cl)
		return
	}
	cl, idx := c.newCall(srv)
	if cmd.Inline {
		cl.buf = resp.AppendCommand(cl.buf, cmd.Args...)
		cl.req.Data = cl.buf
	} else {
		cl.req.Data = cmd.Raw
	}
	c.slots = append(c.slots, slot{kind: slotSingle, call: idx, ncall: 1})
	c.send(cl)
}

// redisFragment splits a multi-key command into one command per server, each
// with that server's keys (and values, for step 2) in request order. If all
// keys live on one server the command is forwarded whole.
func (c *session) redisFragment(cmd *resp.Command, name string, pos []int, step int, kind uint8) {
	args := cmd.Args
	c.keys = c.keys[:0]
	for _, p := range pos {
		c.keys = append(c.keys, args[p])
	}
	first, ncall, key0, one := c.group(c.keys)
	if one >= 0 {
		c.forward(cmd, one) // one server: forward as is
		return
	}
	for _, cl := range c.calls[first:c.ncalls] {
		cl.buf = resp.AppendArrayHeader(cl.buf, 1+cl.nkeys*step)
		cl.buf = resp.AppendBulkString(cl.buf, name)
	}
	for i, p := range pos {
		cl := c.calls[c.keyCall[int(key0)+i]]
		cl.buf = resp.AppendBulk(cl.buf, args[p])
		if step == 2 {
			cl.buf = resp.AppendBulk(cl.buf, args[p+1])
		}
	}
	c.slots = append(c.slots, slot{kind: kind, call: first, ncall: ncall, key0: key0, nkeys: int32(len(pos))})
	c.s.stats.fragments.Add(int64(ncall))
	for _, cl := range c.calls[first:c.ncalls] {
		cl.req.Data = cl.buf
		c.send(cl)
	}
}

func (c *session) addError(msg string) {
	lo := len(c.local)
	c.local = resp.AppendError(c.local, msg)
	c.slots = append(c.slots, slot{kind: slotLocal, lo: lo, hi: len(c.local)})
}

func (c *session) addCommandError(err error) {
	var ce *resp.CommandError
	if errors.As(err, &ce) {
		c.addError(ce.Reply)
		return
	}
	c.addError("ERR " + err.Error())
}

// redisLocal answers a command the proxy handles itself.
func (c *session) redisLocal(ci *resp.CommandInfo, args [][]byte) (quit bool) {
	switch ci.Name {
	case "ping":
		switch len(args) {
		case 1:
			c.addLocal([]byte("+PONG\r\n"))
		case 2:
			c.addBulk(args[1])
		default:
			c.addError(ci.ArityError().Reply)
		}
	case "echo":
		c.addBulk(args[1])
	case "quit":
		c.addLocal([]byte("+OK\r\n"))
		return true
	case "auth":
		switch len(args) {
		case 2:
			c.auth(nil, args[1])
		case 3:
			c.auth(args[1], args[2])
		default:
			c.addError(replySyntax)
		}
	case "select":
		if string(args[1]) == "0" {
			c.addLocal([]byte("+OK\r\n"))
		} else {
			c.addError("ERR SELECT " + strconv.Quote(string(args[1])) +
				" is not supported by walnut: clients share backend connections and always use database 0 (a pool's redis_db chooses the backend database)")
		}
	case "hello":
		c.hello(args)
	case "reset":
		c.name = c.name[:0]
		c.setProtocol(false) // as redis-server: back to RESP2
		if c.g.cfg.Auth != "" && !c.trusted {
			c.authed = false
		}
		c.addLocal([]byte("+RESET\r\n"))
	case "client|setname", "client|getname":
		if !c.named {
			c.addError("ERR CLIENT " + strings.ToUpper(ci.Name[len("client|"):]) + " has no meaning for proxy.Client: it has no connection of its own")
			return false
		}
		if ci.Name == "client|getname" {
			if len(c.name) == 0 {
				lo := len(c.local)
				c.local = c.appendNull(c.local)
				c.slots = append(c.slots, slot{kind: slotLocal, lo: lo, hi: len(c.local)})
			} else {
				c.addBulk(c.name)
			}
			return false
		}
		for _, b := range args[2] {
			if b <= ' ' || b > '~' {
				c.addError(replyBadClientName)
				return false
			}
		}
		c.name = append(c.name[:0], args[2]...)
		c.addLocal([]byte("+OK\r\n"))
	case "client|setinfo":
		c.addLocal([]byte("+OK\r\n"))
	default:
		c.addError("ERR '" + ci.Name + "' is not handled by walnut")
	}
	return false
}

func (c *session) addBulk(b []byte) {
	lo := len(c.local)
	c.local = resp.AppendBulk(c.local, b)
	c.slots = append(c.slots, slot{kind: slotLocal, lo: lo, hi: len(c.local)})
}

// checkAuth compares user and password with the pool's, in constant time
// for the password. Only the "default" user exists. It returns the error
// reply, or "" on success.
func (c *session) checkAuth(user, password []byte) string {
	want := c.g.cfg.Auth
	if want == "" {
		return replyNoPassword
	}
	if user != nil && string(user) != "default" {
		c.authed = c.trusted // a trusted session stays authenticated
		return replyWrongPass
	}
	// Digests of equal length, so that the time taken says nothing of
	// the password, not even its length.
	sum := sha256.Sum256(password)
	if subtle.ConstantTimeCompare(sum[:], c.g.authSum[:]) != 1 {
		c.authed = c.trusted
		if user != nil {
			return replyWrongPass
		}
		return replyBadPassword
	}
	c.authed = true
	return ""
}

func (c *session) auth(user, password []byte) {
	if msg := c.checkAuth(user, password); msg != "" {
		c.addError(msg)
		return
	}
	c.addLocal([]byte("+OK\r\n"))
}

// hello answers HELLO [protover [AUTH user pass] [SETNAME name]] as
// redis-server does: protover 3 switches the client to RESP3 (see
// resp3.go) and 2 back to RESP2, and the reply, in the protocol now in
// force, describes the connection. The in-process Client refuses 3, so
// that clients such as go-redis fall back to RESP2.
func (c *session) hello(args [][]byte) {
	proto := 2
	if c.resp3 {
		proto = 3
	}
	if len(args) >= 2 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			c.addError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && (v != 3 || !c.resp3OK) {
			c.addError(replyNoProto)
			return
		}
		proto = v
	}
	var name, user, password []byte
	setName, auth := false, false
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "auth") && i+2 < len(args):
			user, password, auth = args[i+1], args[i+2], true
			i += 2
		case equalFold(args[i], "setname") && i+1 < len(args):
			name, setName = args[i+1], true
			i++
		default:
			c.addError("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	// As redis-server: every option is checked before AUTH takes effect.
	if auth {
		if msg := c.checkAuth(user, password); msg != "" {
			c.addError(msg)
			return
		}
	}
	if c.g.cfg.Auth != "" && !c.authed {
		c.addError(replyHelloNoAuth)
		return
	}
	if setName && c.named {
		c.name = append(c.name[:0], name...)
	}
	c.setProtocol(proto == 3)
	lo := len(c.local)
	c.local = appendHello(c.local, proto)
	c.slots = append(c.slots, slot{kind: slotLocal, lo: lo, hi: len(c.local)})
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != lower[i] {
			return false
		}
	}
	return true
}

// appendRedisReply appends the reply of slot sl.
func (c *session) appendRedisReply(out []byte, sl *slot) []byte {
	switch sl.kind {
	case slotLocal:
		return append(out, c.local[sl.lo:sl.hi]...)
	case slotAsync:
		return out
	case slotFan:
		return c.appendFanReply(out, sl)
	case slotSingle:
		cl := c.calls[sl.call]
		if cl.err != nil {
			c.s.stats.forwardError.Add(1)
			return resp.AppendError(out, "ERR "+wireText(cl.err))
		}
		return c.appendPassed(out, cl.reply)
	}
	calls := c.calls[sl.call : sl.call+sl.ncall]
	// Any failed fragment fails the request with one error reply; an error
	// reply from a server is passed on. A RESP3 attribute before a
	// fragment's reply is skipped (cur): it cannot be merged.
	for _, cl := range calls {
		if cl.err != nil {
			c.s.stats.forwardError.Add(1)
			return resp.AppendError(out, "ERR "+wireText(cl.err))
		}
	}
	for _, cl := range calls {
		cl.cur = attributeLen(cl.reply, c.g.lim)
		if cl.cur < 0 {
			return c.invalidReply(out)
		}
		if isErrorReply(cl.reply[cl.cur:]) {
			return append(out, cl.reply[cl.cur:]...)
		}
	}
	switch sl.kind {
	case slotMGet:
		for _, cl := range calls {
			n, hdr := parseHeader(cl.reply[cl.cur:], resp.TypeArray)
			if hdr <= 0 || n != int64(cl.nkeys) {
				return c.invalidReply(out)
			}
			cl.cur += hdr
		}
		mark, nbig := len(out), len(c.big)
		out = resp.AppendArrayHeader(out, int(sl.nkeys))
		for _, ci := range c.keyCall[sl.key0 : sl.key0+sl.nkeys] {
			cl := c.calls[ci]
			n, err := resp.FrameReply(cl.reply[cl.cur:], c.g.lim)
			if err != nil || n == 0 {
				c.dropBig(nbig)
				return c.invalidReply(out[:mark])
			}
			out = c.appendPassed(out, cl.reply[cl.cur:cl.cur+n]) // a large value is not copied
			cl.cur += n
		}
		return out
	case slotSum:
		var sum int64
		for _, cl := range calls {
			n, hdr := parseHeader(cl.reply[cl.cur:], resp.TypeInt)
			if hdr <= 0 {
				return c.invalidReply(out)
			}
			sum += n
		}
		return resp.AppendInt(out, sum)
	case slotMSet:
		for _, cl := range calls {
			if len(cl.reply) == cl.cur || cl.reply[cl.cur] != resp.TypeSimple {
				return c.invalidReply(out)
			}
		}
		return append(out, "+OK\r\n"...)
	}
	return c.invalidReply(out)
}

func (c *session) invalidReply(out []byte) []byte {
	c.s.stats.forwardError.Add(1)
	return resp.AppendError(out, replyInvalidReply)
}

// parseHeader parses a reply line "<typ><integer>\r\n" at the start of b and
// returns the integer and the line's length, or hdr 0 if b does not start
// with such a line.
func parseHeader(b []byte, typ byte) (n int64, hdr int) {
	if len(b) < 4 || b[0] != typ {
		return 0, 0
	}
	i := 1
	neg := false
	if b[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i-start > 18 {
			return 0, 0
		}
		n = n*10 + int64(b[i]-'0')
		i++
	}
	if i == start || i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return 0, 0
	}
	if neg {
		n = -n
	}
	return n, i + 2
}
