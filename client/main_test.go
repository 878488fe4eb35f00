package client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the Client starts
// none of its own beyond the length of a call.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
