package memcache

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/walnutproxy/walnut/protocol"
)

func TestEstimateValues(t *testing.T) {
	v := strings.Repeat("v", 1000)
	block := "VALUE k 0 1000\r\n" + v + "\r\n"
	for _, tc := range []struct {
		b     string
		nkeys int
		want  int
	}{
		{"", 3, 0},
		{"VALUE k 0 1000\r\n", 3, 3*len(block) + 2*estimateSlack + 5},
		{"VALUE k 0 1000\r\nvv", 1, len(block) + 5},
		{block + "VALUE k 0 1000\r\nvv", 3, 3*len(block) + estimateSlack + 5},
		{"VALUE k 0", 3, 0},       // line incomplete
		{"END\r\n", 3, 0},         // not a value
		{block + "END\r\n", 1, 0}, // complete
		{"VALUE k 0 1000\r\n", 0, 0},
	} {
		assert.Equal(t, tc.want, EstimateValues([]byte(tc.b), tc.nkeys, protocol.Limits{}), "%.30q %d", tc.b, tc.nkeys)
	}
	assert.Zero(t, EstimateValues([]byte("VALUE k 0 100000000\r\n"), 1<<40, protocol.Limits{}), "no overflow")
}

func TestCountKeys(t *testing.T) {
	assert.Equal(t, 3, CountKeys([]byte("get a b c\r\n"), Get))
	assert.Equal(t, 1, CountKeys([]byte("gets  a\r\n"), Gets))
	assert.Equal(t, 2, CountKeys([]byte("gat 10 a b\r\n"), Gat))
	assert.Equal(t, 0, CountKeys([]byte("set a 0 0 1\r\n"), Set))
	assert.Equal(t, 0, CountKeys([]byte("get\r\n"), Get))
}

func FuzzEstimateValues(f *testing.F) {
	f.Add([]byte("VALUE k 0 1000\r\nvv"), 3)
	f.Add([]byte("VALUE k 0 1 5\r\nv\r\nVALUE j 0 10\r\n"), 2)
	f.Fuzz(func(t *testing.T, b []byte, nkeys int) {
		if nkeys < 0 || nkeys > 1<<20 {
			return
		}
		est := EstimateValues(b, nkeys, protocol.Limits{})
		if est < 0 || (est > 0 && est <= len(b)) {
			t.Fatalf("estimate %d for %d bytes in", est, len(b))
		}
	})
}
