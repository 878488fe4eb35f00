package client

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
)

// multiScratch is GetMulti's per-call bookkeeping, reused across calls.
type multiScratch struct {
	server []int32 // key index -> server index, -1 for a key not sent
	order  []int32 // key indices grouped by server
	start  []int   // server index -> first position in order; len servers+1
	errs   []error
}

var multiPool = sync.Pool{New: func() any { return new(multiScratch) }}

// GetMulti returns the items found for keys, keyed by key. It sends one
// request per server, to all servers in parallel, and reads each reply into
// one buffer: the values share it. A server that fails leaves its keys out
// of the map and its error (naming it) in the returned error, after all
// servers have answered.
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ms := multiPool.Get().(*multiScratch)
	defer multiPool.Put(ms)
	n := len(c.servers)
	ms.server = grow(ms.server, len(keys))
	ms.order = grow(ms.order, len(keys))
	ms.start = growInt(ms.start, n+1)
	clear(ms.start)
	ms.errs = ms.errs[:0]
	for range n {
		ms.errs = append(ms.errs, nil)
	}
	var firstErr error
	for i, k := range keys {
		wire, err := c.wireKey(k)
		if err != nil {
			ms.server[i] = -1
			firstErr = err
			continue
		}
		s, err := c.readServer(k, wire)
		if err != nil {
			ms.server[i] = -1
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		si := s.idx
		ms.server[i] = int32(si)
		ms.start[si+1]++
	}
	for i := 1; i <= n; i++ {
		ms.start[i] += ms.start[i-1]
	}
	var next [64]int
	var cursor []int
	if n <= len(next) {
		cursor = next[:n]
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

	items := make([]Item, len(keys))
	var hits atomic.Int32
	var wg sync.WaitGroup
	last := -1
	for si := range n {
		if ms.start[si] == ms.start[si+1] {
			continue
		}
		if last >= 0 {
			wg.Add(1)
			go func(si int) {
				defer wg.Done()
				ms.errs[si] = c.getMultiServer(ctx, c.servers[si], keys, ms.order[ms.start[si]:ms.start[si+1]], items, &hits)
			}(last)
		}
		last = si
	}
	if last >= 0 {
		ms.errs[last] = c.getMultiServer(ctx, c.servers[last], keys, ms.order[ms.start[last]:ms.start[last+1]], items, &hits)
	}
	wg.Wait()

	m := make(map[string]*Item, hits.Load())
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

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// getMultiServer fetches keys[order…] from s with one "gets" line, filling
// items at the same indices.
func (c *Client) getMultiServer(ctx context.Context, s *node, keys []string, order []int32, items []Item, hits *atomic.Int32) error {
	return c.do(ctx, s, "gets", func(cn *conn) error {
		w := append(cn.w[:0], "gets"...)
		for _, ki := range order {
			w = append(w, ' ')
			w = c.appendWireKey(w, keys[ki])
		}
		cn.w = append(w, crlf...)
		if err := cn.flush(); err != nil {
			return err
		}
		// Values are carved out of chunks sized by the last reply.
		hint := int(s.replyHint.Load())
		if hint < 4096 {
			hint = 4096
		}
		var chunk []byte
		total := 0
		j := 0
		found := 0
		err := cn.readItems(func(key []byte, flags uint32, n int, cas uint64) []byte {
			total += n
			if cap(chunk)-len(chunk) < n {
				chunk = make([]byte, 0, max(n, hint))
			}
			v := chunk[len(chunk) : len(chunk)+n : len(chunk)+n]
			chunk = chunk[:len(chunk)+n]
			// Replies come in request order; skip the misses.
			for k := j; k < len(order); k++ {
				if c.wireKeyEqual(key, keys[order[k]]) {
					it := &items[order[k]]
					it.Key, it.Flags, it.CAS, it.Value = keys[order[k]], flags, cas, v
					found++
					j = k + 1
					return v
				}
			}
			return v // a key not asked for: read and drop
		})
		s.replyHint.Store(int64(total))
		hits.Add(int32(found))
		return err
	})
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
