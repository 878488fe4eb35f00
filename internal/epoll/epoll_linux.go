// Package epoll holds what corvid's epoll users share: an epoll set with an
// eventfd registered in it, which other goroutines write to interrupt the
// set's waiter.
package epoll

import (
	"fmt"
	"syscall"
	"unsafe"
)

// New returns a new epoll set and an eventfd registered in it for reading;
// the caller closes both.
func New() (epfd, wakefd int, err error) {
	epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return -1, -1, fmt.Errorf("cannot create epoll instance: %w", err)
	}
	r, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Close(epfd)
		return -1, -1, fmt.Errorf("cannot create eventfd: %w", e)
	}
	wakefd = int(r)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wakefd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		syscall.Close(wakefd)
		syscall.Close(epfd)
		return -1, -1, fmt.Errorf("cannot register eventfd: %w", err)
	}
	return epfd, wakefd, nil
}

// Wake makes the eventfd wakefd readable, interrupting an epoll_wait on
// its set.
func Wake(wakefd int) {
	one := uint64(1)
	syscall.Write(wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
}
