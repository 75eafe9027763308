// Package keepalived holds only the test of the keepalived health check,
// walnut-check, against a real walnut.
package keepalived

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

func TestWalnutCheck(t *testing.T) {
	bash := testserver.RequireBinary(t, "bash")
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	dir := t.TempDir()
	walnut := filepath.Join(dir, "walnut")
	build := exec.Command("go", "build", "-o", walnut, "./cmd/walnut")
	build.Dir = "../.."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")))
	conf := filepath.Join(dir, "nutcracker.yml")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("p:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, r.Addr)), 0o600))
	cmd := exec.Command(walnut, "-c", conf, "-s", strconv.Itoa(testserver.FreePort(t, "127.0.0.1")), "--admin-addr="+admin, "-o", filepath.Join(dir, "walnut.log"))
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	})

	// A PATH without curl exercises the /dev/tcp fallback.
	noCurl := filepath.Join(dir, "bin")
	require.NoError(t, os.Mkdir(noCurl, 0o755))
	require.NoError(t, os.Symlink(bash, filepath.Join(noCurl, "bash")))
	check := func(path, pathEnv string) error {
		c := exec.Command(bash, "./walnut-check", admin, path)
		if pathEnv != "" {
			c.Env = append(os.Environ(), "PATH="+pathEnv)
		}
		return c.Run()
	}
	require.Eventually(t, func() bool { return check("/readyz", "") == nil }, 10*time.Second, 50*time.Millisecond, "walnut becomes ready")
	for _, env := range []string{"", noCurl} {
		assert.NoError(t, check("/readyz", env), "ready, PATH=%q", env)
		assert.NoError(t, check("/healthz", env), "healthy, PATH=%q", env)
		assert.Error(t, check("/nosuch", env), "404 fails, PATH=%q", env)
	}

	// Once walnut is gone the check fails, with and without curl.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	<-exited
	for _, env := range []string{"", noCurl} {
		assert.Error(t, check("/readyz", env), "walnut stopped, PATH=%q", env)
	}
}
