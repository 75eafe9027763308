package protocol_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/walnutproxy/walnut/protocol"
)

func TestError(t *testing.T) {
	var err error = &protocol.Error{Kind: protocol.Redis, Reply: "ERR Protocol error: invalid bulk length", TooLarge: true}
	assert.ErrorIs(t, err, protocol.ErrProtocol)
	assert.ErrorIs(t, err, protocol.ErrTooLarge)
	assert.Equal(t, "protocol: redis: ERR Protocol error: invalid bulk length", err.Error())

	wrapped := fmt.Errorf("client 7: %w", &protocol.Error{Kind: protocol.Memcache, Reply: "CLIENT_ERROR bad data chunk"})
	assert.ErrorIs(t, wrapped, protocol.ErrProtocol)
	assert.NotErrorIs(t, wrapped, protocol.ErrTooLarge)
	var pe *protocol.Error
	assert.True(t, errors.As(wrapped, &pe))
	assert.Equal(t, "CLIENT_ERROR bad data chunk", pe.Reply)
}

func TestLimitsWithDefaults(t *testing.T) {
	got := protocol.Limits{MaxBulk: 100}.WithDefaults()
	assert.Equal(t, protocol.Limits{MaxArgs: protocol.DefaultMaxArgs, MaxBulk: 100, MaxLine: protocol.DefaultMaxLine, MaxDepth: protocol.DefaultMaxDepth, MaxRequest: protocol.DefaultMaxRequest}, got)
	huge := protocol.Limits{MaxArgs: math.MaxInt, MaxBulk: math.MaxInt, MaxLine: math.MaxInt, MaxDepth: math.MaxInt, MaxRequest: math.MaxInt}.WithDefaults()
	assert.Equal(t, protocol.Limits{MaxArgs: protocol.CeilingMaxArgs, MaxBulk: protocol.CeilingMaxBulk, MaxLine: protocol.CeilingMaxLine, MaxDepth: protocol.CeilingMaxDepth, MaxRequest: protocol.CeilingMaxRequest}, huge)
	assert.Equal(t, protocol.Limits{}.WithDefaults(), protocol.Limits{MaxArgs: -1, MaxBulk: -5}.WithDefaults().WithDefaults())
}

func TestKind(t *testing.T) {
	assert.Equal(t, "redis", protocol.Redis.String())
	assert.Equal(t, "memcache", protocol.Memcache.String())
	assert.Equal(t, "Kind(0)", protocol.Kind(0).String())
}
