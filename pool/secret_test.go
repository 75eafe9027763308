package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

// TestInitFailureLogHidesRequest: an Init request rejected by the server
// is logged without its bytes, which hold the password of an AUTH
// (redis_auth), even at debug level.
func TestInitFailureLogHidesRequest(t *testing.T) {
	const secret = "s3cret-init-7f1c"
	srv := testserver.StartRedis(t, testserver.RedisOptions{Password: "another-password"})
	var logs logBuffer
	p := newPool(t, one(srv.Addr), pool.Options{
		Framer: respFramer, IsError: redisError, Timeout: 5 * time.Second,
		Init:   [][]byte{cmd("AUTH", secret), cmd("SELECT", "1")},
		Logger: newLogger(&logs),
	})
	reply, err := p.Call(context.Background(), cmd("GET", "k"))
	require.NoError(t, err)
	assert.Contains(t, string(reply), "-NOAUTH")
	require.Eventually(t, func() bool { return logs.count("init request failed") == 1 }, waitFor, time.Millisecond)
	assert.NotContains(t, logs.String(), secret)
	assert.Contains(t, logs.String(), "init=1", "the log names the position of the failed request in Init")
}
