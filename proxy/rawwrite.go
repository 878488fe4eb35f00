package proxy

import (
	"io"
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
	raw := rawConnOf(nc)
	if raw == nil {
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

// A rawReader reads a connection as net.Conn's Read does (waiting through
// the netpoller, deadlines kept), but makes the read itself with readFD,
// which on Linux is a raw system call: the reading goroutine keeps its
// processor through it, so a read neither wakes the runtime's monitor nor
// lets it hand the processor to another thread. It is not safe for
// concurrent use.
type rawReader struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

// newRawReader returns a rawReader for nc, nil when nc has no descriptor
// to read so or where rawIO is false.
func newRawReader(nc net.Conn) *rawReader {
	raw := rawConnOf(nc)
	if raw == nil {
		return nil
	}
	r := &rawReader{raw: raw}
	r.fn = func(fd uintptr) bool {
		r.n, r.err = readNow(fd, r.b)
		return r.err != syscall.EAGAIN
	}
	return r
}

// rawConnOf returns nc's raw connection, nil when it has no descriptor to
// read and write directly or where rawIO is false.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok || !rawIO {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// readNow makes one read from the descriptor fd into b, again when a
// signal interrupted it: EAGAIN when there is nothing to read.
func readNow(fd uintptr, b []byte) (int, error) {
	for {
		n, err := readFD(fd, b)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// read reads into b, waiting until there is something to read, the
// connection's read deadline passes or it is closed; it returns io.EOF
// when the peer has closed.
func (r *rawReader) read(b []byte) (int, error) {
	r.b = b
	err := r.raw.Read(r.fn)
	n, rerr := r.n, r.err
	r.b, r.n, r.err = nil, 0, nil
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n <= 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// readOnce makes one read into b without waiting: EAGAIN when there is
// nothing to read, 0 and nil at the end of the stream. The event loop
// reads so, once epoll has told it the socket is readable.
func (r *rawReader) readOnce(b []byte) (int, error) {
	n := 0
	var rerr error
	err := r.raw.Control(func(fd uintptr) { n, rerr = readNow(fd, b) })
	if err != nil {
		return 0, err
	}
	return max(n, 0), rerr
}

// readReady reads into b what the connection holds now, without waiting
// and whatever its read deadline: 0 when there is nothing (or an error,
// which the next read reports).
func (r *rawReader) readReady(b []byte) int {
	n := 0
	r.raw.Control(func(fd uintptr) { n, _ = readNow(fd, b) })
	return max(n, 0)
}
