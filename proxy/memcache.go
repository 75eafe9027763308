package proxy

import (
	"bytes"
	"errors"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

func (c *clientConn) serveMemcache() error {
	rd := memcache.NewReader(c.nc, c.g.lim)
	var reqs []memcache.Request
	for {
		var err error
		if cap(reqs) > maxKeptCalls {
			reqs = nil // a large batch's requests are not kept
		}
		c.beforeRead()
		reqs, err = rd.ReadRequests(reqs)
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				return err
			}
			inSync := len(reqs) == 1 && len(reqs[0].Raw) > 0
			if !inSync || !reqs[0].Noreply {
				out := append(c.out[:0], pe.Reply...)
				out = append(out, '\r', '\n')
				if werr := c.write(out); werr != nil {
					return werr
				}
			}
			if !inSync {
				return err
			}
			continue
		}
		c.begin(len(reqs))
		quit := false
		for i := range reqs {
			if c.memcacheDispatch(&reqs[i]) {
				quit = true
				break
			}
		}
		c.wait()
		if c.overflow.Load() {
			return c.cutOff()
		}
		out := c.out[:0]
		for i := range c.slots {
			// Each request has exactly one slot, in order.
			out = c.appendMemcacheReply(out, &c.slots[i], reqs[i].Keys)
		}
		if err := c.write(out); err != nil {
			return err
		}
		if c.done(quit) {
			return nil
		}
	}
}

// memcacheDispatch routes one request. It reports whether it was quit.
func (c *clientConn) memcacheDispatch(req *memcache.Request) (quit bool) {
	c.cmdIDs = append(c.cmdIDs, int16(req.Command))
	switch cmd := req.Command; {
	case cmd == memcache.Quit:
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
		c.memcacheForward(req, c.ring().Pick(placeholderKey))
	case cmd == memcache.MetaNoop:
		c.addLocal([]byte("MN\r\n"))
	case cmd.IsMeta():
		c.addLocal(memcache.AppendClientError(nil, "meta commands are not supported by walnut; use the text commands"))
	default: // verbosity, flush_all, stats
		if req.Noreply {
			c.slots = append(c.slots, slot{kind: slotNone, ncall: 0})
		} else {
			c.addLocal(memcache.AppendClientError(nil, cmd.String()+" is not supported through a sharding proxy: it would reach only one of the servers"))
		}
	}
	return false
}

// memcacheForward sends the request whole to server srv.
func (c *clientConn) memcacheForward(req *memcache.Request, srv int) {
	if req.Noreply {
		if cl := c.detachedCall(srv); cl != nil {
			cl.buf = append(cl.buf, req.Raw...)
			cl.req.Data = cl.buf
			cl.req.Tag = uint8(req.Command)
			cl.req.NoReply = true
			c.slots = append(c.slots, slot{kind: slotNone})
			c.g.backends[srv].pool.Do(&cl.req)
			return
		}
	}
	if c.single && !req.Noreply {
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

// memcacheFragment splits a multi-key retrieval into one request per
// server; a request whose keys all live on one server is forwarded whole.
func (c *clientConn) memcacheFragment(req *memcache.Request) {
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

// appendMemcacheReply appends the reply of slot sl, the slot of the request
// with the given keys.
func (c *clientConn) appendMemcacheReply(out []byte, sl *slot, keys [][]byte) []byte {
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
		return append(out, cl.reply...)
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
			out = append(out, bk.raw...)
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
