package queue

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

const (
	// connBufSize is each connection's read and write buffer: the longest
	// command line, and what a client that stops reading can make the
	// server hold for it (writes block beyond it; nothing more is read).
	connBufSize = 4096
	// relativeExptimeMax is memcached's bound: a larger exptime is a Unix time.
	relativeExptimeMax = 60 * 60 * 24 * 30
)

// conn is one client connection, served by one goroutine.
type conn struct {
	srv *Server
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer

	mu    sync.Mutex // guards reads
	reads map[string]*openReads

	timer *time.Timer // the get/t= and monitor timer, reused
}

// openReads are a connection's open (unconfirmed) items of one queue,
// oldest first.
type openReads struct {
	q     *queue
	xids  []uint64
	timer []*time.Timer // open_timeout, parallel to xids (nil entries: none)
}

// countingConn counts the bytes read and written for stats.
type countingConn struct {
	net.Conn
	s *Server
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.stats.bytesRead.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.s.stats.bytesWritten.Add(int64(n))
	return n, err
}

func newConn(s *Server, nc net.Conn) *conn {
	cc := countingConn{nc, s}
	return &conn{
		srv: s, nc: nc,
		r:     bufio.NewReaderSize(cc, connBufSize),
		w:     bufio.NewWriterSize(cc, connBufSize),
		reads: make(map[string]*openReads),
	}
}

// closeIdle makes a connection waiting for a request stop; one busy with
// a request finishes it first.
func (c *conn) closeIdle() { c.nc.SetReadDeadline(time.Now()) }

// errClose ends a connection after its last reply; errDrop ends it
// without writing what is still buffered (an item that was put back).
var (
	errClose = errors.New("queue: close connection")
	errDrop  = errors.New("queue: drop connection")
)

func (c *conn) serve() {
	defer c.finish()
	for {
		if c.r.Buffered() == 0 {
			if c.w.Flush() != nil {
				return
			}
		}
		line, err := c.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			c.w.WriteString("CLIENT_ERROR line too long\r\n")
			c.w.Flush()
			return
		}
		if err != nil {
			return
		}
		err = c.dispatch(bytes.TrimRight(line, "\r\n"))
		c.srv.dispatchMoved()
		if err != nil {
			if err != errDrop {
				c.w.Flush()
			}
			return
		}
		if isStopping(c.srv.done) && c.r.Buffered() == 0 {
			c.w.Flush()
			return
		}
	}
}

// finish puts the connection's open items back at the head of their
// queues.
func (c *conn) finish() {
	c.nc.Close()
	c.mu.Lock()
	reads := c.reads
	c.reads = map[string]*openReads{}
	c.mu.Unlock()
	for _, or := range reads {
		for i := len(or.xids) - 1; i >= 0; i-- {
			if t := or.timer[i]; t != nil {
				t.Stop()
			}
			or.q.st.Abort(or.xids[i])
		}
		or.q.dispatch()
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}

func (c *conn) reply(s string) { c.w.WriteString(s) }

// dispatch runs one command line; a non-nil error closes the connection.
func (c *conn) dispatch(line []byte) error {
	f := bytes.Fields(line)
	if len(f) == 0 {
		return nil
	}
	cmd := string(bytes.ToLower(f[0]))
	args := f[1:]
	switch cmd {
	case "set":
		return c.set(args)
	case "get", "gets":
		if len(args) == 0 {
			c.reply("CLIENT_ERROR\r\n")
			return errClose
		}
		return c.get(string(args[0]))
	case "monitor":
		return c.monitor(args)
	case "confirm":
		return c.confirm(args)
	case "delete":
		if len(args) == 0 {
			c.reply("CLIENT_ERROR\r\n")
			return errClose
		}
		name := string(args[0])
		if !c.checkName(name) {
			return nil
		}
		c.dropReads(name)
		if err := c.srv.deleteQueue(name); err != nil {
			c.srv.log.Error("cannot delete queue", "queue", name, "err", err)
			c.reply("SERVER_ERROR cannot delete queue\r\n")
			return nil
		}
		c.reply("DELETED\r\n")
	case "flush":
		if len(args) == 0 {
			c.reply("CLIENT_ERROR\r\n")
			return errClose
		}
		name := string(args[0])
		if !c.checkName(name) {
			return nil
		}
		if q := c.srv.lookup(name); q != nil && !c.flushQueue(q) {
			c.reply("SERVER_ERROR cannot flush the queue\r\n")
			return nil
		}
		c.reply("END\r\n")
	case "flush_all":
		ok := true
		for _, n := range c.srv.queueNames() {
			if q := c.srv.lookup(n); q != nil && !c.flushQueue(q) {
				ok = false
			}
		}
		if !ok {
			c.reply("SERVER_ERROR cannot flush every queue\r\n")
			return nil
		}
		c.reply("Flushed all queues.\r\n")
	case "version":
		c.reply("VERSION " + Version + "\r\n")
	case "shutdown":
		c.srv.log.Info("shutdown asked by a client", "client", c.nc.RemoteAddr().String())
		c.srv.Close()
		return errClose
	case "reload":
		if err := c.srv.Reload(); err != nil {
			c.srv.log.Error("cannot reload the configuration", "err", err)
			c.reply("SERVER_ERROR cannot reload the configuration\r\n")
			return nil
		}
		c.reply("Reloaded config.\r\n")
	case "stats":
		c.w.Write(c.srv.statsText())
	case "dump_stats":
		names := make([]string, len(args))
		for i, a := range args {
			names[i] = string(a)
		}
		c.w.Write(c.srv.dumpStats(names))
	case "quit":
		return errClose
	default:
		c.reply("CLIENT_ERROR\r\n")
		return errClose
	}
	return nil
}

// flushQueue flushes q and reports whether it did (or q was deleted).
func (c *conn) flushQueue(q *queue) bool {
	if err := q.st.Flush(); err != nil && !q.isDeleted() {
		c.srv.log.Error("cannot flush a queue", "queue", q.name, "err", err)
		return false
	}
	return true
}

// checkName answers CLIENT_ERROR for a name no queue may have.
func (c *conn) checkName(name string) bool {
	if err := CheckName(name); err != nil {
		c.reply("CLIENT_ERROR " + err.Error() + "\r\n")
		return false
	}
	return true
}

// set: set <queue> <flags> <exptime> <bytes> [noreply]
func (c *conn) set(args [][]byte) error {
	if len(args) < 4 || len(args) > 5 {
		c.reply("CLIENT_ERROR bad command line format\r\n")
		return errClose
	}
	n, err := strconv.ParseInt(string(args[3]), 10, 64)
	if err != nil || n < 0 {
		c.reply("CLIENT_ERROR bad data chunk\r\n")
		return errClose
	}
	flags, ferr := strconv.ParseUint(string(args[1]), 10, 32)
	exptime, eerr := strconv.ParseInt(string(args[2]), 10, 64)
	noreply := len(args) == 5 && string(args[4]) == "noreply"
	name := string(args[0])
	nameErr := CheckName(name)
	limit := int64(DefaultMaxItemSize)
	if nameErr == nil {
		if q := c.srv.lookup(name); q != nil {
			limit = q.config().store.MaxItemSize
		} else {
			c.srv.mu.Lock()
			limit = c.srv.settingsLocked(name).store.MaxItemSize
			c.srv.mu.Unlock()
		}
	}
	if nameErr != nil || ferr != nil || eerr != nil || n > limit {
		// Refused before its data is read: the data is discarded as it
		// arrives, never held.
		if _, err := c.r.Discard(int(min(n, 1<<62)) + 2); err != nil {
			return errClose
		}
		c.srv.stats.cmdSet.Add(1)
		switch {
		case nameErr != nil:
			c.reply("CLIENT_ERROR " + nameErr.Error() + "\r\n")
		case ferr != nil || eerr != nil:
			c.reply("CLIENT_ERROR bad command line format\r\n")
		default:
			if !noreply {
				c.reply("NOT_STORED\r\n")
			}
		}
		return nil
	}
	data, err := c.readData(int(n) + 2)
	if err != nil {
		return errClose
	}
	if data[n] != '\r' || data[n+1] != '\n' {
		c.reply("CLIENT_ERROR bad data chunk\r\n")
		return errClose
	}
	c.srv.stats.cmdSet.Add(1)
	now := c.srv.cfg.Now()
	it := Item{Data: data[:n:n], Flags: uint32(flags), Added: now}
	switch {
	case exptime < 0:
		it.Expiry = now.Add(-time.Second)
	case exptime > relativeExptimeMax:
		it.Expiry = time.Unix(exptime, 0)
	case exptime > 0:
		it.Expiry = now.Add(time.Duration(exptime) * time.Second)
	}
	err = c.srv.put(name, it)
	switch {
	case err == nil:
		if !noreply {
			c.reply("STORED\r\n")
		}
	case errors.Is(err, ErrFull) || errors.Is(err, ErrTooLarge):
		if !noreply {
			c.reply("NOT_STORED\r\n")
		}
	case errors.Is(err, ErrTooManyQueues):
		c.replyQueueErr(err)
	default:
		c.srv.log.Error("cannot store an item", "queue", name, "err", err)
		c.reply("SERVER_ERROR cannot store the item\r\n")
	}
	return nil
}

// replyQueueErr answers a queue that cannot be had.
func (c *conn) replyQueueErr(err error) {
	if errors.Is(err, ErrTooManyQueues) {
		c.reply("SERVER_ERROR too many queues\r\n")
		return
	}
	c.reply("SERVER_ERROR cannot open queue\r\n")
}

// setChunk is the most a set's data buffer grows ahead of what arrived.
const setChunk = 64 << 10

// readData reads a set's n bytes of data (its \r\n included). The buffer
// grows as the data arrives, doubling from setChunk, so a client that
// announces a large item and sends nothing costs little.
func (c *conn) readData(n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, setChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(c.r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// getOptions are the /options of a get.
type getOptions struct {
	timeout                              time.Duration
	open, close, abort, peek, hasTimeout bool
}

func parseGet(key string) (string, getOptions, bool) {
	var o getOptions
	name, rest, _ := cutByte(key, '/')
	for rest != "" {
		var opt string
		opt, rest, _ = cutByte(rest, '/')
		switch {
		case len(opt) >= 2 && opt[:2] == "t=":
			ms, err := strconv.ParseInt(opt[2:], 10, 32)
			if err != nil || ms < 0 {
				return "", o, false
			}
			o.timeout, o.hasTimeout = time.Duration(ms)*time.Millisecond, true
		case opt == "open":
			o.open = true
		case opt == "close":
			o.close = true
		case opt == "abort":
			o.abort = true
		case opt == "peek":
			o.peek = true
		}
	}
	if name == "" || ((o.peek || o.abort) && (o.open || o.close)) || (o.peek && o.abort) {
		return "", o, false
	}
	return name, o, true
}

func cutByte(s string, b byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// get: get <queue>[/t=<ms>][/open][/close][/abort][/peek]
func (c *conn) get(key string) error {
	name, o, ok := parseGet(key)
	if !ok {
		c.reply("CLIENT_ERROR\r\n")
		return errClose
	}
	if !c.checkName(name) {
		return nil
	}
	c.forgetDeleted(name)
	if o.abort {
		if or, xid, ok := c.popRead(name); ok {
			or.q.st.Abort(xid)
			or.q.dispatch()
		}
		c.reply("END\r\n")
		return nil
	}
	if o.close {
		if or, xid, ok := c.popRead(name); ok && !c.confirmRead(or, xid) {
			c.reply("SERVER_ERROR cannot confirm the item\r\n")
			return nil
		}
		if !o.open {
			c.reply("END\r\n")
			return nil
		}
	}
	pending := c.pendingReads(name)
	if pending > 0 && !o.peek && !o.open {
		// Kestrel: a plain get with a read open on the queue.
		c.reply("ERROR\r\n")
		return errClose
	}
	if o.open && pending >= c.srv.maxOpen() {
		c.reply("ERROR\r\n")
		return errClose
	}
	q, err := c.srv.queue(name)
	if err != nil {
		c.replyQueueErr(err)
		return nil
	}
	if o.peek {
		c.srv.stats.cmdPeek.Add(1)
	} else {
		c.srv.stats.cmdGet.Add(1)
	}
	now := c.srv.cfg.Now()
	var it Item
	var xid uint64
	if o.peek {
		it, ok, err = q.st.Peek(now)
	} else {
		it, xid, ok, err = q.st.Take(now, o.open)
	}
	if err != nil && q.isDeleted() {
		err = nil // deleted meanwhile: it was emptied
	}
	if err != nil {
		c.srv.log.Error("cannot read a queue", "queue", name, "err", err)
		c.reply("SERVER_ERROR cannot read the queue\r\n")
		return nil
	}
	waited := false
	if !ok && o.timeout > 0 {
		if c.w.Flush() != nil {
			return errClose
		}
		var d delivery
		d, waited = c.wait(q, o.peek, time.Now().Add(o.timeout))
		it, xid, ok = d.it, d.xid, d.ok
	}
	if !ok {
		c.srv.stats.getMisses.Add(1)
		c.reply("END\r\n")
		return nil
	}
	if waited && !o.peek && !o.open {
		// Taken open for a waiter that did not ask for it: put back if
		// the client left while it waited, else confirmed before the
		// reply goes out, as a plain get's item is taken before it: a
		// client that has the item never sees it again after a crash.
		if c.peerGone() {
			q.st.Abort(xid)
			q.dispatch()
			return errDrop
		}
		if err := q.st.Confirm(xid); err != nil && q.st.Abort(xid) == nil {
			// Not confirmed (a confirm that failed only to sync is
			// kept, and the item given): it stays queued.
			c.srv.log.Error("cannot read a queue", "queue", name, "err", err)
			q.dispatch()
			c.reply("SERVER_ERROR cannot read the queue\r\n")
			return nil
		}
	}
	c.srv.stats.getHits.Add(1)
	c.writeValue(name, it)
	c.reply("END\r\n")
	if o.open {
		c.addRead(q, xid)
	}
	return nil
}

// wait blocks until the queue hands this connection an item, the
// deadline passes, or the server stops. It reports whether it waited (an
// item it returns was taken open).
func (c *conn) wait(q *queue, peek bool, deadline time.Time) (delivery, bool) {
	w := q.wait(peek)
	if w == nil {
		return delivery{}, false
	}
	d := time.Until(deadline)
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case got := <-w.ch:
		c.timer.Stop()
		return got, true
	case <-c.timer.C:
	case <-c.srv.done:
		c.timer.Stop()
	}
	if q.cancel(w) {
		return delivery{}, true
	}
	return <-w.ch, true
}

func (c *conn) writeValue(name string, it Item) {
	c.w.WriteString("VALUE ")
	c.w.WriteString(name)
	c.w.WriteByte(' ')
	c.w.WriteString(strconv.FormatUint(uint64(it.Flags), 10))
	c.w.WriteByte(' ')
	c.w.WriteString(strconv.Itoa(len(it.Data)))
	c.w.WriteString("\r\n")
	c.w.Write(it.Data)
	c.w.WriteString("\r\n")
}

// monitor: monitor <queue> <seconds> [max]
func (c *conn) monitor(args [][]byte) error {
	if len(args) < 2 || len(args) > 3 {
		c.reply("CLIENT_ERROR\r\n")
		return errClose
	}
	secs, err := strconv.ParseInt(string(args[1]), 10, 32)
	maxOpen := c.srv.maxOpen()
	max := int64(maxOpen)
	if err == nil && len(args) == 3 {
		max, err = strconv.ParseInt(string(args[2]), 10, 32)
	}
	if err != nil || secs < 0 || max < 0 {
		c.reply("CLIENT_ERROR\r\n")
		return errClose
	}
	name := string(args[0])
	if !c.checkName(name) {
		return nil
	}
	c.forgetDeleted(name)
	q, err := c.srv.queue(name)
	if err != nil {
		c.replyQueueErr(err)
		return nil
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for n := int64(0); n < max && c.pendingReads(name) < maxOpen && time.Now().Before(deadline); n++ {
		it, xid, ok, err := q.st.Take(c.srv.cfg.Now(), true)
		if err != nil {
			break
		}
		if !ok {
			if c.w.Flush() != nil {
				return errClose
			}
			var d delivery
			d, _ = c.wait(q, false, deadline)
			if !d.ok {
				break
			}
			it, xid = d.it, d.xid
		}
		c.srv.stats.cmdGet.Add(1)
		c.srv.stats.getHits.Add(1)
		c.addRead(q, xid)
		c.writeValue(name, it)
		if isStopping(c.srv.done) {
			break
		}
	}
	c.reply("END\r\n")
	return nil
}

// confirm: confirm <queue> <count>
func (c *conn) confirm(args [][]byte) error {
	if len(args) != 2 {
		c.reply("CLIENT_ERROR\r\n")
		return errClose
	}
	count, err := strconv.ParseInt(string(args[1]), 10, 32)
	if err != nil || count < 0 {
		c.reply("CLIENT_ERROR\r\n")
		return errClose
	}
	name := string(args[0])
	confirmed := 0
	for ; int64(confirmed) < count; confirmed++ {
		or, xid, ok := c.popRead(name)
		if !ok {
			break
		}
		if !c.confirmRead(or, xid) {
			c.reply("SERVER_ERROR cannot confirm the item\r\n")
			return nil
		}
	}
	if confirmed == 0 {
		c.reply("ERROR\r\n")
		return nil
	}
	c.reply("END\r\n")
	return nil
}

// addRead records an open item; it goes back to the queue if it is still
// open after the queue's open_timeout.
func (c *conn) addRead(q *queue, xid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	or := c.reads[q.name]
	if or == nil || or.q != q {
		or = &openReads{q: q}
		c.reads[q.name] = or
	}
	var t *time.Timer
	if d := q.config().openTimeout; d > 0 {
		t = time.AfterFunc(d, func() { c.expireRead(q, xid) })
	}
	or.xids = append(or.xids, xid)
	or.timer = append(or.timer, t)
}

// expireRead puts back an item left open past its queue's open_timeout.
func (c *conn) expireRead(q *queue, xid uint64) {
	c.mu.Lock()
	or := c.reads[q.name]
	found := false
	if or != nil && or.q == q {
		for i, x := range or.xids {
			if x == xid {
				or.xids = append(or.xids[:i], or.xids[i+1:]...)
				or.timer = append(or.timer[:i], or.timer[i+1:]...)
				found = true
				break
			}
		}
	}
	c.mu.Unlock()
	if found {
		c.srv.log.Debug("open read timed out", "queue", q.name)
		q.st.Abort(xid)
		q.dispatch()
	}
}

// popRead removes the connection's oldest open item of queue name.
func (c *conn) popRead(name string) (*openReads, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	or := c.reads[name]
	if or == nil || len(or.xids) == 0 {
		return nil, 0, false
	}
	xid := or.xids[0]
	if t := or.timer[0]; t != nil {
		t.Stop()
	}
	or.xids, or.timer = or.xids[1:], or.timer[1:]
	if len(or.xids) == 0 {
		delete(c.reads, name)
	}
	return or, xid, true
}

// confirmRead confirms an open item popRead returned. If the store
// cannot, the item is open still: it is the connection's oldest open
// item again (confirmed by the next /close, put back when the connection
// ends), and confirmRead reports false.
func (c *conn) confirmRead(or *openReads, xid uint64) bool {
	err := or.q.st.Confirm(xid)
	if err == nil || errors.Is(err, ErrNoTransaction) || or.q.isDeleted() {
		return true
	}
	c.srv.log.Error("cannot confirm an item", "queue", or.q.name, "err", err)
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.reads[or.q.name]
	if cur == nil {
		cur = &openReads{q: or.q}
		c.reads[or.q.name] = cur
	} else if cur.q != or.q {
		return false
	}
	cur.xids = append([]uint64{xid}, cur.xids...)
	cur.timer = append([]*time.Timer{nil}, cur.timer...)
	return false
}

func (c *conn) pendingReads(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if or := c.reads[name]; or != nil {
		return len(or.xids)
	}
	return 0
}

// dropReads forgets the open items of a queue being deleted.
func (c *conn) dropReads(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if or := c.reads[name]; or != nil {
		for _, t := range or.timer {
			if t != nil {
				t.Stop()
			}
		}
		delete(c.reads, name)
	}
}

// forgetDeleted drops the connection's open reads of queue name if that
// queue was deleted (by any client): they ended with it, and must not
// count against a queue created since under the same name.
func (c *conn) forgetDeleted(name string) {
	c.mu.Lock()
	or := c.reads[name]
	c.mu.Unlock()
	if or != nil && or.q.isDeleted() {
		c.dropReads(name)
	}
}

// peerGone reports whether the client closed its end: a write to it would
// still succeed once, so an item written to it would be lost.
func (c *conn) peerGone() bool {
	if c.r.Buffered() > 0 {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.r.Peek(1)
	c.nc.SetReadDeadline(time.Time{})
	if isStopping(c.srv.done) {
		c.closeIdle()
	}
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
