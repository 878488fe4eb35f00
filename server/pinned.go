package server

import "github.com/corvidcache/corvid/storage"

// testHookCopyValues, set before a server starts, makes its connections
// copy every value through their read and write buffers, as datagrams
// do, for the tests of the buffer bounds.
var testHookCopyValues bool

// pinValue makes p, a pinned value that ok reports pinned, the value
// written after the replies in wbuf (conn.pend), and reports whether it
// did: false when the connection copies values (a datagram) or nothing was
// pinned, and the caller then copies the value into wbuf.
func (c *conn) pinValue(p storage.Pinned, ok bool) bool {
	if !ok {
		return false
	}
	if !c.stream || c.pend.Len() > 0 {
		p.Release()
		return false
	}
	c.pend = p
	return true
}

// writePinned writes the pinned value, blocking until the socket has taken
// it (goroutine mode, once wbuf is written). A blocked write costs no
// write-buffer memory: the value is the cache's, pinned, so it is not
// counted in write_buf_bytes, and a shutdown ends it by closing the socket.
func (c *conn) writePinned() error {
	c.state.Store(connMwrite)
	for c.pend.Len() > 0 {
		n, err := c.nc.Write(c.pend.Next())
		c.pend.Skip(n)
		c.stats.bytesWritten += uint64(n)
		if err != nil {
			return err
		}
	}
	return nil
}
