package proxy

import (
	"bytes"
	"sync"
)

// writeBufPool holds the writers' batch buffers.
var writeBufPool = sync.Pool{New: func() any { return new([]byte) }}

// writeLoop is a client's writer goroutine, started by dispatch when it
// queues a call and none runs: it takes the calls in request order, waits
// for each, and writes their replies, once per batch: it writes when the
// next reply is not ready yet or the batch passes writeFlushSize. It
// returns once it has written everything queued. After a failed write it
// keeps taking calls, so that the reader and the servers never wait for
// it, and discards their replies.
func (cl *client) writeLoop() {
	defer cl.writers.Done()
	pb := writeBufPool.Get().(*[]byte)
	wbuf := (*pb)[:0]
	var units, held int64
	flush := func() {
		wbuf = cl.write(wbuf)
		if units > 0 || held > 0 {
			cl.wrote(units, held)
			units, held = 0, 0
		}
	}
	var batch []*call
	for {
		cl.mu.Lock()
		if len(cl.queue) == 0 {
			if len(wbuf) > 0 || units > 0 || held > 0 {
				cl.mu.Unlock()
				flush()
				continue
			}
			// Everything queued is written: the next call starts a
			// new writer.
			cl.writing = false
			cl.mu.Unlock()
			break
		}
		batch, cl.queue = cl.queue, batch[:0]
		cl.mu.Unlock()
		for i, c := range batch {
			select {
			case <-c.done:
			default:
				flush()
				<-c.done
			}
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
			if len(wbuf) >= writeFlushSize {
				flush()
			}
		}
	}
	if cap(wbuf) <= 4*writeFlushSize {
		*pb = wbuf
		writeBufPool.Put(pb)
	}
}

// write writes b unless a write failed before, and returns b emptied.
func (cl *client) write(b []byte) []byte {
	if len(b) > 0 && !cl.failed {
		if _, err := cl.nc.Write(b); err != nil {
			cl.failed = true
			cl.nc.Close() // the reader stops too
		}
	}
	return b[:0]
}

// appendBig appends b to wbuf, writing a large b directly instead of
// copying it.
func (cl *client) appendBig(wbuf, b []byte) []byte {
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
