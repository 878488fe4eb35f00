//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package client

import (
	"net"
	"syscall"
	"time"
)

// peeker looks at an idle connection's socket without taking bytes from
// it. It is made once per connection, so a check allocates nothing.
type peeker struct {
	rc      syscall.RawConn
	wrapped bool // the socket carries a wrapper's records (TLS)
	fn      func(fd uintptr) bool
	n       int
	err     error
	b       [1]byte
}

// newPeeker returns a peeker for nc's socket, or nil when nc exposes none.
// A connection made by a custom dialer (TLS) is looked at through its
// NetConn.
func newPeeker(nc net.Conn) *peeker {
	p := &peeker{}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		if sc, ok = u.NetConn().(syscall.Conn); !ok {
			return nil
		}
		p.wrapped = true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p.rc = rc
	p.fn = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	p.n, _, p.err = syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}

// open reports whether idle connection nc is still open: the server has
// neither closed it nor sent bytes that no request asked for. Through a
// wrapper, pending bytes may be the wrapper's own (a TLS session ticket)
// and do not condemn the connection. Without a peeker nc is taken to be
// open.
func (p *peeker) open(nc net.Conn) bool {
	if p == nil {
		return true
	}
	// A read deadline of the last operation may have passed while the
	// connection was idle; RawConn.Read would then not look at the socket.
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	switch {
	case p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK || p.err == syscall.EINTR:
		return true // nothing to read
	case p.err != nil:
		return false
	case p.n == 0:
		return false // end of file: closed by the server
	}
	return p.wrapped
}
