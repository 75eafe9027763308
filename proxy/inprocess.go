package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/shard"
)

// ErrIncomplete is returned by Client.Do for a request that ends before
// its last byte (a RESP command cut short, a memcached line without its
// CRLF or data block).
var ErrIncomplete = errors.New("proxy: incomplete request")

// ErrClientClosed is returned by Client.Do after Close.
var ErrClientClosed = errors.New("proxy: client closed")

// A Client sends requests to a pool's servers from inside the process, with
// no proxy in between: each request is routed, split and merged exactly as
// a Server does it (the same code), and sent on the same pipelined backend
// connections. Requests from all goroutines share those connections and
// are written in batches, so concurrent callers get pipelining without
// asking for it; MGET, MSET, DEL, UNLINK, TOUCH and EXISTS (and memcached
// multi-key gets) work across servers, which go-redis's Ring does not do
// (it sends an MGET to the server of its first key).
//
// A Client is safe for concurrent use. Close releases its connections.
type Client struct {
	s     *Server
	conns sync.Pool // of *clientConn, one per request in progress
	bufs  sync.Pool // of *[]byte, Command's request buffers

	ndetached atomic.Int32 // memcached noreply requests in flight, for all calls

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // calls in progress, so that Close can wait
}

// NewClient builds a Client for the pool cfg describes, as New builds a
// Server; the listen and client-side fields of cfg (Network, Addr,
// SocketPerm, MaxClients, TCPKeepAlive) are not used, and no password is
// asked of the caller (Auth is still sent to the servers). Like New it
// connects to nothing until the first request unless cfg.Backend.Preconnect is
// set. See FromPool to build cfg from a nutcracker.yml.
func NewClient(cfg Config) (*Client, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{s: s}
	c.conns.New = func() any {
		cc := newClientConn(s, nil)
		cc.authed = true
		cc.owner = c
		cc.nd = &c.ndetached
		return cc
	}
	return c, nil
}

// Ring returns the ring requests are routed with now (it changes when
// servers are ejected and reinstated).
func (c *Client) Ring() *shard.Ring { return c.s.Ring() }

// Reload replaces the Client's configuration as Server.Reload does: calls
// in progress finish with the old one, later calls use the new ring, and
// unchanged servers keep their connections.
func (c *Client) Reload(cfg Config) error { return c.s.Reload(cfg) }

// Latencies returns the per-command latency of the Client's calls, as
// Server.Latencies does.
func (c *Client) Latencies() []CommandLatency { return c.s.Latencies() }

// Stats returns the pool's statistics (the client-side counters stay 0).
func (c *Client) Stats() PoolStats { return c.s.Stats() }

// Close closes the backend connections. Requests in flight fail. It waits
// for calls in progress to return.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	err := c.s.Close()
	c.wg.Wait()
	return err
}

// Do sends one raw request and returns its raw reply: for a Redis pool a
// command in RESP (as resp.AppendCommand writes it) and its RESP2 reply; for
// a memcached pool one text request (a storage request with its data
// block) and its reply ("STORED\r\n", "VALUE … END\r\n", …). A memcached
// noreply or quit request returns a nil reply.
//
// Replies are data, not errors: an error reply from a server ("-ERR …",
// "SERVER_ERROR …"), or the one the proxy makes up when a server fails
// ("-ERR Connection refused"), is returned as the reply with a nil error.
// Do returns an error, and sends nothing, for a request it cannot parse
// (a *protocol.Error, ErrIncomplete, or an error for an empty request or
// bytes after the request's end); it returns ErrClientClosed after Close,
// and ctx.Err() when ctx ends first (the request may still be carried out).
//
// The Client has no connection of its own, so commands that set connection
// state do not: AUTH and HELLO answer as the proxy would but the Client
// stays authenticated, and CLIENT SETNAME and GETNAME are refused.
//
// Do copies req, so the caller may reuse it at once, and returns a new
// slice. It is safe to call from many goroutines.
func (c *Client) Do(ctx context.Context, req []byte) ([]byte, error) {
	replies, err := c.do(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	return replies[0], nil
}

// DoMulti sends several raw requests together, as a client pipelining them
// would, and returns their replies in the same order. Each element must be
// exactly one request. If any fails to parse, none is sent. See Do.
func (c *Client) DoMulti(ctx context.Context, reqs ...[]byte) ([][]byte, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	return c.do(ctx, nil, reqs)
}

// Command is Do for a Redis pool with the command given as strings,
// returning the parsed reply. An error reply is a Value of Type '-'.
func (c *Client) Command(ctx context.Context, args ...string) (resp.Value, error) {
	if c.s.proto != protocol.Redis {
		return resp.Value{}, fmt.Errorf("proxy: Command needs a redis pool; %q is memcached", c.s.name)
	}
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	req := resp.AppendCommandString((*bp)[:0], args...)
	reply, err := c.Do(ctx, req) // Do copies req
	if cap(req) <= maxKeptBuffer {
		*bp = req[:0]
		c.bufs.Put(bp)
	}
	if err != nil {
		return resp.Value{}, err
	}
	var v resp.Value
	if _, err := resp.ParseReply(reply, c.s.gen.Load().lim, &v); err != nil {
		return resp.Value{}, err
	}
	return v, nil
}

// do runs one batch: req alone, or reqs.
func (c *Client) do(ctx context.Context, req []byte, reqs [][]byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClientClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()

	cc := c.conns.Get().(*clientConn)
	// Requests are copied into the connection's own buffer: the pool may
	// still be writing them when ctx ends and Do returns. ends marks where
	// each one stops.
	cc.in = cc.in[:0]
	ends := cc.pos[:0]
	if reqs == nil {
		cc.in = append(cc.in, req...)
		ends = append(ends, len(cc.in))
	} else {
		for _, r := range reqs {
			cc.in = append(cc.in, r...)
			ends = append(ends, len(cc.in))
		}
	}
	cc.pos = ends
	// Parse them all before sending any, so that a bad one sends none.
	var err error
	if c.s.proto == protocol.Redis {
		err = cc.parseRedis(ends)
	} else {
		err = cc.parseMemcache(ends)
	}
	if err != nil {
		cc.trim()
		c.conns.Put(cc)
		return nil, err
	}
	cc.begin(0)
	// Nothing but ctx can make do return early: without it, read inline
	// (see pool.Waiter).
	cc.inline = ctx.Done() == nil
	if c.s.proto == protocol.Redis {
		for i := range cc.cmds {
			cc.redisDispatch(&cc.cmds[i]) // QUIT is answered +OK and changes nothing here
		}
	} else {
		cc.dispatchMemcache()
	}
	if cc.inline {
		cc.waiter.Read()
	} else {
		cc.waiter.Flush()
	}
	if cc.pending.Add(-1) != 0 {
		select {
		case <-cc.wake:
		case <-ctx.Done():
			// Hand the connection to the call that completes the batch,
			// unless it has just completed.
			c.wg.Add(1)
			if cc.state.CompareAndSwap(batchWaiting, batchAbandoned) {
				return nil, ctx.Err()
			}
			c.wg.Done()
			<-cc.wake
		}
	}
	cc.end()
	out := cc.out[:0]
	marks := cc.marks[:0]
	for i := range cc.slots {
		if c.s.proto == protocol.Redis {
			out = cc.appendRedisReply(out, &cc.slots[i])
		} else {
			out = cc.appendMemcacheReply(out, &cc.slots[i], cc.mcreqs[i].Keys)
		}
		marks = append(marks, len(out))
	}
	cc.marks = marks
	// One allocation for the bytes of all the replies.
	buf := make([]byte, len(out))
	copy(buf, out)
	replies := make([][]byte, len(marks))
	start := 0
	for i, e := range marks {
		if e > start {
			replies[i] = buf[start:e:e]
		}
		start = e
	}
	cc.out = out[:0]
	cc.trim()
	c.conns.Put(cc)
	return replies, nil
}

// recycle returns an abandoned connection to the Client once its batch is
// done.
func (c *Client) recycle(cc *clientConn) {
	cc.end()
	cc.trim()
	c.conns.Put(cc)
	c.wg.Done()
}

// errTrailing reports a request with bytes after its end.
func errTrailing(i int) error {
	return fmt.Errorf("proxy: request %d has bytes after its end: one request per element", i)
}

// parseRedis parses the commands of c.in, which end at ends, into c.cmds.
func (c *clientConn) parseRedis(ends []int) error {
	c.cmds = c.cmds[:0]
	start := 0
	for i, end := range ends {
		b := c.in[start:end]
		if len(c.cmds) < cap(c.cmds) {
			c.cmds = c.cmds[:len(c.cmds)+1]
		} else {
			c.cmds = append(c.cmds, resp.Command{})
		}
		cmd := &c.cmds[len(c.cmds)-1]
		m, err := resp.ParseCommand(b, c.s.gen.Load().lim, cmd)
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

// parseMemcache parses the requests of c.in, which end at ends, into
// c.mcreqs. A request memcached would reject in step (an unknown command,
// a bad number) is kept, with its reply, for dispatchMemcache to answer.
func (c *clientConn) parseMemcache(ends []int) error {
	c.mcreqs = c.mcreqs[:0]
	c.mcerrs = c.mcerrs[:0]
	start := 0
	for i, end := range ends {
		b := c.in[start:end]
		if len(c.mcreqs) < cap(c.mcreqs) {
			c.mcreqs = c.mcreqs[:len(c.mcreqs)+1]
		} else {
			c.mcreqs = append(c.mcreqs, memcache.Request{})
		}
		req := &c.mcreqs[len(c.mcreqs)-1]
		m, err := memcache.ParseRequest(b, c.s.gen.Load().lim, req)
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
		c.mcerrs = append(c.mcerrs, reply)
		start = end
	}
	return nil
}

// dispatchMemcache dispatches c.mcreqs.
func (c *clientConn) dispatchMemcache() {
	for i := range c.mcreqs {
		req := &c.mcreqs[i]
		switch {
		case c.mcerrs[i] != "":
			if req.Noreply {
				c.slots = append(c.slots, slot{kind: slotNone})
			} else {
				c.addLocal(append([]byte(c.mcerrs[i]), '\r', '\n'))
			}
		case req.Command == memcache.Quit:
			c.slots = append(c.slots, slot{kind: slotNone})
		default:
			c.memcacheDispatch(req)
		}
	}
}
