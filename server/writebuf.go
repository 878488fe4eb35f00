package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
// asks and does not read makes the server hold what it asked for. (Not a
// value larger than slab_chunk_max: a stream connection writes it after
// its write buffer from the item's own chunks, which it pins until they
// are written, as memcached holds a reference to the item (conn.pend). That
// memory is the cache's, within its limit and shared by every reader of
// the value, and is not counted here; the write buffer before it is.) Each
// connection holds at most about flushSize or one value (a multi-get
// stops at a full socket), but that is per connection: a total needs a
// bound of its own. Only blocked buffers count: a buffer is counted from
// the write that found the socket full (the event loop's flush that left
// replies in it, or in goroutine mode the write that could not complete
// at once and goes on blocking) until the socket has taken it all. A
// client that reads its replies as they come is then not counted, or for
// the moment its socket takes to drain, and the count is the memory that
// clients hold the server to. A blocked buffer that would take the total
// past the limit may still go on within the allowance past it (over),
// while its socket keeps taking something (block): a client that reads,
// only slower than the server writes, is not closed for what others hold.
// A connection whose blocked buffer would pass the allowance, or whose
// socket stalls while past the limit, is closed, as the one asking for
// more while the server is full; the buffers already held are left to the
// connections that hold them. It is safe for concurrent use.
//
// In goroutine mode a connection cannot know that its socket is full
// before it has built the reply, so a buffer grown past flushSize is
// counted from before it is allocated (grow), against the limit plus
// over: room for the replies in flight to clients that read, and for a
// few connections at a time to find their socket full. Clients that never
// read keep that room full, so a request that came after the socket had
// taken every earlier reply at once, with no input left behind them (a
// client that waits for its replies, see conn.reader), may also use
// readerRoom past it: a client that reads is not made to wait for each
// large reply behind those that do not. Pipelined requests, and the
// requests of a connection whose replies found its socket full, do not. The write that
// then blocks is judged by block, as on an event loop. A
// connection refused before its buffer grows allocates nothing, so
// hundreds of clients asking at once cannot make the server build
// hundreds of large replies before the first of them finds its socket
// full.
type writeBufs struct {
	bytes atomic.Int64  // write_buf_bytes
	oom   atomic.Uint64 // write_buf_oom
	limit int64         // 0: none
	over  int64         // what grow may take past limit
	// readerRoom is what grow, in goroutine mode, may take past
	// limit+over for the request of a client that reads (conn.reader):
	// clients that do not read fill limit+over and keep it full, and a
	// client that reads would otherwise wait behind them for room for
	// each large reply.
	readerRoom int64

	// Gets waiting for room (waitRoom) are woken when bytes go down:
	// waiters counts them, and freed, made while they wait, is closed and
	// dropped by the first decrease after it was made.
	waiters atomic.Int32
	freedMu sync.Mutex
	freed   chan struct{}
}

// waitPoll bounds how long a get waiting for room sleeps between looks at
// whether its connection is stopped.
const waitPoll = 50 * time.Millisecond

// freedChan returns the channel the next decrease of bytes closes.
func (m *writeBufs) freedChan() chan struct{} {
	m.freedMu.Lock()
	defer m.freedMu.Unlock()
	if m.freed == nil {
		m.freed = make(chan struct{})
	}
	return m.freed
}

// notifyFreed wakes the gets waiting for room, if any.
func (m *writeBufs) notifyFreed() {
	if m.waiters.Load() == 0 {
		return
	}
	m.freedMu.Lock()
	if m.freed != nil {
		close(m.freed)
		m.freed = nil
	}
	m.freedMu.Unlock()
}

// hold sets the bytes a connection holds blocked, counted in *held, to n.
// It reports false, counting a write_buf_oom and leaving *held as it
// was, when n is more than *held and the total would pass the limit.
func (m *writeBufs) hold(held *int64, n int64) bool {
	if n == *held {
		return true
	}
	return m.count(m.set(held, n, m.limit))
}

// blockGraceFor is how long a goroutine's write may block while the
// total is past the limit but within the allowance past it (see block).
const blockGraceFor = time.Second

// How a goroutine's write that is about to block may go on (block).
const (
	blockRefused = iota // the connection ends (a write_buf_oom)
	blockGrace          // for blockGraceFor at most
	blockWait           // as long as it takes
)

// block is hold for a goroutine's write that is about to block, whose
// buffer grow may have counted already. Within the limit the write may
// wait as long as it takes (blockWait). Past it but within the allowance
// past it, the write may go on for blockGraceFor (blockGrace): a client
// that reads takes its reply by then, and is not closed for what clients
// that do not read hold; the memory is counted all the while. Past both it
// reports blockRefused, counting a write_buf_oom.
func (m *writeBufs) block(held *int64, n int64, reader bool) int {
	if m.set(held, n, m.limit) {
		return blockWait
	}
	if m.set(held, n, m.bound(reader)) {
		return blockGrace
	}
	m.oom.Add(1)
	return blockRefused
}

// count counts a write_buf_oom unless ok.
func (m *writeBufs) count(ok bool) bool {
	if !ok {
		m.oom.Add(1)
	}
	return ok
}

// grow sets the bytes a connection's buffer is about to grow to, counted
// in *held, to n, allowing the total up to the limit plus m.over (and
// readerRoom for a reader). It reports false as hold does, but counts no
// write_buf_oom: the caller may wait for room (waitRoom) instead of
// ending the connection.
func (m *writeBufs) grow(held *int64, n int64, reader bool) bool {
	return m.set(held, n, m.bound(reader))
}

// bound is the total that grow allows: the limit and the allowance past
// it, and readerRoom for a reader.
func (m *writeBufs) bound(reader bool) int64 {
	if reader {
		return m.limit + m.over + m.readerRoom
	}
	return m.limit + m.over
}

// waitRoomFor bounds how long a get waits for room for the reply to one
// key.
const waitRoomFor = 5 * time.Second

// waitRoom waits until grow has room for n more bytes, reporting false
// when there is none by deadline (counted as a write_buf_oom) or once
// *stopped is set: a stopping server closes its connections within its
// shutdown grace, and a reply that would wait for room would hold its
// stop up instead. A get's deadline is waitRoomFor from its first wait:
// the room it finds may be taken by others before it grows its buffer,
// and it then waits again until the same deadline. The room taken by
// grow past the limit is held by replies in flight, given back as their
// sockets take them or their connections close, so the wait is short; a
// waiting get sleeps until the total goes down, or waitPoll passes.
func (m *writeBufs) waitRoom(n int64, reader bool, deadline time.Time, stopped *atomic.Bool) bool {
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for {
		// The channel is taken before the look, so that a decrease
		// between the two is not missed.
		freed := m.freedChan()
		if m.bytes.Load()+n <= m.bound(reader) {
			return true
		}
		if stopped.Load() {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			m.oom.Add(1)
			return false
		}
		t := time.NewTimer(min(left, waitPoll))
		select {
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// set sets *held to n, adding the difference to the total, unless n is at
// least *held and the total would then be more than bound (a limit is
// set): then it reports false and leaves *held as it was.
func (m *writeBufs) set(held *int64, n, bound int64) bool {
	delta := n - *held
	if delta < 0 || m.limit == 0 {
		m.bytes.Add(delta)
		*held = n
		if delta < 0 {
			m.notifyFreed()
		}
		return true
	}
	if total := m.bytes.Add(delta); total > bound {
		m.bytes.Add(-delta)
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
	if c.rawConn() == nil {
		return 0, nil
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

// rawConn returns the socket's raw connection (nil when it has no
// descriptor, as a TLS connection, or where rawIO is false), making it
// and the functions that use it at the first call.
func (c *conn) rawConn() syscall.RawConn {
	if c.raw != nil || !rawIO {
		return c.raw
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	c.raw = rc
	c.rawWrite = func(fd uintptr) bool {
		c.rawN, c.rawErr = writeFD(fd, c.wbuf[c.rawFrom:])
		return true // one attempt: never wait for the socket
	}
	c.rawPeek = func(fd uintptr) bool { return hasInput(fd) }
	return rc
}

// waitInput waits until the socket has input, or an error or end of
// stream to report, or its read deadline passes, without a buffer to read
// into. Without a descriptor it returns at once, and the read waits.
func (c *conn) waitInput() error {
	rc := c.rawConn()
	if rc == nil {
		return nil
	}
	return rc.Read(c.rawPeek)
}
