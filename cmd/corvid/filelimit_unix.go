//go:build unix

package main

import "syscall"

// fileLimitHeadroom is how many descriptors beyond -c corvid asks for:
// memcached's -c counts its own descriptors, corvid's are others (the Go
// runtime's, the event loops', the admin port, the command log).
const fileLimitHeadroom = 64

// raiseFileLimit makes room in RLIMIT_NOFILE for maxConns connections, as
// memcached sets the limit from -c, and fails with memcached's message
// when the limit cannot be raised to -c (a user other than root asking
// for more than the hard limit). It never lowers the limit: memcached
// sets it to -c exactly, but corvid counts -c as memcached does without
// needing that (see server.Config.MaxConns).
func raiseFileLimit(maxConns int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return exitError{"failed to getrlimit number of files", exOSErr}
	}
	want := uint64(maxConns) + fileLimitHeadroom
	if rl.Cur >= want {
		return nil
	}
	if rl.Max >= want {
		rl.Cur = want
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		return nil
	}
	for _, n := range []uint64{want, uint64(maxConns)} {
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}) == nil {
			return nil
		}
	}
	if rl.Max >= uint64(maxConns) {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		return nil
	}
	return exitError{"failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.", exOSErr}
}
