package server

import (
	"syscall"
	"unsafe"
)

// hasInput reports whether the socket fd has a byte to read, or an error
// or end of stream for a read to report: anything but EAGAIN (or EINTR).
// It reads nothing.
func hasInput(fd uintptr) bool {
	var b [1]byte
	_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e != syscall.EAGAIN && e != syscall.EINTR
}

// sendQueueEmpty reports whether the peer has taken everything written to
// the socket fd: for TCP, acknowledged it; for a Unix socket, read it.
func sendQueueEmpty(fd uintptr) bool {
	var n int32
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	return e != 0 || n == 0
}
