//go:build !linux

package proxy

import (
	"errors"
	"net"

	"github.com/walnutproxy/walnut/pool"
)

// An Engine is a set of event loops that serve client connections without
// a goroutine per connection. It exists on Linux only: here NewEngine
// fails.
type Engine struct{}

// NewEngine fails: event loops need Linux.
func NewEngine(n int) (*Engine, error) { return nil, errNoEngine }

// Loops returns 0.
func (*Engine) Loops() int { return 0 }

// Close does nothing.
func (*Engine) Close() error { return nil }

type eloop struct{}

type evClient struct {
	l *eloop
	c *session
}

var (
	errNoEngine  = errors.New("proxy: event loops need Linux")
	errNotSocket = errors.New("not a socket")
)

func (*Engine) adopt(*Server, net.Conn) (*evClient, error)   { return nil, errNoEngine }
func (*eloop) post(func()) bool                              { return false }
func (*eloop) do(_ *Server, p *pool.Pool, req *pool.Request) { p.Do(req) }
func (*evClient) ready()                                     {}
func (*evClient) progress()                                  {}
func (*evClient) send([]byte, []bigReply) error              { return errNoEngine }
func (*evClient) interrupt()                                 {}
func (*evClient) resetFD()                                   {}
func (*evClient) closeFD()                                   {}
func (*evClient) start()                                     {}
