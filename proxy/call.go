package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// A call is one request awaiting its reply. A client queues it for its
// writer, in request order; a backend connection holds it in its FIFO
// until the reply arrives and is copied into reply. Calls are pooled.
//
// A call whose reply the client will not see (noreply) is detached: the
// backend's reader releases it. A multi-key call (a get split across
// servers, a flush_all sent to every server) owns fragment calls, one per
// server, and completes when the last of them does.
type call struct {
	kind     replyKind
	op       callOp
	reply    []byte // the reply, framed; or the proxy's own reply
	err      error  // set when the request failed; reply is then unused
	reqBytes int32  // the request's size, for the queue counters
	units    int32  // the client's in-flight units it takes (its keys, at least 1)
	conn     uint32 // picks the server connection: the client's, for its order
	// deadline is when the backend must have answered (zero: never).
	deadline time.Time
	ready    bool // complete, for its client's writer (guarded by owner.mu)
	detached bool
	// For a chunk of a multi-get sent in chunks: cont marks a chunk
	// after the first, more one before the last (its END is dropped).
	cont, more bool

	// For a fragment: the call it belongs to.
	parent *call
	// For a multi-key call: its fragments, how many are still pending,
	// and for a get, each key (copied) with the index of its fragment.
	frags   []*call
	pending atomic.Int32
	keyBuf  []byte
	keyEnds []int32
	keyFrag []int32
	// owner accounts the reply's bytes against its client's bound.
	owner *client
	srv   *backend

	// For a binary request: what its reply is checked and rewritten by.
	bin binaryReq
	// For a request sent on a binary connection: the opcode and opaque
	// sent, which the server's reply must carry (see connReader.frame).
	binOp     byte
	binOpaque uint32
	// getLine, for a get or a meta request sent to a server, is its
	// request line: the VALUEs of a get's reply must be of its keys, a
	// meta reply's opaque and key (flags O and k) its own (see
	// connReader.frame).
	getLine []byte

	// For a sub-call of a composed route (see rstep): the step its
	// completion goes back to. via is the client whose reader sends a
	// routed call that has no owner (a sub-call, a detached copy), nil
	// when a server connection's reader sends it.
	step *rstep
	via  *client
	// pend, for a detached copy, is its route's counters of copies in
	// flight, pendBytes what it counts against async, the proxy's
	// budget for them.
	pend      *routeCounters
	pendBytes int64
	async     *asyncBudget
}

// callOp says what the proxy does with a completed call's reply.
type callOp uint8

const (
	opForward  callOp = iota // send the reply as received
	opLocal                  // the proxy's own reply, complete at once
	opMergeGet               // merge the fragments' VALUEs in key order, one END
	opFlushAll               // OK when every fragment answered OK
	opStripMN                // a quiet meta request: drop the MN the proxy appended

	// Binary requests (binary.go).
	opBinary      // the opcode and opaque restored, a quiet request's success dropped
	opBinaryFlush // success when every fragment succeeded
)

var callPool = sync.Pool{New: func() any { return new(call) }}

func newCall() *call { return callPool.Get().(*call) }

// maxPooledReply bounds the reply buffer a pooled call keeps: a
// fragment of a wide multi-get (a few hundred KB) reuses its buffer
// instead of growing a new one by doubling.
const maxPooledReply = 1 << 20

// release returns c and its fragments to the pool; c must be complete and
// referenced nowhere else.
func (c *call) release() {
	for _, f := range c.frags {
		f.release()
	}
	reply := c.reply[:0]
	if cap(reply) > maxPooledReply {
		reply = nil
	}
	frags, kb, ke, kf := c.frags[:0], c.keyBuf[:0], c.keyEnds[:0], c.keyFrag[:0]
	if cap(kb) > maxPooledReply {
		kb, ke, kf = nil, nil, nil
	}
	gl := c.getLine[:0]
	if cap(gl) > maxPooledReply {
		gl = nil
	}
	*c = call{reply: reply, frags: frags, keyBuf: kb, keyEnds: ke, keyFrag: kf, getLine: gl}
	callPool.Put(c)
}

// complete records c's reply (copied) or error and hands c on: to its
// parent when it is a fragment, else to its client's writer; see
// completeTo.
func (c *call) complete(reply []byte, err error) { c.completeTo(reply, err, nil) }

// completeTo records c's reply (copied) or error and hands c on: to its
// parent when it is a fragment, else to its client's writer (see
// client.ready: the caller may write the client's replies, or with pw,
// note the client in pw and write them later).
//
// The reply is copied only when its client will write it, and when the
// proxy's bound on held replies lets the client hold it (see
// client.takeReply); otherwise the call fails with errNoMemory.
func (c *call) completeTo(reply []byte, err error, pw *pendingWrites) {
	if s := c.step; s != nil {
		// A route's sub-call: the step decides what its reply does.
		if err == nil && !s.take(len(reply)) {
			err = errNoMemory
		}
		if err != nil {
			c.err = err
		} else {
			c.reply = append(c.reply[:0], reply...)
		}
		s.subDone(c, pw)
		return
	}
	if err == nil {
		if cl := c.accountedTo(); cl != nil && !cl.takeReply(len(reply)) {
			err = errNoMemory
		}
	}
	switch {
	case err != nil:
		c.err = err
	case !c.isDetached():
		c.reply = append(c.reply[:0], reply...)
	}
	if p := c.parent; p != nil {
		if p.pending.Add(-1) == 0 {
			p.finish(pw)
		}
		return
	}
	c.finish(pw)
}

// finish hands on a call that has its reply (all its fragments' replies).
func (c *call) finish(pw *pendingWrites) {
	if c.detached {
		cl := c.owner
		units := int64(c.units)
		if c.pend != nil {
			c.async.done(c.pend, c.pendBytes)
		}
		c.release()
		if cl != nil {
			cl.inflight.Add(-units)
			cl.signalDrained()
		}
		return
	}
	c.owner.ready(c, pw)
}

// isDetached reports whether nobody will write c's reply: c, or the call
// it is a fragment of, is detached.
func (c *call) isDetached() bool {
	return c.detached || c.parent != nil && c.parent.detached
}

// sender returns the client whose reader sent c.
func (c *call) sender() *client {
	switch {
	case c.parent != nil:
		return c.parent.owner
	case c.owner != nil:
		return c.owner
	}
	return c.via
}

// accountedTo returns the client whose writer will write c's reply, nil
// for a detached call.
func (c *call) accountedTo() *client {
	if c.isDetached() {
		return nil
	}
	if c.parent != nil {
		return c.parent.owner
	}
	return c.owner
}

// size is the memory a completed call holds for its client.
func (c *call) size() int {
	n := len(c.reply)
	for _, f := range c.frags {
		n += len(f.reply)
	}
	return n
}

// key returns the i-th key of a multi-key get.
func (c *call) key(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = c.keyEnds[i-1]
	}
	return c.keyBuf[start:c.keyEnds[i]]
}
