package proxy

import (
	"net"
	"syscall"
)

// A rawWriter makes one write attempt on a connection without waiting
// for the socket, as server/writebuf.go's writeNow does: a goroutine that
// must not block (a client's reader writing for a server connection, a
// server connection's reader writing a client's replies) writes what the
// socket takes at once and hands the rest to a goroutine that may wait.
// The write goes through the netpoller's raw connection, so it is ordered
// with blocking writes to the same socket. It is not safe for concurrent
// use: its user holds the connection's write token.
type rawWriter struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

// newRawWriter returns a rawWriter for nc, nil when nc has no descriptor
// to write so or where rawIO is false.
func newRawWriter(nc net.Conn) *rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok || !rawIO {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := new(rawWriter)
	w.use(raw)
	return w
}

// use makes w write to raw.
func (w *rawWriter) use(raw syscall.RawConn) {
	w.raw = raw
	if w.fn == nil {
		w.fn = func(fd uintptr) bool {
			w.n, w.err = writeFD(fd, w.b)
			return true // one attempt: never wait for the socket
		}
	}
}

// write writes what the socket takes of b at once and returns how many
// bytes that was.
func (w *rawWriter) write(b []byte) (int, error) {
	w.b = b
	err := w.raw.Write(w.fn)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return max(n, 0), nil
}
