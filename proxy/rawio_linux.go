package proxy

import (
	"syscall"
	"unsafe"

	"github.com/corvidcache/corvid/internal/race"
)

// rawIO is true where a socket's descriptor can be read and written
// without waiting through its raw connection: a client's reader then holds
// no buffer while it waits (readBuf), and replies and requests are written
// by the goroutine that has them when the socket takes them at once
// (rawWriter).
const rawIO = true

// readFD makes one read from the non-blocking descriptor fd into b. It is
// a raw system call: the socket never blocks, so the goroutine keeps its
// processor through it, and the runtime's monitor cannot hand the
// processor to another thread (a wake-up and a context switch) while the
// kernel delivers the data.
func readFD(fd uintptr, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(p), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	race.WriteRange(b[:n])
	return int(n), nil
}

// writeFD makes one write of b to the non-blocking descriptor fd, a raw
// system call as readFD.
func writeFD(fd uintptr, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	race.ReadRange(b)
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(p), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
