package proxy

import (
	"bytes"
	"hash/maphash"
	"slices"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/route"
)

// routeGetChunk forwards the keys of a get chunk through the route tree
// rt; c is the chunk's call, admitted, line the client's request when it
// holds just these keys. Keys that selectors resolve to a PoolRoute are
// grouped by server, as a pool's; a key whose route composes (or
// shadows, or answers locally) goes alone through its route as
// "get <key>". The fragments are merged in the client's key order.
func (cl *client) routeGetChunk(rt *routeTree, c *call, line []byte, keys [][]byte) {
	op := rGet
	switch cl.req.Command {
	case protocol.CmdGets:
		op = rGets
	case protocol.CmdGat:
		op = rGat
	case protocol.CmdGats:
		op = rGats
	}
	cl.picks, cl.fragBack, cl.fragNode = slices.Grow(cl.picks[:0], len(keys)), cl.fragBack[:0], cl.fragNode[:0]
	if cl.seen == nil {
		cl.seen, cl.seed = make(map[uint64]int32), maphash.MakeSeed()
	}
	defer clear(cl.seen)
	dups := false
	for i, k := range keys {
		// A key named again is fetched once (see getChunk).
		h := maphash.Bytes(cl.seed, k)
		if first, ok := cl.seen[h]; ok && bytes.Equal(keys[first], k) {
			cl.picks = append(cl.picks, -1-first)
			dups = true
			continue
		}
		cl.seen[h] = int32(i)
		n := rt.root.resolve(k, op)
		var b *backend
		if n.typ == route.PoolRoute && len(n.shadows) == 0 {
			if bb, _, err := n.backend(k); err == nil {
				b = bb
				n.st.requests.Add(1)
			}
		}
		j := -1
		if b != nil {
			for f, fb := range cl.fragBack {
				if fb == b {
					j = f
					break
				}
			}
		}
		if j < 0 {
			j = len(cl.fragBack)
			cl.fragBack = append(cl.fragBack, b)
			cl.fragNode = append(cl.fragNode, n)
		}
		cl.picks = append(cl.picks, int32(j))
	}
	nfrag := len(cl.fragBack)
	for len(cl.fragBufs) < nfrag {
		cl.fragBufs = append(cl.fragBufs, nil)
	}
	if nfrag == 1 && !dups && cl.fragBack[0] != nil {
		if line == nil {
			b := cl.appendGetPrefix(cl.fragBufs[0][:0])
			for _, k := range keys {
				b = append(append(b, ' '), k...)
			}
			line = append(b, '\r', '\n')
			cl.fragBufs[0] = line
		}
		cl.fragBack[0].send(c, line)
		cl.fragBack[0], cl.fragNode[0] = nil, nil
		return
	}
	parent := c
	cl.splitGet(parent, keys, nfrag)
	for j, f := range parent.frags {
		cl.fragBufs[j] = append(cl.fragBufs[j], '\r', '\n')
		if b := cl.fragBack[j]; b != nil {
			b.send(f, cl.fragBufs[j])
		} else {
			key := parent.key(int(firstKeyOf(parent, j)))
			rt.routeTo(cl, f, cl.fragNode[j], rreq{key: key, op: op, kind: kindGet,
				parts: [][]byte{cl.fragBufs[j]}}, nil)
		}
		if cap(cl.fragBufs[j]) > maxKeptScratch {
			cl.fragBufs[j] = nil
		}
		cl.fragBack[j], cl.fragNode[j] = nil, nil
	}
}

// firstKeyOf returns the index of the first key of fragment j.
func firstKeyOf(c *call, j int) int {
	for i, f := range c.keyFrag {
		if int(f) == j {
			return i
		}
	}
	return 0
}

// binaryOp returns the operation of a binary opcode.
func binaryOp(op protocol.Opcode) rop {
	switch op {
	case protocol.OpGet, protocol.OpGetQ, protocol.OpGetK, protocol.OpGetKQ:
		return rGet
	case protocol.OpGAT, protocol.OpGATQ, protocol.OpGATK, protocol.OpGATKQ:
		return rGat
	case protocol.OpSet, protocol.OpSetQ:
		return rSet
	case protocol.OpAdd, protocol.OpAddQ:
		return rAdd
	case protocol.OpReplace, protocol.OpReplaceQ:
		return rReplace
	case protocol.OpAppend, protocol.OpAppendQ:
		return rAppend
	case protocol.OpPrepend, protocol.OpPrependQ:
		return rPrepend
	case protocol.OpDelete, protocol.OpDeleteQ:
		return rDelete
	case protocol.OpIncrement, protocol.OpIncrQ:
		return rIncr
	case protocol.OpDecrement, protocol.OpDecrQ:
		return rDecr
	case protocol.OpTouch:
		return rTouch
	}
	return rOther
}
