package testserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// memcacheTimeout bounds every MemcacheConn operation and the dial.
const memcacheTimeout = 5 * time.Second

// maxMemcacheValue caps the value length a MemcacheConn accepts in a reply.
const maxMemcacheValue = 64 << 20

// A MemcacheConn is a minimal memcached text-protocol client over one TCP
// connection. Unlike gomemcache it sends keys verbatim, so tests can use
// any bytes from 0x21 to 0xFF; a key containing a space, control byte or
// CRLF desynchronises the stream. Every operation has a 5s deadline.
//
// A reply that reports an error (ERROR, CLIENT_ERROR, SERVER_ERROR, or
// anything but STORED to a set) is returned as a *ReplyError and leaves
// the connection usable. An I/O error, timeout or malformed reply breaks
// the connection: that error is returned again by every later call.
//
// A MemcacheConn is not safe for concurrent use.
type MemcacheConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	err  error // sticky transport or protocol error
}

// A ReplyError is an error reply from the server (or proxy): ERROR,
// CLIENT_ERROR …, SERVER_ERROR …, or a reply such as NOT_STORED to a set.
type ReplyError struct {
	Cmd  string // "set" or "get"
	Line string // the reply line without CRLF
}

// Error implements error.
func (e *ReplyError) Error() string {
	return "testserver: memcache " + e.Cmd + ": server replied " + strconv.Quote(e.Line)
}

// errNoKeys is returned by Get when it is called without keys.
var errNoKeys = errors.New("testserver: memcache get: no keys")

// DialMemcache connects to the memcached (or nutcracker memcache pool) at
// addr. A dial error fails the test. The connection is closed at the end
// of the test if the caller has not closed it.
func DialMemcache(t testing.TB, addr string) *MemcacheConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, memcacheTimeout)
	if err != nil {
		t.Fatalf("testserver: dial memcache %s: %v", addr, err)
		return nil
	}
	c := &MemcacheConn{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Close closes the connection. Later operations return an error.
func (c *MemcacheConn) Close() error {
	if c.err == nil {
		c.err = net.ErrClosed
	}
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Set stores value under key with flags 0 and no expiry. It returns nil
// when the server replies STORED, and a *ReplyError holding the reply
// otherwise.
func (c *MemcacheConn) Set(key, value []byte) error {
	if err := c.begin(); err != nil {
		return err
	}
	c.w.WriteString("set ")
	c.w.Write(key)
	c.w.WriteString(" 0 0 ")
	c.w.WriteString(strconv.Itoa(len(value)))
	c.w.WriteString("\r\n")
	c.w.Write(value)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return c.fail("set", err)
	}
	line, err := c.readLine()
	if err != nil {
		return c.fail("set", err)
	}
	if string(line) != "STORED" {
		return &ReplyError{Cmd: "set", Line: string(line)}
	}
	return nil
}

// Get fetches keys with one "get k1 k2 …" command and returns the values
// found, keyed by string(key); missing keys are absent from the map. An
// error reply is returned as a *ReplyError.
func (c *MemcacheConn) Get(keys ...[]byte) (map[string][]byte, error) {
	if len(keys) == 0 {
		return nil, errNoKeys
	}
	if err := c.begin(); err != nil {
		return nil, err
	}
	c.w.WriteString("get")
	for _, k := range keys {
		c.w.WriteByte(' ')
		c.w.Write(k)
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return nil, c.fail("get", err)
	}
	values := make(map[string][]byte, len(keys))
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, c.fail("get", err)
		}
		switch {
		case string(line) == "END":
			return values, nil
		case isErrorReply(line):
			return nil, &ReplyError{Cmd: "get", Line: string(line)}
		case bytes.HasPrefix(line, []byte("VALUE ")):
			key, value, err := c.readValue(line)
			if err != nil {
				return nil, c.fail("get", err)
			}
			values[key] = value
		default:
			return nil, c.fail("get", fmt.Errorf("unexpected reply %.100q", line))
		}
	}
}

// readValue parses "VALUE <key> <flags> <bytes> [<cas>]" and reads the
// data block that follows it.
func (c *MemcacheConn) readValue(line []byte) (string, []byte, error) {
	f := bytes.Split(line, []byte(" "))
	if len(f) != 4 && len(f) != 5 {
		return "", nil, fmt.Errorf("malformed VALUE line %.100q", line)
	}
	if _, err := strconv.ParseUint(string(f[2]), 10, 32); err != nil {
		return "", nil, fmt.Errorf("malformed flags in %.100q", line)
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 || n > maxMemcacheValue {
		return "", nil, fmt.Errorf("malformed length in %.100q", line)
	}
	data := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, data); err != nil {
		return "", nil, err
	}
	if data[n] != '\r' || data[n+1] != '\n' {
		return "", nil, fmt.Errorf("data block for %.100q not terminated by CRLF", f[1])
	}
	return string(f[1]), data[:n:n], nil
}

// isErrorReply reports whether line is one of memcached's error replies.
func isErrorReply(line []byte) bool {
	return string(line) == "ERROR" ||
		bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR"))
}

// begin returns the sticky error, or sets the deadline for one operation.
func (c *MemcacheConn) begin() error {
	if c.err != nil {
		return c.err
	}
	if err := c.conn.SetDeadline(time.Now().Add(memcacheTimeout)); err != nil {
		c.err = fmt.Errorf("testserver: memcache: %w", err)
		return c.err
	}
	return nil
}

// fail records err as the connection's sticky error and returns it.
func (c *MemcacheConn) fail(cmd string, err error) error {
	c.err = fmt.Errorf("testserver: memcache %s: %w", cmd, err)
	return c.err
}

// readLine reads one CRLF-terminated line and returns it without CRLF. The
// result is a copy.
func (c *MemcacheConn) readLine() ([]byte, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("reply line %.100q not terminated by CRLF", line)
	}
	return line[:len(line)-2], nil
}
