package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A Framer finds the first complete reply in b, which holds bytes read from
// a server and starts at a reply boundary. req is the request the reply
// answers (one of Options.Init, or the probe, for those, whose Tag is 0),
// for protocols whose replies can only be framed knowing the command, such
// as memcached's; a Framer may only read req.Data and req.Tag. A reply that
// arrives with no request outstanding is not framed: it closes the
// connection.
//
// The Framer returns the reply's length n, with 0 < n <= len(b). If b holds
// only part of a reply it returns 0, or -m where m > len(b) is a lower
// bound on the reply's total length (such as the end of a bulk string
// announced by its header), in which case the pool reads until it has m
// bytes before calling it again and sizes its buffer once. A non-nil error
// means b cannot be a reply: the connection is closed and its requests fail
// with ErrInvalid.
//
// A Framer must not modify or retain b, and must be safe for concurrent
// use. It is called on a connection's reader goroutine, so it delays every
// reply on that connection.
type Framer func(b []byte, req *Request) (n int, err error)

// A Server is the backend a Pool connects to. It is comparable: two
// Servers are the same backend when they are equal.
type Server struct {
	// Network is "tcp" or "unix". If empty, "tcp" is used.
	Network string
	// Addr is "host:port" for tcp, a socket path for unix.
	Addr string
	// Name identifies the server in logs. If empty, Addr is used.
	Name string
}

// LargeReply is the size from which a reply to a Request with KeepLarge
// is delivered in a buffer of its own.
const LargeReply = 1 << 20

// Defaults used for zero Options fields.
const (
	// DefaultDialTimeout bounds a connection attempt. twemproxy has no
	// connect timeout of its own and waits for the kernel's (over two
	// minutes on Linux when SYNs go unanswered).
	DefaultDialTimeout = 5 * time.Second
	// DefaultFailureLimit is twemproxy's server_failure_limit default.
	DefaultFailureLimit = 2
	// DefaultRetryTimeout is twemproxy's server_retry_timeout default.
	DefaultRetryTimeout = 30 * time.Second
)

// Options configures a Pool. Zero fields take the defaults noted; only
// Framer is required. New copies what it keeps, so the caller may reuse
// the Options and the slices it holds.
type Options struct {
	// Framer delimits replies. Required.
	Framer Framer

	// Conns is the number of pipelined connections to the server
	// (twemproxy's server_connections). Requests are spread over them
	// round robin, so two requests to one server may travel on different
	// connections and be executed in either order. If zero, 1 is used.
	Conns int

	// DialTimeout bounds each connection attempt. If zero,
	// DefaultDialTimeout is used.
	DialTimeout time.Duration

	// Timeout bounds each request, from the moment it is queued (so it
	// covers connecting, waiting behind other requests, sending and the
	// reply). When a request's time is up its whole connection is closed
	// and every request queued or in flight on it fails with ErrTimedOut,
	// as twemproxy does; NoReply requests are exempt. If zero there is no
	// timeout, twemproxy's default: a server that accepts but never
	// answers holds its requests until it closes the connection.
	//
	// A connection attempt is bounded by the earlier of DialTimeout and
	// the oldest waiting request's time; a request queued after the
	// attempt began may wait for it to end before failing.
	Timeout time.Duration

	// Init holds raw requests sent first on every new connection, ahead of
	// any queued request, such as Redis AUTH and SELECT (twemproxy's
	// redis_auth and redis_db). Their replies are swallowed and they are
	// not counted in ServerStats. A failed Init is not fatal: see IsError.
	Init [][]byte

	// Estimate, if not nil, guesses the whole length of the reply at the
	// start of b, the reply to req, once the Framer's size hint has shown
	// it to be large (a megabyte or more) and its buffer must grow; 0 if it
	// cannot tell. A
	// buffer is then sized at once to the guess (up to 4 times the hint)
	// instead of growing once per large element, which leaves each
	// smaller buffer behind as garbage: for an array of large strings
	// such as an MGET's, resp.EstimateArray; for a memcached get of
	// several keys, memcache.EstimateValues. It is a guess: replies are
	// framed by the Framer alone.
	Estimate func(b []byte, req *Request) int

	// IsError reports whether reply is an error reply. It is used only to
	// check the replies to Init requests: each error reply is counted in
	// ServerStats.InitErrors, and the first one on a server is logged (again
	// only after an Init on that server has succeeded), with the
	// request's position in Init (from 1) but not its bytes, which may
	// hold a password. If nil, Init replies are not checked.
	IsError func(reply []byte) bool

	// IsFailure reports whether reply means the server has failed, as
	// twemproxy treats Redis's -OOM, -BUSY and -LOADING: the reply is
	// dropped, its connection is closed, the request and every other
	// request on that connection fail with ErrInvalid, and the close
	// counts as a failure. If nil, no reply is a failure.
	IsFailure func(reply []byte) bool

	// AutoEject enables ejection (twemproxy's auto_eject_hosts): after
	// FailureLimit consecutive failures a server is ejected, requests to
	// it fail at once with ErrEjected, and OnChange is called. After
	// RetryTimeout the pool probes it (see Probe) and reinstates it only
	// if the probe succeeds; otherwise it tries again after another
	// RetryTimeout. Without AutoEject, failures have no effect beyond
	// failing the requests involved.
	AutoEject bool

	// FailureLimit is the number of consecutive failures that ejects a
	// server (twemproxy's server_failure_limit). If zero,
	// DefaultFailureLimit is used.
	FailureLimit int

	// RetryTimeout is how long a server stays ejected before it is probed
	// (twemproxy's server_retry_timeout). If zero, DefaultRetryTimeout is
	// used.
	RetryTimeout time.Duration

	// Probe is the raw request sent, after Init, on a fresh connection to
	// an ejected server, such as "*1\r\n$4\r\nPING\r\n" or "version\r\n".
	// The server is reinstated when the probe's reply arrives and
	// IsFailure does not reject it (or any Init reply). If nil, a
	// successful connection (and Init replies that are not failures) is
	// enough. A probe must be answered within Timeout, or DialTimeout if
	// Timeout is zero.
	Probe []byte

	// OnChange, if not nil, is called when the server is ejected
	// (ejected=true) or reinstated (false), so the owner can rebuild its
	// placement without the server. Calls are serialised and made in the
	// order the changes happen, from a pool goroutine holding no lock that
	// Do, Call, Stats or Ejected need. OnChange must not call Close.
	OnChange func(ejected bool)

	// Preconnect dials every connection when the pool is created, instead
	// of on first use (twemproxy's preconnect). New does not wait for the
	// connections; a failed attempt counts as a failure.
	Preconnect bool

	// Dial opens connections. If nil, a net.Dialer is used.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Logger receives connection failures (debug), Init errors (warn),
	// ejections (warn) and reinstatements (info). If nil, nothing is
	// logged.
	Logger *slog.Logger
}

// A Request is one raw request to send to a server. It may be given to Do
// again once its Done has been called, not before.
type Request struct {
	// Data is the request's bytes, sent verbatim. It must not be
	// modified until Done has been called.
	Data []byte

	// NoReply marks a request the server does not answer (memcached's
	// noreply). It is completed with Done(nil, nil) once written, and is
	// exempt from Timeout.
	NoReply bool

	// Waiter, if not nil, is the waiter of the goroutine calling Do,
	// which may then be asked to read the reply itself: see Waiter.
	Waiter *Waiter

	// KeepLarge asks for a reply of LargeReply bytes or more in a buffer
	// of its own, which Done may keep: the pool reads such a reply into a
	// buffer sized for it and hands that over, so a large value is not
	// copied on its way (it is copied only in the rare case where it
	// arrived in a buffer shared with other replies). Smaller replies
	// alias the read buffer as always.
	KeepLarge bool

	// Tag is not used by the pool. Set it for the Framer, e.g. to the
	// memcache.Command of the request, so the framer need not re-parse
	// the request to frame its reply.
	Tag uint8

	// Done is called exactly once with the request's outcome: the reply,
	// or an error from this package (see ErrConnRefused and the others).
	// Exactly one of reply and err is non-nil, except for NoReply requests.
	//
	// reply aliases the connection's read buffer and is valid only until
	// Done returns: copy what must outlive the call. An error reply from
	// the server (Redis "-ERR …", memcached "SERVER_ERROR …") is a reply,
	// not an error.
	//
	// Done is called on one of the pool's goroutines (for a request
	// given to a LoopConn, on its owner's, see LoopConn), with two
	// exceptions: a request that cannot be queued (ErrEjected, ErrClosed)
	// is completed by Do itself, before Do returns, and the requests Close
	// fails are completed by Close, or by the pool's goroutines before
	// Close returns. Done is not called while the pool may still be
	// reading the request: a reply that arrives before the request is
	// fully written (a server may answer early and discard the rest) is
	// delivered, copied, once the write is done. Done must not block, as
	// it delays every other request on its connection, and must not call
	// Close. Calls for different requests are not ordered with respect to
	// each other.
	Done func(reply []byte, err error)
}

// A Pool holds the connections to one server. It is safe for concurrent
// use. Close must be called to release its goroutines.
type Pool struct {
	opts  Options // defaults resolved
	srv   *server
	init  []*Request // Options.Init as pool-owned requests
	probe *Request   // Options.Probe, or nil
	log   *slog.Logger
	epoch time.Time // origin of the monotonic clock used for deadlines
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)

	ctx    context.Context // cancelled by Close; parent of every dial
	cancel context.CancelFunc
	closed atomic.Bool

	mu       sync.Mutex // guards wg.Add against Close's wg.Wait, and closing
	closing  bool
	wg       sync.WaitGroup
	notifyMu sync.Mutex // serialises OnChange calls

	calls sync.Pool // *call, for Call
}

// New returns a pool of connections to srv. It validates srv and opts and,
// with Preconnect, starts connecting; otherwise it starts nothing.
func New(srv Server, opts Options) (*Pool, error) {
	if opts.Framer == nil {
		return nil, errors.New("pool: Options.Framer is nil")
	}
	switch {
	case opts.Conns < 0:
		return nil, fmt.Errorf("pool: Options.Conns is negative (%d)", opts.Conns)
	case opts.FailureLimit < 0:
		return nil, fmt.Errorf("pool: Options.FailureLimit is negative (%d)", opts.FailureLimit)
	case opts.DialTimeout < 0, opts.Timeout < 0, opts.RetryTimeout < 0:
		return nil, errors.New("pool: negative duration in Options")
	}
	if opts.Conns == 0 {
		opts.Conns = 1
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.FailureLimit == 0 {
		opts.FailureLimit = DefaultFailureLimit
	}
	if opts.RetryTimeout == 0 {
		opts.RetryTimeout = DefaultRetryTimeout
	}
	init := opts.Init
	opts.Init = nil // copied into p.init below
	probe := opts.Probe
	opts.Probe = nil // copied into p.probe below

	p := &Pool{
		opts:  opts,
		log:   opts.Logger,
		epoch: time.Now(),
		dial:  opts.Dial,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.dial == nil {
		var d net.Dialer
		p.dial = d.DialContext
	}
	for i, b := range init {
		if len(b) == 0 {
			return nil, fmt.Errorf("pool: Options.Init[%d] is empty", i)
		}
	}
	for _, b := range init {
		p.init = append(p.init, &Request{Data: bytes.Clone(b)})
	}
	if len(probe) > 0 {
		p.probe = &Request{Data: bytes.Clone(probe)}
	}
	switch srv.Network {
	case "":
		srv.Network = "tcp"
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, fmt.Errorf("pool: unsupported network %q", srv.Network)
	}
	if srv.Addr == "" {
		return nil, errors.New("pool: empty server address")
	}
	if srv.Name == "" {
		srv.Name = srv.Addr
	}
	s := &server{p: p, cfg: srv, pipes: make([]*pipe, opts.Conns)}
	for j := range s.pipes {
		s.pipes[j] = &pipe{s: s}
	}
	p.srv = s
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.calls.New = func() any {
		c := &call{ch: make(chan struct{}, 1)}
		c.req.Done = c.done
		return c
	}
	if opts.Preconnect {
		for _, pp := range s.pipes {
			pp.connect()
		}
	}
	return p, nil
}

// Do queues req and returns without waiting; req.Done reports
// the outcome. Requests to one connection are written in the order Do
// queues them, batched into as few writes as possible, and matched with
// replies in that order. If the connection is not open, Do starts opening
// it; requests queued meanwhile wait for it.
func (p *Pool) Do(req *Request) {
	s := p.srv
	if s.ejected.Load() {
		req.Done(nil, ErrEjected)
		return
	}
	if p.closed.Load() {
		req.Done(nil, ErrClosed)
		return
	}
	pp := s.pipes[0]
	if n := len(s.pipes); n > 1 {
		pp = s.pipes[s.rr.Add(1)%uint32(n)]
	}
	var deadline int64
	if p.opts.Timeout > 0 && !req.NoReply {
		deadline = p.now() + int64(p.opts.Timeout)
	}
	pp.enqueue(entry{req: req, deadline: deadline, noReply: req.NoReply, w: req.Waiter})
}

// Call sends data to the server and waits for the reply, which it returns as
// a new slice. Error replies from the server are replies, not errors. If
// ctx ends first Call returns ctx.Err(); the request still runs its course
// in the pool. Call copies data, which the caller may reuse as soon as Call
// returns. It allocates nothing but the returned reply.
func (p *Pool) Call(ctx context.Context, data []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := p.calls.Get().(*call)
	c.buf = append(c.buf[:0], data...)
	c.req.Data = c.buf
	done := ctx.Done()
	c.req.Waiter = nil
	if done == nil {
		c.req.Waiter = &c.w // nothing can make Call return early
	}
	p.Do(&c.req)
	if done == nil {
		c.w.Read()
		<-c.ch
	} else {
		select {
		case <-c.ch:
		case <-done:
			return nil, ctx.Err() // c is abandoned to its late Done
		}
	}
	reply, err := c.reply, c.err
	c.req.Data, c.reply, c.err = nil, nil, nil
	if cap(c.buf) > maxCallBuf {
		c.buf = nil
	}
	p.calls.Put(c)
	return reply, err
}

// maxCallBuf is the largest request buffer a pooled call keeps.
const maxCallBuf = 64 << 10

// call is a reusable synchronous request.
type call struct {
	req   Request
	w     Waiter
	buf   []byte        // the request's own copy of its data
	ch    chan struct{} // capacity 1: Done never blocks
	reply []byte
	err   error
}

func (c *call) done(reply []byte, err error) {
	if err == nil {
		c.reply = append([]byte(nil), reply...)
	}
	c.err = err
	c.ch <- struct{}{}
}

// Closed reports whether Close has been called.
func (p *Pool) Closed() bool { return p.closed.Load() }

// Ejected reports whether the server is currently ejected.
func (p *Pool) Ejected() bool { return p.srv.ejected.Load() }

// Close fails every queued and in-flight request with ErrClosed, closes
// every connection, cancels connection attempts and probes, and waits for
// all of the pool's goroutines to exit. Requests given to Do afterwards fail
// with ErrClosed. The LoopConns, whose owners do their I/O, are told with
// their closed callback (see NewLoopConn) and not waited for: their
// owners close them. Close must not be called from Done or OnChange. Calling
// it again has no effect.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closing = true
	p.closed.Store(true)
	p.mu.Unlock()
	p.cancel()
	p.srv.stopRetry()
	for _, pp := range p.srv.pipes {
		pp.mu.Lock()
		l := pp.l
		pp.mu.Unlock()
		if l != nil {
			l.fail(ErrClosed, failNone, nil, nil)
		}
	}
	p.srv.closeLoops()
	p.srv.closeDedicated()
	p.wg.Wait()
	return nil
}

// start runs f on a new goroutine that Close waits for, unless the pool is
// closing, in which case it reports false.
func (p *Pool) start(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// now returns monotonic nanoseconds since p.epoch.
func (p *Pool) now() int64 { return int64(time.Since(p.epoch)) }

// since converts t to p.now's clock.
func (p *Pool) since(t time.Time) int64 { return int64(t.Sub(p.epoch)) }

// at converts a deadline from p.now's clock to a time.Time.
func (p *Pool) at(deadline int64) time.Time { return p.epoch.Add(time.Duration(deadline)) }
