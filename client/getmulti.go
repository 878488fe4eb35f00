package client

import (
	"bytes"
	"context"
	"strconv"
	"sync"
)

// multiScratch is GetMulti's per-call bookkeeping, reused across calls.
type multiScratch struct {
	server []int32 // key index -> server index, -1 for a key not sent
	order  []int32 // key indices grouped by server
	start  []int   // server index -> first position in order; len servers+1
	conns  []*conn // server index -> connection with a request in flight
	stops  []func() bool
	errs   []error
}

var multiPool = sync.Pool{New: func() any { return new(multiScratch) }}

// GetMulti returns the items found for keys, keyed by key. It writes one
// "gets" request to every server concerned before reading any reply, so the
// servers work in parallel while a single goroutine reads their replies in
// turn; small values share buffers of at most 16 KB. Each server's reply
// is given Config.Timeout from when the client starts reading it, so that
// a slow server does not make the others late (the context's deadline
// bounds the whole call). A server that fails leaves its keys out of the
// map and its error (naming it) in the returned error.
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ms := multiPool.Get().(*multiScratch)
	defer multiPool.Put(ms)
	n := len(c.servers)
	ms.server = grow(ms.server, len(keys))
	ms.order = grow(ms.order, len(keys))
	ms.start = growSlice(ms.start, n+1)
	clear(ms.start)
	ms.conns = growSlice(ms.conns, n)
	clear(ms.conns)
	ms.stops = growSlice(ms.stops, n)
	clear(ms.stops)
	ms.errs = growSlice(ms.errs, n)
	clear(ms.errs)

	var firstErr error
	for i, k := range keys {
		ms.server[i] = -1
		wire, err := c.wireKey(k)
		if err == nil {
			var s *node
			if s, err = c.readServer(k, wire); err == nil {
				ms.server[i] = int32(s.idx)
				ms.start[s.idx+1]++
				continue
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := 1; i <= n; i++ {
		ms.start[i] += ms.start[i-1]
	}
	var small [64]int
	var cursor []int
	if n <= len(small) {
		cursor = small[:n]
	} else {
		cursor = make([]int, n)
	}
	copy(cursor, ms.start[:n])
	for i := range keys {
		if si := ms.server[i]; si >= 0 {
			ms.order[cursor[si]] = int32(i)
			cursor[si]++
		}
	}

	// Send every server a request, then read every reply; keys beyond
	// what one get line should carry go in further rounds.
	copy(cursor, ms.start[:n]) // server index -> next position in order
	var smallEnds [64]int
	var ends []int
	if n <= len(smallEnds) {
		ends = smallEnds[:n]
	} else {
		ends = make([]int, n)
	}
	items := make([]Item, len(keys))
	hits := 0
	for {
		sent := false
		for si := range n {
			lo, hi := cursor[si], ms.start[si+1]
			if lo == hi || ms.errs[si] != nil {
				continue
			}
			ends[si] = c.getsBatchEnd(keys, ms.order, lo, hi)
			ms.conns[si], ms.stops[si], ms.errs[si] = c.sendGets(ctx, c.servers[si], keys, ms.order[lo:ends[si]])
			sent = true
		}
		if !sent {
			break
		}
		for si, cn := range ms.conns {
			if cn == nil {
				continue
			}
			cn.rearm(ctx)
			found, err := c.readGets(cn, keys, ms.order[cursor[si]:ends[si]], items)
			hits += found
			ms.errs[si] = c.finish(ctx, cn, ms.stops[si], "gets", err)
			ms.conns[si] = nil
			cursor[si] = ends[si]
		}
	}
	// A server that failed, in any round, leaves all its keys out, with
	// whatever its broken reply held.
	for si, err := range ms.errs {
		if err != nil {
			for _, ki := range ms.order[ms.start[si]:cursor[si]] {
				items[ki] = Item{}
			}
		}
	}

	m := make(map[string]*Item, hits)
	for i := range items {
		if it := &items[i]; it.Key != "" {
			if err := c.decode(it); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			m[it.Key] = it
		}
	}
	for _, err := range ms.errs {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return m, firstErr
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// maxGetsLine bounds the keys of one get line: servers limit the line
// (corvid at 1 MiB), and a line that fits the socket buffers is written
// without waiting for the server to read.
const maxGetsLine = 256 << 10

// getsBatchEnd returns the end of the run of order[lo:hi] that fits one get
// line: at least one key, at most maxGetsLine bytes of keys.
func (c *Client) getsBatchEnd(keys []string, order []int32, lo, hi int) int {
	size := 0
	for i := lo; i < hi; i++ {
		size += 1 + len(c.ns) + len(keys[order[i]])
		if size > maxGetsLine && i > lo {
			return i
		}
	}
	return hi
}

// sendGets writes one "gets" line for keys[order…] to s and returns the
// connection the reply is to be read from.
func (c *Client) sendGets(ctx context.Context, s *node, keys []string, order []int32) (*conn, func() bool, error) {
	cn, err := s.getConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	stop := cn.begin(ctx)
	w := append(cn.w[:0], "gets"...)
	for _, ki := range order {
		w = append(w, ' ')
		w = c.appendWireKey(w, keys[ki])
	}
	cn.w = append(w, crlf...)
	if err := cn.flush(); err != nil {
		return nil, nil, c.finish(ctx, cn, stop, "gets", err)
	}
	return cn, stop, nil
}

// Values of a multi-get up to sharedValueMax bytes are carved out of
// shared chunks of at most sharedChunkMax bytes, sized to the part of the
// reply already read, so that a few allocations serve many small values
// while an Item pins at most sharedChunkMax bytes; larger values get their
// own allocation.
const (
	sharedValueMax = 1 << 10
	sharedChunkMax = 16 << 10
)

// readGets reads the reply to sendGets into items, returning the number of
// hits.
func (c *Client) readGets(cn *conn, keys []string, order []int32, items []Item) (int, error) {
	var chunk []byte
	j, found := 0, 0
	for first := true; ; first = false {
		key, flags, n, cas, done, err := cn.nextValue(first)
		if err != nil {
			return found, err
		}
		if done {
			break
		}
		// Replies come in request order; skip the misses. A key not asked
		// for (or out of order) is a reply to some other request: the
		// connection is out of step.
		k := j
		for k < len(order) && !c.wireKeyEqual(key, keys[order[k]]) {
			k++
		}
		if k == len(order) {
			return found, &ProtocolError{Reason: "reply for key " + strconv.Quote(string(key)) + " not asked for or out of order"}
		}
		var v []byte
		if n == 0 {
			v = []byte{} // empty, not absent: as Get returns it
			if err := cn.readValue(v); err != nil {
				return found, err
			}
		} else if n > sharedValueMax {
			if v, err = cn.readNewValue(n); err != nil {
				return found, err
			}
		} else {
			if cap(chunk)-len(chunk) < n {
				chunk = make([]byte, 0, min(max(n, cn.r.Buffered()), sharedChunkMax))
			}
			v = chunk[len(chunk) : len(chunk)+n : len(chunk)+n]
			chunk = chunk[:len(chunk)+n]
			if err := cn.readValue(v); err != nil {
				return found, err
			}
		}
		it := &items[order[k]]
		it.Key, it.Flags, it.CAS, it.Value = keys[order[k]], flags, cas, v
		found++
		j = k + 1
	}
	return found, nil
}

// appendWireKey appends key as sent on the wire.
func (c *Client) appendWireKey(w []byte, key string) []byte {
	if validKey(key) && len(c.ns)+len(key) <= maxKeyLen {
		return append(append(w, c.ns...), key...)
	}
	wire, _ := c.wireKey(key) // keys that fail were filtered out before
	return append(w, wire...)
}

// wireKeyEqual reports whether got is key as sent on the wire.
func (c *Client) wireKeyEqual(got []byte, key string) bool {
	if validKey(key) && len(c.ns)+len(key) <= maxKeyLen {
		return len(got) == len(c.ns)+len(key) && string(got[:len(c.ns)]) == c.ns && string(got[len(c.ns):]) == key
	}
	wire, _ := c.wireKey(key)
	return bytes.Equal(got, bytesOf(wire))
}
