//go:build unix

package server

import "syscall"

// processTimes returns the user and system CPU time the process has used,
// in microseconds, as memcached's rusage_user and rusage_system report.
func processTimes() (user, system int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return timevalMicros(ru.Utime), timevalMicros(ru.Stime)
}

func timevalMicros(t syscall.Timeval) int64 {
	return int64(t.Sec)*1e6 + int64(t.Usec)
}
