package proxy

import (
	"math"
	"syscall"
	"unsafe"
)

// siocoutqnsd is Linux's SIOCOUTQNSD: the bytes of a TCP socket's send
// queue not yet sent.
const siocoutqnsd = 0x894B

// unsentBytes returns the bytes cl's socket has been given and has not
// sent (the peer's window is closed when it does not read), or -1 when
// that cannot be known. A client that reads what it is given has none by
// the time it asks again.
func (cl *client) unsentBytes() int {
	if cl.raw == nil {
		return -1
	}
	n := -1
	err := cl.raw.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutqnsd, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	if err != nil {
		// Closed: it reads nothing more, whatever its writer does.
		return math.MaxInt32
	}
	return n
}
