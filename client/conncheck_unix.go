//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package client

import (
	"net"
	"syscall"
	"time"
)

// open reports whether an idle connection is still open: the server has
// neither closed it nor sent bytes that no request asked for. It peeks at
// the socket without blocking. A connection wrapped by a custom dialer
// (TLS) is checked through its NetConn, where pending bytes may be the
// wrapper's own (a TLS session ticket) and do not condemn it; a connection
// that exposes no socket is taken as open.
func open(nc net.Conn) bool {
	wrapped := false
	sc, ok := nc.(syscall.Conn)
	if !ok {
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return true
		}
		if sc, ok = u.NetConn().(syscall.Conn); !ok {
			return true
		}
		wrapped = true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// A read deadline of the last operation may have passed while the
	// connection was idle; RawConn.Read would then not look at the socket.
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	var n int
	var rerr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
		return true // nothing to read: open
	case rerr != nil:
		return false
	case n == 0:
		return false // end of file: closed by the server
	}
	return wrapped
}
