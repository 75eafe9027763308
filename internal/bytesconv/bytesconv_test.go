package bytesconv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoundTrip(t *testing.T) {
	tests := []string{"", "a", "user:{1000}:name", "\xc3\xa9t\xc3\xa9"}
	for _, give := range tests {
		t.Run(give, func(t *testing.T) {
			b := StringToBytes(give)
			assert.Equal(t, []byte(give), append([]byte{}, b...))
			assert.Equal(t, give, BytesToString(b))
		})
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = StringToBytes("walnut") }))
}
