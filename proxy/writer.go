package proxy

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"time"
)

// writeBufPool holds the writers' batch buffers.
var writeBufPool = sync.Pool{New: func() any { return new([]byte) }}

// A writeScratch is what the holder of a client's write token works
// with; it is pooled, so that an idle client keeps none.
type writeScratch struct {
	rw    rawWriter
	batch []*call
}

var writeScratchPool = sync.Pool{New: func() any { return new(writeScratch) }}

// maxInlineBatch bounds the replies one write without waiting carries;
// a larger reply goes to the writer goroutine.
const maxInlineBatch = writeFlushSize / 2

// ready marks c, complete, ready to be written. The goroutine that makes
// the oldest call awaiting its reply ready, while nobody writes for cl,
// takes cl's write token and writes the replies that are ready (with pw,
// it adds cl to pw and writes after: a server connection's reader frames
// every reply it has read first, so that a client's replies from it go in
// one write).
func (cl *client) ready(c *call, pw *pendingWrites) {
	cl.mu.Lock()
	c.ready = true
	if cl.writing || cl.queue.peek() != c {
		cl.mu.Unlock()
		return
	}
	cl.writing = true
	cl.mu.Unlock()
	if pw != nil {
		*pw = append(*pw, cl)
		return
	}
	cl.writeReplies()
}

// pendingWrites holds the clients whose write token a server
// connection's reader took, to write their replies once it has framed
// the replies it read.
type pendingWrites []*client

// write writes the replies of the clients in pw and empties it.
func (pw *pendingWrites) write() {
	for i, cl := range *pw {
		cl.writeReplies()
		(*pw)[i] = nil
	}
	*pw = (*pw)[:0]
}

// writeReplies writes cl's ready replies, in request order, without
// waiting for the socket; the caller holds the write token. It takes the
// ready calls at the head of the queue (up to maxInlineBatch bytes),
// writes their replies with one write, and goes on while the head is
// ready; then it gives the token back. What the socket does not take at
// once, and a large reply, go with the token to a writer goroutine
// started then (writeLoop), so that the goroutine that completed a call
// (a server connection's reader) never waits for a client that does not
// read.
func (cl *client) writeReplies() {
	if cl.raw == nil {
		cl.startWriter(nil, 0, 0, 0)
		return
	}
	var pb *[]byte
	ws := writeScratchPool.Get().(*writeScratch)
	ws.rw.use(cl.raw)
	defer func() {
		if pb != nil {
			writeBufPool.Put(pb)
		}
		ws.rw.raw = nil
		writeScratchPool.Put(ws)
	}()
	for {
		cl.mu.Lock()
		batch, size := ws.batch[:0], 0
		for c := cl.queue.peek(); c != nil && c.ready; c = cl.queue.peek() {
			n := c.size()
			if size+n > maxInlineBatch || c.op == opMergeGet && c.repeats() {
				break
			}
			size += n
			batch = append(batch, cl.queue.pop())
		}
		ws.batch = batch
		if len(batch) == 0 {
			if c := cl.queue.peek(); c != nil && c.ready {
				// A large reply: the writer goroutine writes it.
				cl.mu.Unlock()
				cl.startWriter(nil, 0, 0, 0)
				return
			}
			cl.writing = false
			cl.mu.Unlock()
			cl.signalDrained()
			return
		}
		cl.mu.Unlock()
		if pb == nil {
			pb = writeBufPool.Get().(*[]byte)
		}
		cl.inline = true
		wbuf, units, held := cl.appendCalls((*pb)[:0], batch)
		cl.inline = false
		*pb = wbuf
		n := len(wbuf)
		if !cl.failed {
			var err error
			cl.flushing.Store(held)
			if n, err = ws.rw.write(wbuf); err != nil {
				cl.failed = true
				cl.abort() // the reader stops too
				n = len(wbuf)
			}
		}
		if n < len(wbuf) {
			// The client is not reading as fast: the writer goroutine
			// waits for it.
			cl.startWriter(pb, n, units, held)
			pb = nil
			return
		}
		cl.wrote(units, held)
	}
}

// repeats reports whether a split get names a key more than once: its
// reply may then be much larger than what it holds.
func (c *call) repeats() bool {
	for _, j := range c.keyFrag {
		if j < 0 {
			return true
		}
	}
	return false
}

// startWriter hands the write token to a new writer goroutine, with
// (*pb)[from:], the rest of a batch whose units and bytes it releases
// once written, when pb is not nil.
func (cl *client) startWriter(pb *[]byte, from int, units, held int64) {
	cl.writers.Add(1)
	go cl.writeLoop(pb, from, units, held)
}

// appendCalls appends the replies of batch, completed calls taken from
// the head of the queue, and releases them; it returns the units and
// bytes they held.
func (cl *client) appendCalls(wbuf []byte, batch []*call) ([]byte, int64, int64) {
	var units, held int64
	for i, c := range batch {
		units += int64(c.units)
		held += int64(c.size())
		switch {
		case c.cont && cl.skipChunks:
			// A chunk after one that failed: its get's reply ended
			// with that chunk's error.
			cl.skipChunks = c.more
		case c.more:
			var ok bool
			wbuf, ok = cl.appendChunk(wbuf, c)
			cl.skipChunks = !ok
		default:
			wbuf = cl.appendReply(wbuf, c)
		}
		c.release()
		batch[i] = nil
	}
	return wbuf, units, held
}

// writeLoop is a client's writer goroutine, started with the write
// token when replies cannot be written without waiting: it writes
// (*pb)[from:] (the rest of a batch) and releases the units and bytes
// given, then writes the ready replies in request order, batched, once
// per writeFlushSize, waiting for the socket. When the next call is not
// complete it gives the token back and returns: the goroutine that
// completes that call writes it. After a failed write it keeps taking
// calls, so that the reader and the servers never wait for it, and
// discards their replies.
func (cl *client) writeLoop(pb *[]byte, from int, units, held int64) {
	defer cl.writers.Done()
	if pb == nil {
		pb = writeBufPool.Get().(*[]byte)
		*pb = (*pb)[:0]
	}
	cl.flushing.Store(held)
	cl.write((*pb)[from:])
	wbuf := (*pb)[:0]
	if units > 0 || held > 0 {
		cl.wrote(units, held)
	}
	ws := writeScratchPool.Get().(*writeScratch)
	defer writeScratchPool.Put(ws)
	for {
		cl.mu.Lock()
		batch := ws.batch[:0]
		for c := cl.queue.peek(); c != nil && c.ready && len(batch) < maxInflightUnits; c = cl.queue.peek() {
			batch = append(batch, cl.queue.pop())
		}
		ws.batch = batch
		if len(batch) == 0 {
			if cl.deadline {
				// The token's next holder may write without
				// waiting, which a passed deadline would fail.
				cl.nc.SetWriteDeadline(time.Time{})
				cl.deadline = false
			}
			cl.writing = false
			cl.mu.Unlock()
			cl.signalDrained()
			break
		}
		cl.mu.Unlock()
		for i := 0; i < len(batch); {
			// Write once per writeFlushSize of replies, releasing what
			// they held once written.
			j, size := i, 0
			for j < len(batch) && (j == i || size < writeFlushSize) {
				size += batch[j].size()
				j++
			}
			var u, h int64
			// appendCalls writes a large value itself.
			cl.flushing.Store(int64(size))
			wbuf, u, h = cl.appendCalls(wbuf, batch[i:j])
			wbuf = cl.write(wbuf)
			cl.wrote(u, h)
			i = j
		}
	}
	if cap(wbuf) <= 4*writeFlushSize {
		*pb = wbuf
		writeBufPool.Put(pb)
	}
}

// write writes b unless a write failed before, and returns b emptied.
// While the client holds replies, its socket must take something every
// stallGrace once the replies held for clients are past their limit, or
// the client is closed (counted in write_buf_oom): a client that reads,
// however slowly, goes on.
func (cl *client) write(b []byte) []byte {
	for rest := b; len(rest) > 0 && !cl.failed; {
		cl.nc.SetWriteDeadline(time.Now().Add(stallGrace))
		cl.deadline = true
		cl.backed.Store(true)
		n, err := cl.nc.Write(rest)
		cl.backed.Store(false)
		rest = rest[n:]
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if n > 0 || !cl.p.replies.pastLimit() {
				continue // it reads, or it holds nothing the others need
			}
			cl.failed = true
			cl.abort() // the reader stops too
			cl.p.replies.oom.Add(1)
			cl.p.log.Debug("client closed", "pool", cl.pool.name, "err", errStalled)
			break
		}
		cl.failed = true
		cl.abort() // the reader stops too
	}
	return b[:0]
}

// appendBig appends b to wbuf, writing a large b directly instead of
// copying it (not while writing without waiting).
func (cl *client) appendBig(wbuf, b []byte) []byte {
	if cl.inline {
		return append(wbuf, b...) // a batch of at most maxInlineBatch bytes
	}
	if len(b) >= writeFlushSize {
		wbuf = cl.write(wbuf)
		cl.write(b)
		return wbuf
	}
	wbuf = append(wbuf, b...)
	if len(wbuf) >= writeFlushSize {
		wbuf = cl.write(wbuf)
	}
	return wbuf
}

func appendError(wbuf []byte, err error) []byte {
	wbuf = append(wbuf, "SERVER_ERROR "...)
	wbuf = append(wbuf, errorText(err)...)
	return append(wbuf, '\r', '\n')
}

var (
	endLine = []byte("END\r\n")
	okLine  = []byte("OK\r\n")
)

// appendReply appends (or writes) the reply of the completed call c.
func (cl *client) appendReply(wbuf []byte, c *call) []byte {
	if c.op == opBinary || c.op == opBinaryFlush {
		return cl.appendBinary(wbuf, c)
	}
	if c.err != nil {
		cl.pool.st.forwardError.Add(1)
		return appendError(wbuf, c.err)
	}
	switch c.op {
	case opStripMN:
		return cl.appendBig(wbuf, bytes.TrimSuffix(c.reply, []byte("MN\r\n")))
	case opFlushAll:
		for _, f := range c.frags {
			if f.err != nil {
				cl.pool.st.forwardError.Add(1)
				return appendError(wbuf, f.err)
			}
		}
		for _, f := range c.frags {
			if !bytes.Equal(f.reply, okLine) {
				return append(wbuf, f.reply...)
			}
		}
		return append(wbuf, okLine...)
	case opMergeGet:
		return cl.merge(wbuf, c)
	}
	return cl.appendBig(wbuf, c.reply)
}

// appendChunk appends the reply of c, a chunk of a multi-get before its
// last: its VALUE blocks without END. It reports false when the chunk
// failed and its error was appended instead.
func (cl *client) appendChunk(wbuf []byte, c *call) ([]byte, bool) {
	if c.err == nil && c.op == opMergeGet {
		for _, f := range c.frags {
			if f.err != nil || !bytes.HasSuffix(f.reply, endLine) {
				return cl.appendReply(wbuf, c), false
			}
		}
		return cl.mergeValues(wbuf, c), true
	}
	if c.err == nil && c.op == opForward && bytes.HasSuffix(c.reply, endLine) {
		return cl.appendBig(wbuf, c.reply[:len(c.reply)-len(endLine)]), true
	}
	return cl.appendReply(wbuf, c), false
}

// merge appends the VALUE blocks of a split get in the client's key
// order, then one END; a repeated key gets its first block again. Each
// fragment's reply holds its keys' hits in the order they were asked, so
// one pass with a cursor per fragment does it:
// the cost is linear in the keys and the reply. Like twemproxy, a
// fragment that failed fails the whole request; a fragment answered with
// an error line makes that line the reply.
func (cl *client) merge(wbuf []byte, c *call) []byte {
	for _, f := range c.frags {
		if f.err != nil {
			cl.pool.st.forwardError.Add(1)
			return appendError(wbuf, f.err)
		}
	}
	for _, f := range c.frags {
		if !bytes.HasSuffix(f.reply, endLine) {
			return append(wbuf, f.reply...)
		}
	}
	return append(cl.mergeValues(wbuf, c), endLine...)
}

// mergeValues appends the VALUE blocks of a split get whose fragments
// all answered, in the client's key order.
func (cl *client) mergeValues(wbuf []byte, c *call) []byte {
	if cap(cl.pos) < len(c.frags) {
		cl.pos = make([]int, len(c.frags))
	}
	pos := cl.pos[:len(c.frags)]
	clear(pos)
	if cap(cl.blocks) < len(c.keyEnds) {
		cl.blocks = make([][2]int, len(c.keyEnds))
	}
	blocks := cl.blocks[:len(c.keyEnds)]
	for i := range c.keyEnds {
		j := c.keyFrag[i]
		if j < 0 { // a repeat of key -1-j: its block again
			first := -1 - j
			if b := blocks[first]; b[1] > b[0] {
				wbuf = cl.appendBig(wbuf, c.frags[c.keyFrag[first]].reply[b[0]:b[1]])
			}
			continue
		}
		blocks[i] = [2]int{}
		r, p := c.frags[j].reply, pos[j]
		rest := r[p:]
		if !bytes.HasPrefix(rest, []byte("VALUE ")) {
			continue
		}
		eol := bytes.IndexByte(rest, '\n')
		if eol < 1 {
			continue
		}
		line := rest[:eol-1]
		key := line[len("VALUE "):]
		if k := bytes.IndexByte(key, ' '); k >= 0 {
			key = key[:k]
		}
		if !bytes.Equal(key, c.key(i)) {
			continue // a miss
		}
		n, ok := valueLen(line, 3)
		if !ok || eol+1+n+2 > len(rest) {
			continue
		}
		end := eol + 1 + n + 2
		wbuf = cl.appendBig(wbuf, rest[:end])
		pos[j] = p + end
		blocks[i] = [2]int{p, p + end}
	}
	if cap(cl.blocks) > maxSeenKeys {
		cl.blocks = nil
	}
	return wbuf
}
