//go:build unix

package main

import (
	"os"
	"syscall"
)

// serverStopSignals stop corvid server, as they stop memcached: SIGUSR1
// too, memcached's graceful stop.
var serverStopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1}
