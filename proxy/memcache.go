package proxy

import (
	"bytes"
	"errors"
	"slices"
	"syscall"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// memcacheHandler is the memcached protocol's part of a session.
type memcacheHandler struct {
	rd   *memcache.Reader   // a connection's reader, made by the first read
	reqs []memcache.Request // the batch's requests
	// errs holds, for an in-process batch, the reply to each request
	// memcached rejects in step (an unknown command, a bad number), or "".
	errs []string
}

func (h *memcacheHandler) read(c *session) (int, error) {
	if h.rd == nil {
		h.rd = memcache.NewReader(c.nc, c.g.lim)
	}
	h.errs = h.errs[:0]
	for {
		if cap(h.reqs) > maxKeptCalls {
			h.reqs = nil // a large batch's requests are not kept
		}
		var err error
		h.reqs, err = h.rd.ReadRequests(h.reqs)
		if err == nil {
			return len(h.reqs), nil
		}
		if errors.Is(err, syscall.EAGAIN) {
			return 0, err // an event loop's client has sent nothing more yet
		}
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			return 0, err
		}
		// A request memcached rejects in step is answered (unless it is
		// noreply) and the session reads on; anything else that cannot
		// be parsed is answered and ends it.
		inSync := len(h.reqs) == 1 && len(h.reqs[0].Raw) > 0
		if !inSync || !h.reqs[0].Noreply {
			out := append(c.out[:0], pe.Reply...)
			out = append(out, '\r', '\n')
			if werr := c.write(out); werr != nil {
				return 0, werr
			}
		}
		if !inSync {
			return 0, err
		}
		c.beforeRead()
	}
}

// parse parses the requests of in, which end at ends. A request memcached
// would reject in step is kept, with its reply, for dispatch to answer.
func (h *memcacheHandler) parse(c *session, in []byte, ends []int) error {
	h.reqs = h.reqs[:0]
	h.errs = h.errs[:0]
	lim := c.s.gen.Load().lim
	start := 0
	for i, end := range ends {
		b := in[start:end]
		if len(h.reqs) < cap(h.reqs) {
			h.reqs = h.reqs[:len(h.reqs)+1]
		} else {
			h.reqs = append(h.reqs, memcache.Request{})
		}
		req := &h.reqs[len(h.reqs)-1]
		m, err := memcache.ParseRequest(b, lim, req)
		var reply string
		switch {
		case m == 0 && err != nil:
			return err
		case m == 0:
			return ErrIncomplete
		case err != nil && req.Discard > 0:
			return err // too large: its data block follows
		case m != len(b):
			return errTrailing(i)
		case err != nil:
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				return err
			}
			reply = pe.Reply
		}
		h.errs = append(h.errs, reply)
		start = end
	}
	return nil
}

func (h *memcacheHandler) dispatch(c *session, i int) bool {
	req := &h.reqs[i]
	if i < len(h.errs) && h.errs[i] != "" {
		if req.Noreply {
			c.slots = append(c.slots, slot{kind: slotNone})
		} else {
			c.addLocal(append([]byte(h.errs[i]), '\r', '\n'))
		}
		return false
	}
	return c.memcacheDispatch(req)
}

func (h *memcacheHandler) appendReply(c *session, out []byte, i int) []byte {
	return c.appendMemcacheReply(out, &c.slots[i], &h.reqs[c.first+i])
}

func (h *memcacheHandler) appendError(out []byte, msg string) []byte {
	return memcache.AppendServerError(out, msg)
}

func (h *memcacheHandler) size(lo, hi int) int {
	n := 0
	for i := lo; i < hi; i++ {
		n += len(h.reqs[i].Raw) + len(h.reqs[i].Data)
	}
	return n
}

func (h *memcacheHandler) reset() {
	for i := range h.reqs {
		clear(h.reqs[i].Keys)
		h.reqs[i].Raw, h.reqs[i].Data = nil, nil
	}
	h.reqs = h.reqs[:0]
	if cap(h.reqs) > maxKeptCalls {
		h.reqs = nil
	}
}

// memcacheDispatch routes one request. It reports whether it was quit.
func (c *session) memcacheDispatch(req *memcache.Request) (quit bool) {
	c.cmdIDs = append(c.cmdIDs, int16(req.Command))
	switch cmd := req.Command; {
	case cmd == memcache.Quit:
		c.slots = append(c.slots, slot{kind: slotNone})
		return true
	case cmd.IsRetrieval():
		if len(req.Keys) == 0 {
			// gat/gats without keys: memcached answers END.
			c.addLocal([]byte("END\r\n"))
			return false
		}
		c.memcacheFragment(req)
	case cmd.IsStorage(), cmd == memcache.Cas, cmd == memcache.Incr, cmd == memcache.Decr,
		cmd == memcache.Touch, cmd == memcache.Delete:
		c.memcacheForward(req, c.ring().Pick(req.Keys[0]))
	case cmd == memcache.Version:
		c.addLocal([]byte("VERSION " + memcacheVersion + "\r\n"))
	case cmd == memcache.FlushAll, cmd == memcache.Verbosity, cmd == memcache.Stats:
		c.memcacheFanOut(req)
	case cmd == memcache.MetaNoop:
		c.addLocal([]byte("MN\r\n"))
	case cmd.IsMeta():
		c.addLocal(memcache.AppendClientError(nil, "meta commands are not supported by walnut; use the text commands"))
	}
	return false
}

// memcacheForward sends the request whole to server srv.
func (c *session) memcacheForward(req *memcache.Request, srv int) {
	if req.Noreply {
		if cl := c.detachedCall(srv); cl != nil {
			cl.buf = append(cl.buf, req.Raw...)
			cl.req.Data = cl.buf
			cl.req.Tag = uint8(req.Command)
			cl.req.NoReply = true
			c.slots = append(c.slots, slot{kind: slotNone})
			c.do(cl)
			return
		}
	}
	if !req.Noreply && c.asyncFor(req.Raw) {
		cl := c.asyncCall(srv)
		cl.buf = append(cl.buf, req.Raw...) // the read buffer moves on
		cl.req.Tag = uint8(req.Command)
		c.sendAsync(cl)
		return
	}
	cl, idx := c.newCall(srv)
	cl.req.Data = req.Raw
	cl.req.Tag = uint8(req.Command)
	cl.req.NoReply = req.Noreply
	kind := slotSingle
	if req.Noreply {
		kind = slotNone
	}
	c.slots = append(c.slots, slot{kind: kind, call: idx, ncall: 1})
	c.send(cl)
}

// presizeFragments is the length of a retrieval request from which
// memcacheFragment sizes the fragments' buffers before filling them:
// appending a long line's keys one at a time would leave about twice the
// line in discarded buffers.
const presizeFragments = 4 << 10

// memcacheFragment splits a multi-key retrieval into one request per
// server; a request whose keys all live on one server is forwarded whole.
func (c *session) memcacheFragment(req *memcache.Request) {
	r := c.ring()
	if len(req.Keys) == 1 {
		c.memcacheForward(req, r.Pick(req.Keys[0]))
		return
	}
	first, ncall, key0, one := c.group(req.Keys)
	if one >= 0 {
		c.memcacheForward(req, one)
		return
	}
	gat := req.Command == memcache.Gat || req.Command == memcache.Gats
	if len(req.Raw) >= presizeFragments {
		// Size each fragment first: cur, the merge's cursor, counts its
		// bytes until the merge sets it.
		for i, k := range req.Keys {
			c.calls[c.keyCall[int(key0)+i]].cur += 1 + len(k)
		}
		for _, cl := range c.calls[first:c.ncalls] {
			cl.buf = slices.Grow(cl.buf[:0], len("gats -9223372036854775808  \r\n")+cl.cur)
			cl.cur = 0
		}
	}
	for _, cl := range c.calls[first:c.ncalls] {
		if gat {
			cl.buf = memcache.AppendGat(cl.buf[:0], req.Command, req.Exptime)
			cl.buf = cl.buf[:len(cl.buf)-2] // drop CRLF; keys follow
		} else {
			cl.buf = append(cl.buf[:0], req.Command.String()...)
		}
	}
	for i, k := range req.Keys {
		cl := c.calls[c.keyCall[int(key0)+i]]
		cl.buf = append(cl.buf, ' ')
		cl.buf = append(cl.buf, k...)
	}
	c.slots = append(c.slots, slot{kind: slotMcGet, call: first, ncall: ncall, key0: key0, nkeys: int32(len(req.Keys))})
	c.s.stats.fragments.Add(int64(ncall))
	for _, cl := range c.calls[first:c.ncalls] {
		// "get k1 k2 \r\n", with nutcracker's space before the CRLF, so
		// request_bytes counts as nutcracker's does.
		cl.buf = append(cl.buf, ' ', '\r', '\n')
		cl.req.Data = cl.buf
		cl.req.Tag = uint8(req.Command)
		c.send(cl)
	}
}

// appendMemcacheReply appends the reply of slot sl, the slot of req.
func (c *session) appendMemcacheReply(out []byte, sl *slot, req *memcache.Request) []byte {
	keys := req.Keys
	switch sl.kind {
	case slotLocal:
		return append(out, c.local[sl.lo:sl.hi]...)
	case slotNone, slotAsync:
		return out
	case slotSingle:
		cl := c.calls[sl.call]
		if cl.err != nil {
			c.s.stats.forwardError.Add(1)
			return memcache.AppendServerError(out, wireText(cl.err))
		}
		return c.appendPassed(out, cl.reply)
	case slotMcAll:
		return c.appendMemcacheAll(out, sl, req)
	}
	calls := c.calls[sl.call : sl.call+sl.ncall]
	for _, cl := range calls {
		if cl.err != nil {
			c.s.stats.forwardError.Add(1)
			return memcache.AppendServerError(out, wireText(cl.err))
		}
	}
	// Take every fragment apart into its VALUE blocks; it must end with
	// END. An error line (alone or after values) is passed on; anything
	// else is invalid.
	c.blocks = c.blocks[:0]
	for _, cl := range calls {
		cl.blk0 = len(c.blocks)
		b := cl.reply
		for {
			r := memcache.ClassifyResponse(b)
			if r == memcache.RespValue {
				var v memcache.Value
				n, err := memcache.ParseValue(b, c.g.lim, &v)
				if err != nil || n == 0 {
					c.s.stats.forwardError.Add(1)
					return memcache.AppendServerError(out, "Invalid argument")
				}
				c.blocks = append(c.blocks, mcBlock{key: v.Key, raw: v.Raw})
				b = b[n:]
				continue
			}
			if r == memcache.RespEnd && string(b) == "END\r\n" {
				break
			}
			if r.IsError() {
				return append(out, b...)
			}
			c.s.stats.forwardError.Add(1)
			return memcache.AppendServerError(out, "Invalid argument")
		}
		cl.cur = cl.blk0
		cl.nblk = len(c.blocks) - cl.blk0
	}
	// Each requested key takes the first unused block with its key from
	// its server's fragment, so values come out in request order even if
	// a backend (such as another proxy) answered in another order.
	for i, ci := range c.keyCall[sl.key0 : sl.key0+sl.nkeys] {
		cl := c.calls[ci]
		end := cl.blk0 + cl.nblk
		for j := cl.cur; j < end; j++ {
			bk := &c.blocks[j]
			if bk.used || !bytes.Equal(bk.key, keys[i]) {
				continue
			}
			bk.used = true
			out = c.appendPassed(out, bk.raw) // a large value is not copied
			for cl.cur < end && c.blocks[cl.cur].used {
				cl.cur++
			}
			break
		}
	}
	clear(c.blocks) // drop references into the replies
	return memcache.AppendEnd(out)
}

// An mcBlock is one VALUE block of a get fragment's reply.
type mcBlock struct {
	key, raw []byte
	used     bool
}
