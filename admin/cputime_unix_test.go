//go:build unix

package admin_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process (server, admin port and clients)
// has used: on a loaded machine a steadier measure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
