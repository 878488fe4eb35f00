package client

import (
	"bytes"
	"context"
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
// turn; each reply's values are carved out of one buffer. A server that
// fails leaves its keys out of the map and its error (naming it) in the
// returned error.
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

	// Send every request, then read every reply.
	for si := range n {
		if ms.start[si] == ms.start[si+1] {
			continue
		}
		ms.conns[si], ms.stops[si], ms.errs[si] = c.sendGets(ctx, c.servers[si], keys, ms.order[ms.start[si]:ms.start[si+1]])
	}
	items := make([]Item, len(keys))
	hits := 0
	for si, cn := range ms.conns {
		if cn == nil {
			continue
		}
		order := ms.order[ms.start[si]:ms.start[si+1]]
		found, err := c.readGets(cn, keys, order, items)
		if err != nil {
			// The server's keys are left out, with the value it was
			// reading when the reply broke off.
			for _, ki := range order {
				items[ki] = Item{}
			}
			found = 0
		}
		hits += found
		ms.errs[si] = c.finish(ctx, cn, ms.stops[si], "gets", err)
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

// readGets reads the reply to sendGets into items, returning the number of
// hits. Values are carved out of chunks sized by the server's last reply.
func (c *Client) readGets(cn *conn, keys []string, order []int32, items []Item) (int, error) {
	s := cn.s
	hint := max(int(s.replyHint.Load()), 4096)
	var chunk []byte
	total, j, found := 0, 0, 0
	for {
		key, flags, n, cas, done, err := cn.nextValue()
		if err != nil {
			return found, err
		}
		if done {
			break
		}
		total += n
		if cap(chunk)-len(chunk) < n {
			chunk = make([]byte, 0, max(n, hint))
		}
		v := chunk[len(chunk) : len(chunk)+n : len(chunk)+n]
		chunk = chunk[:len(chunk)+n]
		// Replies come in request order; skip the misses. A key not asked
		// for is read and dropped.
		for k := j; k < len(order); k++ {
			if c.wireKeyEqual(key, keys[order[k]]) {
				it := &items[order[k]]
				it.Key, it.Flags, it.CAS, it.Value = keys[order[k]], flags, cas, v
				found++
				j = k + 1
				break
			}
		}
		if err := cn.readValue(v); err != nil {
			return found, err
		}
	}
	s.replyHint.Store(int64(total))
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
