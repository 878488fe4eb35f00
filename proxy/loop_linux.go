package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/corvidcache/corvid/internal/epoll"
)

// The event loop (Config.EventLoop): one goroutine owns an epoll set
// holding every client socket and every server connection of the proxy,
// and blocks in epoll_wait itself (syscall.EpollWait, so that the
// runtime's monitor hands its processor to other goroutines while it
// waits). For a readable client it reads and runs the reader's step (the
// same handling a reader goroutine runs); for a readable server
// connection it frames the replies as a server connection's reader does.
// Once every event of one wait is handled, it sends what the clients
// queued on each server connection (one write each) and writes the
// clients' replies that are ready.
//
// The loop never waits for a peer. A client whose request would have to
// wait (its reply window is closed: see client.dispatch) takes the
// loop's goroutine as its reader from then on, out of the set, and a new
// goroutine runs the loop (handover); the client comes back to the loop
// when it has been idle through an idle sweep, as a parked client would.
// A client that ends is closed on a goroutine of its own, since its
// replies may still be written. Server connections are connected by
// their writer goroutines, which then add them to the set; a server
// connection's failure removes it (under its mutex, before the socket is
// closed).
//
// An event carries the slot of its socket in the loop and the slot's
// generation, never a descriptor: a socket closed and its number reused
// while an event of it is pending is recognised by its generation. A
// client's socket is added and removed while its descriptor is held
// open (through its raw connection), so that a number another socket
// has taken is never touched.
//
// Timeouts: the loop's wait ends by the earliest deadline of the oldest
// call of the server connections it reads; a connection whose oldest
// call is then late is read first (a reply already in the socket is
// framed), and fails as timed out if that call is still waiting.
type loop struct {
	epollSet // mu also guards the fields below and the set's members
	p        *Proxy
	slots    []loopSlot // by slot; slot 0 is never used (gen 0 is the eventfd's)
	free     []int32
	kicked   []*client // clients others asked the loop to stop reading

	// sleeping is set while the loop computes its wait's timeout and
	// waits: a call that becomes the oldest of a server connection then
	// wakes it (armed), since its deadline may come first.
	sleeping atomic.Bool

	// The loop goroutine's state; handover gives it to the next one.
	events  []syscall.EpollEvent
	i, n    int
	pending []*bconn // server connections the clients queued requests on
	pw      pendingWrites
	scan    []*connReader
	kicks   []*client
	due     time.Time // the earliest deadline the last wait was bounded by
	// The idle sweep: every idleSweep the loop drops the scratch of the
	// clients that had no event since the last one (sweepN counts them;
	// a client's lsweep is sweepN at its last event).
	lastSweep time.Time
	sweepN    uint32
}

// A loopSlot is a member of the loop's set: a client or a server
// connection's reader.
type loopSlot struct {
	gen uint32
	cl  *client
	rd  *connReader
}

// newLoop returns p's event loop.
func newLoop(p *Proxy) (*loop, error) {
	lp := &loop{p: p, slots: make([]loopSlot, 1), events: make([]syscall.EpollEvent, 256)}
	if err := lp.open(); err != nil {
		return nil, err
	}
	return lp, nil
}

// start starts run, tracked by the proxy's WaitGroup; p.mu is held.
func (lp *loop) start() {
	if lp != nil {
		lp.epollSet.start(&lp.p.wg, lp.run)
	}
}

// close makes the loop end its clients and return.
func (lp *loop) close() {
	if lp != nil {
		lp.epollSet.close()
	}
}

// allocLocked returns a free slot and its new generation; lp.mu is held.
func (lp *loop) allocLocked() (int32, uint32) {
	var slot int32
	if n := len(lp.free); n > 0 {
		slot = lp.free[n-1]
		lp.free = lp.free[:n-1]
	} else {
		slot = int32(len(lp.slots))
		lp.slots = append(lp.slots, loopSlot{})
	}
	s := &lp.slots[slot]
	s.gen++
	if s.gen == 0 {
		s.gen = 1
	}
	return slot, s.gen
}

// freeLocked frees slot: its pending events no longer match; lp.mu is
// held.
func (lp *loop) freeLocked(slot int32) {
	s := &lp.slots[slot]
	s.cl, s.rd = nil, nil
	s.gen++
	if s.gen == 0 {
		s.gen = 1
	}
	lp.free = append(lp.free, slot)
}

// ctlLocked adds raw's socket to the set under slot (op EPOLL_CTL_ADD)
// or removes it (EPOLL_CTL_DEL), while its descriptor is held open: it
// reports false when the socket is closed (the kernel has then removed
// it from the set itself). lp.mu is held, and the set is open.
func (lp *loop) ctlLocked(raw syscall.RawConn, op int, slot int32, gen uint32) bool {
	ok := false
	err := raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: slot, Pad: int32(gen)}
		ok = syscall.EpollCtl(lp.epfd, op, int(fd), &ev) == nil
	})
	return err == nil && ok
}

// addClient has the loop read cl from now on; false when it cannot (the
// loop is closed, or cl's socket, or a reload stops cl): the caller then
// owns cl as before.
func (lp *loop) addClient(cl *client) bool {
	if lp == nil || cl.raw == nil {
		return false
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.closed || !lp.running || cl.stopping.Load() || cl.aborted.Load() {
		return false
	}
	slot, gen := lp.allocLocked()
	lp.slots[slot].cl = cl
	cl.lp, cl.lslot = lp, slot
	if cl.readOnceFn == nil {
		cl.readOnceFn = func(fd uintptr) bool {
			cl.rn, cl.rerr = readNow(fd, cl.rbuf)
			return true // one attempt: the loop never waits
		}
	}
	if !lp.ctlLocked(cl.raw, syscall.EPOLL_CTL_ADD, slot, gen) {
		lp.freeLocked(slot)
		cl.lp, cl.lslot = nil, 0
		return false
	}
	return true
}

// dropClient takes cl out of the set; the loop's goroutine (cl's
// reader) calls it.
func (lp *loop) dropClient(cl *client) {
	lp.mu.Lock()
	if !lp.done {
		lp.ctlLocked(cl.raw, syscall.EPOLL_CTL_DEL, 0, 0)
	}
	lp.freeLocked(cl.lslot)
	cl.lp, cl.lslot = nil, 0
	lp.mu.Unlock()
}

// addConn has the loop read nc, bc's new connection; false when it
// cannot (nc has no raw connection, or the loop is closed): bc's reader
// goroutine then reads it. bc.mu is held.
func (lp *loop) addConn(bc *bconn, nc net.Conn) bool {
	if lp == nil {
		return false
	}
	raw := rawConnOf(nc)
	if raw == nil {
		return false
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.closed {
		return false
	}
	slot, gen := lp.allocLocked()
	lp.slots[slot].rd = newConnReader(bc, nc)
	if !lp.ctlLocked(raw, syscall.EPOLL_CTL_ADD, slot, gen) {
		lp.freeLocked(slot)
		return false
	}
	bc.lslot = slot
	return true
}

// removeConn takes bc's connection out of the set, before it is closed;
// bc.mu is held.
func (lp *loop) removeConn(bc *bconn) {
	if lp == nil || bc.lslot == 0 {
		return
	}
	lp.mu.Lock()
	if rd := lp.slots[bc.lslot].rd; rd != nil && !lp.done {
		if raw := rawConnOf(rd.nc); raw != nil {
			lp.ctlLocked(raw, syscall.EPOLL_CTL_DEL, 0, 0)
		}
	}
	lp.freeLocked(bc.lslot)
	lp.mu.Unlock()
	bc.lslot = 0
}

// kick asks the loop to end cl if it reads it: cl was closed by the
// proxy (abort), whose socket the kernel then removed from the set, or a
// reload stops it.
func (lp *loop) kick(cl *client) {
	if lp == nil {
		return
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.closed {
		return
	}
	lp.kicked = append(lp.kicked, cl)
	epoll.Wake(lp.wakefd)
}

// armed tells the loop that a call has become the oldest of one of its
// server connections: a loop about to wait, or waiting, is woken to
// bound its wait by the call's deadline.
func (lp *loop) armed() {
	if lp.sleeping.CompareAndSwap(true, false) {
		lp.mu.Lock()
		if !lp.done {
			epoll.Wake(lp.wakefd)
		}
		lp.mu.Unlock()
	}
}

// queued records that a client the loop reads queued a request on bc:
// the loop sends it once the events of its wait are handled.
func (lp *loop) queued(bc *bconn) {
	for _, q := range lp.pending {
		if q == bc {
			return
		}
	}
	lp.pending = append(lp.pending, bc)
}

// send sends what the clients queued on server connections since the
// last send, and writes the clients' replies that are ready.
func (lp *loop) send() {
	for i, bc := range lp.pending {
		bc.flush()
		lp.pending[i] = nil
	}
	lp.pending = lp.pending[:0]
	lp.pw.write()
}

// handover is called by cl's reader, the loop's goroutine, before it
// waits: cl leaves the set, and this goroutine is cl's reader from now
// on, while a new goroutine runs the loop, from the next event of the
// current wait.
func (lp *loop) handover(cl *client) {
	lp.dropClient(cl)
	lp.send()
	lp.p.wg.Add(1)
	go lp.run()
}

// run is the loop's goroutine.
func (lp *loop) run() {
	defer lp.p.wg.Done()
	for {
		if lp.i == lp.n {
			lp.expire()
			lp.send()
			if lp.stop() {
				return
			}
			lp.sweep()
			lp.wait()
			continue
		}
		ev := lp.events[lp.i]
		lp.i++
		if ev.Pad == 0 {
			lp.kickAll()
			continue
		}
		lp.mu.Lock()
		var s loopSlot
		if int(ev.Fd) < len(lp.slots) {
			s = lp.slots[ev.Fd]
		}
		lp.mu.Unlock()
		switch {
		case s.gen != uint32(ev.Pad):
			// A socket removed since the wait returned.
		case s.cl != nil:
			if lp.client(s.cl) {
				return // this goroutine was cl's reader until cl ended
			}
		case s.rd != nil:
			lp.conn(s.rd, false)
		}
	}
}

// wait waits for events, until the earliest deadline of its server
// connections' oldest calls.
func (lp *loop) wait() {
	lp.sleeping.Store(true)
	lp.due = lp.earliest()
	until := lp.lastSweep.Add(lp.p.idleSweep())
	if !lp.due.IsZero() && lp.due.Before(until) {
		until = lp.due
	}
	d := time.Until(until)
	timeout := int(max(0, (d+time.Millisecond-1)/time.Millisecond))
	n, err := syscall.EpollWait(lp.epfd, lp.events, timeout)
	lp.sleeping.Store(false)
	if err != nil && !errors.Is(err, syscall.EINTR) {
		lp.p.log.Error("epoll_wait failed", "err", err)
		time.Sleep(10 * time.Millisecond)
	}
	lp.i, lp.n = 0, max(n, 0)
}

// sweep drops the scratch of the clients that had no event since the
// last sweep and have nothing under way, so that an idle client costs its
// state only, as a parked one (see dropScratch).
func (lp *loop) sweep() {
	if time.Since(lp.lastSweep) < lp.p.idleSweep() {
		return
	}
	lp.lastSweep = time.Now()
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for _, s := range lp.slots {
		cl := s.cl
		if cl == nil || cl.readerScratch == nil || cl.lsweep == lp.sweepN {
			continue
		}
		if cl.buf == nil && cl.skip == 0 && cl.parkable() {
			cl.dropScratch()
		}
	}
	lp.sweepN++
}

// idleSweep returns how often p's idler sweeps: the loop sweeps as often.
func (p *Proxy) idleSweep() time.Duration {
	if p.idle != nil {
		return p.idle.sweep
	}
	return idleSweep
}

// conns returns the server connections' readers in the set.
func (lp *loop) conns() []*connReader {
	lp.scan = lp.scan[:0]
	lp.mu.Lock()
	for _, s := range lp.slots {
		if s.rd != nil {
			lp.scan = append(lp.scan, s.rd)
		}
	}
	lp.mu.Unlock()
	return lp.scan
}

// earliest returns the earliest deadline of the oldest calls of the
// server connections in the set, zero when none has one.
func (lp *loop) earliest() time.Time {
	var due time.Time
	for _, rd := range lp.conns() {
		if d := rd.oldestDeadline(); !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	clear(lp.scan)
	return due
}

// expire fails the server connections whose oldest call is late, once
// what their sockets hold is framed.
func (lp *loop) expire() {
	if lp.due.IsZero() {
		return
	}
	now := time.Now()
	if now.Before(lp.due) {
		return
	}
	lp.due = time.Time{}
	for _, rd := range lp.conns() {
		if d := rd.oldestDeadline(); d.IsZero() || now.Before(d) {
			continue
		}
		lp.conn(rd, true)
		if d := rd.oldestDeadline(); !d.IsZero() && !now.Before(d) {
			rd.bc.fail(rd.nc, os.ErrDeadlineExceeded)
		}
	}
	clear(lp.scan)
}

// oldestDeadline returns the deadline of the oldest call awaiting its
// reply on rd's connection, zero when there is none (or the connection
// is no longer rd's).
func (rd *connReader) oldestDeadline() time.Time {
	bc := rd.bc
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.nc != rd.nc {
		return time.Time{}
	}
	if c := bc.sent.peek(); c != nil {
		return c.deadline
	}
	return time.Time{}
}

// maxEventReads bounds the reads of one socket per event, so that a
// peer that keeps sending cannot hold the loop: the socket, still
// readable, is reported again by the next wait.
const maxEventReads = 4

// conn reads what rd's socket holds and frames it, at most
// maxEventReads times; with drain, until a read leaves the socket empty,
// as rearm drains it once for a late call (what came is framed before
// the call is judged, and a server that keeps sending cannot hold it past
// its timeout: the buffer grows until a read takes all the socket holds).
func (lp *loop) conn(rd *connReader, drain bool) {
	for i := 0; drain || i < maxEventReads; i++ {
		rd.compact()
		room := len(rd.buf) - rd.w
		n, err := rd.rr.readOnce(rd.buf[rd.w:])
		if err == syscall.EAGAIN {
			return
		}
		if err == nil && n == 0 {
			err = io.EOF
		}
		if err != nil {
			rd.bc.fail(rd.nc, err)
			return
		}
		rd.w += n
		if !rd.frame(&lp.pw) || n < room {
			return
		}
	}
}

// client reads what cl's socket holds and handles it. It reports true
// when the handling handed the loop to a new goroutine (see handover):
// this one has then served cl, as its reader, to its end.
func (lp *loop) client(cl *client) bool {
	cl.lsweep = lp.sweepN
	for range maxEventReads {
		if cl.buf == nil {
			cl.buf = cl.getReadBuf()
		}
		room := len(cl.buf) - cl.w
		n, err := cl.readOnce(cl.buf[cl.w:])
		if err == syscall.EAGAIN {
			if cl.w == 0 {
				cl.dropReadBuf()
			}
			return false
		}
		if err == nil && n == 0 {
			err = io.EOF
		}
		if err != nil && cl.kicked(err) {
			// A sweep's kick meant for the reader goroutine cl had
			// before the loop (see idle.go): cleared, read again.
			continue
		}
		if err != nil {
			lp.end(cl, err)
			return false
		}
		cl.w += n
		need, err := cl.step()
		if err == nil && cl.lp != nil {
			err = cl.room(need)
		}
		if cl.lp == nil {
			// Handed over (by the handling, or by room queuing its
			// refusal's error line): this goroutine is cl's reader now.
			cl.finish(cl.readLoop(need, err))
			return true
		}
		if err != nil {
			lp.end(cl, err)
			return false
		}
		if n < room {
			return false
		}
	}
	return false
}

// end takes cl, which the loop reads, out of the set, and ends it with
// err on a goroutine of its own (its replies may still be written).
func (lp *loop) end(cl *client, err error) {
	lp.dropClient(cl)
	cl.dropReadBuf()
	lp.p.wg.Add(1)
	go func() {
		defer lp.p.wg.Done()
		cl.finish(err)
	}()
}

// kickAll empties the eventfd and ends the clients kicked (those the
// loop still reads).
func (lp *loop) kickAll() {
	var b [8]byte
	syscall.Read(lp.wakefd, b[:])
	lp.mu.Lock()
	lp.kicks = lp.kicks[:0]
	for i, cl := range lp.kicked {
		// cl.lp changes under lp.mu only (by cl's reader): a client
		// the loop does not read now has a reader goroutine, which
		// sees its closed socket or its deadline itself.
		if cl.lp == lp {
			lp.kicks = append(lp.kicks, cl)
		}
		lp.kicked[i] = nil
	}
	lp.kicked = lp.kicked[:0]
	lp.mu.Unlock()
	for i, cl := range lp.kicks {
		lp.kicks[i] = nil
		switch {
		case cl.lp != lp:
			// Kicked twice: ended already.
		case cl.aborted.Load():
			lp.end(cl, errClosed)
		case cl.stopping.Load():
			lp.end(cl, os.ErrDeadlineExceeded)
		}
	}
}

// stop reports whether the loop is closed; it then ends its clients and
// closes the set.
func (lp *loop) stop() bool {
	lp.mu.Lock()
	if !lp.closed {
		lp.mu.Unlock()
		return false
	}
	var cls []*client
	for _, s := range lp.slots {
		if s.cl != nil {
			cls = append(cls, s.cl)
		}
	}
	lp.mu.Unlock()
	for _, cl := range cls {
		lp.end(cl, errClosed)
	}
	lp.closeFDs()
	return true
}

// readOnce makes one read of cl's socket into b, without waiting:
// EAGAIN when there is nothing to read.
func (cl *client) readOnce(b []byte) (int, error) {
	cl.rbuf = b
	err := cl.raw.Read(cl.readOnceFn)
	n, rerr := cl.rn, cl.rerr
	cl.rbuf, cl.rn, cl.rerr = nil, 0, nil
	if err != nil {
		return 0, err
	}
	return n, rerr
}
