package storage

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// MaxMemoryLimit is the largest memory limit the cache can address: MaxPages
// slab pages (4 TiB less one page).
const MaxMemoryLimit = int64(MaxPages) * SlabPageSize

// MaxNarrowLimit is the largest memory limit of a cache whose refs are 32
// bits (32 GiB less one page): a larger cache uses 48-bit refs, whose items
// carry 8 more header bytes (48 rather than 40, or 32 without CAS) and
// whose hash index takes 8 bytes per bucket rather than 4.
const MaxNarrowLimit = int64(MaxNarrowPages) * SlabPageSize

// Cache is memcached's storage engine: slab memory, hash index, LRU,
// expiry and eviction. All methods are safe for concurrent use.
type Cache struct {
	cfg     Config
	hdrSize uint32 // item header bytes: 40, or 32 without CAS, or 48 when wide
	useCAS  bool
	// wide is set when the memory limit at New is over MaxNarrowLimit:
	// refs are then 48 bits wide (item.go) and each hash bucket takes
	// 1<<bucketShift words (hash.go).
	wide        bool
	bucketShift uint

	clock   Clock         // where time comes from
	ticking bool          // curTime is advanced by runClock, else clock is read on every call
	started atomic.Int64  // process_started, Unix seconds; moved back by a snapshot load (clock.go)
	mono0   time.Duration // the monotonic reading at the start of the second the cache started in
	relBack atomic.Uint32 // seconds the rel clock was moved forward by a snapshot load
	clockMu sync.Mutex    // serializes curTime's updates with moveClockBack
	loading atomic.Int32  // snapshot loads under way: the maintainer leaves the LRU lists alone
	curTime atomic.Uint32 // current_time when ticking

	classes []class     // by class id; index 0 unused; immutable slice
	info    []ClassInfo // Classes(), without the unused entry

	seed          maphash.Seed
	stripes       [numStripes]stripe
	hashPower     atomic.Uint32
	hashExpanding atomic.Bool
	expandCh      chan struct{}
	warmCh        chan struct{} // a page was taken: prefault the next ones
	// index is the newest table, for Prefetch's unlocked reads; retired
	// are the tables expansions replaced. Their memory is released but
	// they stay mapped until Close, so that such a read never faults.
	// Only the expander and Close touch retired.
	index   atomic.Pointer[[]uint32]
	retired [][]uint32
	items   atomic.Int64 // linked items

	casID      atomic.Uint64
	sizes      atomic.Pointer[sizeHist] // "stats sizes"; nil when off
	oldestLive atomic.Uint32            // flush_all's oldest_live (rel), 0 = none
	oldestCAS  atomic.Uint64            // flush_all's oldest_cas

	pageMu   sync.Mutex // guards pool, freeIDs, nextID, malloced, limit, overdraft and writes to pages
	pages    [][]byte   // by page id; fixed length: see pageTableLen
	arena    *pageArena // where pages come from
	pool     []uint32   // emptied SlabPageSize pages, not owned by any class
	freeIDs  []uint32
	nextID   uint32
	malloced int64
	limit    int64
	// overdraft is how far first pages of classes took malloced past
	// limit (see getPage); the maintainer does not release those.
	overdraft int64

	// closed is set by Close while it holds every stripe, class and page
	// lock, so reading it under any one of them is safe.
	closed bool

	// Page metadata by page id (the length of pages): the class that
	// owns the page (0 when pooled or free), the last access to one of its
	// items and the time it was given to its class (rel seconds), for the
	// slab eviction policies.
	pageOwner []atomic.Uint32
	pageAtime []atomic.Uint32
	pageCtime []atomic.Uint32
	maxPageID atomic.Uint32 // highest page id handed out

	largest  int          // memcached's power_largest: the last class Reassign accepts
	automove atomic.Int32 // slab_automove: 0, 1 or 2
	evict    atomic.Uint32

	// The mover's request: rebalBusy is set by Reassign and cleared by the
	// mover when the page has moved; src and dst are written between.
	rebalBusy          atomic.Bool
	rebalSrc, rebalDst atomic.Int32
	rebalCh            chan struct{}
	pickCur            atomic.Int32 // pickAny's round-robin position

	// moveGate keeps every item in its chunk and every page in its class
	// and place while Save walks them: Save holds it for writing. What
	// empties a page or moves items between chunks holds it for reading:
	// the mover and the maintainer's page releases wait for it, and so
	// does the crawler between batches; a store stealing or evicting a
	// page only tries it.
	moveGate sync.RWMutex

	pins pins // the Pinned references to chained items (pin.go)

	amMu    sync.Mutex // guards am and amRatio
	am      automoveState
	amRatio float64

	counters
	tune    lruTune      // LRU settings ("lru tune|mode|temp_ttl")
	crawl   crawlerState // crawler settings and requests
	onEvict atomic.Pointer[func(EvictedItem)]

	stop chan struct{}
	wg   sync.WaitGroup
}

// counters are the global counters of "stats".
type counters struct {
	_ [64]byte

	getMisses, getExpired, getFlushed               atomic.Uint64
	deleteMisses, incrMisses, decrMisses            atomic.Uint64
	casMisses, touchMisses, totalItems              atomic.Uint64
	mallocFails, crawlerStarts, slabsMoved, juggles atomic.Uint64
	slabRescues, slabEvictions, pageEvictions       atomic.Uint64
	chunkRescues, slabBusy                          atomic.Uint64
	crawlerRunning                                  atomic.Int32 // crawls and dumps under way
}

// reset zeroes the counters, as memcached's "stats reset".
func (k *counters) reset() {
	for _, p := range []*atomic.Uint64{
		&k.getMisses, &k.getExpired, &k.getFlushed, &k.deleteMisses, &k.incrMisses,
		&k.decrMisses, &k.casMisses, &k.touchMisses, &k.totalItems, &k.mallocFails,
		&k.crawlerStarts, &k.slabsMoved, &k.juggles, &k.slabRescues, &k.slabEvictions,
		&k.pageEvictions, &k.chunkRescues, &k.slabBusy,
	} {
		p.Store(0)
	}
}

// New returns a Cache configured by cfg and starts its goroutines (clock,
// LRU maintainer, hash expander and the crawler); Close stops them.
func New(cfg Config) (*Cache, error) {
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cache{
		cfg:      cfg,
		useCAS:   !cfg.DisableCAS,
		seed:     maphash.MakeSeed(),
		expandCh: make(chan struct{}, 1),
		warmCh:   make(chan struct{}, 1),
		pages:    make([][]byte, pageTableLen(cfg.MemoryLimit)),
		arena:    newPageArena(!cfg.NoHugePages),
		nextID:   1,
		limit:    cfg.MemoryLimit,
		malloced: cfg.InitialMalloced,
		stop:     make(chan struct{}),
		rebalCh:  make(chan struct{}, 1),
		amRatio:  cfg.SlabAutomoveRatio,

		pageOwner: make([]atomic.Uint32, pageTableLen(cfg.MemoryLimit)),
		pageAtime: make([]atomic.Uint32, pageTableLen(cfg.MemoryLimit)),
		pageCtime: make([]atomic.Uint32, pageTableLen(cfg.MemoryLimit)),
		wide:      cfg.MemoryLimit > MaxNarrowLimit,
	}
	switch {
	case cfg.SlabAutomove < 0:
	case cfg.SlabAutomove == 0:
		c.automove.Store(1)
	default:
		c.automove.Store(int32(cfg.SlabAutomove))
	}
	switch {
	case cfg.NoEvict:
	case cfg.Eviction == 0:
		c.evict.Store(uint32(EvictLRU))
	default:
		c.evict.Store(uint32(cfg.Eviction))
	}
	c.tune.cur.Store(newLRUTune(&cfg))
	c.crawl.enabled.Store(!cfg.NoCrawler)
	c.crawl.sleep.Store(int64(max(cfg.CrawlerSleep, 0)))
	c.crawl.toCrawl.Store(cfg.CrawlerToCrawl)
	c.crawl.req = make(chan []bool, 1)
	if cfg.TrackSizes {
		c.sizes.Store(c.newSizeHist())
	}
	c.hdrSize = headerSize
	switch {
	case c.wide:
		c.hdrSize = headerSizeWide
		c.bucketShift = 1
	case !c.useCAS:
		c.hdrSize = headerSizeNoCAS
	}
	c.startClock(cfg.Clock, cfg.Now)

	info := buildClasses(cfg.ChunkSizeMin, cfg.GrowthFactor, cfg.SlabChunkMax, cfg.SlabSizes)
	c.info = info[1:]
	c.classes = make([]class, len(info))
	for i := 1; i < len(info); i++ {
		cl := &c.classes[i]
		cl.id, cl.size, cl.perslab = i, info[i].ChunkSize, info[i].ChunksPerPage
	}
	c.largest = len(info) - 1
	c.am = newAutomoveState(len(info), cfg.SlabAutomoveWindow)

	c.hashPower.Store(uint32(cfg.HashPowerInit))
	table, err := allocTable(1<<cfg.HashPowerInit<<c.bucketShift, !cfg.NoHugePages)
	if err != nil {
		return nil, fmt.Errorf("cannot allocate the hash table: %w", err)
	}
	for i := range c.stripes {
		c.stripes[i].buckets = table
	}
	c.index.Store(&table)

	n := 5 // crawler, maintainer, mover, expander, prefaulter
	if c.ticking {
		n++
	}
	c.wg.Add(n)
	if c.ticking {
		go c.runClock()
	}
	go c.runCrawler()
	go c.runMaintainer()
	go c.runMover()
	go c.runExpander()
	go c.runPrefaulter()
	return c, nil
}

// pageTableLen is the length of the page table of a cache whose memory
// limit at New is limit: ids 1 to MaxNarrowPages when 32-bit refs address
// it (its limit can then be raised to MaxNarrowLimit), else as many pages
// as the limit holds (raising it further is refused).
func pageTableLen(limit int64) int {
	if limit <= MaxNarrowLimit {
		return MaxNarrowPages + 1
	}
	return int((limit+SlabPageSize-1)/SlabPageSize) + 1
}

// maxLimit is the largest memory limit SetMemoryLimit accepts.
func (c *Cache) maxLimit() int64 {
	return int64(len(c.pages)-1) * SlabPageSize
}

// Close stops the cache's goroutines, waits for them and releases the slab
// memory. Calls after Close miss or fail with ErrClosed. Close must not run
// while other calls are in progress: a store writes its new item outside
// any lock, into slab memory that Close unmaps. Close is safe to call more
// than once.
func (c *Cache) Close() error {
	select {
	case <-c.stop:
		return nil
	default:
	}
	close(c.stop)
	c.wg.Wait()
	for i := range c.stripes {
		c.stripes[i].mu.Lock()
	}
	for i := 1; i < len(c.classes); i++ {
		c.classes[i].mu.Lock()
	}
	c.pageMu.Lock()
	if !c.closed {
		c.closed = true
		c.pool, c.freeIDs = nil, nil
		clear(c.pages)
		c.arena.close()
		c.freeTablesLocked()
	}
	c.pageMu.Unlock()
	for i := len(c.classes) - 1; i >= 1; i-- {
		c.classes[i].mu.Unlock()
	}
	for i := range c.stripes {
		c.stripes[i].mu.Unlock()
	}
	return nil
}

// Classes returns the slab class table as "memcached -vv" prints it for the
// same -n, -f, slab_sizes and slab_chunk_max: the last class is
// slab_chunk_max. Items larger than that are chains of chunks of these
// classes (chain.go). It is safe for concurrent use; the caller may modify
// the result.
func (c *Cache) Classes() []ClassInfo {
	return append([]ClassInfo(nil), c.info...)
}

// ClassTable returns the slab class table a cache made with cfg would
// have (its Classes), or New's error for a cfg New refuses, without making
// the cache.
func ClassTable(cfg Config) ([]ClassInfo, error) {
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	return buildClasses(cfg.ChunkSizeMin, cfg.GrowthFactor, cfg.SlabChunkMax, cfg.SlabSizes)[1:], nil
}

// mcItemSize is the size memcached gives an item (item_make_header plus
// the CAS), which decides "too large" exactly as memcached does.
func (c *Cache) mcItemSize(nkey, nbytes int, flags uint32) int64 {
	n := int64(mcItemHeader) + int64(nkey) + 1 + int64(nbytes) + 2
	if flags != 0 {
		n += 4
	}
	if c.useCAS {
		n += 8
	}
	return n
}

// ItemFits reports whether an item with a key and value of these lengths
// (and zero flags) is small enough to store, as memcached's item_size_ok:
// the limit is ItemSizeMax for memcached's item size, so corvid refuses
// exactly the values memcached refuses. Nonzero flags take 4 more bytes, so
// Store may still return ErrTooLarge at the very boundary. It is safe for
// concurrent use.
func (c *Cache) ItemFits(keyLen, valueLen int) bool {
	return keyLen >= 0 && valueLen >= 0 && c.mcItemSize(keyLen, valueLen, 0) <= int64(c.cfg.ItemSizeMax)
}

// fits is ItemFits with the item's flags.
func (c *Cache) fits(nkey, nbytes int, flags uint32) bool {
	return c.mcItemSize(nkey, nbytes, flags) <= int64(c.cfg.ItemSizeMax)
}

// ntotal is the size of an item in corvid's chunks.
func (c *Cache) ntotal(nkey, nbytes int) uint64 {
	return uint64(c.hdrSize) + uint64(nkey) + uint64(nbytes)
}
