package storage

import (
	"sync/atomic"
	"unsafe"
)

// An item lives in one chunk of a slab page: a fixed header, the key, then
// the value (without memcached's trailing "\r\n"). The header is read and
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
//
// The header is 40 bytes, or 32 when CAS is disabled.

// itemHeader is an item's header, read and written in place in its page.
type itemHeader struct {
	hnext   uint32
	prev    uint32
	next    uint32
	atime   atomic.Uint32
	bits    atomic.Uint32
	exptime uint32
	flags   uint32
	nbytes  uint32
	cas     uint64 // only valid when Cache.useCAS
}

const (
	headerSize      = 40
	headerSizeNoCAS = 32
)

// The layout above, checked at compile time.
var (
	_ [unsafe.Sizeof(itemHeader{}) - headerSize]struct{}
	_ [headerSize - unsafe.Sizeof(itemHeader{})]struct{}
	_ [unsafe.Offsetof(itemHeader{}.cas) - headerSizeNoCAS]struct{}
	_ [headerSizeNoCAS - unsafe.Offsetof(itemHeader{}.cas)]struct{}
)

// Item bits. The low byte holds flags and the LRU id, then the class id and
// the key length; class id and key length do not change while a chunk is
// allocated. Bits 6, 7 and 24 hold the meta protocol's flags (meta.go).
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

// Refs address chunks: the page id above refPageShift, the offset in the
// page in 8-byte units below it. Ref 0 is nil (page id 0 is never used).
// With 15 bits of page id the cache addresses MaxPages pages of
// SlabPageSize bytes: 32 GiB minus one page.
const (
	refPageShift = 17
	refOffMask   = 1<<refPageShift - 1
	// MaxPages is the number of slab pages the cache can address.
	MaxPages = 1<<(32-refPageShift) - 1
)

// makeRef returns the ref of the chunk at byte offset off of a page.
func makeRef(page uint32, off int) uint32 {
	return page<<refPageShift | uint32(off>>3)
}

// hdr returns the header of the chunk at ref.
func (c *Cache) hdr(ref uint32) *itemHeader {
	p := c.pages[ref>>refPageShift]
	return (*itemHeader)(unsafe.Pointer(&p[(ref&refOffMask)<<3]))
}

// itemKey returns the key of the item at ref; nkey comes from its bits.
func (c *Cache) itemKey(ref uint32, bits uint32) []byte {
	p := c.pages[ref>>refPageShift]
	off := int(ref&refOffMask)<<3 + int(c.hdrSize)
	return p[off : off+int(uint8(bits>>nkeyShift)) : off+int(uint8(bits>>nkeyShift))]
}

// itemValue returns the value of the item at ref.
func (c *Cache) itemValue(ref uint32, h *itemHeader, bits uint32) []byte {
	p := c.pages[ref>>refPageShift]
	off := int(ref&refOffMask)<<3 + int(c.hdrSize) + int(uint8(bits>>nkeyShift))
	n := int(h.nbytes)
	return p[off : off+n : off+n]
}

// itemTail returns the bytes of the chunk after the key, up to the end of
// the chunk (the room the value may use).
func (c *Cache) itemTail(ref uint32, bits uint32, chunk int) []byte {
	p := c.pages[ref>>refPageShift]
	start := int(ref&refOffMask) << 3
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

// itemSize is the bytes an item occupies in its chunk (memcached's
// ITEM_ntotal, with corvid's header).
func (c *Cache) itemSize(h *itemHeader, bits uint32) uint64 {
	return uint64(c.hdrSize) + uint64(bitsNKey(bits)) + uint64(h.nbytes)
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
