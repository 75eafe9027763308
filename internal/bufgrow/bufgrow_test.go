package bufgrow

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNext(t *testing.T) {
	assert.Equal(t, 32<<10, Next(16<<10, 16<<10, 0), "unknown: doubles")
	assert.Equal(t, 20<<10, Next(16<<10, 16<<10, 20<<10), "never past a known need")
	assert.Equal(t, 32<<10, Next(16<<10, 16<<10, 64<<20), "too little of a large frame: doubles")
	assert.Equal(t, 64<<20, Next(2<<20, 2<<20, 64<<20), "1/32 of a large frame: its length at once")
	assert.Equal(t, 4<<20, Next(2<<20, 2<<20, 128<<20), "less than 1/32: doubles")
	assert.Equal(t, 1<<20, Next(512<<10, 512<<10, 1<<20))
}

// TestLargeFrameCost: reading a 64 MiB frame in doubling steps then one
// exact step allocates at most 1.07 times the frame.
func TestLargeFrameCost(t *testing.T) {
	const need = 64 << 20
	size, total := 16<<10, 16<<10
	for size < need {
		size = Next(size, size, need)
		total += size
	}
	assert.Equal(t, need, size)
	assert.LessOrEqual(t, float64(total), 1.07*need, "allocated %d for %d", total, need)
}
