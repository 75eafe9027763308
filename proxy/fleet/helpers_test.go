package fleet_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// hostPort is 127.0.0.1:port.
func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// server is a servers: entry of weight 1 for addr.
func server(addr string) string { return "    - " + addr + ":1\n" }

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// respDo sends one command on a RESP connection (TCP or unix) and returns
// the reply: a bulk string's contents or another reply's line.
func respDo(t *testing.T, c net.Conn, r *bufio.Reader, args ...string) string {
	t.Helper()
	s, err := testserver.RESPDo(c, r, args...)
	require.NoError(t, err)
	return s
}

// readStats reads the stats document from addr.
func readStats(addr string) (map[string]any, error) {
	return testserver.ReadStats(addr, 5*time.Second)
}
