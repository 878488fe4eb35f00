package testutil

import (
	"testing"
	"time"
)

// waitTimeout bounds WaitFor.
const waitTimeout = 10 * time.Second

// WaitFor polls cond every few milliseconds until it returns true, and fails
// the test if that takes longer than ten seconds.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", waitTimeout)
		}
		time.Sleep(delay)
	}
}
