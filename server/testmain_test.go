package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// goroutine a server starts must stop when it is closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
