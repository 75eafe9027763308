package proxy_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/walnutproxy/walnut/proxy"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// Server is shut down by its test, and must take all its goroutines with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(closingEngine{m})
}

// closingEngine runs the tests, then closes the event-loop engine that
// WALNUT_TEST_LOOPS may have made, whose goroutines are not a leak.
type closingEngine struct{ m *testing.M }

func (c closingEngine) Run() int {
	code := c.m.Run()
	proxy.CloseTestEngine()
	return code
}

// verifyNoLeaks fails t if a goroutine is left behind, other than the
// loops of the engine WALNUT_TEST_LOOPS made, which outlive each test.
func verifyNoLeaks(t *testing.T) {
	goleak.VerifyNone(t, goleak.IgnoreAnyFunction("github.com/walnutproxy/walnut/proxy.(*eloop).run"))
}
