package proxy

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/walnutproxy/walnut/pool"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// RESP3 clients.
//
// A client that sends HELLO 3 speaks RESP3 from then on (until HELLO 2 or
// RESET): its requests go to backend connections in RESP3 mode, whose
// replies are passed through as they are (maps, sets, doubles, booleans,
// big numbers, verbatim strings, nulls, attributes). Those connections are
// a second pool.Pool per backend, made on the first request of a RESP3
// client to that server, whose connections send HELLO 3 after the pool's
// SELECT and AUTH. A client that never sends HELLO 3 costs nothing more:
// the RESP3 pool is made only on demand, and the RESP2 path only tests a
// flag.
//
// The RESP3 pool belongs to its backend: a Reload that keeps the backend
// keeps it, and it is closed with the backend. Both pools count failures
// and eject the server on their own (the RESP3 pool has the same
// settings); the server is out of the ring while either has it ejected,
// and each probes it again after server_retry_timeout. The stats of a
// server add both pools' counters.
//
// Replies the proxy writes itself follow the client's protocol: HELLO's
// is a map in RESP3, and a null (CLIENT GETNAME without a name) is "_".
// Split commands merge RESP3 replies: MGET's arrays (whose nulls are "_")
// are merged element by element, DEL, EXISTS, TOUCH and UNLINK counts
// added and MSET's +OK checked as in RESP2; an error reply of either kind
// ('-' or the blob error '!') is passed on, and an attribute before a
// fragment's reply is dropped from the merged reply.
//
// A server that does not know HELLO 3 (redis-server before 6) answers it
// with an error, which is counted in the server's InitErrors and logged
// once; its connections stay in RESP2, so RESP3 clients get RESP2 replies
// from it (which most RESP3 clients also read).
//
// Push messages need a server connection of the client's own (Pub/Sub,
// client-side caching), so the commands that cause them are refused, as
// for RESP2 clients.
//
// The in-process Client does not speak RESP3: it answers HELLO 3 with
// NOPROTO, as redis-server answers a protocol it does not know, and its
// callers (such as go-redis) fall back to RESP2. Its sessions are shared
// between callers, so a protocol chosen by one would apply to the next.

// hello3 is the Init request that switches a backend connection to RESP3.
var hello3 = resp.AppendCommandString(nil, "HELLO", "3")

// resp3Conns is a backend's RESP3 pool and the state needed to make it.
type resp3Conns struct {
	// srv and opts are those of the backend's RESP2 pool (Redis only),
	// from which the RESP3 pool is made.
	srv  pool.Server
	opts pool.Options

	p      atomic.Pointer[pool.Pool] // nil until made
	mu     sync.Mutex                // serialises making p and closing
	closed bool

	// Whether each pool has the server ejected; under Server.genMu.
	ejected2, ejected3 bool
}

// resp3Pool returns backend b's RESP3 pool, making it on first use. After
// the backend is closed it returns the closed RESP2 pool, whose requests
// fail as those of a closed backend do.
func (s *Server) resp3Pool(b *backend) (*pool.Pool, error) {
	if p := b.resp3.p.Load(); p != nil {
		return p, nil
	}
	r := &b.resp3
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.p.Load(); p != nil {
		return p, nil
	}
	if r.closed {
		return b.pool, nil
	}
	opts := r.opts
	opts.Init = append(slices.Clone(opts.Init), hello3)
	opts.OnChange = func(ejected bool) { s.backendChanged(b, true, ejected) }
	p, err := pool.New(r.srv, opts)
	if err != nil {
		return nil, err
	}
	r.p.Store(p)
	return p, nil
}

// markEjected records that one of the backend's pools (the RESP3 one if
// resp3) has ejected or reinstated the server, and returns whether the
// server is live: ejected by neither. It must be called with genMu held.
func (r *resp3Conns) markEjected(resp3, ejected bool) (live bool) {
	if resp3 {
		r.ejected3 = ejected
	} else {
		r.ejected2 = ejected
	}
	return !r.ejected2 && !r.ejected3
}

// close closes the backend's pools, the RESP3 one if it was made; none is
// made afterwards.
func (b *backend) close() {
	r := &b.resp3
	r.mu.Lock()
	r.closed = true
	p3 := r.p.Load()
	r.mu.Unlock()
	b.pool.Close()
	if p3 != nil {
		p3.Close()
	}
}

// stats returns the backend's counters: its RESP2 pool's, plus its RESP3
// pool's if it was made.
func (b *backend) stats() pool.ServerStats {
	st := b.pool.Stats()
	p3 := b.resp3.p.Load()
	if p3 == nil {
		return st
	}
	t := p3.Stats()
	st.ServerEOF += t.ServerEOF
	st.ServerErr += t.ServerErr
	st.ServerTimedOut += t.ServerTimedOut
	st.ServerConnections += t.ServerConnections
	st.ServerEjectedAt = max(st.ServerEjectedAt, t.ServerEjectedAt)
	st.Requests += t.Requests
	st.RequestBytes += t.RequestBytes
	st.Responses += t.Responses
	st.ResponseBytes += t.ResponseBytes
	st.InQueue += t.InQueue
	st.InQueueBytes += t.InQueueBytes
	st.OutQueue += t.OutQueue
	st.OutQueueBytes += t.OutQueueBytes
	st.Ejects += t.Ejects
	st.InitErrors += t.InitErrors
	return st
}

// do queues cl's request on its server, on the connections of the
// client's protocol.
func (c *session) do(cl *call) {
	b := c.g.backends[cl.server]
	p := b.pool
	if c.resp3 {
		var err error
		if p, err = c.s.resp3Pool(b); err != nil {
			// The RESP2 pool was made with the same options, so this
			// does not happen; fail the request as a pool would.
			cl.req.Done(nil, err)
			return
		}
	}
	if c.ev != nil {
		c.ev.l.do(c.s, p, &cl.req)
		return
	}
	p.Do(&cl.req)
}

// setProtocol switches the client to RESP3 or back to RESP2. The requests
// it sent before the switch and those after it go to different backend
// connections, so the switch waits for the earlier ones to be answered
// (see barrier): a client's requests to one server are executed in order,
// as they are on one connection.
func (c *session) setProtocol(resp3 bool) {
	if c.resp3 != resp3 {
		c.barrier()
		c.resp3 = resp3
	}
}

// barrier waits, in the middle of dispatching a batch, until every
// request the client has sent so far has its reply: the async call's, and
// the calls of the batch dispatched so far, whose requests it writes now.
// Their replies stay in their calls, for appendReplies. Only a client
// connection's session switches protocol, so nothing may abandon the
// batch meanwhile.
func (c *session) barrier() {
	// A failed write of the async reply means the client is gone: the
	// batch's write will say so.
	_ = c.awaitAsync()
	if c.pending.Load() == 1 {
		return // no call: only the dispatching goroutine's count
	}
	if c.inline {
		c.waiter.Read()
	} else {
		c.waiter.Flush()
	}
	if c.pending.Add(-1) != 0 {
		<-c.wake
	}
	// The batch goes on as if it had just begun, with its calls done.
	c.state.Store(batchWaiting)
	c.pending.Store(1)
}

// appendNull appends a null in the client's protocol: "_" in RESP3, a nil
// bulk string in RESP2.
func (c *session) appendNull(out []byte) []byte {
	if c.resp3 {
		return append(out, "_\r\n"...)
	}
	return append(out, "$-1\r\n"...)
}

// appendHello appends HELLO's reply for protocol proto (2 or 3): the
// fields redis-server 7 answers with, as a map in RESP3 and as an array of
// keys and values in RESP2.
func appendHello(b []byte, proto int) []byte {
	if proto == 3 {
		b = append(b, "%7\r\n"...)
	} else {
		b = resp.AppendArrayHeader(b, 14)
	}
	b = resp.AppendBulkString(b, "server")
	b = resp.AppendBulkString(b, "redis")
	b = resp.AppendBulkString(b, "version")
	b = resp.AppendBulkString(b, "7.0.0")
	b = resp.AppendBulkString(b, "proto")
	b = resp.AppendInt(b, int64(proto))
	b = resp.AppendBulkString(b, "id")
	b = resp.AppendInt(b, 1)
	b = resp.AppendBulkString(b, "mode")
	b = resp.AppendBulkString(b, "standalone")
	b = resp.AppendBulkString(b, "role")
	b = resp.AppendBulkString(b, "master")
	b = resp.AppendBulkString(b, "modules")
	return resp.AppendArrayHeader(b, 0)
}

// isErrorReply reports whether reply is an error: a simple error ('-') or
// a RESP3 blob error ('!').
func isErrorReply(reply []byte) bool {
	return len(reply) > 0 && (reply[0] == resp.TypeError || reply[0] == resp.TypeBlobError)
}

// attributeLen returns the length of the RESP3 attribute that starts
// reply, 0 if reply does not start with one, or -1 if it is malformed.
// reply is a complete reply, as the pool framed it.
func attributeLen(reply []byte, lim protocol.Limits) int {
	if len(reply) == 0 || reply[0] != resp.TypeAttribute {
		return 0
	}
	n, p := parseHeader(reply, resp.TypeAttribute)
	if p <= 0 || n < 0 {
		return -1
	}
	for i := int64(0); i < 2*n; i++ {
		m, err := resp.FrameReply(reply[p:], lim)
		if err != nil || m == 0 {
			return -1
		}
		p += m
	}
	return p
}
