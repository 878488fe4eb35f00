package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/corvidcache/corvid/internal/epoll"
	"github.com/corvidcache/corvid/internal/rawio"
)

// An event loop serves many connections from one goroutine, the way
// memcached's worker threads do: it blocks in epoll_wait and, for each
// ready socket, reads into the connection's buffer, runs process, and writes
// the replies without blocking. Replies the socket does not take at once
// stay in wbuf; the connection then waits for EPOLLOUT and reads nothing
// more until they are out. Sockets are taken out of Go's netpoller (a
// duplicate descriptor replaces the net.Conn) so the runtime never parks or
// wakes a goroutine per request.
//
// Only the loop's goroutine touches its connections. New connections reach
// it through pending, guarded by mu, and an eventfd write that interrupts
// epoll_wait; Close wakes it the same way. Lock order: Server.mu before
// loop.mu.

const (
	epollIn  = syscall.EPOLLIN | syscall.EPOLLRDHUP
	epollOut = syscall.EPOLLOUT
	// stopPollMsec is how often a stopping loop checks whether the
	// connections still writing their last replies have finished.
	stopPollMsec = 10
	// maxSpare is how many read buffers a loop keeps for reuse; more go
	// back to the shared pools.
	maxSpare = 16
)

type loop struct {
	srv    *Server
	epfd   int
	wakefd int // eventfd: written to interrupt epoll_wait

	stopping atomic.Bool
	// killing is set when the shutdown grace is over: the connections
	// still writing replies are closed too.
	killing atomic.Bool

	mu      sync.Mutex // guards pending, done, and wakefd once done
	pending []*pollConn
	done    bool // the loop is exiting; poll releases new connections itself

	// conns holds the loop's connections indexed by descriptor (nil
	// where the loop has none), so an event finds its connection with
	// an index rather than a map lookup; nconns counts them. Loop
	// goroutine only.
	conns  []*pollConn
	nconns int
	// now is the server's monotonic clock (Server.monotonic) at the
	// last wake-up: the idle timeout and the yields count on it, so a
	// step of the wall clock kicks no connection.
	now       int64
	lastIdle  int64 // when the idle sweep last ran
	lastYield int64 // when the loop last went through the scheduler
	// spare holds read buffers of drained connections for the next
	// connection that has input, as memcached's per-thread read buffer
	// cache does: an idle connection then holds no read buffer.
	spare [][]byte
	// spareBytes is the size of spare as of the loop's last wake-up,
	// for read_buf_bytes_free.
	spareBytes atomic.Int64
	// again holds the connections whose long get line stopped to let
	// the others be served: the loop goes on with them after the events
	// of its next wake-up, which does not wait. nextAgain is the other
	// half of the double buffer.
	again, nextAgain []*pollConn
	// grace holds the connections whose blocked replies are allowed past
	// write_buf_mem_limit, within the allowance past it, for
	// blockGraceFor (see writeBufs.block): the loop closes those still
	// blocked then. Loop goroutine only.
	grace []*pollConn
}

// pollConn is a connection owned by an event loop.
type pollConn struct {
	c    *conn
	l    *loop
	fd   int
	wpos int  // wbuf[:wpos] is written
	need int  // what process last asked for, for prepareRead
	out  bool // registered for EPOLLOUT: replies are pending
	// again is set while the connection is in its loop's again list.
	again bool
	// lastCmdAt is when the connection was accepted or last handled a
	// command (on the loop's clock, l.now), for the idle timeout.
	lastCmdAt int64
	// graceSince is when the connection's blocked replies went past
	// write_buf_mem_limit (l.now), 0 when they are within it; inGrace
	// is set while the connection is in its loop's grace list.
	graceSince int64
	inGrace    bool
}

// startLoops creates Config.EventLoops event loops and starts their
// goroutines.
func (s *Server) startLoops() error {
	for range s.cfg.EventLoops {
		l, err := newLoop(s)
		if err != nil {
			return err
		}
		s.loops = append(s.loops, l)
		s.wg.Add(1)
		go l.run()
	}
	return nil
}

// stopLoops tells every event loop to answer what its connections have
// read, close them and exit. The caller holds s.mu.
func (s *Server) stopLoops() {
	for _, l := range s.loops {
		l.mu.Lock()
		l.stopping.Store(true)
		if !l.done {
			l.wakeLocked()
		}
		l.mu.Unlock()
	}
}

// killLoops tells every stopping event loop to close its connections
// still writing replies. The caller holds s.mu.
func (s *Server) killLoops() {
	for _, l := range s.loops {
		l.mu.Lock()
		l.killing.Store(true)
		if !l.done {
			l.wakeLocked()
		}
		l.mu.Unlock()
	}
}

// poll hands c to an event loop. It reports false, leaving c.nc open, when
// the connection's descriptor cannot be taken over; the caller then serves
// it with a goroutine.
func (s *Server) poll(c *conn) bool {
	fd, err := detach(c.nc)
	if err != nil {
		s.cfg.Logger.Warn("cannot move connection to an event loop", "err", err)
		return false
	}
	l := s.loops[int(s.nextLoop.Add(1)-1)%len(s.loops)]
	pc := &pollConn{c: c, l: l, fd: fd}
	c.flushFn = pc.flush
	c.onLoop = true
	c.sfd.Store(int32(fd))
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		pc.release()
		return true
	}
	if len(l.pending) == 0 {
		l.wakeLocked()
	}
	l.pending = append(l.pending, pc)
	l.mu.Unlock()
	return true
}

// detach takes nc's socket out of Go's netpoller: it duplicates the
// descriptor (the copy shares the open file, so the socket stays open and
// non-blocking) and closes nc, which unregisters the original.
func detach(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("cannot detach %T: no file descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("cannot detach connection: %w", err)
	}
	fd := -1
	var dupErr error
	err = rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = e
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return -1, fmt.Errorf("cannot duplicate socket: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("cannot set socket non-blocking: %w", err)
	}
	nc.Close()
	return fd, nil
}

func newLoop(s *Server) (*loop, error) {
	epfd, wakefd, err := epoll.New()
	if err != nil {
		return nil, err
	}
	return &loop{srv: s, epfd: epfd, wakefd: wakefd}, nil
}

// wakeLocked interrupts the loop's epoll_wait. The caller holds l.mu and
// has checked that the loop is not done (its eventfd is then closed).
func (l *loop) wakeLocked() {
	epoll.Wake(l.wakefd)
}

func (l *loop) run() {
	defer l.srv.wg.Done()
	defer func() {
		syscall.Close(l.wakefd)
		syscall.Close(l.epfd)
	}()
	idle := l.srv.cfg.IdleTimeout
	msec := -1
	if idle > 0 {
		// Sweep often enough that a connection is kicked within a
		// quarter of the timeout of when it is due.
		msec = int(idleSweep(idle) / time.Millisecond)
	}
	events := make([]syscall.EpollEvent, 256)
	l.now = l.srv.monotonic()
	l.lastIdle = l.now
	for {
		wait := msec
		if l.stopping.Load() {
			wait = stopPollMsec
		}
		if len(l.grace) > 0 && (wait < 0 || wait > graceSweepMsec) {
			wait = graceSweepMsec
		}
		if len(l.again) > 0 {
			wait = 0
		}
		n, err := syscall.EpollWait(l.epfd, events, wait)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			l.srv.cfg.Logger.Error("epoll_wait failed", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		l.now = l.srv.monotonic()
		woken := false
		// Each connection is read one step before it is served, so the
		// cache lines its requests' keys need, prefetched when it is read,
		// arrive while the connection before it is served.
		var next *pollConn
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(l.wakefd) {
				var buf [8]byte
				syscall.Read(l.wakefd, buf[:])
				woken = true
				continue
			}
			if pc := l.conn(ev.Fd); pc != nil && pc.read(ev.Events) {
				if next != nil {
					next.serve()
				}
				next = pc
			}
		}
		if next != nil {
			next.serve()
		}
		busy := n > 0 || len(l.again) > 0
		l.serveAgain()
		if woken {
			l.addPending()
		}
		if n := int64(len(l.spare)) * readBufSize; n != l.spareBytes.Load() {
			l.spareBytes.Store(n)
		}
		if len(l.grace) > 0 {
			l.sweepGrace()
		}
		if idle > 0 && l.now-l.lastIdle >= int64(msec)*int64(time.Millisecond) {
			l.lastIdle = l.now
			l.sweepIdle(int64(idle))
		}
		if l.stopping.Load() && l.stop() {
			return
		}
		if busy {
			l.yield()
		}
	}
}

// serveAgain goes on with the connections that stopped to let the loop's
// others be served; those that stop again are served after the next
// wake-up's events.
func (l *loop) serveAgain() {
	if len(l.again) == 0 {
		return
	}
	again := l.again
	l.again = l.nextAgain[:0]
	for i, pc := range again {
		again[i] = nil
		pc.again = false
		// A connection closed since has no descriptor, or another
		// connection has it.
		if pc.fd >= 0 && l.conn(int32(pc.fd)) == pc {
			pc.serve()
		}
	}
	l.nextAgain = again[:0]
}

// yieldEvery is how often a busy loop passes through the scheduler. The
// runtime's monitor treats a goroutine that has not done so for 10 ms as
// running too long and takes its P away while it waits in epoll_wait, and
// every such take keeps the monitor waking each 20 µs for the next
// millisecond: on a busy server that cost a tenth of its CPU.
const yieldEvery = 2 * time.Millisecond

// yield lets the scheduler run the loop's goroutine anew when yieldEvery
// has passed since it last did.
func (l *loop) yield() {
	if l.now-l.lastYield < int64(yieldEvery) {
		return
	}
	l.lastYield = l.now
	runtime.Gosched()
}

// addPending registers the connections handed to the loop.
func (l *loop) addPending() {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, pc := range pending {
		if pc.c.stopped.Load() {
			pc.release()
			continue
		}
		ev := syscall.EpollEvent{Events: epollIn, Fd: int32(pc.fd)}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, pc.fd, &ev); err != nil {
			l.srv.cfg.Logger.Warn("cannot register connection", "err", err)
			pc.release()
			continue
		}
		pc.lastCmdAt = l.now
		l.add(pc)
	}
}

// conn returns the connection registered for descriptor fd, or nil.
func (l *loop) conn(fd int32) *pollConn {
	if uint(fd) < uint(len(l.conns)) {
		return l.conns[fd]
	}
	return nil
}

// add records pc under its descriptor, growing conns as needed.
func (l *loop) add(pc *pollConn) {
	if pc.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*pollConn, pc.fd+1-len(l.conns)+len(l.conns)/2)...)
	}
	l.conns[pc.fd] = pc
	l.nconns++
}

// remove forgets the connection registered for descriptor fd.
func (l *loop) remove(fd int) {
	l.conns[fd] = nil
	l.nconns--
}

// sweepIdle closes the TCP connections waiting for a command whose last
// one is more than idle nanoseconds old.
func (l *loop) sweepIdle(idle int64) {
	for _, pc := range l.conns {
		if pc != nil && l.idleKick(pc, idle) {
			l.srv.stats.idleKicks.Add(1)
			pc.close()
		}
	}
}

// idleKick reports whether the idle timeout closes pc: a TCP connection
// waiting for a command, whose last command is older than idle, and
// whose socket holds nothing the loop has yet to read. A client that
// finished a long value and sent its next command behind it is not idle,
// though the loop, which reads a socket once per wake-up, may have read
// the value's end and not yet the command.
func (l *loop) idleKick(pc *pollConn, idle int64) bool {
	return !pc.out && !pc.c.local && l.now-pc.lastCmdAt > idle && idleKickable(pc.c.state.Load()) &&
		!hasInput(uintptr(pc.fd))
}

// graceSweepMsec is how often a loop with connections in their write
// grace looks at them.
const graceSweepMsec = 50

// sweepGrace closes the connections whose blocked replies are past
// write_buf_mem_limit and whose socket has taken nothing for longer than
// blockGraceFor, counting each as a write_buf_oom, and forgets those that
// drained or closed.
func (l *loop) sweepGrace() {
	kept := l.grace[:0]
	for _, pc := range l.grace {
		switch {
		case pc.fd < 0 || l.conn(int32(pc.fd)) != pc || pc.graceSince == 0:
			pc.inGrace = false
		case l.now-pc.graceSince > int64(blockGraceFor):
			pc.graceSince, pc.inGrace = 0, false
			l.srv.wbufs.oom.Add(1)
			pc.close()
		default:
			kept = append(kept, pc)
		}
	}
	clear(l.grace[len(kept):])
	l.grace = kept
}

// stop closes the connections that have written all their replies and
// answered their input (as it was read, or, for those in the again list,
// once the loop has gone on with them), and the others too once the
// shutdown grace is over, and reports whether the loop may exit: no
// connection and none pending.
func (l *loop) stop() bool {
	l.addPending()
	kill := l.killing.Load()
	for _, pc := range l.conns {
		// A connection in the again list has input to answer first.
		if pc != nil && (!pc.out && !pc.again || kill) {
			pc.close()
		}
	}
	if l.nconns > 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		return false
	}
	l.done = true
	return true
}

// read handles readiness of the connection's socket and reports whether
// the connection is to be served: it reads what the socket holds and asks
// the cache to prefetch the keys the input names, or, for a connection
// waiting to write its replies, reports whether the socket drained.
func (pc *pollConn) read(events uint32) bool {
	c := pc.c
	if pc.out {
		return events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0
	}
	if c.getNext > 0 {
		// A get line stopped to let other connections be served: its
		// keys are in rbuf, which must not move; go on with it.
		return true
	}
	if c.in != nil {
		done, err := c.readIncoming(func(b []byte) (int, error) {
			n, err := rawio.Read(pc.fd, b)
			if n == 0 && err == nil {
				err = io.EOF
			}
			return max(n, 0), err
		})
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return false
		}
		if err != nil {
			pc.close()
			return false
		}
		return done // served once the value is whole, to answer it
	}
	if c.rbuf == nil {
		c.rbuf = pc.l.getRead()
	}
	if !c.prepareRead(pc.need) {
		return true // serve writes the error and closes
	}
	n, err := rawio.Read(pc.fd, c.rbuf[c.w:])
	if err != nil {
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return false
		}
		pc.close()
		return false
	}
	if n == 0 {
		pc.close() // EOF
		return false
	}
	c.w += n
	c.stats.bytesRead += uint64(n)
	c.prefetchAhead(1) // served after the next connection is read
	return true
}

// serve answers the buffered input, as one turn of conn.serve does, and
// waits for EPOLLOUT when the replies do not all fit in the socket. Called
// again when the socket drains, it writes the rest and goes on with the
// input process left.
func (pc *pollConn) serve() {
	c := pc.c
	for {
		if !c.blocked && pc.need >= 0 {
			pc.need = c.process()
			if c.cmdSeen {
				c.cmdSeen = false
				pc.lastCmdAt = pc.l.now
			}
		}
		// A connection that yields keeps its replies (within flushSize)
		// to write them with the rest of its input's, unless it closes.
		hold := c.yielded && !c.closeAfterWrite
		// Count the commands before their replies go out, as memcached's
		// workers do: a client that has a reply finds its command in
		// another connection's stats.
		c.srv.stats.add(&c.stats)
		if !hold && c.flush() != nil {
			pc.close()
			return
		}
		if c.blocked {
			c.yielded = false // EPOLLOUT resumes it
			pc.setOut(true)
			return
		}
		if c.watch != nil {
			pc.handOff()
			return
		}
		if c.dump != nil {
			pc.handOffDump()
			return
		}
		if c.closeAfterWrite || pc.need < 0 {
			pc.close()
			return
		}
		c.srv.stats.add(&c.stats)
		if c.stopped.Load() && !c.yielded {
			pc.close()
			return
		}
		if c.yielded {
			c.yielded = false
			pc.setOut(false)
			if !pc.again {
				pc.again = true
				pc.l.again = append(pc.l.again, pc)
			}
			return
		}
		if pc.need == 0 && (c.r < c.w || c.getNext > 0) {
			// process stopped early for a blocked write that has
			// since drained: go on with the request or input left.
			continue
		}
		break
	}
	pc.setOut(false)
	c.setWaitState()
	if c.r == c.w && c.getNext == 0 {
		// Drained: the buffer serves whichever connection reads next.
		pc.l.putRead(c.rbuf)
		c.rbuf, c.r, c.w = nil, 0, 0
	}
}

// spareReadBytes returns the bytes of the loop's spare read buffers as of
// its last wake-up. It is safe for concurrent use.
func (l *loop) spareReadBytes() int64 { return l.spareBytes.Load() }

// getRead returns a read buffer for a connection that has none.
func (l *loop) getRead() []byte {
	if n := len(l.spare); n > 0 {
		b := l.spare[n-1]
		l.spare[n-1] = nil
		l.spare = l.spare[:n-1]
		return b
	}
	return l.srv.rbufs.get(readBufSize)
}

// putRead takes back the read buffer of a drained connection.
func (l *loop) putRead(b []byte) {
	if cap(b) == readBufSize && len(l.spare) < maxSpare {
		l.spare = append(l.spare, b[:readBufSize])
		return
	}
	l.srv.rbufs.put(b)
}

// setOut switches the socket's interest between input and output.
func (pc *pollConn) setOut(out bool) {
	if pc.out == out {
		return
	}
	pc.out = out
	ev := syscall.EpollEvent{Events: epollIn, Fd: int32(pc.fd)}
	if out {
		ev.Events = epollOut
	}
	if err := syscall.EpollCtl(pc.l.epfd, syscall.EPOLL_CTL_MOD, pc.fd, &ev); err != nil {
		pc.close()
	}
}

// flush writes what the socket takes of the pending replies without
// blocking. It is the connection's flushFn.
func (pc *pollConn) flush() error {
	c := pc.c
	if c.woom {
		return errWriteBufLimit
	}
	wrote := false
	for pc.wpos < len(c.wbuf) || c.pend.Len() > 0 {
		// The replies in wbuf, then the pinned value that follows them.
		out := c.pend.Next()
		if pc.wpos < len(c.wbuf) {
			out = c.wbuf[pc.wpos:]
		}
		n, err := rawio.Write(pc.fd, out)
		if n > 0 {
			wrote = true
			if pc.wpos < len(c.wbuf) {
				pc.wpos += n
			} else {
				c.pend.Skip(n)
			}
			c.stats.bytesWritten += uint64(n)
		}
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				// Drop what is written so the replies still to come
				// do not grow the buffer past what is unwritten.
				if pc.wpos >= len(c.wbuf)/2 {
					k := copy(c.wbuf, c.wbuf[pc.wpos:])
					c.wbuf = c.wbuf[:k]
					pc.wpos = 0
				}
				c.blocked = true
				c.state.Store(connMwrite)
				// The buffer is held for the client from here until
				// the socket drains; past the limit, for a grace only.
				switch c.srv.wbufs.block(&c.wheld, int64(cap(c.wbuf)), false) {
				case blockWait:
					pc.graceSince = 0
				case blockGrace:
					// The grace runs from the last write that made
					// progress: a client that reads, however slowly,
					// keeps its connection.
					if !pc.inGrace {
						pc.inGrace = true
						pc.l.grace = append(pc.l.grace, pc)
					}
					if pc.graceSince == 0 || wrote {
						pc.graceSince = max(pc.l.now, 1)
					}
				default:
					c.woom, c.closeAfterWrite = true, true
					return errWriteBufLimit
				}
				return nil
			}
			return err
		}
	}
	c.blocked = false
	c.pend.Release()
	pc.wpos = 0
	pc.graceSince = 0
	c.srv.wbufs.hold(&c.wheld, 0)
	if cap(c.wbuf) > keepBufSize || c.wbig != nil {
		c.releaseWbuf()
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return nil
}

// handOff moves a connection that became a watcher out of the event loop
// to a goroutine of its own, which streams its log lines with blocking
// writes until it closes.
func (pc *pollConn) handOff() {
	c, s := pc.c, pc.c.srv
	nc, err := pc.leave()
	if err != nil {
		s.cfg.Logger.Warn("cannot serve watcher", "err", err)
		s.watch.remove(c.watch)
		pc.releaseClosed()
		return
	}
	go func() {
		defer pc.releaseClosed()
		defer nc.Close()
		if c.stopped.Load() {
			s.watch.remove(c.watch)
			return
		}
		c.serveWatch()
	}()
}

// handOffDump moves a connection that asked for a metadump out of the
// event loop to a goroutine of its own, which writes the dump with
// blocking writes, so that a long dump or a client slow to read it holds
// up neither the loop's other connections nor more memory than a write
// buffer. The goroutine then serves the connection to its end, as a
// connection that no event loop serves.
func (pc *pollConn) handOffDump() {
	c, s := pc.c, pc.c.srv
	if _, err := pc.leave(); err != nil {
		s.cfg.Logger.Warn("cannot dump to connection", "err", err)
		c.endDump()
		pc.releaseClosed()
		return
	}
	go func() {
		defer s.wg.Done()
		c.dumpItems()
		c.serve()
		s.dropConn(c)
	}()
}

// leave takes the connection out of its event loop and returns it as a
// net.Conn in Go's netpoller (a duplicate descriptor), which becomes c.nc
// and which flush then writes with blocking writes. On failure the
// connection's descriptor is closed.
func (pc *pollConn) leave() (net.Conn, error) {
	l, c, s := pc.l, pc.c, pc.c.srv
	if testHookHandOff != nil {
		testHookHandOff(c, pc.fd)
	}
	l.remove(pc.fd)
	syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, pc.fd, nil)
	f := os.NewFile(uintptr(pc.fd), "")
	nc, err := net.FileConn(f)
	if err == nil {
		// The socket's descriptor is now the duplicate: the old number
		// is free for the next accept, so it can no longer name this
		// connection in "stats conns" or the watchers' lines.
		c.sfd.Store(int32(socketFD(nc)))
	}
	f.Close()
	pc.fd = -1
	if err != nil {
		return nil, err
	}
	// The new net.Conn asks the socket for its peer, which it no longer
	// has once the client has reset it: keep the addresses accepted.
	nc = movedConn{Conn: nc, local: c.nc.LocalAddr(), remote: c.nc.RemoteAddr()}
	s.mu.Lock()
	c.nc = nc
	if s.killed {
		// The shutdown grace ended while the loop was serving the
		// connection: closeStuck has missed it.
		c.kill()
	}
	s.mu.Unlock()
	c.flushFn = nil
	c.onLoop = false
	return nc, nil
}

// movedConn is a connection taken out of its event loop, with the
// addresses it was accepted with.
type movedConn struct {
	net.Conn
	local, remote net.Addr
}

func (m movedConn) LocalAddr() net.Addr  { return m.local }
func (m movedConn) RemoteAddr() net.Addr { return m.remote }

// SyscallConn gives access to the socket, as the net.Conn it wraps does.
func (m movedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := m.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("cannot reach the socket of %T", m.Conn)
	}
	return sc.SyscallConn()
}

// testHookHandOff, when set, runs as a connection leaves its
// event loop, with the descriptor it is about to duplicate.
var testHookHandOff func(c *conn, fd int)

// releaseClosed is release for a connection whose descriptor is already
// closed.
func (pc *pollConn) releaseClosed() {
	c := pc.c
	c.endDump() // closed before its metadump was handed off
	c.pend.Release()
	c.abortIncoming()
	c.srv.wbufs.hold(&c.wheld, 0)
	c.srv.rbufs.put(c.rbuf)
	c.releaseWbuf()
	c.rbuf = nil
	s := c.srv
	s.stats.add(&c.stats)
	s.dropConn(c)
	s.wg.Done()
}

// close unregisters and closes the connection.
func (pc *pollConn) close() {
	l := pc.l
	if pc.fd >= 0 && l.conn(int32(pc.fd)) == pc {
		l.remove(pc.fd)
		syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, pc.fd, nil)
	}
	pc.release()
}

// release closes the descriptor of a connection that is not registered and
// drops it from the server, as the end of conn.serve does.
func (pc *pollConn) release() {
	// The counts go in before the peer can see the close: a client that
	// reads EOF and then asks for stats finds its commands counted.
	pc.c.srv.stats.add(&pc.c.stats)
	syscall.Close(pc.fd)
	pc.fd = -1
	pc.releaseClosed()
}
