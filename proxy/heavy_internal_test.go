//go:build linux

package proxy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHeavyAdmission checks the loop's budget of heavy windows: light
// windows always go, one heavy window always goes, others go while the
// budget allows and wait in order otherwise, a parked client that closed
// is skipped, and the budget comes back whole.
func TestHeavyAdmission(t *testing.T) {
	l := &eloop{}
	cl := func() *evClient { return &evClient{l: l, st: evReading} }
	a, b, c, d, e := cl(), cl(), cl(), cl(), cl()

	assert.True(t, l.admit(a, heavyWindow-1), "a light window is not budgeted")
	assert.Zero(t, l.heavy)
	assert.True(t, l.admit(a, heavyBudget+1), "one heavy window goes even past the budget")
	assert.False(t, l.admit(b, heavyWindow), "another waits while it is in flight")
	assert.True(t, l.admit(e, 100), "light windows are never held back")
	assert.False(t, l.admit(c, heavyWindow))
	assert.False(t, l.admit(d, heavyWindow))
	require.Equal(t, []*evClient{b, c, d}, l.parked)

	c.st = evClosed // closed while parked
	l.heavyDone(a)
	assert.Equal(t, []*evClient{b, d}, l.again, "the parked clients go on in order; the closed one is skipped")
	assert.False(t, b.parked || d.parked)
	assert.Equal(t, 2*heavyWindow, l.heavy, "admitted when let go")
	assert.True(t, l.admit(b, heavyWindow), "a client let go is admitted without counting twice")
	assert.Equal(t, 2*heavyWindow, l.heavy)

	// d closes before it sends its window: its share comes back.
	l.heavyDone(d)
	l.heavyDone(b)
	assert.Zero(t, l.heavy)
	assert.Empty(t, l.parked)

	// Within the budget several heavy windows go at once.
	n := 0
	for range heavyBudget / heavyWindow {
		if l.admit(cl(), heavyWindow) {
			n++
		}
	}
	assert.Equal(t, heavyBudget/heavyWindow, n)
	assert.False(t, l.admit(cl(), heavyWindow), "past the budget")
}
