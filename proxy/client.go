package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"hash/maphash"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/corvidcache/corvid/protocol"
)

// Client connection limits. A client's memory is bounded by its read
// buffer (a command line is at most protocol.MaxGetLineLen bytes; a
// storage command's data at most Config.MaxValueLen, a longer one is
// discarded as it arrives; past clientReadBuf bytes the clients' buffers
// are bounded together, see readBufs) and by its replies.
//
// Replies are bounded twice. Per client, by admission: the reader stops
// taking requests while the calls awaiting the writer weigh more than
// the client's window (a call weighs one unit per key, at least one) or
// their completed replies hold more than maxClientReplyBytes. The window
// starts at initialWindow units and follows what the client's replies
// weigh: up to maxInflightUnits units of small replies (it grows only
// when the client fills it), down to the units that fit
// maxClientReplyBytes for large ones. One request is
// always admitted when none is pending. Over the whole proxy, by
// takeReply (see replyBufs): past Config.WriteBufMemLimit, a reply is
// refused unless it fits the allowance over the limit and the client
// then holds at most two replies of the largest size; a refused reply
// fails with "SERVER_ERROR Cannot allocate memory" without being copied,
// and the client is admitted nothing more until its writer has written
// what it holds. A client whose socket takes nothing for stallGrace
// while the total is past the limit is closed (write). The replies held
// are then at most the limit plus its allowance, whatever the number of
// clients (and one reply being read per server connection).
const (
	clientReadBuf       = 4 << 10
	maxInflightUnits    = 512
	initialWindow       = 8
	maxClientReplyBytes = 4 << 20
	writeFlushSize      = 64 << 10
	maxKeptScratch      = 64 << 10 // a fragment request buffer a client keeps
)

// A client is one client connection. Its reader goroutine parses
// requests, answers what the proxy answers itself, and forwards the rest;
// every request that expects a reply becomes a call queued in request
// order. Whoever completes the oldest call writes the replies that are
// ready (see ready); a writer goroutine runs only while a write must wait
// for the socket, and the reader holds a read buffer only while a request
// is being read. An idle client is parked (idle.go): it costs no
// goroutine and no buffer.
type client struct {
	p    *Proxy
	pool *pool
	nc   net.Conn
	conn uint32          // which of a server's connections its requests take
	raw  syscall.RawConn // nc's, when it has one and rawIO: reads without a buffer held, writes without waiting

	// The reader's state for raw reads: rawRead's result (readOnceFn's
	// for the event loop).
	readFn     func(fd uintptr) bool
	readOnceFn func(fd uintptr) bool
	rbuf       []byte
	rn         int
	rerr       error
	// rbox is the readBufPool entry of the last pool buffer the reader
	// took, reused to give a buffer back: putting a fresh &buf in the
	// pool would allocate on every request.
	rbox *[]byte

	// Parking (see idle.go). fd is nc's descriptor, -1 when it cannot be
	// watched; waiting is set while the reader waits for input with
	// nothing buffered, and wakes counts those waits' ends; stopping is
	// set by a reload that stops the reader with a deadline of its own
	// (any other read deadline is a sweep's kick). sweepWaiting and
	// sweepWakes are what the last sweep saw (the idler's goroutine,
	// holding p.mu, owns them).
	fd           int32
	waiting      atomic.Bool
	wakes        atomic.Uint32
	stopping     atomic.Bool
	sweepWaiting bool
	sweepWakes   uint32

	mu    sync.Mutex // guards queue, writing and the ready of its calls
	queue fifo       // calls whose replies are to be written, in request order
	// writing is the write token: its holder writes the replies of the
	// ready calls at the head of queue, and gives it back when the head
	// is not ready (see ready, writeReplies).
	writing bool
	writers sync.WaitGroup // writer goroutines (writeLoop)

	drained    chan struct{} // the writer freed units or bytes
	inflight   atomic.Int64  // units of calls not yet written
	replyBytes atomic.Int64  // bytes of completed replies not yet written
	// flushing is the part of replyBytes in the write under way, from
	// before the write starts until the writer has released it: the
	// client may have read it, and sent its next request, before then.
	flushing atomic.Int64
	backed   atomic.Bool  // a write of the writer goroutine waits for the socket
	proven   atomic.Bool  // its replies were all written once: it reads
	aborted  atomic.Bool  // closed by the proxy (abort): nothing more is admitted
	window   atomic.Int64 // units admitted at most (but one call)
	// starved is set when a reply was refused for the proxy's bound on
	// held replies; nothing is admitted until the writer has written
	// every reply the client holds.
	starved atomic.Bool
	// held is the tree the reader routes a request with, from taking it
	// to queueing the request on its servers (nil otherwise): a server a
	// reload removes is closed once no client holds an older tree.
	held atomic.Pointer[tree]
	// heldRoute is held for a front that routes through a route tree.
	heldRoute atomic.Pointer[routeTree]

	// proto is the client's protocol, chosen by its first byte (reader).
	proto clientProto

	// The reader's scratch, made when the reader starts; a parked client
	// holds none (see dropScratch).
	*readerScratch
	readState
	// lp is the event loop that reads cl (nil when a reader goroutine
	// does), and lslot its slot there; they change under the loop's
	// mutex, by cl's reader or whoever gives cl to the loop (see
	// loop_linux.go).
	lp     *loop
	lslot  int32
	lsweep uint32   // the loop's sweep at cl's last event (the loop's)
	unsent []*bconn // server connections it queued requests on, to flush

	// The write token holder's state.
	inline     bool // writing without waiting: appendBig copies
	failed     bool // a write failed: replies are discarded
	deadline   bool // the writer goroutine set a write deadline
	skipChunks bool // a chunk of a multi-get failed: drop its other chunks
	pos        []int
	blocks     [][2]int // merge: each key's VALUE block in its fragment's reply
}

// readerScratch is what a client's reader keeps between requests to
// reuse.
type readerScratch struct {
	req       protocol.Request
	mreq      protocol.MetaRequest
	line      []byte           // a request line rewritten without noreply
	staleLine []byte           // see dropStale
	picks     []int32          // fragment of each key of a multi-get; -1-i repeats key i
	fragOf    []int32          // live index -> fragment index
	fragSrv   []int32          // fragment index -> live index
	fragBufs  [][]byte         // fragment requests
	getKeys   [][]byte         // the keys of a get line's current chunk (protocol.NextKey)
	seen      map[uint64]int32 // a multi-get's keys by hash -> first index
	fragBack  []*backend       // route tree: fragment -> its server (nil: composed)
	fragNode  []*rnode         // route tree: fragment -> its route, for a composed key
	seed      maphash.Seed
}

func newClient(p *Proxy, nc net.Conn) *client {
	cl := &client{p: p, nc: nc, drained: make(chan struct{}, 1), fd: -1}
	cl.window.Store(initialWindow)
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			if rawIO {
				cl.raw, cl.readFn = raw, cl.rawRead
			}
			raw.Control(func(fd uintptr) { cl.fd = int32(fd) })
		}
	}
	return cl
}

// takeReply accounts a reply of n bytes to cl, which its writer will
// write, or refuses it when the replies held for clients are at their
// bound (see replyBufs): cl is then closed, as corvid server closes a
// connection whose reply would pass write_buf_mem_limit and its
// allowance, and counted in write_buf_oom. Were it answered an error
// instead, a client that does not read (its socket takes short errors)
// would make the servers send one refused reply after another, and delay
// every client behind them.
func (cl *client) takeReply(n int) bool {
	if cl.p.replies.take(&cl.replyBytes, int64(n), cl.reads) {
		return true
	}
	cl.starved.Store(true)
	if !cl.aborted.Load() {
		cl.p.replies.oom.Add(1)
		cl.p.log.Debug("client closed", "pool", cl.pool.name, "err", errNoMemory)
		cl.abort() // the writer discards
	}
	return false
}

// abort closes cl's connection from the writer's or a server
// connection's side: its reader stops, admitting nothing more, so that
// the requests it had read are not sent for replies nobody will read.
func (cl *client) abort() {
	cl.aborted.Store(true)
	cl.nc.Close()
	cl.signalDrained()
	cl.p.loop.kick(cl) // the loop, if it reads cl, hears nothing of a closed socket
}

// reads reports whether cl reads what it is given: all its replies were
// written once, it holds none now but those in the write under way, and
// the socket has sent all it was
// given (where that can be known; elsewhere, its writer does not wait for
// the socket now).
func (cl *client) reads() bool {
	// A client with replies still held has not taken them yet: the
	// socket may have taken its first ones for a client that never
	// reads.
	if !cl.proven.Load() || cl.replyBytes.Load()-cl.flushing.Load() > 0 {
		return false
	}
	// Where the socket tells what it has not sent, that decides: the
	// writer may still wait for a socket the client has just drained
	// (and sent its next request after reading).
	if n := cl.unsentBytes(); n >= 0 {
		return n == 0
	}
	return !cl.backed.Load()
}

// wrote releases the units and bytes of replies the writer wrote (or
// discarded), and adjusts the window to what the replies weighed: it
// shrinks at once to the units of such replies that fit
// maxClientReplyBytes, and at most doubles when they are lighter and
// filled at least half of it.
func (cl *client) wrote(units, bytes int64) {
	cl.inflight.Add(-units)
	left := cl.p.replies.release(&cl.replyBytes, bytes)
	cl.flushing.Store(0)
	if left == 0 {
		cl.starved.Store(false)
		if bytes > 0 && !cl.failed {
			cl.proven.Store(true)
		}
	}
	if units > 0 {
		fit := int64(maxInflightUnits)
		if bytes > 0 {
			fit = max(1, min(fit, maxClientReplyBytes*units/bytes))
		}
		w := cl.window.Load()
		switch {
		case fit < w:
			cl.window.Store(fit)
		case fit > w && 2*units >= w:
			// Replies of a window at least half used were light.
			cl.window.Store(min(fit, 2*w))
		}
	}
	cl.signalDrained()
}

func (cl *client) signalDrained() {
	select {
	case cl.drained <- struct{}{}:
	default:
	}
}

// readBufPool holds the clients' read buffers of clientReadBuf bytes.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, clientReadBuf); return &b }}

// serve runs the connection to its end, or until it is parked.
func (cl *client) serve() {
	cl.finish(cl.readLoop(cl.step()))
}

// finish ends the connection once its reader has stopped with err:
// unless it was parked, it waits for its replies to be written, closes
// it and counts how it ended.
func (cl *client) finish(err error) {
	if errors.Is(err, errParked) {
		return // the idler (or the event loop) resumes it
	}
	cl.waitWritten()
	cl.nc.Close()
	switch {
	case errors.Is(err, errQuit), errors.Is(err, io.EOF):
		cl.pool.st.clientEOF.Add(1)
	default:
		cl.pool.st.clientErr.Add(1)
	}
	cl.p.untrack(cl)
}

// The reader's state, whichever reads for the client (its reader
// goroutine, or the proxy's event loop): buf[r:w] is what was read and
// not yet handled, and skip the bytes of a refused value still to be
// discarded as they arrive. buf is nil while nothing is buffered.
type readState struct {
	buf  []byte
	r, w int
	skip int
}

// step handles the requests buffered, and returns how many bytes the
// next one needs in all (see handle) when it is incomplete, or the error
// that ends the connection.
func (cl *client) step() (need int, err error) {
	if cl.readerScratch == nil {
		cl.readerScratch = new(readerScratch)
	}
	for cl.r < cl.w {
		if cl.skip > 0 {
			n := min(cl.skip, cl.w-cl.r)
			cl.skip -= n
			cl.r += n
			continue
		}
		n, want, err := cl.handle(cl.buf[cl.r:cl.w], &cl.skip)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return want, nil
		}
		cl.r += n
	}
	return 0, nil
}

// room makes room in the read buffer for the rest of a request that
// needs need bytes in all (see step): with nothing buffered it gives the
// buffer back (an idle client holds none), else it compacts or grows it,
// or ends a connection whose request the proxy's bound on read buffers
// refuses (see refuseRead).
func (cl *client) room(need int) error {
	if cl.r == cl.w {
		cl.r, cl.w = 0, 0
		cl.putReadBuf(cl.buf)
		cl.buf = nil
		return nil
	}
	buf, r, w := cl.buf, cl.r, cl.w
	want := max(need, w-r+1)
	switch {
	case len(buf) > clientReadBuf && want <= clientReadBuf:
		// A large buffer is held only for a request that needs it (see
		// readBufs).
		cl.buf = cl.p.rbufs.shrink(buf, r, w)
		cl.r, cl.w = 0, w-r
	case r+want <= len(buf):
	case want <= len(buf):
		cl.w = copy(buf, buf[r:w])
		cl.r = 0
	default:
		nb, ok := cl.p.rbufs.grow(buf, r, w, growSize(len(buf), want, need))
		if !ok {
			cl.dropReadBuf()
			return cl.refuseRead()
		}
		cl.r, cl.w, cl.buf = 0, w-r, nb
	}
	return nil
}

// dropReadBuf gives back the read buffer with what it holds.
func (cl *client) dropReadBuf() {
	cl.putReadBuf(cl.buf)
	cl.buf, cl.r, cl.w = nil, 0, 0
}

// readLoop reads and handles requests until the client closes, quits,
// sends a line that is too long, or the proxy closes, or until it parks
// the client (errParked). It starts with the result of a step (need,
// err): what is buffered was handled. Between requests it holds no
// buffer: it waits for input, and takes a buffer from readBufPool only
// to read it.
func (cl *client) readLoop(need int, err error) error {
	defer func() {
		if errors.Is(err, errParked) {
			// The idler owns cl now, and may have started its next
			// reader: nothing of cl may be touched (nothing is unsent
			// and no buffer is held at a park).
			return
		}
		cl.flush()
		cl.dropReadBuf()
	}()
	for {
		if err != nil {
			return err
		}
		// Send what was parsed before waiting for more.
		cl.flush()
		if err = cl.room(need); err != nil {
			return err
		}
		var n int
		cl.buf, n, err = cl.read(cl.buf, cl.w)
		cl.w += n
		if err != nil && n == 0 {
			if !cl.kicked(err) {
				return err
			}
			err = nil
			// Waited through a sweep: park unless something is under way.
			if cl.buf == nil && cl.skip == 0 && cl.parkable() {
				rs := cl.readerScratch
				cl.dropScratch()
				if cl.p.park(cl) {
					err = errParked
					return err
				}
				cl.readerScratch = rs
			}
		}
		need, err = cl.step()
	}
}

// queued records that the reader queued a request on bc, which it sends
// with flush.
func (cl *client) queued(bc *bconn) {
	if cl.lp != nil {
		cl.lp.queued(bc) // the loop flushes it once its events are handled
		return
	}
	for _, q := range cl.unsent {
		if q == bc {
			return
		}
	}
	cl.unsent = append(cl.unsent, bc)
}

// flush sends the requests the reader queued on server connections
// since the last flush (together with what other clients queued there
// meanwhile).
func (cl *client) flush() {
	if len(cl.unsent) == 0 {
		return
	}
	// Let the other clients whose input is ready queue their requests
	// too, so that one write carries them all.
	runtime.Gosched()
	for i, bc := range cl.unsent {
		bc.flush()
		cl.unsent[i] = nil
	}
	cl.unsent = cl.unsent[:0]
}

// getReadBuf takes a buffer from readBufPool.
func (cl *client) getReadBuf() []byte {
	cl.rbox = readBufPool.Get().(*[]byte)
	return *cl.rbox
}

// putReadBuf gives back a read buffer: one of readBufPool's size to it,
// a large one to the proxy's readBufs.
func (cl *client) putReadBuf(buf []byte) {
	switch {
	case len(buf) == clientReadBuf:
		box := cl.rbox
		cl.rbox = nil
		if box == nil {
			box = new([]byte)
		}
		*box = buf
		readBufPool.Put(box)
	case cap(buf) > clientReadBuf:
		cl.p.rbufs.put(buf)
	}
}

// refuseRead ends a connection whose request needs a read buffer past the
// proxy's bound (Config.ReadBufMemLimit), as corvid server and memcached
// do: a text client is told why, a binary one is just closed.
func (cl *client) refuseRead() error {
	if cl.proto != protoBinary {
		if err := cl.local("SERVER_ERROR out of memory reading request"); err != nil {
			return err
		}
	}
	return errReadBufOOM
}

// read reads into buf[w:]. When buf is nil (nothing is buffered) it waits
// for input without a buffer when the connection allows it, and returns
// the buffer it took from readBufPool to read into.
func (cl *client) read(buf []byte, w int) ([]byte, int, error) {
	if buf != nil || cl.raw == nil {
		if buf == nil {
			buf = cl.getReadBuf()
		}
		n, err := cl.nc.Read(buf[w:])
		return buf, n, err
	}
	cl.rbuf, cl.rn, cl.rerr = nil, 0, nil
	cl.waiting.Store(true)
	err := cl.raw.Read(cl.readFn)
	cl.waiting.Store(false)
	cl.wakes.Add(1)
	buf, n := cl.rbuf, cl.rn
	cl.rbuf = nil
	if err == nil {
		err = cl.rerr
	}
	if err == nil && n <= 0 {
		err = io.EOF
	}
	if err != nil {
		cl.putReadBuf(buf)
		return nil, 0, err
	}
	return buf, n, nil
}

// rawRead is cl.readFn, which cl.raw.Read calls when the connection may
// be readable: it reads into a buffer from readBufPool, and when there is
// nothing to read it puts the buffer back and has Read wait.
func (cl *client) rawRead(fd uintptr) bool {
	buf := cl.getReadBuf()
	n, err := readNow(fd, buf)
	if err == syscall.EAGAIN {
		cl.putReadBuf(buf)
		return false
	}
	cl.rbuf, cl.rn, cl.rerr = buf, n, err
	return true
}

// handle handles the first request in buf. It returns the bytes consumed,
// or 0 and how many bytes the request needs in all (0: at least one
// more) when it is incomplete; an error ends the connection.
func (cl *client) handle(buf []byte, skip *int) (n, need int, err error) {
	if cl.proto == protoUndecided {
		cl.proto = protoText
		if buf[0] == protocol.BinaryRequestMagic {
			cl.proto = protoBinary
		}
	}
	if cl.proto == protoBinary {
		return cl.binary(buf, skip)
	}
	if protocol.IsMetaStart(buf) {
		n, err := protocol.ParseMeta(buf, &cl.mreq)
		if !errors.Is(err, protocol.ErrNotMeta) {
			if n == 0 {
				return 0, 0, err
			}
			return cl.meta(buf, n, err, skip)
		}
	}
	req := &cl.req
	n, err = protocol.Parse(buf, req)
	if n == 0 {
		return 0, 0, err
	}
	if err != nil {
		if line, _ := protocol.ErrorReply(err, req.NoReply); line != "" {
			return n, 0, cl.local(line)
		}
		return n, 0, nil
	}
	switch req.Command {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		return n, 0, cl.get(buf[:n])
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend,
		protocol.CmdPrepend, protocol.CmdCas:
		if req.ValueLen > cl.p.cfg.MaxValueLen {
			*skip = req.ValueLen + 2
			if req.Command == protocol.CmdSet {
				if err := cl.dropStale(req.Key(), false); err != nil {
					return n, 0, err
				}
			}
			return n, 0, cl.localUnlessNoReply(req.NoReply, "SERVER_ERROR object too large for cache")
		}
		total := n + req.ValueLen + 2
		if len(buf) < total {
			return 0, total, nil
		}
		if buf[total-2] != '\r' || buf[total-1] != '\n' {
			if itemTooLarge(len(req.Key()), req.ValueLen, req.Flags, cl.p.cfg.MaxValueLen) {
				if req.Command == protocol.CmdSet {
					if err := cl.dropStale(req.Key(), false); err != nil {
						return total, 0, err
					}
				}
				return total, 0, cl.localUnlessNoReply(req.NoReply, "SERVER_ERROR object too large for cache")
			}
			return total, 0, cl.localUnlessNoReply(req.NoReply, "CLIENT_ERROR bad data chunk")
		}
		return total, 0, cl.forward(req.Key(), kindStore, opForward, req.NoReply, buf[:n], buf[n:total])
	case protocol.CmdDelete:
		return n, 0, cl.forward(req.Key(), kindDelete, opForward, req.NoReply, buf[:n])
	case protocol.CmdIncr, protocol.CmdDecr:
		return n, 0, cl.forward(req.Key(), kindArith, opForward, req.NoReply, buf[:n])
	case protocol.CmdTouch:
		return n, 0, cl.forward(req.Key(), kindTouch, opForward, req.NoReply, buf[:n])
	case protocol.CmdFlushAll:
		return n, 0, cl.flushAll(buf[:n], req.NoReply)
	case protocol.CmdVersion:
		return n, 0, cl.local("VERSION " + cl.p.cfg.Version)
	case protocol.CmdQuit:
		return n, 0, errQuit
	case protocol.CmdStats:
		if len(req.Args) > 0 && !statsGroups[string(req.Args[0])] {
			return n, 0, cl.local("ERROR") // memcached's reply to "stats noreply", "stats bogus"
		}
		return n, 0, cl.localRaw(cl.p.appendStats(nil))
	}
	// verbosity, shutdown, cache_memlimit, lru, lru_crawler, watch,
	// slabs, config: no single server owns them.
	return n, 0, cl.localUnlessNoReply(req.NoReply,
		"SERVER_ERROR "+string(commandName(buf[:n]))+" is not supported by the proxy")
}

// statsGroups are the arguments of "stats" memcached knows; it answers
// ERROR to any other.
var statsGroups = map[string]bool{"settings": true, "items": true, "slabs": true,
	"sizes": true, "conns": true, "reset": true, "detail": true, "cachedump": true,
	"extstore": true}

// commandName returns the first token of a request line.
func commandName(line []byte) []byte {
	line = bytes.TrimLeft(line, " ")
	if i := bytes.IndexAny(line, " \r\n\x00"); i >= 0 {
		line = line[:i]
	}
	return line
}

// meta handles a meta command whose line (n bytes) starts buf.
func (cl *client) meta(buf []byte, n int, perr error, skip *int) (int, int, error) {
	m := &cl.mreq
	if perr != nil {
		if m.Command == protocol.MetaSet && m.SkipData {
			*skip = m.ValueLen + 2
		}
		line, _ := protocol.ErrorReply(perr, false)
		return n, 0, cl.local(line)
	}
	switch m.Command {
	case protocol.MetaNoop:
		// Answered in order: after the replies of every request before it.
		return n, 0, cl.local("MN")
	case protocol.MetaSet:
		if m.ValueLen > cl.p.cfg.MaxValueLen {
			*skip = m.ValueLen + 2
			if err := cl.dropStale(m.Key, m.Base64); err != nil {
				return n, 0, err
			}
			return n, 0, cl.local("SERVER_ERROR object too large for cache")
		}
		total := n + m.ValueLen + 2
		if len(buf) < total {
			return 0, total, nil
		}
		if buf[total-2] != '\r' || buf[total-1] != '\n' {
			if itemTooLarge(len(m.Key), m.ValueLen, m.ClientFlags, cl.p.cfg.MaxValueLen) {
				if err := cl.dropStale(m.Key, m.Base64); err != nil {
					return total, 0, err
				}
				return total, 0, cl.local("SERVER_ERROR object too large for cache")
			}
			return total, 0, cl.local("CLIENT_ERROR bad data chunk")
		}
		return total, 0, cl.forwardMeta(buf[:n], buf[n:total])
	}
	return n, 0, cl.forwardMeta(buf[:n], nil)
}

// itemTooLarge reports whether memcached, its item size limit max,
// refuses to make an item of a key of keyLen bytes and a value of
// valueLen with flags: the item's header (48 bytes), the key and its NUL,
// the CAS unique (8 bytes), the value and its CRLF, and the flags unless
// 0 (4 bytes) must fit. memcached refuses such a storage request before
// it reads the data, so the proxy asks only when it answers the request
// itself (a bad data chunk); the servers judge every other request.
func itemTooLarge(keyLen, valueLen int, flags uint32, max int) bool {
	n := 48 + keyLen + 1 + 8 + valueLen + 2
	if flags != 0 {
		n += 4
	}
	return n > max
}

// mnLine follows every quiet meta request to its server, so that each
// request forwarded has a reply that ends in a known way: a quiet
// request's reply is whatever the server sends (nothing on success, an
// error or a value otherwise) up to this MN, which the proxy drops.
var mnLine = []byte("mn\r\n")

// forwardMeta forwards a meta request by its key.
func (cl *client) forwardMeta(line, data []byte) error {
	m := &cl.mreq
	if m.NoReply {
		return cl.forward(m.Key, kindMetaQuiet, opStripMN, false, line, data, mnLine)
	}
	return cl.forward(m.Key, kindMeta, opForward, false, line, data)
}

// dropStale removes key's value from its server, dropping the reply: what
// memcached does when it refuses a set, or an ms in any mode, whose value
// is too large, so that the value the client meant to replace is not
// read again. A base64 key (ms flag b) goes encoded, with b.
func (cl *client) dropStale(key []byte, b64 bool) error {
	line := cl.staleLine[:0]
	if b64 {
		line = append(line, "md "...)
		line = base64.StdEncoding.AppendEncode(line, key)
		line = append(line, " b\r\n"...)
		cl.staleLine = line
		return cl.send(key, kindMeta, opForward, true, line)
	}
	line = append(append(append(line, "delete "...), key...), '\r', '\n')
	cl.staleLine = line
	return cl.send(key, kindDelete, opForward, true, line)
}

// forward sends a single-key request to the server that owns key. A
// noreply request is sent without its noreply, so that every request the
// server gets has one reply and its FIFO stays in step whatever it
// answers; the proxy drops that reply, as memcached would not send it.
func (cl *client) forward(key []byte, kind replyKind, op callOp, noreply bool, parts ...[]byte) error {
	if noreply {
		cl.line = stripNoreply(cl.line[:0], parts[0])
		parts[0] = cl.line
	}
	return cl.send(key, kind, op, noreply, parts...)
}

// send sends the request parts to the server that owns key; the reply of
// a detached request is dropped.
func (cl *client) send(key []byte, kind replyKind, op callOp, detached bool, parts ...[]byte) error {
	c := newCall()
	c.kind, c.op, c.units = kind, op, 1
	if err := cl.dispatch(c, detached); err != nil {
		c.release()
		return err
	}
	if rt := cl.holdRoute(); rt != nil {
		rt.routeTo(cl, c, rt.root, rreq{key: key, op: ropOf(parts[0]), kind: kind, parts: parts}, nil)
		cl.unhold()
		return nil
	}
	b, err := cl.hold().route(key)
	if err != nil {
		cl.unhold()
		c.complete(nil, err)
		return nil
	}
	b.send(c, parts...)
	cl.unhold()
	return nil
}

// hold returns the pool's current tree and records it in cl.held until
// unhold. The tree is read again after it is recorded: a reload that swaps
// trees and then finds held empty (or newer) knows this client will not
// send on the old tree. Nothing between hold and unhold may block.
func (cl *client) hold() *tree {
	for {
		t := cl.pool.current()
		cl.held.Store(t)
		if cl.pool.cur.Load() == t {
			return t
		}
	}
}

// holdRoute is hold for a front with a route tree: it returns the tree
// (nil for a plain pool) and records it in cl.heldRoute until unhold.
func (cl *client) holdRoute() *routeTree {
	rt := cl.pool.rt.Load()
	for rt != nil {
		cl.heldRoute.Store(rt)
		now := cl.pool.rt.Load()
		if now == rt {
			return rt
		}
		rt = now
	}
	cl.heldRoute.Store(nil)
	return nil
}

// unhold ends what hold or holdRoute began: the requests are queued on
// their servers.
func (cl *client) unhold() {
	cl.held.Store(nil)
	cl.heldRoute.Store(nil)
}

// stripNoreply appends to dst the request line without its last token,
// "noreply", and with "\r\n".
func stripNoreply(dst, line []byte) []byte {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i] // memcached ignores a line from a NUL byte on
	}
	line = bytes.TrimRight(line, " \r\n")
	line = bytes.TrimSuffix(line, []byte("noreply"))
	line = bytes.TrimRight(line, " ")
	return append(append(dst, line...), '\r', '\n')
}

// dispatch admits c (waiting while the client is over its bounds) and
// queues it for the writer; a detached call is not queued.
func (cl *client) dispatch(c *call, detached bool) error {
	u := int64(c.units)
	for {
		if cl.aborted.Load() {
			return errClosed
		}
		in := cl.inflight.Load()
		if in == 0 || in+u <= cl.window.Load() && cl.replyBytes.Load() <= maxClientReplyBytes && !cl.starved.Load() {
			break
		}
		if cl.lp != nil {
			// The event loop never waits: this goroutine becomes cl's
			// reader, and a new one runs the loop.
			cl.lp.handover(cl)
		}
		cl.flush() // the replies waited for may be to requests not yet sent
		select {
		case <-cl.drained:
		case <-cl.p.ctx.Done():
			return errClosed
		}
	}
	cl.inflight.Add(u)
	c.owner, c.conn = cl, cl.conn
	if detached {
		c.detached = true
		return nil
	}
	cl.mu.Lock()
	cl.queue.push(c)
	cl.mu.Unlock()
	return nil
}

// waitWritten waits until the replies of every call queued are written
// (or discarded after a failed write) and the writer goroutines are gone.
func (cl *client) waitWritten() {
	for {
		cl.mu.Lock()
		done := cl.queue.len() == 0 && !cl.writing
		cl.mu.Unlock()
		if done {
			break
		}
		<-cl.drained // the token's holder signals when it lets it go
	}
	cl.writers.Wait()
}

// local queues the proxy's own one-line reply.
func (cl *client) local(line string) error {
	c := newCall()
	c.op, c.units = opLocal, 1
	c.reply = append(append(c.reply[:0], line...), '\r', '\n')
	if err := cl.dispatch(c, false); err != nil {
		c.release()
		return err
	}
	cl.takeLocal(c)
	c.finish(nil)
	return nil
}

// takeLocal accounts the proxy's own reply of c to cl: it is small and
// always taken.
func (cl *client) takeLocal(c *call) {
	cl.p.replies.force(&cl.replyBytes, int64(len(c.reply)))
}

func (cl *client) localUnlessNoReply(noreply bool, line string) error {
	if noreply {
		return nil
	}
	return cl.local(line)
}

// localRaw queues the proxy's own reply b.
func (cl *client) localRaw(b []byte) error {
	c := newCall()
	c.op, c.units = opLocal, 1
	c.reply = append(c.reply[:0], b...)
	if err := cl.dispatch(c, false); err != nil {
		c.release()
		return err
	}
	cl.takeLocal(c)
	c.finish(nil)
	return nil
}

// maxSeenKeys bounds the map of keys a client keeps between multi-gets.
const maxSeenKeys = 4096

// maxGetChunkKeys bounds the keys of one admitted part of a multi-get: a
// wider one is sent in chunks of that many keys, each admitted as its
// own request, so that what a multi-get holds does not grow with the
// keys it asks for. A client whose window has grown (its replies are
// light) takes chunks of as many keys as its window instead (chunkKeys),
// at most maxInflightUnits: fewer, larger fragments cost the servers and
// the proxy less per key, and more of them are in flight at once.
const maxGetChunkKeys = 32

// chunkKeys returns the distinct keys a chunk of a multi-get may hold,
// taken once per get line so that its chunks do not depend on when
// replies are written.
func (cl *client) chunkKeys() int32 {
	return int32(max(maxGetChunkKeys, cl.window.Load()))
}

// chunkKeysPerUnit is how many of a multi-get's keys weigh one unit of a
// client's window: a key of a multi-get costs the proxy its place in the
// fragments and the merge, a fraction of a request of its own. (A
// multi-get's replies are weighed by their bytes as any others.)
const chunkKeysPerUnit = 4

// maxGetChunkNames bounds the keys a chunk names, repeats included, so
// that what a chunk holds (each key's place in the reply) stays small
// when a line names a few keys many times: such a line is sent in
// chunks of this many keys, each fetching its few keys once.
const maxGetChunkNames = 4096

// get forwards a get, gets, gat or gats line. Keys on one server go as
// the client sent them; keys on several are split into one fragment per
// server, sent in parallel, and merged back in the client's key order.
// A key named more than once in a chunk is fetched once and its value
// repeated in the reply, so that the proxy reads and holds each value
// once per chunk whatever the client asks (a line that names one key
// many times also goes through the merge). A line that names more than
// maxGetChunkKeys distinct keys is sent in chunks of that many distinct
// keys (see nextChunk), in order; the client sees one reply: the
// chunks' VALUE blocks and one END, or, when a chunk fails, the VALUE
// blocks before it and the error (as memcached answers a multi-get that
// fails part way).
//
// The keys are walked in the line (protocol.NextKey) one chunk at a
// time, and only the current chunk's are collected: a line costs its
// read buffer and nothing that grows with the keys it names.
func (cl *client) get(line []byte) error {
	most := cl.chunkKeys()
	keys, next := cl.nextChunk(0, most)
	more := cl.hasKey(next)
	switch {
	case len(keys) == 0:
		// "gat <exptime>" without a key: memcached answers END. With no
		// fragment to wait for, a split would never complete.
		return cl.local("END")
	case !more && len(keys) == 1:
		if cl.p.router && bytes.HasPrefix(keys[0], adminKey) {
			return cl.adminGet(keys[0])
		}
		return cl.forward(keys[0], kindGet, opForward, false, line)
	case !more:
		defer cl.trimGetScratch()
		return cl.getChunk(line, keys, false, false)
	}
	defer cl.trimGetScratch()
	for cont := false; ; cont = true {
		if err := cl.getChunk(nil, keys, cont, more); err != nil {
			return err
		}
		if !more {
			return nil
		}
		keys, next = cl.nextChunk(next, most)
		more = cl.hasKey(next)
	}
}

// hasKey reports whether the get line's keys go on at offset i.
func (cl *client) hasKey(i int) bool {
	k, _ := protocol.NextKey(cl.req.GetKeys, i)
	return len(k) > 0
}

// nextChunk returns the keys of the chunk of the get line's keys that
// starts at offset i (in cl.getKeys, pointing into the line) and the
// offset where the next chunk starts. A chunk is the longest run that
// names at most most distinct keys and at most maxGetChunkNames keys in
// all. A key repeated
// within a chunk is fetched once, so a line that names a few keys many
// times fetches each once per maxGetChunkNames keys; a key repeated in a
// later chunk is fetched again.
func (cl *client) nextChunk(i int, most int32) (keys [][]byte, next int) {
	var distinct int32
	if cl.seen == nil {
		cl.seen, cl.seed = make(map[uint64]int32), maphash.MakeSeed()
	}
	defer clear(cl.seen)
	keys = cl.getKeys[:0]
	for len(keys) < maxGetChunkNames {
		k, end := protocol.NextKey(cl.req.GetKeys, i)
		if len(k) == 0 {
			break
		}
		h := maphash.Bytes(cl.seed, k)
		if first, ok := cl.seen[h]; !ok || !bytes.Equal(keys[first], k) {
			if distinct == most {
				break
			}
			cl.seen[h] = int32(len(keys))
			distinct++
		}
		if len(keys) == cap(keys) && len(keys) >= 2*maxGetChunkKeys {
			// Many repeats: grow once to the most a chunk holds.
			keys = slices.Grow(keys, maxGetChunkNames-len(keys))
		}
		keys = append(keys, k)
		i = end
	}
	cl.getKeys = keys[:0]
	return keys, i
}

// trimGetScratch drops the scratch a get line of many repeated keys
// grew, so that a client does not keep it for the next request.
func (cl *client) trimGetScratch() {
	if cap(cl.getKeys) > 2*maxGetChunkKeys {
		cl.getKeys, cl.picks = nil, nil
	}
}

// appendGetPrefix appends the request's command and, for gat and gats,
// its exptime.
func (cl *client) appendGetPrefix(dst []byte) []byte {
	req := &cl.req
	switch req.Command {
	case protocol.CmdGets:
		return append(dst, "gets"...)
	case protocol.CmdGat:
		return strconv.AppendInt(append(dst, "gat "...), req.Exptime, 10)
	case protocol.CmdGats:
		return strconv.AppendInt(append(dst, "gats "...), req.Exptime, 10)
	}
	return append(dst, "get"...)
}

// getChunk forwards the keys of a get: line is the client's request when
// it holds just these keys, nil for a chunk. cont marks a chunk after
// the first, more one before the last.
func (cl *client) getChunk(line []byte, keys [][]byte, cont, more bool) error {
	// Admission may wait for the client to read its replies: it comes
	// before the tree is held.
	c := newCall()
	// A chunk weighs what it names, repeats included: each name has its
	// place in the merge.
	c.kind, c.op, c.units = kindGet, opForward, int32(max(1, len(keys)/chunkKeysPerUnit))
	c.cont, c.more = cont, more
	if err := cl.dispatch(c, false); err != nil {
		c.release()
		return err
	}
	if rt := cl.holdRoute(); rt != nil {
		defer cl.unhold()
		cl.routeGetChunk(rt, c, line, keys)
		return nil
	}
	t := cl.hold()
	defer cl.unhold()
	if t.ring == nil {
		c.complete(nil, errNoServer)
		return nil
	}
	nlive := len(t.live)
	if cap(cl.fragOf) < nlive {
		cl.fragOf = make([]int32, nlive)
	}
	fragOf := cl.fragOf[:nlive]
	for i := range fragOf {
		fragOf[i] = -1
	}
	// Grown once to the chunk's keys: a chunk of many repeats would
	// otherwise regrow them by doubling.
	cl.picks, cl.fragSrv = slices.Grow(cl.picks[:0], len(keys)), cl.fragSrv[:0]
	if cl.seen == nil {
		cl.seen, cl.seed = make(map[uint64]int32), maphash.MakeSeed()
	}
	dups := false
	for i, k := range keys {
		// A key named again is fetched once; picks holds -1-i for a
		// repeat of key i.
		h := maphash.Bytes(cl.seed, k)
		if first, ok := cl.seen[h]; ok && bytes.Equal(keys[first], k) {
			cl.picks = append(cl.picks, -1-first)
			dups = true
			continue
		}
		cl.seen[h] = int32(i)
		s := int32(t.pick(k))
		if fragOf[s] < 0 {
			fragOf[s] = int32(len(cl.fragSrv))
			cl.fragSrv = append(cl.fragSrv, s)
		}
		cl.picks = append(cl.picks, fragOf[s])
	}
	if len(cl.seen) > maxSeenKeys {
		cl.seen = nil // clearing a map costs its size: start small again
	} else {
		clear(cl.seen)
	}
	nfrag := len(cl.fragSrv)
	for len(cl.fragBufs) < nfrag {
		cl.fragBufs = append(cl.fragBufs, nil)
	}
	if nfrag == 1 && !dups {
		if line == nil {
			b := cl.appendGetPrefix(cl.fragBufs[0][:0])
			for _, k := range keys {
				b = append(append(b, ' '), k...)
			}
			line = append(b, '\r', '\n')
			cl.fragBufs[0] = line
		}
		t.live[cl.fragSrv[0]].send(c, line)
		return nil
	}
	// c is queued for the writer, which reads it only once it completes,
	// after its fragments are sent.
	parent := c
	cl.splitGet(parent, keys, nfrag)
	for j, f := range parent.frags {
		cl.fragBufs[j] = append(cl.fragBufs[j], '\r', '\n')
		t.live[cl.fragSrv[j]].send(f, cl.fragBufs[j])
		if cap(cl.fragBufs[j]) > maxKeptScratch {
			cl.fragBufs[j] = nil
		}
	}
	return nil
}

// flushAll sends flush_all to every server of the pool; the client gets
// OK only when every server answered OK.
func (cl *client) flushAll(line []byte, noreply bool) error {
	if noreply {
		cl.line = stripNoreply(cl.line[:0], line)
		line = cl.line
	}
	parent := newCall()
	parent.op, parent.units = opFlushAll, 1
	if err := cl.dispatch(parent, noreply); err != nil {
		parent.release()
		return err
	}
	all := cl.holdAll()
	defer cl.unhold()
	if len(all) == 0 {
		parent.complete(nil, errNoServer)
		return nil
	}
	for range all {
		f := newCall()
		f.kind, f.parent, f.conn = kindFlush, parent, parent.conn
		parent.frags = append(parent.frags, f)
	}
	parent.pending.Store(int32(len(all)))
	cl.pool.st.fragments.Add(int64(len(all)))
	for i, f := range parent.frags {
		all[i].send(f, line)
	}
	return nil
}

// holdAll holds the tree (see hold) and returns every server of the
// pool, or of the pools a route tree names.
func (cl *client) holdAll() []*backend {
	if rt := cl.holdRoute(); rt != nil {
		return rt.all
	}
	return cl.hold().all
}

// splitGet makes parent a multi-get merged in key order from nfrag
// fragments: each fragment's request line (cl.fragBufs, without its CRLF)
// gets the keys cl.picks gives it, parent records every key with its
// fragment (a negative pick repeats an earlier key), and the fragment
// calls are made.
func (cl *client) splitGet(parent *call, keys [][]byte, nfrag int) {
	parent.op = opMergeGet
	for j := range nfrag {
		cl.fragBufs[j] = cl.appendGetPrefix(cl.fragBufs[j][:0])
	}
	parent.keyEnds = slices.Grow(parent.keyEnds, len(keys))
	parent.keyFrag = slices.Grow(parent.keyFrag, len(keys))
	for i, k := range keys {
		j := cl.picks[i]
		if j < 0 {
			parent.keyEnds = append(parent.keyEnds, int32(len(parent.keyBuf)))
			parent.keyFrag = append(parent.keyFrag, j)
			continue
		}
		cl.fragBufs[j] = append(append(cl.fragBufs[j], ' '), k...)
		parent.keyBuf = append(parent.keyBuf, k...)
		parent.keyEnds = append(parent.keyEnds, int32(len(parent.keyBuf)))
		parent.keyFrag = append(parent.keyFrag, j)
	}
	for range nfrag {
		f := newCall()
		f.kind, f.parent, f.conn = kindGet, parent, parent.conn
		parent.frags = append(parent.frags, f)
	}
	parent.pending.Store(int32(nfrag))
	if nfrag > 1 {
		cl.pool.st.fragments.Add(int64(nfrag))
	}
}
