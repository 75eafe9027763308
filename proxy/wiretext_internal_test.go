package proxy

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/walnutproxy/walnut/pool"
)

// TestWireText: a request that fails in the pool is answered with
// twemproxy's words for the failure, whatever the pool's own error text.
func TestWireText(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{pool.ErrConnRefused, "Connection refused"},
		{pool.ErrEjected, "Connection refused"},
		{pool.ErrTimedOut, "Connection timed out"},
		{pool.ErrEOF, "unknown"},
		{pool.ErrUnknown, "unknown"},
		{pool.ErrConnReset, "Connection reset by peer"},
		{pool.ErrHostDown, "Host is down"},
		{pool.ErrInvalid, "Invalid argument"},
		{pool.ErrClosed, "pool: closed"},
		{fmt.Errorf("pool: %w", syscall.EPIPE), "Broken pipe"},
		{syscall.EHOSTUNREACH, "No route to host"},
		{fmt.Errorf("something else"), "unknown"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, wireText(tt.give), "%v", tt.give)
	}
}
