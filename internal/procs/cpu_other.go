//go:build !unix

package procs

import "time"

// cpuTime cannot be read here: the Scaler leaves GOMAXPROCS as it is.
func cpuTime() (time.Duration, bool) { return 0, false }
