package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/ring"
)

// maxQueueBytes bounds the request bytes a backend connection holds unsent
// (a server that stops reading): past it, requests fail at once with
// errQueueFull instead of growing the queue.
const maxQueueBytes = 8 << 20

// readBufSize is a backend connection's initial read buffer; it grows to
// hold the largest reply framed and is kept up to maxKeptReadBuf, so that
// wide multi-gets do not grow it again, copying, for every reply. Server
// connections are few (server_connections per server), so keeping it
// costs little.
const (
	readBufSize    = 16 << 10
	maxKeptReadBuf = 1 << 20
)

// A backend is one server of a pool: its connections, its health and its
// counters. It outlives the route trees that refer to it.
type backend struct {
	pool  *pool
	name  string // twemproxy's name for stats
	addr  string
	conns []*bconn
	st    serverCounters

	// binConns speak the binary protocol to the server (conns the text
	// one), as many as conns; they connect on the first binary request.
	binConns []*bconn

	failures atomic.Int32 // consecutive failures
	// timeout, when not zero, is the server's timeout in place of its
	// pool's: a backend corvid router's pools share (backendShare) has
	// the timeout of every pool that names it, whichever owns it.
	timeout atomic.Int64

	mu          sync.Mutex // guards ejectedTill
	ejectedTill time.Time  // zero when not ejected
}

func newBackend(p *pool, s ring.Server, conns int) *backend {
	b := &backend{pool: p, addr: s.Addr, name: serverName(s)}
	for range conns {
		b.conns = append(b.conns, &bconn{b: b, wake: make(chan struct{}, 1)})
		b.binConns = append(b.binConns, &bconn{b: b, wake: make(chan struct{}, 1)})
	}
	return b
}

// serverName is twemproxy's name for s in its stats: its name when the
// servers line gives one, else its address.
func serverName(s ring.Server) string {
	if s.Name != "" {
		return s.Name
	}
	return s.Addr
}

// start runs the connections' goroutines, connecting at once with
// preconnect.
func (b *backend) start(wg *sync.WaitGroup, preconnect bool) {
	for _, bc := range b.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bc.run(preconnect)
		}()
	}
	for _, bc := range b.binConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bc.run(false)
		}()
	}
}

// idle reports whether b holds no request, queued or awaiting its reply.
func (b *backend) idle() bool {
	for _, bc := range append(b.conns[:len(b.conns):len(b.conns)], b.binConns...) {
		bc.mu.Lock()
		busy := len(bc.outCalls) > 0 || bc.sent.len() > 0
		bc.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}

// close closes the connections; their goroutines then return.
func (b *backend) close() {
	for _, bc := range b.conns {
		bc.close()
	}
	for _, bc := range b.binConns {
		bc.close()
	}
}

// send queues c, whose request is the concatenation of parts, on the
// connection c.conn picks: all of a client's requests to b take the same
// one, so that b runs them in the client's order, as memcached runs a
// connection's requests (round-robin would let a get pipelined after a set
// of its key overtake it).
func (b *backend) send(c *call, parts ...[]byte) {
	c.srv = b
	bc := b.conns[0]
	if len(b.conns) > 1 {
		bc = b.conns[c.conn%uint32(len(b.conns))]
	}
	bc.enqueue(c, parts...)
}

// timeoutNow returns how long a request to b may wait for its reply.
func (b *backend) timeoutNow() time.Duration {
	if t := b.timeout.Load(); t != 0 {
		return time.Duration(t)
	}
	return b.pool.config().Timeout
}

// ok records a reply: the server is healthy.
func (b *backend) ok() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

// failure records a failed connection; with auto_eject_hosts, the
// server_failure_limit-th consecutive one ejects the server for
// server_retry_timeout, as twemproxy's server_failure does.
func (b *backend) failure(err error) {
	p := b.pool
	cfg := p.config()
	if !cfg.AutoEjectHosts {
		return
	}
	b.mu.Lock()
	eject := int(b.failures.Add(1)) >= max(cfg.ServerFailureLimit, 1)
	if eject {
		b.failures.Store(0)
		b.ejectedTill = time.Now().Add(cfg.ServerRetryTimeout)
	}
	b.mu.Unlock()
	if eject {
		b.st.ejectedAt.Store(time.Now().UnixMicro())
		p.st.serverEjects.Add(1)
		p.log.Warn("server ejected", "pool", p.name, "server", b.name, "err", err,
			"retry_in", cfg.ServerRetryTimeout)
		p.rebuild()
	}
}

// ejected reports whether b is out of the continuum at now, and until
// when.
func (b *backend) ejected(now time.Time) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.ejectedTill), b.ejectedTill
}

// A bconn is one pipelined connection to a server. Requests are appended
// to out by clients. Whoever holds the write token (writing) sends all
// that is queued with one write and moves the calls to sent, the FIFO of
// calls awaiting replies: a client's reader, once it has queued what it
// parsed from one read, takes the token when it is free and writes
// without waiting for the socket (flush), so that the requests of the
// clients that queued meanwhile go in the same write; what the socket
// does not take at once is handed to the connection's writer goroutine
// (run), which also connects. Its reader goroutine frames replies and
// completes the calls in that order. The connection is made on demand
// (and again after it breaks); when it breaks, every call it holds fails
// with the reason.
type bconn struct {
	b    *backend
	wake chan struct{} // tells the writer goroutine there is work

	mu       sync.Mutex // guards the fields below
	out      []byte     // requests not yet written
	outCalls []*call    // their calls (detached noreply calls included)
	sent     fifo       // calls written, awaiting their replies in order
	nc       net.Conn   // nil when not connected
	armed    time.Time  // nc's read deadline (see armLocked)
	rw       *rawWriter // nc's, nil when it has none
	closed   bool
	// writing is the write token: its holder writes out, in order with
	// what it wrote before, until out is empty. rest, when not nil, is
	// what a write without waiting left of restBuf: the writer goroutine
	// holds the token and writes it first.
	writing       bool
	rest, restBuf []byte
	spare         []byte // a written buffer, reused as out
	// drained is when rearm last read all nc held for an overdue call:
	// a call whose deadline had passed by then has had its drain.
	drained time.Time
	// lslot is nc's slot in the proxy's event loop, 0 when nc's reader
	// goroutine reads it (see loop_linux.go).
	lslot int32
}

func (bc *bconn) signal() {
	select {
	case bc.wake <- struct{}{}:
	default:
	}
}

// enqueue queues c, whose request is the concatenation of parts.
func (bc *bconn) enqueue(c *call, parts ...[]byte) {
	st := &bc.b.st
	size := 0
	for _, b := range parts {
		size += len(b)
	}
	c.reqBytes = int32(min(size, 1<<31-1))
	switch c.kind {
	case kindGet:
		c.getLine = c.getLine[:0]
		for _, b := range parts {
			c.getLine = append(c.getLine, b...)
		}
	case kindMeta, kindMetaQuiet:
		// Its line alone: a composer's copy holds the data, and a
		// quiet request's mn, in the same piece.
		line := parts[0]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		c.getLine = append(c.getLine[:0], line...)
	}
	cl := c.sender() // read now: once queued, c may complete and be recycled
	bc.mu.Lock()
	if bc.closed || len(bc.out)+size > maxQueueBytes && len(bc.out) > 0 {
		err := errClosed
		if !bc.closed {
			err = errQueueFull
		}
		bc.mu.Unlock()
		c.complete(nil, err)
		return
	}
	if t := bc.b.timeoutNow(); t > 0 {
		c.deadline = time.Now().Add(t)
	}
	for _, b := range parts {
		bc.out = append(bc.out, b...)
	}
	bc.outCalls = append(bc.outCalls, c)
	connected := bc.nc != nil
	bc.mu.Unlock()
	st.requests.Add(1)
	st.requestBytes.Add(int64(size))
	st.inQueue.Add(1)
	st.inQueueBytes.Add(int64(size))
	if connected && cl != nil {
		cl.queued(bc) // its reader flushes bc once it has parsed its input
		return
	}
	bc.signal()
}

// takeLocked moves the queued requests to sent, for its holder of the
// write token to write to nc, and returns them; bc.mu is held.
func (bc *bconn) takeLocked(nc net.Conn) []byte {
	buf, calls := bc.out, bc.outCalls
	bc.out, bc.outCalls, bc.spare = bc.spare[:0], nil, nil
	if bc.sent.len() == 0 && len(calls) > 0 {
		bc.armLocked(nc, calls[0].deadline)
	}
	for _, c := range calls {
		bc.sent.push(c)
	}
	st := &bc.b.st
	st.inQueue.Add(-int64(len(calls)))
	st.inQueueBytes.Add(-int64(len(buf)))
	st.outQueue.Add(int64(len(calls)))
	st.outQueueBytes.Add(int64(len(buf)))
	return buf
}

// wroteLocked keeps buf, written, for reuse as out; bc.mu is held.
func (bc *bconn) wroteLocked(buf []byte) {
	if cap(buf) <= maxQueueBytes && cap(buf) > cap(bc.spare) {
		bc.spare = buf[:0]
	}
}

// releaseLocked gives the write token back; bc.mu is held. It reports
// whether requests are queued, which the writer goroutine must then send
// (the connection changed under the last holder).
func (bc *bconn) releaseLocked() bool {
	bc.writing = false
	return len(bc.outCalls) > 0
}

// flush writes what bc has queued, without waiting for the socket, unless
// another goroutine holds the write token (it writes what is queued
// before it lets the token go). What the socket does not take at once is
// left to the writer goroutine, as is connecting. A client's reader calls
// it once it has queued the requests it parsed from one read.
func (bc *bconn) flush() {
	bc.mu.Lock()
	if bc.writing || len(bc.outCalls) == 0 {
		bc.mu.Unlock()
		return
	}
	nc, rw := bc.nc, bc.rw
	if nc == nil || rw == nil {
		bc.mu.Unlock()
		bc.signal()
		return
	}
	bc.writing = true
	for {
		buf := bc.takeLocked(nc)
		bc.mu.Unlock()
		n, err := rw.write(buf)
		if err != nil {
			bc.fail(nc, err)
			bc.mu.Lock()
			more := bc.releaseLocked()
			bc.mu.Unlock()
			if more {
				bc.signal()
			}
			return
		}
		bc.mu.Lock()
		if n < len(buf) {
			// The socket is full: the writer goroutine waits for it,
			// holding the token.
			bc.rest, bc.restBuf = buf[n:], buf
			bc.mu.Unlock()
			bc.signal()
			return
		}
		bc.wroteLocked(buf)
		if bc.nc != nc || len(bc.outCalls) == 0 {
			more := bc.releaseLocked()
			bc.mu.Unlock()
			if more {
				bc.signal()
			}
			return
		}
	}
}

// close fails every call bc holds and stops its goroutines.
func (bc *bconn) close() {
	bc.mu.Lock()
	bc.closed = true
	bc.mu.Unlock()
	bc.fail(nil, errClosed)
	bc.signal()
}

// fail closes nc (the current connection when nil) if it is still bc's,
// and fails every call queued or in flight with err.
func (bc *bconn) fail(nc net.Conn, err error) {
	bc.mu.Lock()
	if nc != nil && bc.nc != nc {
		bc.mu.Unlock()
		return
	}
	wasConnected := bc.nc != nil
	if bc.nc != nil {
		bc.b.pool.proxy.loop.removeConn(bc) // before its number can be reused
		bc.nc.Close()
		bc.nc, bc.rw = nil, nil
	}
	calls := bc.outCalls
	queued := len(bc.out)
	inflight := bc.sent.drain(nil)
	bc.out, bc.outCalls = bc.out[:0], nil
	bc.mu.Unlock()
	st := &bc.b.st
	if wasConnected {
		st.connections.Add(-1)
	}
	st.inQueue.Add(-int64(len(calls)))
	st.inQueueBytes.Add(-int64(queued))
	st.outQueue.Add(-int64(len(inflight)))
	for _, c := range inflight {
		st.outQueueBytes.Add(-int64(c.reqBytes))
	}
	if !errors.Is(err, errClosed) {
		switch {
		case errors.Is(err, io.EOF):
			st.eof.Add(1)
		case errors.Is(err, os.ErrDeadlineExceeded):
			st.timedout.Add(1)
		default:
			st.err.Add(1)
		}
		if len(calls)+len(inflight) > 0 || !wasConnected {
			bc.b.pool.log.Debug("server connection failed", "pool", bc.b.pool.name,
				"server", bc.b.name, "err", err, "requests", len(calls)+len(inflight))
		}
		bc.b.failure(err)
	}
	for _, c := range inflight {
		c.complete(nil, err)
	}
	for _, c := range calls {
		c.complete(nil, err)
	}
}

// run is the writer goroutine: it connects when there is something to
// send (or at once with preconnect), writes what a flush left to it, and
// writes what is queued when no client's reader does.
func (bc *bconn) run(preconnect bool) {
	var readers sync.WaitGroup
	defer readers.Wait()
	if preconnect {
		bc.connect(&readers)
	}
	for range bc.wake {
		bc.mu.Lock()
		if bc.closed {
			bc.mu.Unlock()
			return
		}
		if bc.rest != nil {
			// A flush left the rest of its write: the token is ours.
			rest, buf, nc := bc.rest, bc.restBuf, bc.nc
			bc.rest, bc.restBuf = nil, nil
			bc.mu.Unlock()
			if nc != nil {
				if _, err := nc.Write(rest); err != nil {
					bc.fail(nc, err)
				}
			}
			bc.mu.Lock()
			bc.wroteLocked(buf)
			bc.drainLocked(nc)
			continue
		}
		if bc.writing || len(bc.outCalls) == 0 {
			bc.mu.Unlock()
			continue
		}
		nc := bc.nc
		bc.mu.Unlock()
		if nc == nil {
			// Let the clients that are running queue their requests
			// too, so that the first write carries more of them.
			runtime.Gosched()
			if nc = bc.connect(&readers); nc == nil {
				continue
			}
		}
		bc.mu.Lock()
		if bc.writing {
			bc.mu.Unlock()
			continue
		}
		if bc.nc != nc {
			bc.mu.Unlock()
			bc.signal() // the connection broke meanwhile: connect again
			continue
		}
		bc.writing = true
		bc.drainLocked(nc)
	}
}

// drainLocked writes what is queued to nc, waiting for the socket, until
// nothing is, and gives the write token back; bc.mu is held on entry and
// released.
func (bc *bconn) drainLocked(nc net.Conn) {
	for bc.nc == nc && nc != nil && len(bc.outCalls) > 0 {
		buf := bc.takeLocked(nc)
		bc.mu.Unlock()
		_, err := nc.Write(buf)
		if err != nil {
			bc.fail(nc, err)
		}
		bc.mu.Lock()
		bc.wroteLocked(buf)
	}
	more := bc.releaseLocked()
	bc.mu.Unlock()
	if more {
		bc.signal() // queued for a new connection
	}
}

// connect dials the server and starts the connection's reader; on
// failure it fails what is queued and returns nil.
func (bc *bconn) connect(readers *sync.WaitGroup) net.Conn {
	p := bc.b.pool
	d := net.Dialer{Timeout: bc.b.timeoutNow()}
	network := "tcp"
	if len(bc.b.addr) > 0 && bc.b.addr[0] == '/' {
		network = "unix"
	}
	nc, err := d.DialContext(p.ctx, network, bc.b.addr)
	if err != nil {
		bc.fail(nil, err)
		return nil
	}
	bc.mu.Lock()
	if bc.closed {
		bc.mu.Unlock()
		nc.Close()
		return nil
	}
	bc.nc, bc.rw, bc.armed, bc.drained = nc, newRawWriter(nc), time.Time{}, time.Time{}
	inLoop := bc.b.pool.proxy.loop.addConn(bc, nc)
	bc.mu.Unlock()
	bc.b.st.connections.Add(1)
	if inLoop {
		return nc
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		bc.read(nc)
	}()
	return nc
}

// read is the reader goroutine of connection nc: it frames replies and
// completes the calls in FIFO order. A reply without a request, garbage,
// an error or a timeout breaks the connection.
func (bc *bconn) read(nc net.Conn) {
	rd := newConnReader(bc, nc)
	// The clients whose replies it writes once it has framed what it read.
	var pw pendingWrites
	defer pw.write()
	for {
		if !rd.frame(&pw) {
			return
		}
		pw.write()
		rd.compact()
		if !bc.current(nc) {
			return
		}
		var n int
		var err error
		if rd.rr != nil {
			n, err = rd.rr.read(rd.buf[rd.w:])
		} else {
			n, err = nc.Read(rd.buf[rd.w:])
		}
		rd.w += n
		if err != nil && n == 0 {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				n, ok := bc.rearm(nc, rd.rr, rd.buf[rd.w:])
				if rd.w += n; ok {
					continue
				}
			}
			bc.fail(nc, err)
			return
		}
	}
}

// current reports whether nc is still bc's connection.
func (bc *bconn) current(nc net.Conn) bool {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return bc.nc == nc
}

// A connReader is the reading side of one server connection, whoever
// reads it (its reader goroutine, or the proxy's event loop): buf[r:w]
// is what was read and not yet framed.
type connReader struct {
	bc   *bconn
	nc   net.Conn
	rr   *rawReader
	buf  []byte
	r, w int
}

func newConnReader(bc *bconn, nc net.Conn) *connReader {
	return &connReader{bc: bc, nc: nc, rr: newRawReader(nc), buf: make([]byte, readBufSize)}
}

// frame frames every complete reply buffered and completes its call, in
// FIFO order; the clients whose replies are then to be written are added
// to pw. It reports false when the
// connection is no longer bc's, or when what it read broke it: a reply
// without a request or one that cannot be framed.
func (rd *connReader) frame(pw *pendingWrites) bool {
	bc, nc := rd.bc, rd.nc
	st := &bc.b.st
	for rd.r < rd.w {
		// The kind is read under the lock: once the lock is released, a
		// failing connection may complete the call and its client may
		// recycle it.
		bc.mu.Lock()
		if bc.nc != nc {
			bc.mu.Unlock()
			return false
		}
		c := bc.sent.peek()
		var kind replyKind
		var op byte
		var opaque uint32
		if c != nil {
			kind, op, opaque = c.kind, c.binOp, c.binOpaque
		}
		bc.mu.Unlock()
		if c == nil {
			bc.fail(nc, errGarbage) // a reply nobody asked for
			return false
		}
		n, err := frameReply(rd.buf[rd.r:rd.w], kind)
		if err != nil {
			bc.fail(nc, err)
			return false
		}
		if n == 0 {
			break
		}
		if kind == kindBinary && (rd.buf[rd.r+1] != op ||
			binary.BigEndian.Uint32(rd.buf[rd.r+12:]) != opaque) {
			// Another request's reply: the server is out of step.
			bc.fail(nc, errGarbage)
			return false
		}
		bc.mu.Lock()
		if bc.nc != nc || bc.sent.peek() != c {
			bc.mu.Unlock()
			return false
		}
		if kind == kindGet && !valuesAsked(rd.buf[rd.r:rd.r+n], c.getLine) ||
			(kind == kindMeta || kind == kindMetaQuiet) && !metaOwn(rd.buf[rd.r:rd.r+n], c.getLine) {
			// Another request's reply: the server is out of step.
			bc.mu.Unlock()
			bc.fail(nc, errGarbage)
			return false
		}
		bc.sent.pop()
		if next := bc.sent.peek(); next != nil {
			// Its deadline may be earlier than the one set (a reload
			// shortened timeout:, or set one the call answered had
			// not).
			bc.armLocked(nc, next.deadline)
		}
		bc.mu.Unlock()
		st.outQueue.Add(-1)
		st.outQueueBytes.Add(-int64(c.reqBytes))
		st.responses.Add(1)
		st.responseBytes.Add(int64(n))
		bc.b.ok()
		c.completeTo(rd.buf[rd.r:rd.r+n], nil, pw)
		rd.r += n
	}
	return true
}

// valuesAsked reports whether the keys of the VALUE blocks of reply, a
// get's reply as framed, are keys of its request line, in its order.
func valuesAsked(reply, line []byte) bool {
	line = line[min(len(line), bytes.IndexByte(line, ' ')+1):] // the command
	for bytes.HasPrefix(reply, []byte("VALUE ")) {
		eol := bytes.IndexByte(reply, '\n')
		vline := reply[:eol-1]
		key := vline[len("VALUE "):]
		if i := bytes.IndexByte(key, ' '); i >= 0 {
			key = key[:i]
		}
		for {
			tok := line
			if i := bytes.IndexAny(line, " \r\n"); i >= 0 {
				tok, line = line[:i], line[i+1:]
			} else {
				line = nil
			}
			if bytes.Equal(tok, key) {
				break
			}
			if len(line) == 0 {
				return false
			}
		}
		n, _ := valueLen(vline, 3)
		reply = reply[eol+1+n+2:]
	}
	return true
}

// metaOwn reports whether the replies in reply, a meta request's as
// framed, carry only the opaque and the key of its request line where
// they carry one (flags O and k). It allocates nothing: every meta reply
// passes through it.
func metaOwn(reply, line []byte) bool {
	_, rest := nextField(bytes.TrimRight(line, "\r\n")) // the command
	key, rest := nextField(rest)
	if len(key) == 0 {
		return true
	}
	var opaque []byte
	for t, r := nextField(rest); len(t) > 0; t, r = nextField(r) {
		if t[0] == 'O' {
			opaque = t[1:]
		}
	}
	for len(reply) > 0 {
		eol := bytes.IndexByte(reply, '\n')
		rl := reply[:eol-1]
		reply = reply[eol+1:]
		if isErrorLine(rl) {
			continue
		}
		code, flags := nextField(rl)
		switch string(code) {
		case "":
			return false
		case "ME":
			continue // me's reply: the key, then name=value pairs
		case "VA":
			if size, r := nextField(flags); len(size) > 0 {
				n, _ := valueLen(rl, 1)
				reply = reply[min(len(reply), n+2):]
				flags = r
			}
		}
		for t, r := nextField(flags); len(t) > 0; t, r = nextField(r) {
			switch {
			case t[0] == 'O' && !bytes.Equal(t[1:], opaque):
				return false
			case t[0] == 'k':
				var ok bool
				if ok, r = metaKeyIs(t[1:], key, r); !ok {
					return false
				}
			}
		}
	}
	return true
}

// metaKeyIs reports whether k, the key of a meta reply's k flag, names
// key, the request's key token, and returns the rest of the reply's line
// after it. memcached writes an item's key in base64 (followed by the
// flag b) when a request with b stored the item, and as it is otherwise
// (an item an mg or ma with b made with N too), whatever form the request
// used: k is key, or key decoded from base64, or key (as decoded) in
// base64. A key written as it is may hold spaces, and then goes on in
// rest. It allocates nothing.
func metaKeyIs(k, key, rest []byte) (bool, []byte) {
	if bytes.Equal(k, key) {
		return true, rest
	}
	// Decoded as memcached decodes a key (it skips bytes outside the
	// alphabet and stops after the first '='), and written back in
	// standard base64: k may be the base64 of what key decodes to.
	var kbuf, keybuf [256]byte
	kn, kok := 0, false
	if len(k)/4*3+3 <= len(kbuf) {
		kn, kok = protocol.DecodeBase64(kbuf[:], k)
		if kok && bytes.Equal(kbuf[:kn], key) {
			return true, rest
		}
	}
	if len(key)/4*3+3 <= len(keybuf) {
		if n, ok := protocol.DecodeBase64(keybuf[:], key); ok {
			raw := keybuf[:n]
			if bytes.Equal(k, raw) || kok && bytes.Equal(kbuf[:kn], raw) {
				return true, rest
			}
			if i := bytes.IndexByte(raw, ' '); i >= 0 && bytes.Equal(k, raw[:i]) && bytes.HasPrefix(rest, raw[i:]) {
				return true, rest[n-i:]
			}
		}
	}
	return false, rest
}

// nextField returns the first space-separated token of b and what follows
// it.
func nextField(b []byte) (tok, rest []byte) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' {
		j++
	}
	return b[i:j], b[j:]
}

// compact makes room after buf[w:] for the next read: it moves a partial
// reply to the buffer's start when the buffer is full, grows a buffer a
// partial reply fills, and drops one grown past maxKeptReadBuf once it
// holds nothing.
func (rd *connReader) compact() {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	} else if rd.r > 0 && rd.w == len(rd.buf) {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	if rd.w == len(rd.buf) {
		nb := make([]byte, 2*len(rd.buf))
		copy(nb, rd.buf[:rd.w])
		rd.buf = nb
	} else if rd.w == 0 && len(rd.buf) > maxKeptReadBuf {
		rd.buf = make([]byte, readBufSize)
	}
}

// armLocked sets nc's read deadline to d, the deadline of a call written
// to it with none before it or of the call that has become the oldest,
// unless the one set passes no later: it then passes first, and
// rearm sets the oldest call's. So a steady stream of requests sets the
// deadline about once per timeout, not twice per request (a deadline
// moves a runtime timer). bc.mu is held.
func (bc *bconn) armLocked(nc net.Conn, d time.Time) {
	if bc.lslot != 0 {
		// The event loop reads nc: it bounds its wait by the oldest
		// calls' deadlines itself.
		if !d.IsZero() {
			bc.b.pool.proxy.loop.armed()
		}
		return
	}
	if d.IsZero() || !bc.armed.IsZero() && !bc.armed.After(d) {
		return
	}
	bc.armed = d
	nc.SetReadDeadline(d)
}

// rearm answers nc's read deadline passing. When the oldest call written
// is overdue, what the socket holds is read into b first (n bytes, with
// rr; the deadline stays): the deadline's timer may run before the reader
// wakes for a reply that came in time, and replies read are framed before
// a call is judged late, as nutcracker handles a wait's events before its
// timeouts. That is once: when a read leaves the socket empty (it fills
// less than b), a call overdue by then is not read for again, so a server
// that keeps sending cannot hold it past its timeout for as long as it
// sends. It reports false when the oldest call is overdue and nothing
// came, or it has had its drain: the server has timed out. Otherwise the
// deadline was that of a call already answered, or of none, and it sets
// the oldest call's (none when there is no call).
func (bc *bconn) rearm(nc net.Conn, rr *rawReader, b []byte) (n int, ok bool) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.nc != nc {
		return 0, false
	}
	var d time.Time
	if c := bc.sent.peek(); c != nil {
		if now := time.Now(); !c.deadline.IsZero() && !now.Before(c.deadline) {
			if rr != nil && c.deadline.After(bc.drained) {
				if n = rr.readReady(b); n < len(b) {
					bc.drained = now
				}
				if n > 0 {
					return n, true
				}
			}
			return 0, false
		}
		d = c.deadline
	}
	bc.armed = d
	nc.SetReadDeadline(d)
	return 0, true
}

// fifo is a queue of calls: a slice used as a ring would be an
// optimisation; a head index with compaction keeps it simple and
// amortised O(1).
type fifo struct {
	q    []*call
	head int
}

func (f *fifo) len() int { return len(f.q) - f.head }

func (f *fifo) push(c *call) { f.q = append(f.q, c) }

func (f *fifo) peek() *call {
	if f.head == len(f.q) {
		return nil
	}
	return f.q[f.head]
}

func (f *fifo) pop() *call {
	c := f.q[f.head]
	f.q[f.head] = nil
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	} else if f.head > 1024 && f.head*2 > len(f.q) {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	return c
}

// drain appends every call to dst and empties f.
func (f *fifo) drain(dst []*call) []*call {
	dst = append(dst, f.q[f.head:]...)
	clear(f.q)
	f.q, f.head = f.q[:0], 0
	return dst
}
