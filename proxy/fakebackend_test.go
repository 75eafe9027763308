package proxy_test

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// fakeMode is how a fakeBackend answers.
type fakeMode int32

const (
	fakeNormal   fakeMode = iota // a correct, tiny redis-server or memcached
	fakeGarbage                  // a line that is no reply at all
	fakeCutReply                 // half of a GET's reply (a bulk string, a VALUE block), then close
	fakeSlow                     // correct replies, each batch after fakeBackend.delay
)

func (m fakeMode) String() string {
	return [...]string{"normal", "garbage", "cut reply", "slow"}[m]
}

// A fakeBackend is a Go listener speaking just enough of the Redis or
// memcached protocol for the load in faultload_test.go (SET, GET, MGET,
// PING; set, get, version), whose misbehaviour can be switched at any time.
// In fakeNormal mode it keeps values as a real server does.
type fakeBackend struct {
	kind  protocol.Kind
	l     net.Listener
	Addr  string
	mode  atomic.Int32
	delay atomic.Int64 // fakeSlow: how long each batch waits

	accepted atomic.Int64 // connections accepted so far
	open     atomic.Int64 // connections open now

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	data  map[string]string

	done chan struct{}
	wg   sync.WaitGroup
}

// startFakeBackend listens on a free loopback port. It is closed at cleanup.
func startFakeBackend(t *testing.T, kind protocol.Kind) *fakeBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeBackend{
		kind:  kind,
		l:     l,
		Addr:  l.Addr().String(),
		conns: map[net.Conn]struct{}{},
		data:  map[string]string{},
		done:  make(chan struct{}),
	}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeBackend) setMode(m fakeMode, delay time.Duration) {
	f.delay.Store(int64(delay))
	f.mode.Store(int32(m))
}

// Close stops accepting, closes every connection and waits for the
// backend's goroutines.
func (f *fakeBackend) Close() {
	f.mu.Lock()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	f.l.Close()
	for nc := range f.conns {
		nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeBackend) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		select {
		case <-f.done:
			f.mu.Unlock()
			nc.Close()
			return
		default:
		}
		f.conns[nc] = struct{}{}
		f.accepted.Add(1)
		f.open.Add(1)
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			f.serve(nc)
			f.mu.Lock()
			delete(f.conns, nc)
			f.mu.Unlock()
			nc.Close()
			f.open.Add(-1)
		}()
	}
}

// A fakeReply is the reply to one request; cut, if not zero, is where a
// fakeCutReply backend stops writing it.
type fakeReply struct {
	b   []byte
	cut int
}

// serve answers batches of requests until the connection fails or the
// mode says to close.
func (f *fakeBackend) serve(nc net.Conn) {
	var next func() ([]fakeReply, error)
	if f.kind == protocol.Redis {
		rd := resp.NewReader(nc, protocol.Limits{})
		var cmds []resp.Command
		next = func() ([]fakeReply, error) {
			var err error
			if cmds, err = rd.ReadCommands(cmds); err != nil {
				return nil, err
			}
			out := make([]fakeReply, len(cmds))
			for i := range cmds {
				out[i] = f.redisReply(cmds[i].Args)
			}
			return out, nil
		}
	} else {
		rd := memcache.NewReader(nc, protocol.Limits{})
		var reqs []memcache.Request
		next = func() ([]fakeReply, error) {
			var err error
			if reqs, err = rd.ReadRequests(reqs); err != nil {
				return nil, err
			}
			out := make([]fakeReply, len(reqs))
			for i := range reqs {
				out[i] = f.memcacheReply(&reqs[i])
			}
			return out, nil
		}
	}
	for {
		replies, err := next()
		if err != nil {
			return
		}
		var out []byte
		switch fakeMode(f.mode.Load()) {
		case fakeGarbage:
			for range replies {
				if f.kind == protocol.Redis {
					out = append(out, "@garbage\r\n"...)
				} else {
					out = append(out, "GARBAGE 42\r\n"...)
				}
			}
		case fakeCutReply:
			for _, r := range replies {
				if r.cut > 0 {
					out = append(out, r.b[:r.cut]...)
					_, _ = nc.Write(out)
					return
				}
				out = append(out, r.b...)
			}
		case fakeSlow:
			select {
			case <-time.After(time.Duration(f.delay.Load())):
			case <-f.done:
				return
			}
			fallthrough
		default:
			for _, r := range replies {
				out = append(out, r.b...)
			}
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// redisReply answers one command as redis-server would; a GET of a stored
// value is marked to be cut in the middle of its data.
func (f *fakeBackend) redisReply(args [][]byte) fakeReply {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch name := strings.ToUpper(string(args[0])); {
	case name == "PING":
		return fakeReply{b: []byte("+PONG\r\n")}
	case name == "SET" && len(args) == 3:
		f.data[string(args[1])] = string(args[2])
		return fakeReply{b: []byte("+OK\r\n")}
	case name == "GET" && len(args) == 2:
		v, ok := f.data[string(args[1])]
		if !ok {
			return fakeReply{b: resp.AppendNullBulk(nil)}
		}
		b := resp.AppendBulkString(nil, v)
		return fakeReply{b: b, cut: len(b) - len(v)/2 - 2}
	case name == "MGET" && len(args) > 1:
		b := resp.AppendArrayHeader(nil, len(args)-1)
		for _, k := range args[1:] {
			if v, ok := f.data[string(k)]; ok {
				b = resp.AppendBulkString(b, v)
			} else {
				b = resp.AppendNullBulk(b)
			}
		}
		return fakeReply{b: b, cut: len(b) / 2}
	}
	return fakeReply{b: resp.AppendError(nil, "ERR fake backend: unknown command '"+string(args[0])+"'")}
}

// memcacheReply answers one request as memcached would; a get that finds
// a value is marked to be cut in the middle of its first VALUE block.
func (f *fakeBackend) memcacheReply(req *memcache.Request) fakeReply {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.Command {
	case memcache.Version:
		return fakeReply{b: []byte("VERSION fake\r\n")}
	case memcache.Set:
		f.data[string(req.Keys[0])] = string(req.Data)
		return fakeReply{b: []byte("STORED\r\n")}
	case memcache.Get:
		var b []byte
		cut := 0
		for _, k := range req.Keys {
			if v, ok := f.data[string(k)]; ok {
				b = memcache.AppendValue(b, k, 0, []byte(v))
				if cut == 0 {
					cut = len(b) - len(v)/2 - 2
				}
			}
		}
		return fakeReply{b: memcache.AppendEnd(b), cut: cut}
	}
	return fakeReply{b: memcache.AppendError(nil)}
}
