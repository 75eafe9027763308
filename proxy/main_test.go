package proxy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// Server is shut down by its test, and must take all its goroutines with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
