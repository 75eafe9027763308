package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"time"

	"github.com/walnutproxy/walnut/protocol/resp"
)

// errPubsubEjected is the error of a dedicated connection to an ejected
// server.
var errPubsubEjected = errors.New("server ejected")

// devConn is a temporary dedicated connection until pool.Dedicated exists.
type devConn struct {
	nc net.Conn
	rd *resp.Reader
}

func (d *devConn) Write(b []byte) (int, error) { return d.nc.Write(b) }
func (d *devConn) ReadReply() ([]byte, error)  { return d.rd.ReadRawReply() }
func (d *devConn) Close() error                { return d.nc.Close() }

var _ = bufio.NewReader

// dialServer makes a dedicated connection to server srv of the client's
// generation, in the client's protocol.
func (ps *pubsub) dialServer(srv int) (psBackend, error) {
	b := ps.g.backends[srv]
	d := net.Dialer{Timeout: time.Second}
	nc, err := d.DialContext(context.Background(), "tcp", b.resp3.srv.Addr)
	if err != nil {
		return nil, err
	}
	dc := &devConn{nc: nc, rd: resp.NewReader(nc, ps.g.lim)}
	init := b.resp3.opts.Init
	if ps.resp3 {
		init = append(init[:len(init):len(init)], hello3)
	}
	for _, req := range init {
		if _, err := nc.Write(req); err != nil {
			nc.Close()
			return nil, err
		}
		r, err := dc.rd.ReadRawReply()
		if err != nil {
			nc.Close()
			return nil, err
		}
		if isErrorReply(r) {
			nc.Close()
			return nil, errors.New(string(r))
		}
	}
	return dc, nil
}

// pubsubAt is a temporary hook: the first pubsub command from lo, or hi.
func (h *redisHandler) pubsubAt(lo, hi int) int {
	for i := lo; i < hi; i++ {
		if a := h.cmds[i].Args; len(a) > 0 {
			switch string(bytes.ToLower(a[0])) {
			case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
				return i
			}
		}
	}
	return hi
}
