package testserver

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// redisTimeout bounds one RedisConn.Do round trip.
const redisTimeout = 5 * time.Second

// A RedisConn is a minimal RESP client for tests: it sends commands as
// arrays of bulk strings, so keys may hold any bytes, and reads simple,
// error, integer and bulk replies. It is not safe for concurrent use.
type RedisConn struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
}

// DialRedis connects to the redis-server (or nutcracker redis pool) at addr.
// A dial error fails the test; the connection is closed when the test ends.
func DialRedis(t testing.TB, addr string) *RedisConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, redisTimeout)
	if err != nil {
		t.Fatalf("testserver: dial redis %s: %v", addr, err)
		return nil
	}
	c := &RedisConn{conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

// Do sends one command and returns its reply: the contents of a bulk string
// ("" for a nil bulk), or the line of any other reply without CRLF, such as
// "+OK", ":1" or "-ERR …". Error replies are returned as data, not errors;
// err reports only I/O and framing problems.
func (c *RedisConn) Do(args ...string) (string, error) {
	if err := c.conn.SetDeadline(time.Now().Add(redisTimeout)); err != nil {
		return "", err
	}
	c.buf = appendRESPCommand(c.buf[:0], args...)
	if _, err := c.conn.Write(c.buf); err != nil {
		return "", err
	}
	return readRESPReply(c.r)
}

// Close closes the connection.
func (c *RedisConn) Close() error { return c.conn.Close() }

// RESPDo sends one command on c, a connection of the caller's (TCP or
// unix), and reads its reply from r, as RedisConn.Do does.
func RESPDo(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(redisTimeout)); err != nil {
		return "", err
	}
	if _, err := c.Write(appendRESPCommand(nil, args...)); err != nil {
		return "", err
	}
	return readRESPReply(r)
}
