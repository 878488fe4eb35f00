package storage

import (
	"sync"
	"sync/atomic"
	"time"
)

// SlabPageSize is the size of a slab page, memcached's slab_page_size.
const SlabPageSize = 1 << 20

// KeyMaxLength is the longest key the cache stores, as memcached.
const KeyMaxLength = 250

const (
	// chunkAlign is memcached's CHUNK_ALIGN_BYTES.
	chunkAlign = 8
	// mcItemHeader is sizeof(item) in memcached 1.6 on 64-bit platforms.
	// The class table is computed from it, so that the chunk sizes are the
	// ones memcached prints, although corvid's own header is smaller.
	mcItemHeader = 48
	// maxClassID is the largest class id memcached can create
	// (MAX_NUMBER_OF_SLAB_CLASSES-1).
	maxClassID = 63
)

// lruList is one LRU list of a class: items linked through prev/next,
// head most recent.
type lruList struct {
	head, tail itemRef
	n          uint64 // items on the list
	bytes      uint64 // their statSize total (memcached's sizes_bytes)
}

// class is one slab class: its pages, free chunks and LRU lists.
type class struct {
	mu sync.Mutex // guards pages, free, nfree, lru and the prev/next/LRU bits of its chunks

	id      int // immutable
	size    int // chunk size; immutable
	perslab int // chunks per page; immutable

	pages []uint32 // ids of the pages owned
	free  itemRef  // free list head (doubly linked through prev/next)
	nfree int
	lru   [numLRU]lruList

	npages atomic.Int32 // len(pages), readable without mu

	// crawler position, guarded by mu.
	crawlPage, crawlChunk int

	cnt classCounters
}

// classCounters are the per-class counters of "stats slabs" and "stats
// items". They are atomics, updated without locks.
type classCounters struct {
	_ [64]byte // keep the counters off the cache line of class.mu

	hits                                                                  [numLRU]atomic.Uint64 // get hits by the LRU the item was on
	cmdSet, deleteHits, incrHits, decrHits, casHits, casBadval, touchHits atomic.Uint64

	evicted, evictedNonzero, evictedUnfetched, evictedActive, evictedTime atomic.Uint64
	outOfMemory, reclaimed, expiredUnfetched, crawlerReclaimed            atomic.Uint64
	crawlerItemsChecked, movesToCold, movesToWarm, movesWithinLRU         atomic.Uint64
	directReclaims, tailRepairs, lruTailReflocked                         atomic.Uint64
}

// reset zeroes the counters, as memcached's "stats reset".
func (k *classCounters) reset() {
	for i := range k.hits {
		k.hits[i].Store(0)
	}
	for _, p := range []*atomic.Uint64{
		&k.cmdSet, &k.deleteHits, &k.incrHits, &k.decrHits, &k.casHits, &k.casBadval, &k.touchHits,
		&k.evicted, &k.evictedNonzero, &k.evictedUnfetched, &k.evictedActive, &k.evictedTime,
		&k.outOfMemory, &k.reclaimed, &k.expiredUnfetched, &k.crawlerReclaimed,
		&k.crawlerItemsChecked, &k.movesToCold, &k.movesToWarm, &k.movesWithinLRU,
		&k.directReclaims, &k.tailRepairs, &k.lruTailReflocked,
	} {
		p.Store(0)
	}
}

// buildClasses computes memcached 1.6's slab class table (slabs_init):
// starting at its item header plus the minimum chunk, each class is the
// previous one times factor, 8-byte aligned, until slab_chunk_max/factor;
// or, given sizes (-o slab_sizes), one class per size, 8-byte aligned.
// The last class is slab_chunk_max. The result is indexed by class id
// (index 0 unused).
func buildClasses(chunkMin int, factor float64, chunkMax int, sizes []int) []ClassInfo {
	out := []ClassInfo{{}}
	size := uint32(mcItemHeader + chunkMin)
	i := 0
	for {
		i++
		if i >= maxClassID {
			break
		}
		if sizes != nil {
			if i > len(sizes) {
				break
			}
			size = uint32(sizes[i-1])
		} else if float64(size) >= float64(chunkMax)/factor {
			break
		}
		if size%chunkAlign != 0 {
			size += chunkAlign - size%chunkAlign
		}
		out = append(out, ClassInfo{ID: i, ChunkSize: int(size), ChunksPerPage: SlabPageSize / int(size)})
		size = uint32(float64(size) * factor)
	}
	return append(out, ClassInfo{ID: i, ChunkSize: chunkMax, ChunksPerPage: SlabPageSize / chunkMax})
}

// classFor returns the smallest class whose chunks hold ntotal bytes, or 0.
func (c *Cache) classFor(ntotal uint64) int {
	lo, hi := 1, len(c.classes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if uint64(c.classes[m].size) < ntotal {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(c.classes) {
		return 0
	}
	return lo
}

// takeFreeLocked pops a chunk off the class's free list, or returns 0. The
// chunk is then in flight: neither free nor linked.
func (c *Cache) takeFreeLocked(cl *class) itemRef {
	ref := cl.free
	if ref == 0 {
		return 0
	}
	h := c.hdr(ref)
	cl.free = c.next(h)
	if cl.free != 0 {
		c.setPrev(c.hdr(cl.free), 0)
	}
	cl.nfree--
	h.bits.Store(uint32(cl.id) << clsShift)
	return ref
}

// pushFreeLocked puts a chunk on the class's free list.
func (c *Cache) pushFreeLocked(cl *class, ref itemRef, h *itemHeader) {
	h.bits.Store(bitSlabbed | uint32(cl.id)<<clsShift)
	c.setPrev(h, 0)
	c.setNext(h, cl.free)
	if cl.free != 0 {
		c.setPrev(c.hdr(cl.free), ref)
	}
	cl.free = ref
	cl.nfree++
}

// removeFreeLocked takes a given chunk off the free list.
func (c *Cache) removeFreeLocked(cl *class, ref itemRef, h *itemHeader) {
	prev, next := c.prev(h), c.next(h)
	if prev != 0 {
		c.setNext(c.hdr(prev), next)
	} else {
		cl.free = next
	}
	if next != 0 {
		c.setPrev(c.hdr(next), prev)
	}
	c.setPrev(h, 0)
	c.setNext(h, 0)
	cl.nfree--
}

// freeChunkLocked returns an unlinked item's chunk to its class cl, or
// for a chained item (whose class is the largest) all its chunks to
// theirs (see freeChainLocked).
func (c *Cache) freeChunkLocked(cl *class, ref itemRef, h *itemHeader) {
	if h.bits.Load()&bitChained != 0 {
		c.freeChainLocked(cl, [2]*class{}, ref, h, 0)
		return
	}
	c.pushFreeLocked(cl, ref, h)
}

// slabAllocLocked takes a free chunk, adding a page to the class first if
// it has none free and memory allows.
func (c *Cache) slabAllocLocked(cl *class) itemRef {
	if ref := c.takeFreeLocked(cl); ref != 0 {
		return ref
	}
	if c.newPageLocked(cl) {
		return c.takeFreeLocked(cl)
	}
	return 0
}

// newPageLocked gives the class a new page, if memory allows. A class
// without pages gets its first one even past the limit, as memcached's
// do_slabs_newslab gives it, so that a full cache holds as many pages as
// memcached's for the same workload; under twemcache's slab eviction
// policies it evicts another class's page instead, as twemcache does
// (see stealPageLocked).
func (c *Cache) newPageLocked(cl *class) bool {
	first := len(cl.pages) == 0 && Eviction(c.evict.Load())&evictSlab == 0
	id, ok := c.getPage(first)
	if !ok {
		return false
	}
	c.addPageLocked(cl, id)
	return true
}

// addPageLocked gives page id to the class and splits it into free chunks.
func (c *Cache) addPageLocked(cl *class, id uint32) {
	cl.pages = append(cl.pages, id)
	cl.npages.Store(int32(len(cl.pages)))
	now := c.relNow()
	c.pageOwner[id].Store(uint32(cl.id))
	c.pageCtime[id].Store(now)
	c.pageAtime[id].Store(now)
	for i := cl.perslab - 1; i >= 0; i-- {
		ref := makeRef(id, i*cl.size)
		c.pushFreeLocked(cl, ref, c.hdr(ref))
	}
}

// getPage returns the id of a page: a pooled page, or a new one if the
// memory limit allows, or if first (the class has no page yet: the bytes
// past the limit are then the overdraft).
func (c *Cache) getPage(first bool) (uint32, bool) {
	const size = SlabPageSize
	c.pageMu.Lock()
	defer c.pageMu.Unlock()
	if c.closed {
		return 0, false
	}
	if len(c.pool) > 0 {
		id := c.pool[len(c.pool)-1]
		c.pool = c.pool[:len(c.pool)-1]
		return id, true
	}
	over := c.malloced+int64(size) > c.limit
	if over && !first {
		return 0, false
	}
	var id uint32
	if n := len(c.freeIDs); n > 0 {
		id = c.freeIDs[n-1]
	} else if int(c.nextID) < len(c.pages) {
		id = c.nextID
	} else {
		return 0, false
	}
	mem, err := c.arena.alloc(size)
	if err != nil {
		c.mallocFails.Add(1)
		return 0, false
	}
	if n := len(c.freeIDs); n > 0 {
		c.freeIDs = c.freeIDs[:n-1]
	} else {
		c.maxPageID.Store(c.nextID)
		c.nextID++
	}
	c.pages[id] = mem
	c.malloced += int64(size)
	if over {
		c.overdraft = c.malloced - c.limit
	}
	select {
	case c.warmCh <- struct{}{}:
	default:
	}
	return id, true
}

// prefaultAhead is how much memory past the pages in use the cache keeps
// faulted in, within its limit: two huge pages, a tenth of a second of
// filling for bench/compare.sh's write-heavy workload C.
const prefaultAhead = 4 << 20

// runPrefaulter keeps the next prefaultAhead bytes of slab memory faulted
// in while the cache grows, until stop is closed: a store that takes a new
// page then finds it resident instead of waiting, with its class locked,
// for the kernel to zero it.
func (c *Cache) runPrefaulter() {
	c.runOnSignal(c.warmCh, func() bool {
		c.pageMu.Lock()
		budget := c.limit - c.malloced
		c.pageMu.Unlock()
		return budget > 0 && c.arena.prefault(int(min(budget, prefaultAhead)))
	})
}

// releasePageLocked returns a page's memory to the operating system. The
// caller holds pageMu and no item lives in the page.
func (c *Cache) releasePageLocked(id uint32) {
	mem := c.pages[id]
	c.pages[id] = nil
	c.malloced -= int64(len(mem))
	c.overdraft = max(0, min(c.overdraft, c.malloced-c.limit))
	c.freeIDs = append(c.freeIDs, id)
	c.arena.free(mem)
}

// putPage takes back a page emptied by a class: into the pool while the
// cache is within its limit, otherwise back to the operating system.
func (c *Cache) putPage(id uint32) {
	c.pageMu.Lock()
	defer c.pageMu.Unlock()
	if c.closed {
		return
	}
	if len(c.pages[id]) == SlabPageSize && c.malloced <= c.limit {
		c.pool = append(c.pool, id)
		return
	}
	c.releasePageLocked(id)
}

// maxAllocPasses bounds the passes alloc makes over the LRU tails.
const maxAllocPasses = 200

// alloc returns an in-flight chunk of class cls for an item of ntotal bytes
// with an nkey-byte key and an nbytes-byte value (see allocLocked). The
// caller may hold a stripe lock.
func (c *Cache) alloc(cls int, nkey, nbytes int, now uint32) (itemRef, error) {
	cl := &c.classes[cls]
	cl.mu.Lock()
	ref, err := c.allocLocked(cl, now)
	if err != nil {
		cl.mu.Unlock()
		return 0, err
	}
	h := c.hdr(ref)
	h.bits.Store(uint32(cls)<<clsShift | uint32(nkey)<<nkeyShift)
	h.nbytes = uint32(nbytes)
	cl.mu.Unlock()
	return ref, nil
}

// allocLocked returns an in-flight chunk of class cl, taking memory as
// memcached's do_item_alloc_pull does: the free list, a new page, then
// reclaiming expired items and evicting from the COLD tail (pushing HOT and
// WARM items down when COLD is empty). When the class has nothing left to
// evict, a page is taken from another class. The caller holds cl.mu, which
// allocLocked may release for a while and holds again when it returns.
func (c *Cache) allocLocked(cl *class, now uint32) (itemRef, error) {
	if c.closed {
		return 0, ErrClosed
	}
	if !c.lruSettings().Segmented {
		// memcached's flat LRU takes back expired items at the COLD tail
		// before every allocation, counting them as reclaimed.
		c.pullTailLocked(cl, lruCold, 0, 0, false, now)
	}
	ref := c.slabAllocLocked(cl)
	if ref == 0 && cl.lru[lruTemp].tail != 0 {
		// Expired TEMP items are the cheapest memory to take back.
		c.pullTailLocked(cl, lruTemp, 0, 0, false, now)
		ref = c.slabAllocLocked(cl)
	}
	ev := Eviction(c.evict.Load())
	// Each pass frees memory or makes progress towards it: a pull at the
	// COLD tail that finds ACTIVE items gives them their second chance in
	// WARM (clearing ACTIVE) instead of evicting, so a long run of them
	// takes several passes; maxAllocPasses bounds them.
	i, waits, passes := 0, 0, maxAllocPasses
	if ev == EvictNone {
		passes = 10 // memcached's count: nothing will be evicted anyway
	}
	for ; ref == 0 && i < passes; i++ {
		// The slab policies come first (twemcache tries higher bits
		// first), after the expired items at the COLD tail.
		if ev&evictSlab != 0 &&
			(c.pullTailLocked(cl, lruCold, 0, 0, false, now) > 0 || c.evictPageLocked(cl, ev, now)) {
			ref = c.slabAllocLocked(cl)
			continue
		}
		if c.pullTailLocked(cl, lruCold, 0, 0, true, now) <= 0 &&
			c.pullTailLocked(cl, lruHot, 0, 0, false, now) <= 0 &&
			c.pullTailLocked(cl, lruWarm, 0, 0, false, now) <= 0 &&
			(ev == EvictNone || !c.stealPageLocked(cl, now)) {
			if ev == EvictNone || waits == 10 {
				i++
				break
			}
			// The classes to steal from may be busy (the maintainer, the
			// mover): wait a little, longer each time, about 10ms in all,
			// without holding this class from other stores.
			cl.mu.Unlock()
			time.Sleep(time.Duration(10<<waits) * time.Microsecond)
			cl.mu.Lock()
			if c.closed {
				return 0, ErrClosed
			}
			waits++
		}
		ref = c.slabAllocLocked(cl)
	}
	if i > 0 {
		cl.cnt.directReclaims.Add(uint64(i))
	}
	if ref == 0 {
		cl.cnt.outOfMemory.Add(1)
		return 0, ErrNoMemory
	}
	return ref, nil
}

// freeInflight returns a chunk from alloc that was never linked.
func (c *Cache) freeInflight(ref itemRef) {
	h := c.hdr(ref)
	cl := &c.classes[bitsClass(h.bits.Load())]
	cl.mu.Lock()
	c.freeChunkLocked(cl, ref, h)
	cl.mu.Unlock()
}
