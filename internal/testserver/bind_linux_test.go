package testserver

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// boundNotListening binds a TCP socket on 127.0.0.1 without listening, so
// connections to its port are refused but binding it fails: the case a
// start attempt can only detect from the server's own bind error.
func boundNotListening(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return sa.(*syscall.SockaddrInet4).Port
}

func TestStartDetectsBindFailure(t *testing.T) {
	t.Parallel()
	port := boundNotListening(t)
	require.False(t, accepting(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))))

	tests := []struct {
		give  string
		start func(bin string) error
	}{
		{give: "redis-server", start: func(bin string) error {
			_, err := startRedisOnce(t, bin, "127.0.0.1", port, RedisOptions{})
			return err
		}},
		{give: "memcached", start: func(bin string) error {
			_, err := startMemcachedOnce(t, bin, "127.0.0.1", port, nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			err := tt.start(RequireBinary(t, tt.give))
			require.Error(t, err)
			assert.True(t, errors.Is(err, errAddrInUse), "want errAddrInUse (retryable), got %v", err)
			assert.True(t, errors.Is(err, errExited), "want errExited, got %v", err)
		})
	}
}
