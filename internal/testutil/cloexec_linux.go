package testutil

import (
	"os"
	"strconv"
	"syscall"
)

// closeInheritedOnExec marks the descriptors this process inherited
// (other than stdin, stdout and stderr) close-on-exec, so that memcached
// starts with only those three open, as under a service manager: memcached
// counts its connections by descriptor number, and a descriptor leaked
// from the shell that ran the tests would shift its -c limit by one.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
