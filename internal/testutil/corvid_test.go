package testutil

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/corvidcache/corvid/server"
)

// TestStartCorvidEndsAtOnce ends each subtest right after its server
// starts, yielding a varying few times first, so that the cleanup's Close
// runs before, while or just after Serve's goroutine starts its accept
// loops. Under -race it catches a Serve that counts those goroutines in
// the server's WaitGroup without ordering that against a concurrent Close
// (whose Wait then races with the Add): a race any suite can hit when a
// test ends before its server has accepted a connection.
func TestStartCorvidEndsAtOnce(t *testing.T) {
	for i := range 100 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			StartCorvid(t, server.Config{})
			for range i % 4 {
				runtime.Gosched()
			}
		})
	}
}
