//go:build unix

package client

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used. The
// servers are other processes (memcached) or idle in-process ones, so the
// difference over a benchmark is what the client costs, whatever else
// competes for the machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
