package storage

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Chained items. An item whose size as memcached counts it (mcItemSize)
// is over SlabChunkMax is stored as memcached 1.4.29+ stores it: a header
// chunk plus a chain of body chunks, so that it takes about its own size
// of memory whatever -I is.
//
// The header chunk is an ordinary item header (bitChained set) followed
// by the key and a 9-byte chain descriptor: the ref of the first body
// chunk (8 bytes, little-endian) and the class the header chunk was taken
// from. The header chunk comes from the smallest class that holds
// memcached's chunked header (its item, key, flags, CAS and item_chunk),
// but the item is in every other respect an item of the largest class, as
// in memcached: its class bits name the largest class, it is on that
// class's LRU lists, counted in its "stats items" and mem_requested (with
// its whole size), and evicted from its COLD tail when that class needs
// memory.
//
// A body chunk (bitChunk set) starts with a chunkHeader: the ref of the
// item owning it, its capacity, how much of it is used, and the next body
// chunk. Its bits sit where an item's do, so that code walking a page
// tells items, body chunks and free chunks apart. Body chunks hold the
// value followed by memcached's "\r\n" and are sized as memcached sizes
// them (do_item_alloc_chunk): slab_chunk_max less memcached's item_chunk
// header, from the largest class, except the last, which takes the
// smallest class that fits what is left. A chain therefore uses the same
// chunks of the same classes as memcached's for the same value, and
// "stats slabs" shows the same used_chunks.
//
// Locks: the chain is written by the goroutine storing the item before it
// is linked, and read or freed only under the item's stripe lock or while
// it is being unlinked, so it needs no lock of its own. Freeing a chained
// item needs the largest class's lock (its LRU) and then, blocking, the
// locks of the classes of its header and tail chunks. This is the one
// place where a goroutine holding a class lock waits for another: it is
// always the holder of the largest class's lock that waits for a smaller
// class's, and code holding a smaller class's lock only tries the largest
// one's, so there is no cycle (see doc.go).

const (
	bitChained = 1 << 25 // the header of a chained item
	bitChunk   = 1 << 26 // a body chunk of a chained item

	// mcChunkHeader is sizeof(item_chunk) in memcached 1.6 on 64-bit
	// platforms: the chunk sizes of a chain are computed from it.
	mcChunkHeader = 48
	// chainDescSize is the size of the chain descriptor after the key.
	chainDescSize = 9
	// chunkDataOff is where a body chunk's data starts.
	chunkDataOff = 32
)

// chunkHeader is the header of a body chunk, read and written in place.
type chunkHeader struct {
	owner uint64 // ref of the header chunk of the owning item
	size  uint32 // capacity in bytes (memcached's chunk size)
	_     uint32
	bits  atomic.Uint32 // at the offset of itemHeader.bits
	used  uint32        // bytes of data
	next  uint64        // ref of the next body chunk, 0 for the last
}

var (
	_ [unsafe.Offsetof(chunkHeader{}.bits) - unsafe.Offsetof(itemHeader{}.bits)]struct{}
	_ [unsafe.Offsetof(itemHeader{}.bits) - unsafe.Offsetof(chunkHeader{}.bits)]struct{}
	_ [unsafe.Sizeof(chunkHeader{}) - chunkDataOff]struct{}
	_ [chunkDataOff - unsafe.Sizeof(chunkHeader{})]struct{}
)

var crlf = []byte("\r\n")

// chunk returns the body chunk header at r.
func (c *Cache) chunk(r itemRef) *chunkHeader {
	p := c.pages[r>>refPageShift]
	return (*chunkHeader)(unsafe.Pointer(&p[(r&refOffMask)<<3]))
}

// chunkData returns the data area of the body chunk at r, of length its
// capacity.
func (c *Cache) chunkData(r itemRef, ch *chunkHeader) []byte {
	p := c.pages[r>>refPageShift]
	off := int(r&refOffMask)<<3 + chunkDataOff
	return p[off : off+int(ch.size) : off+int(ch.size)]
}

// chainDesc returns the chain descriptor of the chained item at r.
func (c *Cache) chainDesc(r itemRef, b uint32) []byte {
	p := c.pages[r>>refPageShift]
	off := int(r&refOffMask)<<3 + int(c.hdrSize) + bitsNKey(b)
	return p[off : off+chainDescSize : off+chainDescSize]
}

// chainFirst returns the first body chunk of the chained item at r.
func (c *Cache) chainFirst(r itemRef, b uint32) itemRef {
	return itemRef(binary.LittleEndian.Uint64(c.chainDesc(r, b)))
}

// chainHdrClass returns the class the header chunk of the chained item at
// r was taken from.
func (c *Cache) chainHdrClass(r itemRef, b uint32) int {
	return int(c.chainDesc(r, b)[8])
}

// chained reports whether an item of these sizes is stored as a chain.
func (c *Cache) chained(nkey, nbytes int, flags uint32) bool {
	return c.mcItemSize(nkey, nbytes, flags) > int64(c.cfg.SlabChunkMax)
}

// headerClass is the class of a chained item's header chunk, as
// memcached's do_item_alloc picks it.
func (c *Cache) headerClass(nkey int, flags uint32) int {
	n := mcItemHeader + nkey + 1 + mcChunkHeader
	if flags != 0 {
		n += 4
	}
	if c.useCAS {
		n += 8
	}
	return c.classFor(uint64(n))
}

// chainWriter fills the body chunks of an in-flight chained item.
type chainWriter struct {
	c       *Cache
	owner   itemRef
	last    itemRef // 0 until the first chunk
	space   []byte  // the unused rest of the last chunk
	now     uint32
	noEvict bool // take only free memory (takeLocked)
}

// takeLocked is allocLocked, or with noEvict only a free chunk or a new
// page, never evicting or reclaiming (ErrNoMemory when there is none).
func (c *Cache) takeLocked(cl *class, now uint32, noEvict bool) (itemRef, error) {
	if !noEvict {
		return c.allocLocked(cl, now)
	}
	if c.closed {
		return 0, ErrClosed
	}
	if ref := c.slabAllocLocked(cl); ref != 0 {
		return ref, nil
	}
	return 0, ErrNoMemory
}

// newChained allocates the header chunk of a chained item, with no body
// chunks yet: it is in flight, counted in the largest class.
func (c *Cache) newChained(key []byte, nbytes int, flags, exp, now uint32) (itemRef, *itemHeader, error) {
	return c.newChainedFrom(key, nbytes, flags, exp, now, false)
}

// newChainedFrom is newChained; with noEvict it takes only free memory
// (takeLocked).
func (c *Cache) newChainedFrom(key []byte, nbytes int, flags, exp, now uint32, noEvict bool) (itemRef, *itemHeader, error) {
	hc := c.headerClass(len(key), flags)
	cl := &c.classes[hc]
	cl.mu.Lock()
	ref, err := c.takeLocked(cl, now, noEvict)
	if err != nil {
		cl.mu.Unlock()
		return 0, nil, err
	}
	h := c.hdr(ref)
	b := uint32(c.largest)<<clsShift | uint32(len(key))<<nkeyShift | bitChained
	h.bits.Store(b)
	h.nbytes = uint32(nbytes)
	cl.mu.Unlock()
	h.exptime, h.flags = exp, flags
	copy(c.itemKey(ref, b), key)
	d := c.chainDesc(ref, b)
	binary.LittleEndian.PutUint64(d, 0)
	d[8] = uint8(hc)
	return ref, h, nil
}

// grow adds a body chunk sized for remain more bytes, as memcached's
// do_item_alloc_chunk: slab_chunk_max at most, else the smallest class
// that fits (falling back to a slab_chunk_max chunk when that class has
// no memory).
func (w *chainWriter) grow(remain int) error {
	c := w.c
	size := remain + mcChunkHeader
	max := c.cfg.SlabChunkMax
	if size > max {
		size = max
	}
	ref, err := c.allocChunk(c.classFor(uint64(size)), w.owner, size-mcChunkHeader, w.now, w.noEvict)
	if err == ErrNoMemory && size != max {
		size = max
		ref, err = c.allocChunk(c.largest, w.owner, size-mcChunkHeader, w.now, w.noEvict)
	}
	if err != nil {
		return err
	}
	if w.last == 0 {
		b := c.hdr(w.owner).bits.Load()
		binary.LittleEndian.PutUint64(c.chainDesc(w.owner, b), uint64(ref))
	} else {
		c.chunk(w.last).next = uint64(ref)
	}
	w.last = ref
	w.space = c.chunkData(ref, c.chunk(ref))
	return nil
}

// put copies p into the last chunk; the caller made room.
func (w *chainWriter) put(p []byte) int {
	n := copy(w.space, p)
	w.space = w.space[n:]
	w.c.chunk(w.last).used += uint32(n)
	return n
}

// write appends p, which after more bytes of the same copy follow, to
// the chain, adding chunks as they fill up, as memcached reads a value
// into a chained item (read_into_chunked_item).
func (w *chainWriter) write(p []byte, after int) error {
	for len(p) > 0 {
		if len(w.space) == 0 {
			if err := w.grow(len(p) + after); err != nil {
				return err
			}
		}
		p = p[w.put(p):]
	}
	return nil
}

// copyIn is write as memcached copies values into a chain for append and
// prepend (_store_item_copy_chunks): a chunk that fills up is followed at
// once by the next, even when nothing is left to copy.
func (w *chainWriter) copyIn(p []byte, after int) error {
	if len(p) == 0 {
		return nil
	}
	if len(w.space) == 0 {
		if err := w.grow(len(p) + after); err != nil {
			return err
		}
	}
	for len(p) > 0 {
		p = p[w.put(p):]
		if len(w.space) == 0 {
			if err := w.grow(len(p) + after); err != nil {
				return err
			}
		}
	}
	return nil
}

// allocChunk allocates a body chunk of class cls with the given capacity
// for the item owner (see takeLocked for noEvict).
func (c *Cache) allocChunk(cls int, owner itemRef, size int, now uint32, noEvict bool) (itemRef, error) {
	cl := &c.classes[cls]
	cl.mu.Lock()
	ref, err := c.takeLocked(cl, now, noEvict)
	if err != nil {
		cl.mu.Unlock()
		return 0, err
	}
	ch := c.chunk(ref)
	ch.bits.Store(bitChunk | uint32(cls)<<clsShift)
	ch.owner, ch.size, ch.used, ch.next = uint64(owner), uint32(size), 0, 0
	cl.mu.Unlock()
	return ref, nil
}

// newChainedItem allocates a chained item holding key and value.
func (c *Cache) newChainedItem(key, value []byte, flags, exp, now uint32) (itemRef, *itemHeader, error) {
	ref, h, err := c.newChained(key, len(value), flags, exp, now)
	if err != nil {
		return 0, nil, err
	}
	w := chainWriter{c: c, owner: ref, now: now}
	err = w.write(value, len(crlf))
	if err == nil {
		err = w.write(crlf, 0)
	}
	if err != nil {
		c.freeInflight(ref)
		if err == ErrNoMemory {
			// The header chunk was found: memcached, reading the value
			// into the chain, fails here.
			err = ErrNoMemoryRead
		}
		return 0, nil, err
	}
	return ref, h, nil
}

// appendChain appends the n-byte value held in the chain from first to
// dst.
func (c *Cache) appendChain(dst []byte, first itemRef, n int) []byte {
	for r := first; r != 0 && n > 0; {
		ch := c.chunk(r)
		d := c.chunkData(r, ch)[:min(int(ch.used), n)]
		dst = append(dst, d...)
		n -= len(d)
		r = itemRef(ch.next)
	}
	return dst
}

// firstPiece returns the first non-empty piece of a chain's n-byte value.
func (c *Cache) firstPiece(first itemRef, n int) []byte {
	for r := first; r != 0; r = itemRef(c.chunk(r).next) {
		ch := c.chunk(r)
		if ch.used > 0 {
			return c.chunkData(r, ch)[:min(int(ch.used), n)]
		}
	}
	return nil
}

// pieces calls fn with each non-empty piece of the n-byte value held in
// the chain from first.
func (c *Cache) pieces(first itemRef, n int, fn func([]byte)) {
	for r := first; r != 0 && n > 0; {
		ch := c.chunk(r)
		if d := c.chunkData(r, ch)[:min(int(ch.used), n)]; len(d) > 0 {
			fn(d)
			n -= len(d)
		}
		r = itemRef(ch.next)
	}
}

// lockFor takes cl's lock unless cl is l or in held (the caller holds
// those) and reports whether it took it.
func lockFor(cl, l *class, held [2]*class) bool {
	if cl == l || cl == held[0] || cl == held[1] {
		return false
	}
	cl.mu.Lock()
	return true
}

// freeChainLocked returns the chunks of the chained item at ref, unlinked
// or never linked, to their classes: the header chunk to the class it was
// taken from, the body chunks to theirs. The caller holds l, the largest
// class's lock, and those of the classes in held (nil or not); the other
// classes' locks are taken here. Chunks in page skip (0 for none) are
// marked free but left off the free lists: the caller is emptying that
// page and holds its class's lock. A pinned item is left to the last
// Release of its Pinned references (pin.go); a page being emptied holds
// none (clearChainedLocked).
func (c *Cache) freeChainLocked(l *class, held [2]*class, ref itemRef, h *itemHeader, skip uint32) {
	if skip == 0 && c.pins.deferFree(ref) {
		return
	}
	b := h.bits.Load()
	first := c.chainFirst(ref, b)
	hc := &c.classes[c.chainHdrClass(ref, b)]
	c.freeChunkTo(hc, l, held, ref, h, skip)
	for r := first; r != 0; {
		ch := c.chunk(r)
		next := itemRef(ch.next)
		cl := &c.classes[bitsClass(ch.bits.Load())]
		c.freeChunkTo(cl, l, held, r, c.hdr(r), skip)
		r = next
	}
}

// freeChunkTo returns one chunk of a chain to class cl (see
// freeChainLocked).
func (c *Cache) freeChunkTo(cl, l *class, held [2]*class, ref itemRef, h *itemHeader, skip uint32) {
	if ref.pageID() == skip {
		h.bits.Store(bitSlabbed | uint32(cl.id)<<clsShift)
		return
	}
	locked := lockFor(cl, l, held)
	c.pushFreeLocked(cl, ref, h)
	if locked {
		cl.mu.Unlock()
	}
}

// AppendValue appends the item's whole value to dst and returns the
// result: Value, or for a value stored in pieces (see Pieces), every
// piece in order.
func (it *Item) AppendValue(dst []byte) []byte {
	if it.cache == nil {
		return append(dst, it.Value...)
	}
	return it.cache.appendChain(dst, it.chain, it.n)
}

// Len returns the length of the item's value.
func (it *Item) Len() int {
	if it.cache == nil {
		return len(it.Value)
	}
	return it.n
}

// Pieces calls fn with the pieces of the item's value in order: Value
// alone, unless the item is larger than SlabChunkMax, whose value is
// stored in several chunks (Value is then the first piece). The pieces
// point into slab memory, valid only during the callback of Get.
func (it *Item) Pieces(fn func([]byte)) {
	if it.cache == nil {
		fn(it.Value)
		return
	}
	it.cache.pieces(it.chain, it.n, fn)
}

// concatChained allocates the chained item for an append or prepend of
// value to the linked item old (chained or not), whose combined value is n
// bytes, copying as memcached's _store_item_copy_data does. The caller
// holds the key's stripe lock.
func (c *Cache) concatChained(mode StoreMode, key []byte, value newValue, old itemRef, oh *itemHeader, n int, now uint32) (itemRef, *itemHeader, error) {
	ref, h, err := c.newChained(key, n, oh.flags, oh.exptime, now)
	if err != nil {
		return 0, nil, err
	}
	w := chainWriter{c: c, owner: ref, now: now}
	ob := oh.bits.Load()
	copyOld := func(after int) error {
		if ob&bitChained == 0 {
			if err := w.copyIn(c.itemValue(old, oh, ob), after); err != nil {
				return err
			}
		} else {
			left := int(oh.nbytes)
			for r := c.chainFirst(old, ob); r != 0 && left > 0; {
				ch := c.chunk(r)
				d := c.chunkData(r, ch)[:min(int(ch.used), left)]
				left -= len(d)
				if err := w.copyIn(d, left+after); err != nil {
					return err
				}
				r = itemRef(ch.next)
			}
		}
		return w.copyIn(crlf[:after], 0)
	}
	if mode == ModeAppend {
		err = copyOld(0)
		if err == nil {
			err = value.copyIn(c, &w, len(crlf))
		}
		if err == nil {
			err = w.copyIn(crlf, 0)
		}
	} else {
		err = value.copyIn(c, &w, 0)
		if err == nil {
			err = copyOld(len(crlf))
		}
	}
	if err != nil {
		c.freeInflight(ref)
		return 0, nil, err
	}
	return ref, h, nil
}

// newValue is the value an append or prepend adds: n bytes, held in b or,
// for a value read into an item of its own (Incoming), in the chain from
// first, copied from there as memcached copies the item it read the value
// into.
type newValue struct {
	b     []byte
	first itemRef
	n     int
}

// copyIn copies the value into a chain as chainWriter.copyIn does.
func (v newValue) copyIn(c *Cache, w *chainWriter, after int) error {
	if v.first == 0 {
		return w.copyIn(v.b, after)
	}
	left := v.n
	var err error
	c.pieces(v.first, v.n, func(d []byte) {
		left -= len(d)
		if err == nil {
			err = w.copyIn(d, left+after)
		}
	})
	return err
}

// copyTo copies the value to dst and returns how many bytes it copied.
func (v newValue) copyTo(c *Cache, dst []byte) int {
	if v.first == 0 {
		return copy(dst, v.b)
	}
	n := 0
	c.pieces(v.first, v.n, func(d []byte) { n += copy(dst[n:], d) })
	return n
}

// unlinkChainedLocked unlinks and frees the linked chained item at ref for
// code walking the pages of class v, which may not be the item's class
// (the largest): the caller holds v.mu, the largest class's lock and the
// item's stripe lock.
func (c *Cache) unlinkChainedLocked(s *stripe, v *class, ref itemRef, h *itemHeader, hv uint64) {
	l := &c.classes[bitsClass(h.bits.Load())]
	c.hashRemoveLocked(s, ref, h, hv)
	c.lruUnlinkLocked(l, ref, h)
	h.bits.And(^uint32(bitLinked))
	c.items.Add(-1)
	c.freeChainLocked(l, [2]*class{v}, ref, h, 0)
}

// clearChainedLocked empties, for clearPageLocked emptying page id of
// class v, the chunk at ref of a chained item: its header chunk (body
// false) or a body chunk (body true). As memcached's page mover does, a
// live item's chunk is rescued into a free chunk of v outside the page
// (counted as slab_reassign_rescues for a header chunk,
// slab_reassign_chunk_rescues for a body chunk); when v has none free, or
// with evict (a slab eviction policy), the item is evicted and counted as
// clearPageLocked counts evictions, and an expired or flushed one is
// freed. The caller holds v.mu and, when not nil, dst.mu; the largest
// class's lock and the item's stripe lock are only tried. It reports
// false when one of them is busy or the item is still being stored.
//
// Readers of a chain hold the item's stripe lock (Get's callback, meta,
// append), and a chain is freed only under the largest class's lock, so
// with both held the chunk can be copied and relinked without a reader
// ever seeing it half moved or freed.
func (c *Cache) clearChainedLocked(v, dst *class, ref itemRef, body bool, id uint32, now uint32, evict bool) bool {
	l := &c.classes[c.largest]
	if l != v && l != dst {
		if !l.mu.TryLock() {
			return false
		}
		defer l.mu.Unlock()
	}
	owner := ref
	if body {
		owner = itemRef(c.chunk(ref).owner)
	}
	h := c.hdr(owner)
	b := h.bits.Load()
	if b&bitLinked == 0 || b&bitChained == 0 {
		return false // in flight, or unlinked and pinned
	}
	hv := c.hashKey(c.itemKey(owner, b))
	s := c.stripeFor(hv)
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	if c.pins.pinned(owner) {
		// A reply is being written from it (pin.go): it is neither moved
		// nor freed. Pins are taken under the stripe lock, so none can
		// be taken from here on; the page waits for the release.
		return false
	}
	live := !isExpired(h, now) && !c.isFlushed(h, now)
	if live && !evict {
		if to := c.takeFreeLocked(v); to != 0 {
			if !body {
				c.moveItemLocked(s, v, l, owner, to, hv, int(c.hdrSize)+bitsNKey(b)+chainDescSize)
				for r := c.chainFirst(to, b); r != 0; r = itemRef(c.chunk(r).next) {
					c.chunk(r).owner = uint64(to)
				}
				c.slabRescues.Add(1)
				return true
			}
			if c.moveChunkLocked(v, owner, b, ref, to) {
				c.chunkRescues.Add(1)
				return true
			}
			c.pushFreeLocked(v, to, c.hdr(to))
			return false
		}
	}
	if live {
		if evict {
			c.countEvictionLocked(l, h, b, now)
		} else {
			c.slabEvictions.Add(1)
		}
	}
	c.hashRemoveLocked(s, owner, h, hv)
	c.lruUnlinkLocked(l, owner, h)
	h.bits.And(^uint32(bitLinked))
	c.items.Add(-1)
	c.freeChainLocked(l, [2]*class{v, dst}, owner, h, id)
	return true
}

// moveChunkLocked copies the body chunk from, of class v, of the chained
// item at owner (whose bits are b) into the in-flight chunk to of the same
// class and puts it in from's place in the chain; from is left marked
// free. It reports false, changing nothing, when from is not on the
// owner's chain. The caller holds v.mu, the largest class's lock and the
// owner's stripe lock.
func (c *Cache) moveChunkLocked(v *class, owner itemRef, b uint32, from, to itemRef) bool {
	var prev itemRef // the chunk before from, 0 for the header
	r := c.chainFirst(owner, b)
	for r != 0 && r != from {
		prev, r = r, itemRef(c.chunk(r).next)
	}
	if r == 0 {
		return false
	}
	och, nch := c.chunk(from), c.chunk(to)
	nch.owner, nch.size, nch.used, nch.next = och.owner, och.size, och.used, och.next
	copy(c.chunkData(to, nch)[:och.used], c.chunkData(from, och)[:och.used])
	nch.bits.Store(och.bits.Load())
	if prev == 0 {
		binary.LittleEndian.PutUint64(c.chainDesc(owner, b), uint64(to))
	} else {
		c.chunk(prev).next = uint64(to)
	}
	och.bits.Store(bitSlabbed | uint32(v.id)<<clsShift)
	return true
}
