//go:build !unix

package main

import (
	"os"
	"syscall"
)

// serverStopSignals stop corvid server. Without SIGUSR1, as on Windows,
// they are the interrupt (Ctrl-C) and SIGTERM (the console closing).
var serverStopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
