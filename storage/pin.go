package storage

import "sync"

// Pinned values. A reply of a chained item's value can be written from
// the item's own chunks instead of from a copy, as memcached writes from
// an item whose refcount it holds: Item.Pin and MetaEntry.Pin return a
// Pinned, and until its Release the chunks stay as they are. An item
// unlinked meanwhile (deleted, replaced, expired, flushed) leaves the
// index and its LRU at once, but its chunks are freed by the last
// Release; eviction and page moves pass over a pinned item (counted as
// lrutail_reflocked at the LRU tail, as memcached counts an item with
// references), as they pass over an item being stored. The chunks of a
// pinned item, linked or not, stay counted in their classes, so that
// what pinned replies hold is within the memory limit.
//
// Only chained items are pinned: a value up to SlabChunkMax costs a
// reply no more than a copy of one chunk.

// pins counts the Pinned references to chained items, by the ref of
// their header chunk. It is safe for concurrent use; mu is taken after
// any other lock and nothing is locked while it is held.
type pins struct {
	mu sync.Mutex // guards m
	m  map[itemRef]*pin
}

// pin is the state of one pinned item.
type pin struct {
	n    int  // Pinned references not yet released
	dead bool // unlinked: the last Release frees the chunks
}

// add counts one more reference to the chained item at ref.
func (p *pins) add(ref itemRef) {
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[itemRef]*pin)
	}
	e := p.m[ref]
	if e == nil {
		e = &pin{}
		p.m[ref] = e
	}
	e.n++
	p.mu.Unlock()
}

// pinned reports whether the item at ref is pinned.
func (p *pins) pinned(ref itemRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[ref] != nil
}

// deferFree reports whether the chained item at ref, unlinked, is pinned;
// it is then marked to be freed by its last Release.
func (p *pins) deferFree(ref itemRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[ref]
	if e == nil {
		return false
	}
	e.dead = true
	return true
}

// release drops one reference and reports whether the item is now to be
// freed.
func (p *pins) release(ref itemRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[ref]
	if e.n--; e.n > 0 {
		return false
	}
	delete(p.m, ref)
	return e.dead
}

// count returns how many items are pinned.
func (p *pins) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// Pinned is a reference to the value of a chained item that keeps its
// chunks from being freed or reused, and reads it piece by piece from a
// cursor (see the comment at the top of pin.go). The zero value holds
// nothing. A Pinned is not safe for concurrent use; the item it pins may
// be changed or removed concurrently without harm to it.
type Pinned struct {
	c     *Cache
	owner itemRef // the item's header chunk
	cur   itemRef // the body chunk the cursor is in
	off   int     // the cursor's offset in cur's data
	left  int     // bytes from the cursor to the end
}

// pinChain pins the chained item at ref, whose chain starts at first,
// for reading n bytes from its start; the caller holds its stripe lock.
func (c *Cache) pinChain(ref, first itemRef, n int) Pinned {
	c.pins.add(ref)
	return Pinned{c: c, owner: ref, cur: first, left: n}
}

// Pin returns a Pinned reference to the item's value, followed by
// memcached's "\r\n" when crlf is set, and true; or false, pinning
// nothing, when the value is not stored in pieces (see Pieces) and is
// to be copied. It is to be called from the callback of Get.
func (it *Item) Pin(crlf bool) (Pinned, bool) {
	if it.cache == nil {
		return Pinned{}, false
	}
	n := it.n
	if crlf {
		n += 2
	}
	return it.cache.pinChain(it.ref, it.chain, n), true
}

// Pin is Item.Pin for a meta operation's entry.
func (e *MetaEntry) Pin(crlf bool) (Pinned, bool) {
	b := e.h.bits.Load()
	if b&bitChained == 0 || e.detached {
		return Pinned{}, false
	}
	n := int(e.h.nbytes)
	if crlf {
		n += 2
	}
	return e.c.pinChain(e.ref, e.c.chainFirst(e.ref, b), n), true
}

// Len returns how many bytes are left to read; 0 once all are read, and
// for the zero value.
func (p *Pinned) Len() int { return p.left }

// Next returns the bytes at the cursor, to the end of the chunk they are
// in: at most Len bytes, none when Len is 0. They point into slab memory
// and are valid until Release.
func (p *Pinned) Next() []byte {
	for p.left > 0 {
		ch := p.c.chunk(p.cur)
		if p.off < int(ch.used) {
			d := p.c.chunkData(p.cur, ch)[p.off:ch.used]
			return d[:min(len(d), p.left)]
		}
		p.cur, p.off = itemRef(ch.next), 0
	}
	return nil
}

// Skip moves the cursor n bytes on, at most to the end of what Next
// returned.
func (p *Pinned) Skip(n int) {
	p.off += n
	p.left -= n
}

// Release gives the reference back, freeing the item's chunks if it was
// the last reference to an item that is no longer linked, and leaves p
// holding nothing. Releasing the zero value does nothing. The Cache must
// not be closed before its Pinned references are released.
func (p *Pinned) Release() {
	c := p.c
	if c == nil {
		return
	}
	owner := p.owner
	*p = Pinned{}
	if !c.pins.release(owner) {
		return
	}
	l := &c.classes[c.largest]
	l.mu.Lock()
	c.freeChainLocked(l, [2]*class{}, owner, c.hdr(owner), 0)
	l.mu.Unlock()
}

// PinnedItems returns how many items are pinned by Pinned references not
// yet released. It is safe for concurrent use.
func (c *Cache) PinnedItems() int { return c.pins.count() }
