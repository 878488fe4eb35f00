package server

import "syscall"

// processTimes returns the user and system CPU time the process has used,
// in microseconds, as memcached's rusage_user and rusage_system report.
// Windows has no getrusage: the times come from GetProcessTimes.
func processTimes() (user, system int64) {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0, 0
	}
	var created, exited, kernel, usr syscall.Filetime
	if syscall.GetProcessTimes(h, &created, &exited, &kernel, &usr) != nil {
		return 0, 0
	}
	return filetimeMicros(usr), filetimeMicros(kernel)
}

// filetimeMicros converts a duration counted in 100 ns intervals, as
// GetProcessTimes reports one, to microseconds.
func filetimeMicros(f syscall.Filetime) int64 {
	return (int64(f.HighDateTime)<<32 | int64(f.LowDateTime)) / 10
}
