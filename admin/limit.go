package admin

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener closes the connections it accepts beyond max open ones,
// as soon as they are accepted: the listen backlog keeps draining, and
// the port never holds more than max descriptors however many peers
// connect and stall.
type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: nc, l: l}, nil
		}
		l.open.Add(-1)
		nc.Close()
	}
}

// limitConn gives its slot back when it is first closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
