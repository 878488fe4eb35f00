package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

const (
	// readBufSize is a connection's initial read buffer, as memcached's.
	readBufSize = 16 << 10
	// keepBufSize is the largest buffer a connection keeps between
	// requests; larger ones (grown for a big value or multi-get) are
	// dropped once drained so idle connections stay small.
	keepBufSize = 64 << 10
	// flushSize makes a long batch write out its replies before the write
	// buffer grows past it.
	flushSize = 256 << 10
)

// conn serves one client connection. Only its own goroutine (or the event
// loop that owns it) touches its fields, except stopped and lastCmd, which
// are atomic.
type conn struct {
	srv *Server
	// nc is the client connection. When an event loop owns the connection
	// nc is closed (the loop holds a duplicate descriptor) and is kept only
	// for its addresses.
	nc net.Conn
	// flushFn, when set, replaces the blocking write of flush: an event
	// loop writes what the socket takes, keeps the rest in wbuf and sets
	// blocked until the socket drains.
	flushFn func() error
	blocked bool
	// onLoop is set while an event loop serves the connection.
	onLoop bool

	rbuf []byte // unread input is rbuf[r:w]
	r, w int
	// ahead is where prefetchAhead stopped looking: the gets in
	// rbuf[r:ahead] have had their keys prefetched.
	ahead int
	wbuf  []byte
	// wbig is the buffer past keepBufSize (from allocBig, mapped off the
	// heap) that wbuf was last grown into, nil when none; the connection
	// gives it back with releaseWbuf.
	wbig []byte
	// wheld is the bytes of wbuf counted in the server's blocked write
	// buffers (writeBufs); woom is set once the limit refused them, and
	// the connection then ends.
	wheld int64
	woom  bool
	// pend is a value written after wbuf from the cache's own chunks,
	// which it pins until written (storage.Pinned): a chained value
	// (larger than slab_chunk_max) is not copied, so clients that do not
	// read what they asked for hold the server to no copy of it. While
	// pend has bytes left nothing is appended to wbuf; the request that
	// set it is the last one served before it is written.
	pend storage.Pinned
	// in is the chained value of a storage command being read straight
	// into the item's chunks (readIncoming), nil when none; inReq is what
	// answering the command needs. inDeclined is set once the cache has
	// declined the request being buffered (see beginIncoming), until
	// the request is handled.
	in         *storage.Incoming
	inReq      *incoming
	inDeclined bool
	// stream is set for TCP and Unix connections, which write chained
	// values from the cache (pend) and read them into it (in).
	stream bool
	// reader is set, in goroutine mode, for a request that came after
	// the socket had taken every reply at once with no input left
	// (replyDrained): the client waited for its replies before asking
	// again, so it reads, and the request's large replies may use the
	// room kept for clients that read (writeBufs.readerRoom). Replies
	// that find the socket full clear both. readerRoomUsed is set when a
	// reply grew into that room: the socket's buffers may have taken it
	// at once from a client that does not read, so the next request is
	// a reader's only once the peer has taken every reply (repliesTaken).
	reader, replyDrained, readerRoomUsed bool
	// canWait is set while a get looks up a key it can look up again:
	// a buffer that grow refuses then sets wwait instead of woom, and the
	// get waits for room and retries the key.
	canWait bool
	wwait   int64 // the buffer size refused, while canWait
	// raw writes to nc without waiting (writeNow, goroutine mode):
	// rawWrite writes wbuf[rawFrom:] and leaves its result in rawN and
	// rawErr. Set at the connection's first flush.
	raw           syscall.RawConn
	rawWrite      func(fd uintptr) bool
	rawPeek       func(fd uintptr) bool // waitInput's: hasInput
	rawFrom, rawN int
	rawErr        error

	req protocol.Request
	// meta is allocated at the connection's first meta command: at
	// 872 bytes it would otherwise be most of an idle text connection.
	meta *protocol.MetaRequest
	// proto is the protocol the connection speaks, ProtoAuto until its
	// first byte has decided.
	proto Protocol
	// authed is set once the client has authenticated (-Y or -S).
	authed bool
	// hotTick counts requests for the hot-key sample.
	hotTick uint32
	// sasl is the state of a SASL exchange (saslIdle, ...).
	sasl uint8
	// swallow counts bytes of a rejected value still to be discarded.
	swallow int
	// written is how much of wbuf memcached would have written by now:
	// the replies of earlier reads, and in the binary protocol those up
	// to its last error or noop reply, which it writes at once. A request
	// that closes the connection without a reply (see dropUnwritten)
	// loses the rest, as in memcached.
	written int
	// closeAfterWrite ends the connection once the pending replies are out.
	closeAfterWrite bool
	// getNext, when not 0, is the offset in req.GetKeys a get-family
	// request goes on from: it stopped because the socket backed up or to
	// let other connections be served (event loops only).
	// Its keys are in rbuf, which is then neither moved nor handed to
	// another connection until the request is answered.
	getNext int
	// yielded is set when a get line stopped to let the event loop serve
	// its other connections (getNext is then where it goes on), or when
	// the connection has served its requests for this turn (-R) and
	// input is left: the loop, or the scheduler, then runs the others.
	yielded bool
	// turnReqs is how many more requests the connection serves before it
	// yields (see endRequest); 0 until its turn starts.
	turnReqs int
	// dump is a metadump the event loop is to hand to a goroutine.
	dump *dumpRequest

	// Command log state: the sampling count, the buffer shard, a line
	// being formatted, the formatted time, the client's address and the
	// request line being handled (set only while the log is on).
	klogTick, klogShard uint32
	klogBuf, klogTime   []byte
	klogSec             int64 // the second klogTime shows
	peer                string
	line                []byte

	// watch is set once the connection is a watcher; watchBuf formats
	// its log lines; sfd is its descriptor for them and its id in "stats
	// conns" (0 until known).
	watch    *watcher
	watchBuf []byte
	sfd      atomic.Int32
	// state is what the connection is doing, for "stats conns" (connNewCmd
	// and so on).
	state atomic.Uint32

	stats   connStats
	stopped atomic.Bool
	// lastCmd is the Unix second of the last command, for "stats conns",
	// read from the cache clock (a ticking counter, as memcached's
	// current_time) so a request does not pay for time.Now.
	lastCmd atomic.Int64
	// cmdSeen is set with lastCmd, and cleared by the serving loop when
	// it restarts the idle timeout, which runs from the last command as
	// memcached's last_cmd_time.
	cmdSeen bool
	// local is set for a Unix socket connection, which the idle timeout
	// leaves open: memcached's idle thread looks only at TCP connections.
	local bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, hotTick: rand.Uint32(), klogShard: rand.Uint32()}
	c.lastCmd.Store(c.srv.cache.CurrentTime())
	if nc != nil {
		_, c.local = nc.LocalAddr().(*net.UnixAddr)
	}
	return c
}

// stop makes the connection finish what it has read and close. The caller
// holds srv.mu. stopped is set before the deadline, and serve sets an idle
// deadline before it looks at stopped, so a read never outlives a stop.
func (c *conn) stop() {
	c.stopped.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// kill closes the connection's socket, ending a write blocked on a client
// that does not read, once the shutdown grace is over. An event loop's
// connections are closed by their loop instead (Server.killLoops). The
// caller holds srv.mu.
func (c *conn) kill() {
	c.stopped.Store(true)
	c.nc.Close()
}

// commandSeen records that a command has been read, whether or not it is
// answered with an error: memcached sets a connection's last_cmd_time
// (stats conns, and the idle timeout's start) for every command line and
// binary header it reads.
func (c *conn) commandSeen() {
	c.lastCmd.Store(c.srv.cache.CurrentTime())
	c.cmdSeen = true
}

// idleKickable reports whether the idle timeout may close a connection in
// state st. memcached's closes only one waiting for a command (conn_new_cmd,
// conn_read, which includes a command line half sent), never one in the
// middle of a value (conn_nread, conn_swallow) or of writing replies
// (conn_mwrite).
func idleKickable(st uint32) bool {
	return st == connNewCmd || st == connRead
}

// idleSweep is how often the idle timeout idle is checked: an event loop
// sweeps its connections this often, and a connection whose timeout ran
// out while it was not waiting for a command is given this long.
func idleSweep(idle time.Duration) time.Duration {
	return min(max(idle/4, 10*time.Millisecond), time.Second)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// testHookIdleDeadline, when set, runs just before serve sets the idle
// timeout's read deadline.
var testHookIdleDeadline func(c *conn)

func (c *conn) serve() {
	defer c.nc.Close()
	defer func() {
		c.srv.rbufs.put(c.rbuf)
		c.releaseWbuf()
		c.pend.Release()
		c.abortIncoming()
		c.srv.wbufs.hold(&c.wheld, 0)
	}()
	defer c.srv.stats.add(&c.stats)
	idleTimeout := c.srv.cfg.IdleTimeout
	if c.local {
		idleTimeout = 0
	}
	var lastCmdAt time.Time
	lastWait := connNewCmd // the state of the last wait for input
	if idleTimeout > 0 {
		lastCmdAt = time.Now()
	}
	for {
		need := c.process()
		if c.cmdSeen && idleTimeout > 0 {
			c.cmdSeen = false
			lastCmdAt = time.Now()
		}
		if c.yielded && !c.closeAfterWrite {
			// Served its requests for this turn (-R): let the other
			// connections run before going on with the input left.
			// The replies so far are written with the rest's.
			c.yielded = false
			runtime.Gosched()
			continue
		}
		// Count the commands before their replies go out, as memcached's
		// workers do (and again after, for the bytes written).
		c.srv.stats.add(&c.stats)
		if err := c.flush(); err != nil || c.closeAfterWrite {
			return
		}
		if c.watch != nil {
			c.serveWatch()
			return
		}
		wrote := c.stats.bytesWritten > 0
		c.srv.stats.add(&c.stats)
		if c.stopped.Load() {
			return
		}
		if need < 0 {
			return
		}
		// A connection with no input left waits for more without a read
		// buffer, as memcached's gives its buffer back: thousands of
		// idle clients then hold none.
		idle := c.r == c.w && c.getNext == 0
		if idle && c.rbuf != nil {
			c.srv.rbufs.put(c.rbuf)
			c.rbuf, c.r, c.w, c.ahead = nil, 0, 0, 0
		}
		c.setWaitState()
		if idleTimeout > 0 {
			if testHookIdleDeadline != nil {
				testHookIdleDeadline(c)
			}
			var deadline time.Time // none in the middle of a value
			st := c.state.Load()
			if idleKickable(st) {
				deadline = lastCmdAt.Add(idleTimeout)
				if wrote || !idleKickable(lastWait) {
					// An idle timeout that ran out while the value
					// came in or the replies went out ends at the
					// next sweep (an event loop's; the next pass of
					// memcached's idle thread), unless a command
					// comes first.
					deadline = later(deadline, time.Now().Add(idleSweep(idleTimeout)))
				}
			}
			lastWait = st
			c.nc.SetReadDeadline(deadline)
			if c.stopped.Load() {
				// stop set its deadline between the check above and
				// this one, which would keep the read waiting.
				return
			}
		}
		if idle {
			if err := c.waitInput(); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && !c.stopped.Load() {
					c.srv.stats.idleKicks.Add(1)
				}
				return
			}
		}
		if c.in != nil {
			if _, err := c.readIncoming(c.nc.Read); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && !c.stopped.Load() {
					c.srv.stats.idleKicks.Add(1)
				}
				return
			}
			continue
		}
		if !c.prepareRead(need) {
			c.flush()
			return
		}
		n, err := c.nc.Read(c.rbuf[c.w:])
		c.w += n
		c.stats.bytesRead += uint64(n)
		if err != nil {
			if n > 0 && !c.stopped.Load() {
				// Answer what arrived with the error (such as EOF right
				// after a last request) before closing.
				c.processAll()
				c.flush()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && !c.stopped.Load() {
				c.srv.stats.idleKicks.Add(1)
			}
			return
		}
	}
}

// handleRequest handles the first request in buf (which is not empty) in
// the connection's protocol, deciding the protocol from the first byte
// when the server accepts both. It returns what handleOne returns.
func (c *conn) handleRequest(buf []byte) int {
	if c.proto == ProtoAuto {
		c.proto = c.srv.cfg.Protocol
		if c.proto == ProtoAuto {
			c.proto = ProtoASCII
			if buf[0] == protocol.BinaryRequestMagic {
				c.proto = ProtoBinary
			}
		}
	}
	if c.proto == ProtoBinary {
		return c.handleBinary(buf)
	}
	if c.srv.cfg.AuthFile != "" && !c.authed {
		return c.handleASCIIAuth(buf)
	}
	return c.handleOne(buf)
}

// prepareRead makes room in rbuf for at least one more byte. need is how
// many unread bytes the next request needs: the unread input is moved to
// the front when that makes room for need, but the buffer grows only when
// it is full of unread input, and then at most doubles (up to need), so a
// request declaring a large value costs memory as the value arrives, not
// before: the buffer stays within twice what was read. It reports false
// when the buffer cannot grow within the server's read-buffer limit; the
// connection is then to be closed once the error reply is written.
func (c *conn) prepareRead(need int) bool {
	bufs := &c.srv.rbufs
	if c.r == c.w {
		c.r, c.w, c.ahead = 0, 0, 0
		if cap(c.rbuf) > keepBufSize {
			bufs.put(c.rbuf)
			c.rbuf = nil
		}
		if c.rbuf == nil {
			c.rbuf = bufs.get(readBufSize)
		}
	}
	unread := c.w - c.r
	want := max(need, unread+1)
	if want <= len(c.rbuf)-c.r {
		return true // room to read after the unread input
	}
	if want <= len(c.rbuf) || unread < len(c.rbuf) {
		if c.w == len(c.rbuf) || want <= len(c.rbuf) {
			copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r, c.w, c.ahead = 0, unread, 0
		}
		return true
	}
	// Full: double, or grow to what the request needs if that is less.
	// Buffers past keepBufSize come from and return to the pools.
	nb, ok := bufs.grow(c.rbuf, c.r, c.w, min(2*len(c.rbuf), want))
	if !ok {
		// As memcached when it cannot grow a read buffer: the input is
		// dropped and the connection closed.
		c.r, c.w, c.ahead = 0, 0, 0
		if c.proto != ProtoBinary {
			c.reply("SERVER_ERROR out of memory reading request")
		}
		c.closeAfterWrite = true
		return false
	}
	c.rbuf = nb
	c.r, c.w, c.ahead = 0, unread, 0
	return true
}

// prefetchAhead finds the single-key gets pipelined in the unread input
// (text get and gets, meta mg, binary get, getq, getk and getkq), up to
// storage.PrefetchBatch of them, and has the cache prefetch their keys, so
// that their lookups overlap their cache misses as a multi-get's do. A
// lone request costs one look at its line or header. The keys are
// prefetched when there are at least least of them: 1 when an event loop
// reads the connection, a step before serving it; 2 just before serving,
// where a lone key's miss would follow at once anyway. Input already
// looked at, and a connection whose protocol is not yet known, are left.
func (c *conn) prefetchAhead(least int) {
	if c.r < c.ahead || c.proto == ProtoAuto {
		return
	}
	var keys [storage.PrefetchBatch][]byte
	var n, scanned int
	if c.proto == ProtoBinary {
		n, scanned = pipelinedBinaryGets(c.rbuf[c.r:c.w], &keys)
	} else {
		n, scanned = pipelinedGets(c.rbuf[c.r:c.w], &keys)
	}
	c.ahead = c.r + scanned
	if n >= least {
		c.srv.cache.Prefetch(keys[:n])
	}
}

// pipelinedGets fills keys with the keys of the complete "get KEY", "gets
// KEY" and "mg KEY FLAGS..." lines that start buf, stopping at the first
// other line, and returns how many it found and the bytes of their lines.
// A storage command's line ends the scan, its key taken, since its value
// follows. (A base64 mg key is taken as it is: a wasted prefetch, not a
// wrong answer.)
func pipelinedGets(buf []byte, keys *[storage.PrefetchBatch][]byte) (n, scanned int) {
	for n < len(keys) {
		end := bytes.IndexByte(buf[scanned:], '\n')
		if end < 0 {
			break
		}
		line := bytes.TrimSuffix(buf[scanned:scanned+end], []byte("\r"))
		var key []byte
		last := false // a storage command: its value follows
		if rest, ok := bytes.CutPrefix(line, []byte("mg ")); ok {
			key, _, _ = bytes.Cut(rest, []byte(" "))
		} else if rest, ok := cutStorageCommand(line); ok {
			key, _, _ = bytes.Cut(rest, []byte(" "))
			last = true
		} else {
			rest, ok := bytes.CutPrefix(line, []byte("get "))
			if !ok {
				rest, ok = bytes.CutPrefix(line, []byte("gets "))
			}
			if !ok || bytes.IndexByte(rest, ' ') >= 0 {
				break // not a get, or a multi-get: lookup prefetches those
			}
			key = rest
		}
		if len(key) == 0 {
			break
		}
		keys[n] = key
		n++
		scanned += end + 1
		if last {
			break
		}
	}
	return n, scanned
}

// cutStorageCommand returns what follows the name of the storage command
// that starts line.
func cutStorageCommand(line []byte) ([]byte, bool) {
	for _, name := range storageCommands {
		if rest, ok := bytes.CutPrefix(line, name); ok {
			return rest, true
		}
	}
	return nil, false
}

var storageCommands = [][]byte{[]byte("set "), []byte("add "), []byte("replace "),
	[]byte("append "), []byte("prepend "), []byte("cas "), []byte("ms ")}

// pipelinedBinaryGets is pipelinedGets for the binary protocol: the keys
// of the complete get, getq, getk and getkq requests that start buf.
func pipelinedBinaryGets(buf []byte, keys *[storage.PrefetchBatch][]byte) (n, scanned int) {
	const hlen = protocol.BinaryHeaderLen
	for n < len(keys) && len(buf)-scanned >= hlen {
		h := buf[scanned : scanned+hlen]
		switch protocol.Opcode(h[1]) {
		case protocol.OpGet, protocol.OpGetQ, protocol.OpGetK, protocol.OpGetKQ:
		default:
			return n, scanned
		}
		klen := int(binary.BigEndian.Uint16(h[2:4]))
		body := int(binary.BigEndian.Uint32(h[8:12]))
		off := hlen + int(h[4])
		if h[0] != protocol.BinaryRequestMagic || klen == 0 || off+klen > hlen+body || len(buf)-scanned < hlen+body {
			break
		}
		keys[n] = buf[scanned+off : scanned+off+klen]
		n++
		scanned += hlen + body
	}
	return n, scanned
}

// reserve makes room for n more bytes in wbuf, taking large buffers from
// the pools.
func (c *conn) reserve(n int) {
	if cap(c.wbuf)-len(c.wbuf) >= n {
		return
	}
	size := max(2*cap(c.wbuf), len(c.wbuf)+n)
	if c.flushFn == nil && bufSize(size) > flushSize {
		// Goroutine mode: count the buffer before allocating it (see
		// writeBufs). Refused, the caller appends no value: a get that
		// can wait (canWait) waits for room and looks the key up again,
		// any other request ends the connection unwritten.
		if c.woom || !c.growWbuf(int64(bufSize(size))) {
			if c.canWait && !c.woom {
				c.wwait = int64(bufSize(size))
			} else if !c.woom {
				c.srv.wbufs.oom.Add(1)
				c.woom, c.closeAfterWrite = true, true
			}
			return
		}
	}
	var nb, big []byte
	if c.flushFn == nil && bufSize(size) > keepBufSize {
		// Goroutine mode, where a blocked reply is a write buffer: off
		// the heap. (An event loop builds many replies at once; mapping
		// a buffer for each costs its other connections more than it
		// saves.)
		big = allocBig(size)
		nb = big
	}
	if nb == nil {
		nb = getBuf(size)
	}
	nb = nb[:len(c.wbuf)]
	copy(nb, c.wbuf)
	c.releaseWbuf()
	c.wbuf, c.wbig = nb, big
}

// growWbuf counts the write buffer about to grow to n bytes
// (writeBufs.grow), taking the room kept for readers only for a reader's
// request, and noting when it does.
func (c *conn) growWbuf(n int64) bool {
	if c.srv.wbufs.grow(&c.wheld, n, false) {
		return true
	}
	if c.reader && c.srv.wbufs.grow(&c.wheld, n, true) {
		c.readerRoomUsed = true
		return true
	}
	return false
}

// repliesTaken reports whether the peer has taken every reply written to
// the socket (sendQueueEmpty), true when the socket cannot tell.
func (c *conn) repliesTaken() bool {
	rc := c.rawConn()
	if rc == nil {
		return true
	}
	taken := true
	if rc.Control(func(fd uintptr) { taken = sendQueueEmpty(fd) }) != nil {
		return true
	}
	return taken
}

// releaseWbuf gives back the connection's write buffer and leaves it nil.
// A buffer from allocBig is given back through wbig, which owns it even
// if wbuf has since been regrown by an append onto the heap.
func (c *conn) releaseWbuf() {
	if c.wbig != nil {
		if cap(c.wbuf) > 0 && &c.wbuf[:1][0] != &c.wbig[:1][0] {
			putBuf(c.wbuf)
		}
		freeBig(c.wbig)
		c.wbig = nil
	} else {
		putBuf(c.wbuf)
	}
	c.wbuf = nil
}

// flush writes the pending replies. Without an event loop it first writes
// what the socket takes at once; only when replies are left does it block,
// their buffer then counted in the server's blocked write buffers until
// the write returns, so that a client that reads holds nothing counted.
func (c *conn) flush() error {
	if c.flushFn != nil {
		return c.flushFn()
	}
	if c.woom {
		c.srv.wbufs.hold(&c.wheld, 0)
		return errWriteBufLimit
	}
	if len(c.wbuf) == 0 && c.pend.Len() == 0 {
		c.srv.wbufs.hold(&c.wheld, 0)
		return nil
	}
	n, err := c.writeNow(0)
	if err == nil && n == len(c.wbuf) {
		c.replyDrained = c.r == c.w
	}
	if err == nil && n < len(c.wbuf) {
		if c.wbig != nil && &c.wbuf[:1][0] != &c.wbig[:1][0] {
			// An append regrew the reply off its mapped buffer: only
			// the buffer written is counted while the write blocks.
			freeBig(c.wbig)
			c.wbig = nil
		}
		reader := c.reader
		c.reader, c.replyDrained = false, false
		switch c.srv.wbufs.block(&c.wheld, int64(cap(c.wbuf)), reader) {
		case blockWait:
			var m int
			c.state.Store(connMwrite)
			m, err = c.nc.Write(c.wbuf[n:])
			n += m
		case blockGrace:
			// The write goes on while the socket takes something within
			// each blockGraceFor: a client that reads, however slowly,
			// keeps its connection. A shutdown closes the socket (kill),
			// so the deadline can be cleared without racing a stop.
			for {
				c.nc.SetWriteDeadline(time.Now().Add(blockGraceFor))
				var m int
				m, err = c.nc.Write(c.wbuf[n:])
				n += m
				if m == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
			}
			c.nc.SetWriteDeadline(time.Time{})
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.srv.wbufs.oom.Add(1)
				c.woom, c.closeAfterWrite = true, true
				err = errWriteBufLimit
			}
		default:
			c.woom, c.closeAfterWrite = true, true
			err = errWriteBufLimit
		}
	}
	c.srv.wbufs.hold(&c.wheld, 0)
	c.stats.bytesWritten += uint64(n)
	if err == nil && c.pend.Len() > 0 {
		err = c.writePinned()
	}
	c.pend.Release()
	if cap(c.wbuf) > keepBufSize || c.wbig != nil {
		c.releaseWbuf()
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err
}

// process handles every complete request buffered in rbuf[r:w], appending
// replies to wbuf. It returns how many unread bytes the next request needs
// (0 when unknown: any more input helps), or -1 when the connection must
// close after the replies are written.
func (c *conn) process() int {
	if c.r < c.w || c.getNext > 0 {
		c.state.Store(connParseCmd)
	}
	if c.turnReqs <= 0 {
		c.turnReqs = c.srv.cfg.reqsPerEvent() + 1
	}
	c.written = len(c.wbuf)
	if c.getNext > 0 {
		if c.get(&c.req, c.getNext); c.getNext > 0 {
			return 0 // the socket backed up again
		}
		if c.endRequest() {
			return 0
		}
	}
	for c.r < c.w {
		if c.swallow > 0 {
			n := min(c.swallow, c.w-c.r)
			c.swallow -= n
			c.r += n
			continue
		}
		if c.closeAfterWrite {
			return -1
		}
		c.prefetchAhead(2)
		c.reader = c.replyDrained
		if c.reader && c.readerRoomUsed {
			// A client that has not read the reply that used the
			// room is not given it again.
			c.reader = c.repliesTaken()
			c.readerRoomUsed = !c.reader
		}
		need := c.handleRequest(c.rbuf[c.r:c.w])
		if need != 0 {
			c.turnReqs = 0 // the next input starts a turn
			return need
		}
		c.replyDrained, c.inDeclined = false, false
		if c.pend.Len() > 0 {
			// A pinned value is written before any other reply.
			if c.flush() != nil {
				return -1
			}
			c.written = len(c.wbuf)
			if c.blocked {
				return 0 // the event loop goes on when it is written
			}
		}
		if c.getNext > 0 || c.dump != nil {
			// A multi-get stopped for a blocked write (the event loop
			// calls process again when the socket drains), or a
			// metadump waits for the loop to hand it off.
			return 0
		}
		yield := c.endRequest()
		if len(c.wbuf) > flushSize {
			if c.flush() != nil {
				return -1
			}
			c.written = len(c.wbuf)
			if c.blocked {
				// The event loop writes the rest when the socket
				// drains, then calls process again for the input
				// left.
				return 0
			}
		}
		if yield {
			return 0
		}
	}
	if c.closeAfterWrite {
		return -1
	}
	c.turnReqs = 0
	return 0
}

// dropUnwritten drops the replies memcached would not have written yet
// (see written), for a request on which it closes the connection at once.
func (c *conn) dropUnwritten() {
	if c.written < len(c.wbuf) {
		c.wbuf = c.wbuf[:c.written]
	}
}

// processAll is process without yields, for input that is answered at
// once: a datagram, or what came with a read error.
func (c *conn) processAll() int {
	for {
		need := c.process()
		if !c.yielded {
			return need
		}
		c.yielded = false
	}
}

// endRequest counts a request served in this turn and reports whether the
// connection is to yield: memcached's -R (reqs_per_event). As memcached
// counts them, a turn that starts with new input serves reqsPerEvent+1
// requests and one that goes on after a yield reqsPerEvent; each turn
// that uses them all counts a conn_yields, even when no input is left and
// the yield costs nothing. Pipelined requests read at once then count as
// many yields as memcached's: (requests-1)/reqsPerEvent.
func (c *conn) endRequest() bool {
	if c.turnReqs--; c.turnReqs > 0 {
		return false
	}
	c.stats.connYields++
	if c.r == c.w {
		return false // the next input starts a turn
	}
	c.turnReqs = c.srv.cfg.reqsPerEvent()
	c.yielded = true
	return true
}
