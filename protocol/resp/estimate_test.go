package resp

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/walnutproxy/walnut/protocol"
)

func TestEstimateArray(t *testing.T) {
	v := strings.Repeat("v", 1000)
	full := "*3\r\n$1000\r\n" + v + "\r\n$-1\r\n$1000\r\n" + v + "\r\n"
	elem := len("$1000\r\n") + 1000 + 2
	for _, tc := range []struct {
		b    string
		want int
	}{
		{"", 0},
		{"$5\r\nhello\r\n", 0},
		{"*3\r\n", 0}, // no string begun
		{"*3\r\n$1000\r\n", 4 + 3*elem + 2*estimateSlack}, // the first string: two more like it
		{"*3\r\n$1000\r\nvvv", 4 + 3*elem + 2*estimateSlack},
		{full[:4+elem+5+10], 4 + elem + 5 + elem}, // the nil counts nothing
		{full, 0},                    // complete
		{"*2\r\n:1\r\n$1000\r\n", 0}, // not an array of strings
		{"*-1\r\n", 0},
		{"*2\r\n$x\r\n", 0},
	} {
		assert.Equal(t, tc.want, EstimateArray([]byte(tc.b), protocol.Limits{}), "%.30q", tc.b)
	}
	// An element count that would overflow gives no estimate.
	assert.Zero(t, EstimateArray([]byte("*2000000000\r\n$100000000\r\n"), protocol.Limits{}))
}

func FuzzEstimateArray(f *testing.F) {
	f.Add([]byte("*3\r\n$1000\r\nvvv"))
	f.Add([]byte("*2\r\n$-1\r\n$3\r\nab"))
	f.Fuzz(func(t *testing.T, b []byte) {
		est := EstimateArray(b, protocol.Limits{})
		if est < 0 {
			t.Fatalf("negative estimate %d", est)
		}
		if est > 0 && est <= len(b) {
			t.Fatalf("estimate %d within the %d bytes already in", est, len(b))
		}
		if n, _ := FrameReply(b, protocol.Limits{}); n > 0 && est > 0 {
			t.Fatalf("estimate %d for a complete reply of %d bytes", est, n)
		}
	})
}
