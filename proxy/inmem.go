package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/walnutproxy/walnut/internal/memconn"
	"github.com/walnutproxy/walnut/pool"
)

// tryWriter is a client connection that can be written without blocking:
// a socket (rawio.Conn), or an in-memory connection (Server.Dial), which
// never blocks. An async reply is written to it by the backend reader
// that completed the call, rather than on a goroutine of its own.
type tryWriter interface {
	TryWrite(b []byte) (int, error)
}

// ServeConn serves one client connection nc, as if Serve had accepted it,
// on the calling goroutine, and closes nc when the client is done. It is
// for connections that come from no listener, such as a connection made in
// memory; Server.Dial uses it.
//
// nc is a client like any other: counted in the pool's stats and against
// MaxClients (a client over the cap gets the error reply and nc is closed),
// asked for the password (Auth), and ended by Shutdown, which lets it
// finish the requests it has sent, and by Close. It is always served by a
// goroutine of its own, the calling one, even when Config.Engine is set.
//
// ServeConn returns when the session ends: nil, or ErrServerClosed, with nc
// closed, if the server was shutting down or closed already.
func (s *Server) ServeConn(nc net.Conn) error {
	if s.isClosing() {
		nc.Close()
		return ErrServerClosed
	}
	if !s.admit(nc, true) {
		return nil
	}
	c := s.register(nc)
	if c == nil {
		return ErrServerClosed
	}
	s.run(c)
	return nil
}

// Dial returns a client connection to s that exists only in memory: what
// is written to it is read by a session of s, served by ServeConn on a
// goroutine of its own, and the replies come back the same way, with no
// socket and no system call. It is what a client library's dialler hook
// can return (go-redis's Options.Dialer, gomemcache's Client.DialContext),
// so that the library's every connection is served by s in-process.
//
// Writes to the connection never wait for the other side to read, in
// either direction: a client may write a pipeline of any length, or a
// value of any size, before it reads, and the session's replies are kept
// until it does (net.Pipe, whose writes wait for the reader, deadlocks
// there). The session's own output watermark (Config.OutputWatermark)
// still bounds the replies it runs ahead of a client that does not read.
// Deadlines, Close and CloseWrite behave as on a TCP connection: after one
// side closes, the other reads what was written and then io.EOF.
//
// Dial returns ctx.Err() if ctx has ended and ErrServerClosed after
// Shutdown or Close; the connection's session ends like any client's on
// Shutdown and Close, and when the caller closes the connection.
func (s *Server) Dial(ctx context.Context) (net.Conn, error) {
	return s.dial(ctx, nil)
}

// dial is Dial, calling ended, if not nil, once the session has ended.
func (s *Server) dial(ctx context.Context, ended func()) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.isClosing() {
		return nil, ErrServerClosed
	}
	client, server := memconn.Pipe(memconn.Addr("client"), memconn.Addr(s.name))
	if !s.admit(server, true) {
		// Refused (MaxClients): the client reads the error reply, then EOF.
		if ended != nil {
			ended()
		}
		return client, nil
	}
	c := s.register(server)
	if c == nil {
		client.Close()
		return nil, ErrServerClosed
	}
	go func() {
		s.run(c)
		if ended != nil {
			ended()
		}
	}()
	return client, nil
}

// ErrDialerClosed is returned by Dialer.DialContext after Close.
var ErrDialerClosed = errors.New("proxy: dialer closed")

// A Dialer connects in-process clients of any client library with a
// dialler hook to a pool, through in-memory connections (see Server.Dial),
// for as long as they keep connections open: it makes the pool's Server
// when the first connection is dialled, and closes it (and so its backend
// connections) once no connection has been open for its linger time; the
// next dial makes a new Server. A library's own Close, which closes its
// connections, thereby releases the backends too, after the linger time.
//
// The linger time keeps what the Server knows between connections: which
// servers are ejected (auto_eject_hosts) and their consecutive failures,
// and the backend connections themselves. A client library that drops a
// connection after an error reply (gomemcache does, on "SERVER_ERROR")
// would otherwise start every request after a failure with a new Server
// that has forgotten the failures, and never eject.
//
// A Dialer is safe for concurrent use.
type Dialer struct {
	cfg    Config
	linger time.Duration

	mu     sync.Mutex
	srv    *Server // nil until a dial, and after the Server is closed
	open   int     // sessions of srv not yet ended
	idle   uint64  // bumped by each dial: an idle timer armed before is stale
	timer  *time.Timer
	closed bool
}

// NewDialer returns a Dialer serving cfg's pool, validated as New
// validates it; it makes no Server yet. After the last connection ends,
// the Server is closed once linger has passed with no connection open, or
// at once if linger is zero or negative.
func NewDialer(cfg Config, linger time.Duration) (*Dialer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Dialer{cfg: cfg, linger: linger}, nil
}

// DefaultLinger returns the linger time that keeps what a Server of b
// knows about failing servers: b.RetryTimeout (pool.DefaultRetryTimeout
// if zero) when b.AutoEject is set, otherwise 0, since a Server that
// never ejects has nothing to keep but its connections.
func DefaultLinger(b BackendOptions) time.Duration {
	if !b.AutoEject {
		return 0
	}
	if b.RetryTimeout > 0 {
		return b.RetryTimeout
	}
	return pool.DefaultRetryTimeout
}

// DialContext returns a new in-memory connection to the pool, served by
// the Dialer's Server (made now if there is none). network and address
// are ignored: its signature is that of net.Dialer.DialContext, which
// client libraries' dialler hooks take. It returns ctx.Err() if ctx has
// ended, ErrDialerClosed after Close, and New's error if the Server cannot
// be made.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrDialerClosed
	}
	if d.srv == nil {
		srv, err := New(d.cfg)
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		d.srv = srv
	}
	srv := d.srv
	d.open++
	d.idle++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.mu.Unlock()
	nc, err := srv.dial(ctx, func() { d.ended(srv) })
	if err != nil {
		d.ended(srv)
		return nil, err
	}
	return nc, nil
}

// ended is called when a session of srv ends.
func (d *Dialer) ended(srv *Server) {
	d.mu.Lock()
	if d.srv != srv {
		d.mu.Unlock()
		return // closed already
	}
	d.open--
	if d.open > 0 {
		d.mu.Unlock()
		return
	}
	if d.linger <= 0 {
		d.srv = nil
		d.mu.Unlock()
		srv.Close()
		return
	}
	idle := d.idle
	d.timer = time.AfterFunc(d.linger, func() {
		d.mu.Lock()
		if d.srv != srv || d.idle != idle || d.open > 0 {
			d.mu.Unlock()
			return
		}
		d.srv, d.timer = nil, nil
		d.mu.Unlock()
		srv.Close()
	})
	d.mu.Unlock()
}

// Close closes the Server now, if there is one, ending its connections
// (their requests in flight fail), and makes later dials fail.
func (d *Dialer) Close() error {
	d.mu.Lock()
	d.closed = true
	srv := d.srv
	d.srv = nil
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.mu.Unlock()
	if srv != nil {
		return srv.Close()
	}
	return nil
}
