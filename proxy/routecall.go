package proxy

import (
	"bytes"
	"github.com/corvidcache/corvid/ring"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/corvidcache/corvid/route"
)

// maxAsyncPending bounds the detached requests (AllAsyncRoute's
// children, AllInitialRoute's after the first, shadows, warm-up adds,
// and AllFastestRoute's and AllMajorityRoute's sub-calls left in flight
// once the route answered) a route node has in flight; past it a copy
// is dropped and counted, so that a slow pool never slows the primary
// (an answer that would leave sub-calls in flight waits for the last of
// them instead). Their bytes are bounded too,
// over the whole proxy, by an asyncBudget.
const maxAsyncPending = 1024

// asyncBudget bounds the bytes of the detached requests in flight over
// the whole proxy, every route tree and node together: a copy is taken
// from its request's bytes being sent (or, for a warm-up fill, the value
// it holds) until its reply, or its failure, comes. Past limit a copy is
// dropped (counted in its node's async_dropped), so that what clients
// ask for cannot grow the proxy's memory through copies a slow pool
// holds, whatever their size. It is a budget of its own, not the held
// replies' (replyBufs), so that a slow shadow or async pool never takes
// from the replies of the primary's clients. It is safe for concurrent
// use.
type asyncBudget struct {
	bytes atomic.Int64
	limit int64 // 0: none
}

// take accounts n bytes more, or reports false and accounts nothing when
// that would pass the limit.
func (a *asyncBudget) take(n int64) bool {
	if a == nil {
		return true
	}
	for {
		old := a.bytes.Load()
		if a.limit > 0 && old+n > a.limit {
			return false
		}
		if a.bytes.CompareAndSwap(old, old+n) {
			return true
		}
	}
}

// release accounts n bytes no longer held.
func (a *asyncBudget) release(n int64) {
	if a != nil {
		a.bytes.Add(-n)
	}
}

// rreq is a request being routed: its key, operation and reply kind,
// and its bytes (the client's line, its data, and the proxy's "mn" after
// a quiet meta request).
type rreq struct {
	key   []byte
	op    rop
	kind  replyKind
	parts [][]byte
}

// routeTo sends the request r, whose reply completes c, through node n
// of rt. from is the client whose reader routes it (nil from a server
// connection's reader, re-dispatching a composed request): the
// requests it queues are flushed with the client's.
//
// Selectors resolve to one destination without allocating; a PoolRoute
// sends c to its server; a composer (see rstep) sends sub-calls to its
// children and completes c once their replies decide; NullRoute and
// ErrorRoute complete c at once.
func (rt *routeTree) routeTo(from *client, c *call, n *rnode, r rreq, pw *pendingWrites) {
	n = n.resolve(r.key, r.op)
	n.st.requests.Add(1)
	switch n.typ {
	case route.PoolRoute:
		b, idx, err := n.backend(r.key)
		if err != nil {
			n.st.errors.Add(1)
			c.completeTo(nil, err, pw)
			return
		}
		// The shadows' copies go first: c may complete as it is sent,
		// and with it the step whose request r holds.
		if len(n.shadows) > 0 {
			rt.shadow(from, n, idx, r, pw)
		}
		c.via = from
		if r.kind == kindBinary {
			b.sendBinary(c, r.parts...)
		} else {
			b.send(c, r.parts...)
		}
	case route.NullRoute:
		c.completeTo(r.defaultReply(c), nil, pw)
	case route.ErrorRoute:
		if r.kind == kindBinary {
			c.completeTo(binaryLocal(r, statusInternalError, n.response), nil, pw)
			return
		}
		line := "SERVER_ERROR"
		if n.response != "" {
			line += " " + n.response
		}
		line += "\r\n"
		if r.kind == kindMetaQuiet {
			line += "MN\r\n"
		}
		c.completeTo([]byte(line), nil, pw)
	case route.AllAsyncRoute:
		// mcrouter answers at once with NullRoute's reply; the children
		// get detached copies.
		for _, ch := range n.children {
			rt.detached(from, n, ch, r, pw)
		}
		c.completeTo(r.defaultReply(c), nil, pw)
	case route.AllInitialRoute:
		// The first child's reply is the answer; the others get
		// detached copies, bounded as AllAsyncRoute's.
		for _, ch := range n.children[1:] {
			rt.detached(from, n, ch, r, pw)
		}
		rt.routeTo(from, c, n.children[0], r, pw)
	case route.WarmUpRoute:
		// A get or gets composes (a binary get as a gets: its reply
		// carries a CAS unique, which must be cold's; see textKey).
		if !(r.kind == kindGet && (r.op == rGet || r.op == rGets) || r.kind == kindBinary && r.op == rGet && textKey(r.key)) {
			rt.routeTo(from, c, n.cold, r, pw)
			return
		}
		rt.compose(from, c, n, r, pw)
	case route.MissFailoverRoute:
		if !r.op.getLike() {
			rt.routeTo(from, c, n.children[0], r, pw)
			return
		}
		rt.compose(from, c, n, r, pw)
	default:
		rt.compose(from, c, n, r, pw)
	}
}

// shadow sends detached copies of a PoolRoute's request to the shadows
// whose index_range holds idx and whose key_fraction_range holds the
// key's fraction.
func (rt *routeTree) shadow(from *client, n *rnode, idx int, r rreq, pw *pendingWrites) {
	rk := ring.RoutingKey(r.key)
	for i := range n.shadows {
		s := &n.shadows[i]
		if idx < s.lo || idx > s.hi || !s.frac.Contains(rk) {
			continue
		}
		if rt.detached(from, n, s.to, r, pw) {
			n.st.shadowSent.Add(1)
		} else {
			n.st.shadowDropped.Add(1)
		}
	}
}

// detached sends a copy of r through to, its reply dropped, unless owner
// has maxAsyncPending such copies in flight or the proxy's detached
// copies would pass their budget in bytes (then it is dropped and
// counted). It reports whether the copy was sent.
func (rt *routeTree) detached(from *client, owner, to *rnode, r rreq, pw *pendingWrites) bool {
	size := int64(0)
	for _, p := range r.parts {
		size += int64(len(p))
	}
	if !rt.takeAsync(owner, size) {
		return false
	}
	c := newCall()
	c.kind, c.op, c.units, c.detached = r.kind, opForward, 1, true
	c.pend, c.pendBytes, c.async = owner.st, size, rt.async
	c.conn = uint32(owner.st.asyncPending.Load())
	rt.routeTo(from, c, to, r, pw)
	return true
}

// takeAsync accounts a detached request of size bytes of node n, or
// counts it dropped and reports false when n has maxAsyncPending in
// flight or the proxy's budget would pass its limit.
func (rt *routeTree) takeAsync(n *rnode, size int64) bool {
	if !rt.holdAsync(n, size) {
		n.st.asyncDropped.Add(1)
		return false
	}
	return true
}

// holdAsync is takeAsync without counting a drop.
func (rt *routeTree) holdAsync(n *rnode, size int64) bool {
	if n.st.asyncPending.Add(1) > maxAsyncPending {
		n.st.asyncPending.Add(-1)
		return false
	}
	if !rt.async.take(size) {
		n.st.asyncPending.Add(-1)
		return false
	}
	n.st.asyncBytes.Add(size)
	return true
}

// done accounts the end of a detached request of size bytes of the node
// whose counters are st.
func (a *asyncBudget) done(st *routeCounters, size int64) {
	st.asyncPending.Add(-1)
	st.asyncBytes.Add(-size)
	a.release(size)
}

// An rstep is a composed request in flight: a FailoverRoute,
// MissFailoverRoute, WarmUpRoute or All* route's state between its
// children's replies. It holds a copy of the request (the client's read
// buffer is reused), the call its answer completes (out), and sub-calls
// to its children, whose completion (see call.completeTo) comes back
// here: the step then completes out, sends to the next child, or sends
// detached copies. No goroutine waits for a composed request.
type rstep struct {
	mu   sync.Mutex // guards the fields below, from the sub-calls' completions
	rt   *routeTree
	node *rnode
	out  *call // completed with the answer (nil once it is)
	op   rop
	kind replyKind
	req  []byte // the request, copied
	// parts is the request as routeTo takes it (set before each send).
	parts [1][]byte
	key   []byte // the key, copied
	subs  []*call
	next  int // the next child a sequential route tries
	// pending counts sub-calls in flight; counts what AllMajority has
	// seen of each result.
	pending int
	counts  [resClient + 1]int16
	// cl is the client whose bound on held replies the sub-calls'
	// replies count against (nil for a detached request): held is what
	// they hold (see take). A detached copy's step (detached: on the
	// way of an AllAsyncRoute's, a shadow's, a warm-up fill's) holds
	// them against the proxy's budget for detached copies instead.
	cl       *client
	held     atomic.Int64
	detached bool
	// worst is the worst reply AllSyncRoute has seen, of rank worstRes.
	worst    *call
	worstRes result
	warm     bool // WarmUpRoute: asking warm
	// WarmUpRoute's gets: its stage (0 cold, 1 warm, 2 the add to cold,
	// 3 cold again) and cold's first reply, a miss.
	stage    uint8
	coldMiss *call
	// ttlFill marks a WarmUpRoute's fill without an exptime: the step
	// asks warm for the item's remaining time ("mg <key> t"), then adds
	// fillVal ("<flags>", then " <bytes>\r\n<data>\r\n" from fillAt) to
	// cold with it.
	ttlFill bool
	fillVal []byte
	fillAt  int
	// asyncHeld is what a fill's step counts against the proxy's
	// budget for detached requests (see asyncBudget).
	asyncHeld int64
	// AllFastestRoute and AllMajorityRoute: background marks a step
	// answered with sub-calls in flight, one of its node's detached
	// requests (of the request's size) until they end; chosen, the
	// answer that waits for them instead, the node having no room.
	background bool
	chosen     *call
}

var stepPool = sync.Pool{New: func() any { return new(rstep) }}

// compose starts a composed request of n.
func (rt *routeTree) compose(from *client, c *call, n *rnode, r rreq, pw *pendingWrites) {
	s := stepPool.Get().(*rstep)
	s.rt, s.node, s.out, s.op, s.kind = rt, n, c, r.op, r.kind
	s.cl = c.accountedTo()
	s.detached = c.pend != nil // a detached copy (not a noreply request)
	if s.cl == nil && c.step != nil {
		s.cl = c.step.cl // a composer inside a composer
		s.detached = c.step.detached
	}
	s.req = s.req[:0]
	for _, p := range r.parts {
		s.req = append(s.req, p...)
	}
	s.key = append(s.key[:0], r.key...)
	rt.steps.Add(1)
	switch n.typ {
	case route.FailoverRoute, route.MissFailoverRoute, route.LatestRoute:
		s.pending = 1
		s.next = 1
		s.send(from, n.children[0], pw)
	case route.WarmUpRoute:
		s.pending = 1
		s.send(from, n.cold, pw)
	default: // AllSync, AllMajority, AllFastest
		// s.subs is complete before the first is sent, and s outlives
		// the last send: it is released once every sub-call completed.
		s.pending = len(n.children)
		for range n.children {
			s.newSub()
		}
		for i, ch := range n.children {
			rt.routeTo(from, s.subs[i], ch, s.request(), pw)
		}
	}
}

// request returns the step's request to route.
func (s *rstep) request() rreq {
	s.parts[0] = s.req
	return rreq{key: s.key, op: s.op, kind: s.kind, parts: s.parts[:]}
}

// newSub makes a sub-call of s; s.mu is held or s is not yet shared.
func (s *rstep) newSub() *call {
	f := newCall()
	f.kind, f.step = s.kind, s
	if s.out != nil {
		f.conn = s.out.conn
	}
	s.subs = append(s.subs, f)
	return f
}

// send sends a new sub-call of a sequential route to n.
func (s *rstep) send(from *client, n *rnode, pw *pendingWrites) {
	s.mu.Lock()
	f := s.newSub()
	s.mu.Unlock()
	s.rt.routeTo(from, f, n, s.request(), pw)
}

// subDone is called when the sub-call f of s completes (f.reply or
// f.err holds its answer).
func (s *rstep) subDone(f *call, pw *pendingWrites) {
	n := s.node
	res := classify(s.op, f.reply, f.err)
	if s.ttlFill {
		s.fillWithTTL(f, res, pw)
		return
	}
	s.mu.Lock()
	s.pending--
	if res.isError() {
		n.st.errors.Add(1)
	}
	switch n.typ {
	case route.FailoverRoute, route.LatestRoute, route.MissFailoverRoute:
		retry := res.failover() || n.typ == route.MissFailoverRoute && res != resOK
		if retry && s.next < len(n.children) {
			next := n.children[s.next]
			s.next++
			s.pending++
			n.st.failovers.Add(1)
			s.mu.Unlock()
			s.send(nil, next, pw)
			return
		}
		s.answer(f, pw)
	case route.WarmUpRoute:
		if s.op == rGets || s.kind == kindBinary {
			if next, kind, op, req := s.warmUpGets(f, res, pw); next != nil {
				s.mu.Unlock()
				s.sendAs(next, kind, op, req, pw)
				return
			}
			break
		}
		if !s.warm && res != resOK {
			s.warm = true
			s.pending++
			s.mu.Unlock()
			s.send(nil, n.warm, pw)
			return
		}
		if s.warm && res == resOK {
			s.fill(f.reply, pw)
		}
		s.answer(f, pw)
	case route.AllSyncRoute:
		// As mcrouter: the reply kept is replaced only by a strictly
		// worse one, so that of replies ranked alike the first to arrive
		// is answered.
		if s.worst == nil || res > s.worstRes {
			s.worst, s.worstRes = f, res
		}
		if s.pending == 0 {
			s.answer(s.worst, pw)
		}
	case route.AllFastestRoute:
		if !res.isError() || s.pending == 0 {
			s.decide(f, pw)
		}
	case route.AllMajorityRoute:
		if !res.isError() {
			s.counts[res]++
			if int(s.counts[res]) >= len(n.children)/2+1 {
				s.decide(f, pw)
			}
		}
		if s.pending == 0 {
			s.decide(f, pw)
		}
	}
	if s.pending == 0 && s.chosen != nil {
		s.answer(s.chosen, pw)
	}
	done := s.pending == 0
	s.mu.Unlock()
	if done {
		s.release()
	}
}

// take accounts n bytes of a sub-call's reply, which the step holds
// until it is released, against the proxy's bound on held replies (as
// client.takeReply, whose client is closed when it would pass it: an
// AllSyncRoute waiting for a slow child must not hold whatever its
// clients ask for); a detached copy's step, against the budget of
// detached requests, so that a slow shadow or async pool takes nothing
// from the clients' replies. It reports false when the reply may not be
// kept.
func (s *rstep) take(n int) bool {
	if s.detached {
		if !s.rt.async.take(int64(n)) {
			return false
		}
		s.held.Add(int64(n))
		return true
	}
	m := s.rt.replies
	if m == nil {
		return true
	}
	reads := neverReads
	if s.cl != nil {
		reads = s.cl.reads
	}
	if m.take(&s.held, int64(n), reads) {
		return true
	}
	if cl := s.cl; cl != nil {
		cl.starved.Store(true)
		if !cl.aborted.Load() {
			m.oom.Add(1)
			cl.p.log.Debug("client closed", "pool", cl.pool.name, "err", errNoMemory)
			cl.abort()
		}
	}
	return false
}

func neverReads() bool { return false }

// warmUpGets takes the reply f (of result res) to a WarmUpRoute's gets
// at its stage, as mcrouter: a miss in cold asks warm ("mg <key> v f t",
// for the value, flags and remaining time); warm's hit is added to cold
// and the gets asked of cold again, whose reply (and CAS unique) is the
// answer; warm's miss answers cold's. It returns the next sub-request
// (nil once the step is answered), with pending counted; s.mu is held.
func (s *rstep) warmUpGets(f *call, res result, pw *pendingWrites) (*rnode, replyKind, rop, []byte) {
	n := s.node
	switch s.stage {
	case 0:
		if res == resOK {
			break
		}
		s.coldMiss, s.stage = f, 1
		s.fillVal = append(append(append(s.fillVal[:0], "mg "...), s.key...), " v f t\r\n"...)
		s.pending++
		return n.warm, kindMeta, rMetaGet, s.fillVal
	case 1:
		add, ok := s.addFromMeta(f, res)
		if !ok {
			s.answer(s.coldMiss, pw)
			return nil, 0, 0, nil
		}
		s.fillVal, s.stage = add, 2
		n.st.warmFills.Add(1)
		s.pending++
		return n.cold, kindStore, rAdd, s.fillVal
	case 2:
		s.stage = 3
		s.pending++
		return n.cold, s.kind, s.op, s.req
	}
	s.answer(f, pw)
	return nil, 0, 0, nil
}

// addFromMeta returns the add to cold of warm's hit f to "mg <key> v f
// t": with the route's exptime, else the item's remaining time; false
// when f is not a hit or the item's time is up.
func (s *rstep) addFromMeta(f *call, res result) ([]byte, bool) {
	if res != resOK || f.err != nil || !bytes.HasPrefix(f.reply, []byte("VA ")) {
		return nil, false
	}
	line, next, _ := replyLine(f.reply)
	tok := bytes.Fields(line)
	if next == 0 || len(tok) < 2 {
		return nil, false
	}
	size, err := strconv.Atoi(string(tok[1]))
	if err != nil || size < 0 || next+size+2 > len(f.reply) {
		return nil, false
	}
	flags, exptime := []byte("0"), int64(s.node.exptime)
	for _, t := range tok[2:] {
		switch t[0] {
		case 'f':
			flags = t[1:]
		case 't':
			ttl, err := strconv.ParseInt(string(t[1:]), 10, 64)
			if err != nil || ttl == 0 || ttl < -1 {
				return nil, false // its time is up
			}
			if exptime == 0 {
				exptime = max(ttl, 0)
			}
		}
	}
	add := make([]byte, 0, len(s.key)+len(flags)+48+size)
	add = append(append(append(add, "add "...), s.key...), ' ')
	add = append(append(add, flags...), ' ')
	add = strconv.AppendInt(add, exptime, 10)
	add = append(append(add, ' '), tok[1]...)
	add = append(append(add, "\r\n"...), f.reply[next:next+size+2]...)
	return add, true
}

// sendAs sends a new sub-call of a sequential route to n: the request
// req, of kind and op, in place of the step's own.
func (s *rstep) sendAs(n *rnode, kind replyKind, op rop, req []byte, pw *pendingWrites) {
	s.mu.Lock()
	f := s.newSub()
	f.kind = kind
	s.mu.Unlock()
	s.rt.routeTo(nil, f, n, rreq{key: s.key, op: op, kind: kind, parts: [][]byte{req}}, pw)
}

// decide answers f, the reply AllFastestRoute or AllMajorityRoute
// chose, once; s.mu is held. The sub-calls still in flight then end in
// the background, as one of the node's detached requests: when the node
// has no room for one more (see takeAsync), f waits for the last of them
// instead, so that the client's requests cannot pile up on a child that
// does not answer.
func (s *rstep) decide(f *call, pw *pendingWrites) {
	if s.out == nil || s.chosen != nil {
		return
	}
	if s.pending > 0 {
		if !s.rt.holdAsync(s.node, int64(len(s.req))) {
			s.chosen = f
			return
		}
		s.background = true
	}
	s.answer(f, pw)
}

// answer completes the step's call with f's reply, once; s.mu is held.
func (s *rstep) answer(f *call, pw *pendingWrites) {
	out := s.out
	if out == nil {
		return
	}
	s.out = nil
	out.completeTo(f.reply, f.err, pw)
}

// fill adds the value of warm's hit (a get reply) to cold, detached,
// with the route's exptime; without one, with the time the item has left
// in warm, as mcrouter (which asks warm with a metaget, and adds nothing
// when that misses): see startTTLFill.
func (s *rstep) fill(reply []byte, pw *pendingWrites) {
	n := s.node
	// VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n
	line, next, _ := replyLine(reply)
	if next == 0 || !bytes.HasPrefix(line, []byte("VALUE ")) {
		return
	}
	f := bytes.Fields(line)
	if len(f) < 4 {
		return
	}
	size, err := strconv.Atoi(string(f[3]))
	if err != nil || next+size+2 > len(reply) {
		return
	}
	if n.exptime == 0 {
		s.rt.startTTLFill(n, s.key, f[2], f[3], reply[next:next+size+2], pw)
		return
	}
	req := make([]byte, 0, len(f[1])+len(f[2])+len(f[3])+32+size)
	req = append(req, "add "...)
	req = append(append(req, f[1]...), ' ')
	req = append(append(req, f[2]...), ' ')
	req = strconv.AppendInt(req, int64(n.exptime), 10)
	req = append(append(append(req, ' '), f[3]...), "\r\n"...)
	req = append(req, reply[next:next+size+2]...)
	if s.rt.detached(nil, n, n.cold, rreq{key: s.key, op: rAdd, kind: kindStore, parts: [][]byte{req}}, pw) {
		n.st.warmFills.Add(1)
	}
}

// startTTLFill starts a detached step that asks n's warm route for the
// remaining time of key, then adds the value (flags, size and data, its
// "\r\n" included) to cold with it. It counts as one of n's detached
// requests in flight.
func (rt *routeTree) startTTLFill(n *rnode, key, flags, size, data []byte, pw *pendingWrites) {
	held := int64(len(key) + len(flags) + len(size) + len(data))
	if !rt.takeAsync(n, held) {
		return
	}
	s := stepPool.Get().(*rstep)
	s.asyncHeld, s.detached = held, true
	s.rt, s.node, s.op, s.kind, s.ttlFill = rt, n, rMetaGet, kindMeta, true
	s.key = append(s.key[:0], key...)
	s.req = append(append(append(s.req[:0], "mg "...), key...), " t\r\n"...)
	s.fillVal = append(s.fillVal[:0], flags...)
	s.fillAt = len(s.fillVal)
	s.fillVal = append(append(append(append(s.fillVal, ' '), size...), "\r\n"...), data...)
	s.pending = 1
	rt.steps.Add(1)
	s.send(nil, n.warm, pw)
}

// fillWithTTL completes a step of startTTLFill with warm's reply f to
// "mg <key> t": on a hit whose time is not up, the value goes to cold.
func (s *rstep) fillWithTTL(f *call, res result, pw *pendingWrites) {
	n := s.node
	exptime, ok := int64(0), false
	if res == resOK && f.err == nil && bytes.HasPrefix(f.reply, []byte("HD")) {
		line, _, _ := replyLine(f.reply)
		for _, tok := range bytes.Fields(line)[1:] {
			if tok[0] == 't' {
				t, err := strconv.ParseInt(string(tok[1:]), 10, 64)
				// -1: no expiry; 0: the item's time is up
				ok = err == nil && (t == -1 || t > 0)
				exptime = max(t, 0)
			}
		}
	}
	if ok {
		req := make([]byte, 0, len(s.key)+len(s.fillVal)+32)
		req = append(append(append(req, "add "...), s.key...), ' ')
		req = append(append(req, s.fillVal[:s.fillAt]...), ' ')
		req = strconv.AppendInt(req, exptime, 10)
		req = append(req, s.fillVal[s.fillAt:]...)
		if s.rt.detached(nil, n, n.cold, rreq{key: s.key, op: rAdd, kind: kindStore, parts: [][]byte{req}}, pw) {
			n.st.warmFills.Add(1)
		}
	}
	s.rt.async.done(n.st, s.asyncHeld)
	s.release()
}

// release returns s and its sub-calls to their pools, once every
// sub-call has completed.
func (s *rstep) release() {
	if h := s.held.Load(); h != 0 {
		if s.detached {
			s.rt.async.release(h)
		} else {
			s.rt.replies.release(&s.held, h)
		}
	}
	if s.background {
		s.rt.async.done(s.node.st, int64(len(s.req)))
	}
	s.rt.steps.Add(-1)
	for i, f := range s.subs {
		f.release()
		s.subs[i] = nil
	}
	subs, req, key, fill := s.subs[:0], s.req[:0], s.key[:0], s.fillVal[:0]
	if cap(req) > maxPooledReply {
		req = nil
	}
	if cap(fill) > maxPooledReply {
		fill = nil
	}
	*s = rstep{subs: subs, req: req, key: key, fillVal: fill}
	stepPool.Put(s)
}

// routeCounters are a route node's counters (RouteStats).
type routeCounters struct {
	requests      atomic.Int64
	errors        atomic.Int64
	failovers     atomic.Int64
	warmFills     atomic.Int64
	shadowSent    atomic.Int64
	shadowDropped atomic.Int64
	asyncPending  atomic.Int64
	asyncBytes    atomic.Int64
	asyncDropped  atomic.Int64
}
