package pool_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/walnutproxy/walnut/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait in these tests. It is generous: nothing should
// come near it unless something hangs.
const waitFor = 10 * time.Second

var errBadReply = errors.New("test framer: malformed reply")

// respFramer frames one RESP2 reply, as twemproxy parses them:
// anything but + - : $ * is malformed. An incomplete bulk string returns
// -(its end), the pool's hint.
func respFramer(b []byte, _ *pool.Request) (int, error) {
	pos, pending := 0, 1
	for pending > 0 {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			return 0, nil
		}
		line := b[pos : pos+nl+1]
		if len(line) < 3 || line[len(line)-2] != '\r' {
			return 0, errBadReply
		}
		body := line[1 : len(line)-2]
		pos += len(line)
		pending--
		switch line[0] {
		case '+', '-':
		case ':':
			if _, err := strconv.ParseInt(string(body), 10, 64); err != nil {
				return 0, errBadReply
			}
		case '$':
			n, err := strconv.Atoi(string(body))
			if err != nil || n < -1 {
				return 0, errBadReply
			}
			if n >= 0 {
				end := pos + n + 2
				if end > len(b) {
					return -end, nil
				}
				if b[end-2] != '\r' || b[end-1] != '\n' {
					return 0, errBadReply
				}
				pos = end
			}
		case '*':
			n, err := strconv.Atoi(string(body))
			if err != nil || n < -1 {
				return 0, errBadReply
			}
			if n > 0 {
				pending += n
			}
		default:
			return 0, errBadReply
		}
	}
	return pos, nil
}

// memcacheFramer frames one memcached text reply: a single line, or VALUE
// blocks up to END.
func memcacheFramer(b []byte, _ *pool.Request) (int, error) {
	pos := 0
	for {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			return 0, nil
		}
		line := b[pos : pos+nl+1]
		pos += len(line)
		if !bytes.HasPrefix(line, []byte("VALUE ")) {
			if pos == len(line) || string(line) == "END\r\n" {
				return pos, nil
			}
			return 0, errBadReply
		}
		f := bytes.Fields(line)
		if len(f) < 4 {
			return 0, errBadReply
		}
		n, err := strconv.Atoi(string(f[3]))
		if err != nil || n < 0 {
			return 0, errBadReply
		}
		pos += n + 2
		if pos > len(b) {
			return -pos, nil
		}
	}
}

// lineFramer frames one line.
func lineFramer(b []byte, _ *pool.Request) (int, error) {
	if nl := bytes.IndexByte(b, '\n'); nl >= 0 {
		return nl + 1, nil
	}
	return 0, nil
}

// redisFailure is twemproxy's list of replies that mean a server failure.
func redisFailure(reply []byte) bool {
	for _, p := range []string{"-OOM", "-BUSY", "-LOADING"} {
		if bytes.HasPrefix(reply, []byte(p)) {
			return true
		}
	}
	return false
}

func redisError(reply []byte) bool { return len(reply) > 0 && reply[0] == '-' }

// cmd encodes a RESP command.
func cmd(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// newPool creates a pool closed at the end of the test.
func newPool(t *testing.T, srv pool.Server, opts pool.Options) *pool.Pool {
	t.Helper()
	p, err := pool.New(srv, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func one(addr string) pool.Server { return pool.Server{Addr: addr} }

// A fake is an in-process server on a loopback listener. handle runs on
// its own goroutine for each accepted connection, with the connection's
// sequence number (1, 2, …). Everything is closed and waited for at the
// end of the test.
type fake struct {
	ln      net.Listener
	accepts atomic.Int32
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startFake(t *testing.T, handle func(n int, c net.Conn)) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveFake(t, ln, handle)
}

func serveFake(t *testing.T, ln net.Listener, handle func(n int, c net.Conn)) *fake {
	f := &fake{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(f.accepts.Add(1))
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				handle(n, c)
			}()
		}
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *fake) addr() string { return f.ln.Addr().String() }

// closeConns closes every connection accepted so far.
func (f *fake) closeConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
}

func (f *fake) stop() {
	_ = f.ln.Close()
	f.closeConns()
	f.wg.Wait()
}

// echoLines answers every line with "+" and the line.
func echoLines(_ int, c net.Conn) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		line, err := r.ReadSlice('\n') // no allocation: TestCallAllocs counts the fake's too
		if err != nil {
			return
		}
		_ = w.WriteByte('+')
		_, _ = w.Write(line)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// silent reads and discards everything and never answers.
func silent(_ int, c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// result is the outcome of one asynchronous request.
type result struct {
	reply string
	err   error
}

// doAsync queues data and returns a channel that receives the outcome.
func doAsync(p *pool.Pool, data []byte) <-chan result {
	ch := make(chan result, 1)
	p.Do(&pool.Request{Data: data, Done: func(reply []byte, err error) {
		ch <- result{string(reply), err}
	}})
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitFor):
		t.Fatalf("request not completed after %v", waitFor)
		return result{}
	}
}

// logBuffer is an slog handler target safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

func newLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// pipelinePairs has each of goroutines goroutines queue pairs (set, get)
// request pairs on server 0 without waiting, then checks that every reply is
// the one its own request expects. pair gives the requests and the replies
// for goroutine g, pair j.
func pipelinePairs(t *testing.T, p *pool.Pool, goroutines, pairs int, pair func(g, j int) (set, get []byte, wantSet, wantGet string)) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var done sync.WaitGroup
			replies := make([]string, 2*pairs)
			errs := make([]error, 2*pairs)
			for j := range pairs {
				set, get, _, _ := pair(g, j)
				for n, data := range [][]byte{set, get} {
					slot := 2*j + n
					done.Add(1)
					p.Do(&pool.Request{Data: data, Done: func(reply []byte, err error) {
						replies[slot], errs[slot] = string(reply), err
						done.Done()
					}})
				}
			}
			done.Wait()
			for j := range pairs {
				_, _, wantSet, wantGet := pair(g, j)
				if !assert.NoError(t, errs[2*j]) || !assert.NoError(t, errs[2*j+1]) ||
					!assert.Equal(t, wantSet, replies[2*j]) || !assert.Equal(t, wantGet, replies[2*j+1]) {
					return
				}
			}
		}()
	}
	wg.Wait()
}
