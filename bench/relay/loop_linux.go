package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"syscall"
)

// A loop owns the sockets of its pairs: it waits in epoll_wait, reads
// what a socket has and writes it to the socket's peer. A peer that does
// not take it all at once is waited for (EPOLLOUT) while its source is
// not read.
type loop struct {
	epfd  int
	ends  map[int]*end // loop goroutine only, once added
	added chan [2]*end
	wake  int // eventfd: a pair was added
}

type end struct {
	fd      int
	peer    *end
	pending []byte // read from this end, not yet taken by peer
}

func newLoop() (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	r1, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		return nil, e
	}
	l := &loop{epfd: epfd, ends: map[int]*end{}, added: make(chan [2]*end, 64), wake: int(r1)}
	return l, l.ctl(syscall.EPOLL_CTL_ADD, l.wake, syscall.EPOLLIN)
}

func (l *loop) ctl(op, fd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	return syscall.EpollCtl(l.epfd, op, fd, &ev)
}

// detach takes a connection's socket out of the Go runtime's poller: it
// returns a non-blocking duplicate and closes the connection.
func detach(nc net.Conn) (int, error) {
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = syscall.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	nc.Close()
	return fd, syscall.SetNonblock(fd, true)
}

func (l *loop) add(c, b net.Conn) error {
	cf, err := detach(c)
	if err != nil {
		return err
	}
	bf, err := detach(b)
	if err != nil {
		syscall.Close(cf)
		return err
	}
	ce, be := &end{fd: cf}, &end{fd: bf}
	ce.peer, be.peer = be, ce
	l.added <- [2]*end{ce, be}
	_, err = syscall.Write(l.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	return err
}

func (l *loop) run() {
	events := make([]syscall.EpollEvent, 128)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.EpollWait(l.epfd, events, -1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			log.Fatal(err)
		}
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			if fd == l.wake {
				l.takeAdded()
				continue
			}
			e := l.ends[fd]
			if e == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 && !l.flush(e) {
				continue
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && e.peer.pending == nil {
				l.read(e, buf)
			}
		}
	}
}

func (l *loop) takeAdded() {
	var b [8]byte
	syscall.Read(l.wake, b[:])
	for {
		select {
		case p := <-l.added:
			for _, e := range p {
				l.ends[e.fd] = e
				if err := l.ctl(syscall.EPOLL_CTL_ADD, e.fd, syscall.EPOLLIN); err != nil {
					log.Print(fmt.Errorf("epoll_ctl: %w", err))
				}
			}
		default:
			return
		}
	}
}

// read copies what e has to its peer; the peer's leftover stops e's
// reading until the peer takes it.
func (l *loop) read(e *end, buf []byte) {
	n, err := syscall.Read(e.fd, buf)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		return
	}
	if n <= 0 {
		l.close(e)
		return
	}
	w, err := syscall.Write(e.peer.fd, buf[:n])
	if err != nil && !errors.Is(err, syscall.EAGAIN) {
		l.close(e)
		return
	}
	if w = max(w, 0); w < n {
		e.peer.pending = append([]byte(nil), buf[w:n]...)
		l.ctl(syscall.EPOLL_CTL_MOD, e.fd, 0)
		l.ctl(syscall.EPOLL_CTL_MOD, e.peer.fd, syscall.EPOLLIN|syscall.EPOLLOUT)
	}
}

// flush writes e's pending bytes; it reports whether e is still open.
func (l *loop) flush(e *end) bool {
	if e.pending == nil {
		return true
	}
	w, err := syscall.Write(e.fd, e.pending)
	if err != nil && !errors.Is(err, syscall.EAGAIN) {
		l.close(e)
		return false
	}
	if e.pending = e.pending[max(w, 0):]; len(e.pending) > 0 {
		return true
	}
	e.pending = nil
	l.ctl(syscall.EPOLL_CTL_MOD, e.fd, syscall.EPOLLIN)
	l.ctl(syscall.EPOLL_CTL_MOD, e.peer.fd, syscall.EPOLLIN)
	return true
}

// close closes both ends of e's pair.
func (l *loop) close(e *end) {
	for _, x := range []*end{e, e.peer} {
		delete(l.ends, x.fd)
		syscall.Close(x.fd) // also leaves the epoll set
	}
}
