package proxy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/walnutproxy/walnut/protocol"
)

// redis-server sends attributes only from modules and DEBUG PROTOCOL
// (which the proxy refuses), so the merge's handling of them is checked on
// replies written by hand.
func TestAttributeLen(t *testing.T) {
	lim := protocol.Limits{}.WithDefaults()
	tests := []struct {
		give string
		want int
	}{
		{":1\r\n", 0},
		{"*2\r\n_\r\n$1\r\na\r\n", 0},
		{"|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.19\r\n*1\r\n_\r\n", len("|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.19\r\n")},
		{"|0\r\n:3\r\n", len("|0\r\n")},
		{"|1\r\n+k\r\n:1\r\n", len("|1\r\n+k\r\n:1\r\n")},
		{"|1\r\n+k\r\n", -1}, // a key without its value
		{"|x\r\n:3\r\n", -1},
		{"|2\r\n+k\r\n:1\r\n", -1},
		{"", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, attributeLen([]byte(tt.give), lim), "%q", tt.give)
	}
	assert.True(t, isErrorReply([]byte("-ERR x\r\n")))
	assert.True(t, isErrorReply([]byte("!5\r\nERR x\r\n")))
	assert.False(t, isErrorReply([]byte("+OK\r\n")))
	assert.False(t, isErrorReply(nil))
}
