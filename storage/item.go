package storage

import (
	"sync/atomic"
	"unsafe"
)

// An item lives in one chunk of a slab page: a fixed header, the key, then
// the value (without memcached's trailing "\r\n"); an item larger than
// slab_chunk_max has the same header and key, then a chain descriptor,
// and its value in other chunks (chain.go). The header is read and
// written in place through an itemHeader pointer into the page, in native
// byte order (little-endian on amd64 and arm64), 8-byte aligned because
// every chunk size is a multiple of 8 and pages are page-aligned.
//
//	offset size field    guarded by
//	0      4    hnext    stripe lock: next item in the hash chain
//	4      4    prev     class lock: LRU (or free list) previous
//	8      4    next     class lock: LRU (or free list) next
//	12     4    atime    atomic: memcached's it->time (rel seconds)
//	16     4    bits     atomic: flag bits, LRU, class id, key length
//	20     4    exptime  stripe lock: rel expiry, 0 = never
//	24     4    flags    stripe lock: client flags
//	28     4    nbytes   stripe and class lock: value length
//	32     8    cas      stripe lock: CAS unique (absent with DisableCAS)
//	40     2    hnextHi  stripe lock: bits 32-47 of hnext (wide refs only)
//	42     2    prevHi   class lock: bits 32-47 of prev (wide refs only)
//	44     2    nextHi   class lock: bits 32-47 of next (wide refs only)
//	46     2    (unused)
//
// The header is 40 bytes, or 32 when CAS is disabled. A cache whose memory
// limit is beyond what 32-bit refs address (Cache.wide) uses 48-bit refs,
// whose high 16 bits sit after the CAS field: its header is 48 bytes, with
// or without CAS. Only such a cache reads or writes the high halves; in
// the others those bytes are the key's.

// itemHeader is an item's header, read and written in place in its page.
// The links are read and written through Cache.hnext, setHnext and their
// siblings, which know whether the high halves exist.
type itemHeader struct {
	hnextLo uint32
	prevLo  uint32
	nextLo  uint32
	atime   atomic.Uint32
	bits    atomic.Uint32
	exptime uint32
	flags   uint32
	nbytes  uint32
	cas     uint64 // only valid when Cache.useCAS
	hnextHi uint16 // only present when Cache.wide
	prevHi  uint16
	nextHi  uint16
	_       uint16
}

const (
	headerSize      = 40
	headerSizeNoCAS = 32
	headerSizeWide  = 48
)

// The layout above, checked at compile time.
var (
	_ [unsafe.Sizeof(itemHeader{}) - headerSizeWide]struct{}
	_ [headerSizeWide - unsafe.Sizeof(itemHeader{})]struct{}
	_ [unsafe.Offsetof(itemHeader{}.hnextHi) - headerSize]struct{}
	_ [headerSize - unsafe.Offsetof(itemHeader{}.hnextHi)]struct{}
	_ [unsafe.Offsetof(itemHeader{}.cas) - headerSizeNoCAS]struct{}
	_ [headerSizeNoCAS - unsafe.Offsetof(itemHeader{}.cas)]struct{}
)

// hnext returns the next item on h's hash chain.
func (c *Cache) hnext(h *itemHeader) itemRef {
	r := itemRef(h.hnextLo)
	if c.wide {
		r |= itemRef(h.hnextHi) << 32
	}
	return r
}

// setHnext sets the next item on h's hash chain.
func (c *Cache) setHnext(h *itemHeader, r itemRef) {
	h.hnextLo = uint32(r)
	if c.wide {
		h.hnextHi = uint16(r >> 32)
	}
}

// prev returns the previous item on h's LRU or free list.
func (c *Cache) prev(h *itemHeader) itemRef {
	r := itemRef(h.prevLo)
	if c.wide {
		r |= itemRef(h.prevHi) << 32
	}
	return r
}

// setPrev sets the previous item on h's LRU or free list.
func (c *Cache) setPrev(h *itemHeader, r itemRef) {
	h.prevLo = uint32(r)
	if c.wide {
		h.prevHi = uint16(r >> 32)
	}
}

// next returns the next item on h's LRU or free list.
func (c *Cache) next(h *itemHeader) itemRef {
	r := itemRef(h.nextLo)
	if c.wide {
		r |= itemRef(h.nextHi) << 32
	}
	return r
}

// setNext sets the next item on h's LRU or free list.
func (c *Cache) setNext(h *itemHeader, r itemRef) {
	h.nextLo = uint32(r)
	if c.wide {
		h.nextHi = uint16(r >> 32)
	}
}

// Item bits. The low byte holds flags and the LRU id, then the class id and
// the key length; class id and key length do not change while a chunk is
// allocated. Bits 6, 7 and 24 hold the meta protocol's flags (meta.go),
// bits 25 and 26 mark chained items and their body chunks (chain.go).
const (
	bitLinked  = 1 << 0 // in the hash index and an LRU list
	bitSlabbed = 1 << 1 // free: on its class's free list
	bitFetched = 1 << 2 // fetched at least once
	bitActive  = 1 << 3 // fetched again since it last moved in the LRU

	lruShift = 4
	lruMask  = 3 << lruShift

	clsShift  = 8
	nkeyShift = 16
)

// LRU ids, as memcached's segmented LRU.
const (
	lruHot = iota
	lruWarm
	lruCold
	lruTemp
	numLRU
)

// An itemRef (a ref) addresses a chunk: the page id above refPageShift, the offset in
// the page in 8-byte units below it. Ref 0 is nil (page id 0 is never
// used). A cache whose limit is at most MaxNarrowLimit stores refs in 32
// bits (15 bits of page id: MaxNarrowPages pages); a larger one, up to
// MaxMemoryLimit, stores them in 48 bits, in a wider header (item.go) and
// a hash index of two words per bucket (hash.go).
type itemRef uint64

const (
	refPageShift = 17
	refOffMask   = 1<<refPageShift - 1
	// MaxNarrowPages is the number of slab pages 32-bit refs address.
	MaxNarrowPages = 1<<(32-refPageShift) - 1
	// MaxPages is the number of slab pages the cache can address.
	MaxPages = 1<<22 - 1
)

// makeRef returns the ref of the chunk at byte offset off of a page.
func makeRef(page uint32, off int) itemRef {
	return itemRef(page)<<refPageShift | itemRef(off>>3)
}

// pageID returns the id of the page r is in.
func (r itemRef) pageID() uint32 { return uint32(r >> refPageShift) }

// offset returns the byte offset of r in its page.
func (r itemRef) offset() int { return int(r&refOffMask) << 3 }

// hdr returns the header of the chunk at r.
func (c *Cache) hdr(r itemRef) *itemHeader {
	p := c.pages[r>>refPageShift]
	return (*itemHeader)(unsafe.Pointer(&p[(r&refOffMask)<<3]))
}

// itemKey returns the key of the item at r; nkey comes from its bits.
func (c *Cache) itemKey(r itemRef, bits uint32) []byte {
	p := c.pages[r>>refPageShift]
	off := int(r&refOffMask)<<3 + int(c.hdrSize)
	return p[off : off+int(uint8(bits>>nkeyShift)) : off+int(uint8(bits>>nkeyShift))]
}

// itemValue returns the value of the item at r.
func (c *Cache) itemValue(r itemRef, h *itemHeader, bits uint32) []byte {
	p := c.pages[r>>refPageShift]
	off := int(r&refOffMask)<<3 + int(c.hdrSize) + int(uint8(bits>>nkeyShift))
	n := int(h.nbytes)
	return p[off : off+n : off+n]
}

// itemTail returns the bytes of the chunk after the key, up to the end of
// the chunk (the room the value may use).
func (c *Cache) itemTail(r itemRef, bits uint32, chunk int) []byte {
	p := c.pages[r>>refPageShift]
	start := int(r&refOffMask) << 3
	return p[start+int(c.hdrSize)+int(uint8(bits>>nkeyShift)) : start+chunk]
}

// bitsClass, bitsLRU and bitsNKey decode an item's bits.
func bitsClass(b uint32) int { return int(uint8(b >> clsShift)) }
func bitsLRU(b uint32) int   { return int(b&lruMask) >> lruShift }
func bitsNKey(b uint32) int  { return int(uint8(b >> nkeyShift)) }

// setLRU records the LRU list an item is on. The caller holds the class
// lock; Get may set fetched/active bits concurrently, hence the CAS loop.
func setLRU(h *itemHeader, lru int) {
	for {
		old := h.bits.Load()
		nb := old&^lruMask | uint32(lru)<<lruShift
		if h.bits.CompareAndSwap(old, nb) {
			return
		}
	}
}

// itemSize is the bytes an item occupies in its chunk, with corvid's
// header.
func (c *Cache) itemSize(h *itemHeader, bits uint32) uint64 {
	return uint64(c.hdrSize) + uint64(bitsNKey(bits)) + uint64(h.nbytes)
}

// statSize is the size memcached counts for the item in "bytes" and
// mem_requested (its ITEM_ntotal: memcached's header, not corvid's), so
// that the same stores report the same figures. The item's key length,
// value length and flags must be set.
func (c *Cache) statSize(h *itemHeader, bits uint32) uint64 {
	return uint64(c.mcItemSize(bitsNKey(bits), int(h.nbytes), h.flags))
}

// getCAS returns the item's CAS unique, 0 when CAS is disabled.
func (c *Cache) getCAS(h *itemHeader) uint64 {
	if !c.useCAS {
		return 0
	}
	return h.cas
}

// isExpired reports memcached's do_item_get test: exptime reached.
func isExpired(h *itemHeader, now uint32) bool {
	return h.exptime != 0 && h.exptime <= now
}

// isFlushed reports whether flush_all has invalidated the item (memcached's
// item_is_flushed): its last access is not after oldest_live, or with an
// immediate flush, its CAS predates the flush.
func (c *Cache) isFlushed(h *itemHeader, now uint32) bool {
	ol := c.oldestLive.Load()
	if ol == 0 || ol > now {
		return false
	}
	if h.atime.Load() <= ol {
		return true
	}
	if c.useCAS {
		oc := c.oldestCAS.Load()
		return oc != 0 && h.cas != 0 && h.cas < oc
	}
	return false
}
