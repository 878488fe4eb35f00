package server

import (
	"errors"
	"sync/atomic"
	"syscall"
)

// defaultWriteBufMemLimit is the bound on blocked reply memory when
// Config.WriteBufMemLimit is 0 and the item size limit is small enough.
const defaultWriteBufMemLimit = 64 << 20

// errWriteBufLimit ends a connection whose blocked replies would take the
// server's write-buffer memory past its limit.
var errWriteBufLimit = errors.New("server: write buffers over write_buf_mem_limit")

// writeBufs counts the memory of the write buffers of connections whose
// client does not take its replies as fast as they come, reported as
// write_buf_bytes and write_buf_oom, and bounds it.
//
// A reply is copied into its connection's write buffer, so a client that
// asks and does not read makes the server hold what it asked for. Each
// connection holds at most about flushSize or one value (a multi-get
// stops at a full socket), but that is per connection: a total needs a
// bound of its own. Only blocked buffers count: a buffer is counted from
// the write that found the socket full (the event loop's flush that left
// replies in it, or in goroutine mode the write that could not complete
// at once and goes on blocking) until the socket has taken it all. A
// client that reads its replies as they come is then not counted, or for
// the moment its socket takes to drain, and the count is the memory that
// clients hold the server to. A connection whose blocked buffer would
// take the total past the limit is closed, as the one asking for more
// while the server is full; the buffers already held are left to the
// connections that hold them. It is safe for concurrent use.
type writeBufs struct {
	bytes atomic.Int64  // write_buf_bytes
	oom   atomic.Uint64 // write_buf_oom
	limit int64         // 0: none
}

// hold sets the bytes a connection holds blocked, counted in *held, to n.
// It reports false, counting a write_buf_oom and leaving *held as it
// was, when n is more than *held and the total would pass the limit.
func (m *writeBufs) hold(held *int64, n int64) bool {
	delta := n - *held
	if delta == 0 {
		return true
	}
	if total := m.bytes.Add(delta); delta > 0 && m.limit > 0 && total > m.limit {
		m.bytes.Add(-delta)
		m.oom.Add(1)
		return false
	}
	*held = n
	return true
}

// writeNow writes what the socket takes of c.wbuf[from:] at once, without
// waiting, and returns how many bytes it wrote; 0 when the connection has
// no descriptor to write so. The write goes through the netpoller's raw
// connection, so it is ordered with blocking writes to the same socket.
func (c *conn) writeNow(from int) (int, error) {
	if c.raw == nil {
		sc, ok := c.nc.(syscall.Conn)
		if !ok {
			return 0, nil
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return 0, nil
		}
		c.raw = rc
		c.rawWrite = func(fd uintptr) bool {
			c.rawN, c.rawErr = syscall.Write(int(fd), c.wbuf[c.rawFrom:])
			return true // one attempt: never wait for the socket
		}
	}
	c.rawFrom = from
	if err := c.raw.Write(c.rawWrite); err != nil {
		return 0, err
	}
	n, err := c.rawN, c.rawErr
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
