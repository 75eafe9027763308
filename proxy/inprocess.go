package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/walnutproxy/walnut/protocol"
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
// Do, DoMulti and Command take and return raw requests and replies; Redis
// returns the typed API of a Redis pool's Client (Get, Set, MGet, …, a
// Pipeline), whose errors are Go errors.
//
// A Client is safe for concurrent use. Close releases its connections.
type Client struct {
	s     *Server
	conns sync.Pool // of *session, one per request in progress
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
		cc := newSession(s, nil)
		cc.trusted, cc.authed = true, true
		cc.recycle = c.recycle
		cc.inflight = &c.wg
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
// stays authenticated, HELLO 3 is refused with NOPROTO (the Client speaks
// RESP2), and CLIENT SETNAME and GETNAME are refused, as are the commands
// that need a server connection of the caller's own (transactions,
// blocking commands, subscriptions; see pinned.go): "-ERR MULTI is not
// supported by proxy.Client: …". XREAD and XREADGROUP without BLOCK are
// served, routed by their keys.
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

	cc := c.conns.Get().(*session)
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
	if err := cc.h.parse(cc, cc.in, ends); err != nil {
		cc.h.reset()
		cc.trim()
		c.conns.Put(cc)
		return nil, err
	}
	if _, ok := cc.run(0, len(ends), ctx.Done()); !ok {
		return nil, ctx.Err() // the session is recycled when the batch completes
	}
	out := cc.appendReplies(cc.out[:0], true)
	marks := cc.marks
	// One allocation for the bytes of all the replies (none for a lone
	// large reply, which is the caller's already).
	var buf []byte
	if len(cc.big) == 0 {
		buf = make([]byte, len(out))
		copy(buf, out)
	} else {
		buf = cc.assemble(out)
		clear(cc.big)
		cc.big = cc.big[:0]
	}
	replies := make([][]byte, len(marks))
	start := 0
	for i, e := range marks {
		if e > start {
			replies[i] = buf[start:e:e]
		}
		start = e
	}
	cc.out = out[:0]
	cc.h.reset()
	cc.trim()
	c.conns.Put(cc)
	return replies, nil
}

// recycle returns an abandoned connection to the Client once its batch is
// done.
func (c *Client) recycle(cc *session) {
	cc.end()
	cc.h.reset()
	cc.trim()
	c.conns.Put(cc)
	c.wg.Done()
}

// errTrailing reports a request with bytes after its end.
func errTrailing(i int) error {
	return fmt.Errorf("proxy: request %d has bytes after its end: one request per element", i)
}
