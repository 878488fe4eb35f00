package storage

import "time"

// Config configures a Cache. The zero value of every field means the
// memcached default noted beside it.
type Config struct {
	MemoryLimit  int64   // -m, bytes of item memory (slab pages); default 64 MiB
	ChunkSizeMin int     // -n, minimum space for key+value+flags; default 48
	GrowthFactor float64 // -f, chunk size growth factor; default 1.25
	ItemSizeMax  int     // -I, largest item; default 1 MiB
	SlabChunkMax int     // -o slab_chunk_max; default min(SlabPageSize/2, ItemSizeMax)
	// SlabSizes (-o slab_sizes) gives the chunk sizes of the classes below
	// the largest (slab_chunk_max) instead of ChunkSizeMin and GrowthFactor:
	// each at least ChunkSizeMin and at most SlabChunkMax, each more than 8
	// bytes over the one before, fewer than 63 of them; each is rounded up
	// to a multiple of 8. Nil for the classes the growth factor makes;
	// empty (as memcached's "slab_sizes=-") for the largest class alone.
	SlabSizes []int
	NoEvict   bool // -M: fail stores with ErrNoMemory instead of evicting
	// InitialMalloced is memcached's test hook T_MEMD_INITIAL_MALLOC: the
	// cache starts as if it had already taken that many bytes of its
	// MemoryLimit (total_malloced starts there), so that a test can reach
	// the limit of a large cache without filling it. Zero by default; it
	// must not be negative.
	InitialMalloced int64
	// NoHugePages (-o no_hugepages) stops the cache from asking the kernel
	// (madvise) to back slab memory and the hash table with transparent
	// huge pages, which it does by default: with 4 KiB pages a large cache
	// spends much of a lookup in TLB misses. It has no effect where huge
	// pages are disabled.
	NoHugePages   bool
	DisableCAS    bool // -C: items carry no CAS unique (CAS always 0)
	TrackSizes    bool // -o track_sizes: the "stats sizes" histogram is on from the start, even with DisableCAS
	HashPowerInit int  // -o hashpower; default 16
	// NoHashExpand (-o no_hashexpand) keeps the hash index at
	// HashPowerInit, however many items it holds, as memcached does when
	// it does not start its table's maintenance thread.
	NoHashExpand bool
	NoCrawler    bool // -o no_lru_crawler: the crawler starts disabled
	// CrawlerSleep is the pause between batches of chunks the crawler
	// checks (-o lru_crawler_sleep, microseconds); default 100µs, at most
	// one second, negative for none. CrawlerToCrawl bounds the items
	// checked per LRU and pass (-o lru_crawler_tocrawl); 0, the default,
	// is no bound.
	CrawlerSleep   time.Duration
	CrawlerToCrawl uint32

	// Segmented LRU tunables (-o hot_lru_pct, warm_lru_pct,
	// hot_max_factor, warm_max_factor); defaults 20, 40, 0.2 and 2.0, as
	// memcached. They can be changed at run time with TuneLRU.
	HotLRUPct, WarmLRUPct       int
	HotMaxFactor, WarmMaxFactor float64
	// NoLRUMaintainer (-o no_lru_maintainer) stops the maintainer from
	// balancing the LRU segments, and makes the LRU flat: one COLD list
	// per class, as memcached without its maintainer thread.
	NoLRUMaintainer bool
	// TempLRU (-o temporary_ttl=N) puts items whose TTL is at most
	// TemporaryTTL seconds in a TEMP LRU, where they are never bumped and
	// never moved; they leave it when they expire. TemporaryTTL is
	// reported (default 61) even when TempLRU is off.
	TempLRU      bool
	TemporaryTTL int

	// NoSlabReassign is -o no_slab_reassign: pages never move between
	// classes (Reassign fails with ErrReassignDisabled and SlabAutomove
	// has no effect). memcached 1.6 moves pages by default.
	NoSlabReassign bool
	// SlabAutomove is -o slab_automove: 1 (the zero value's default)
	// moves a page once a second at most from the class with the oldest
	// items to a class that keeps evicting younger ones, and free pages to
	// the global pool; 2 also asks for a page on every eviction; -1 is
	// memcached's 0, off. SetAutomove changes it at run time.
	SlabAutomove int
	// SlabAutomoveRatio is -o slab_automove_ratio: a page moves when the
	// evicting class's items are younger than this fraction of the oldest
	// class's; default 0.8.
	SlabAutomoveRatio float64
	// SlabAutomoveWindow is -o slab_automove_window: the seconds of
	// history the automover averages; default 30.
	SlabAutomoveWindow int
	// SlabAutomoveFreeRatio is -o slab_automove_freeratio, default 0.01.
	// memcached uses it only with extstore; corvid reports it.
	SlabAutomoveFreeRatio float64
	// Eviction chooses what is evicted when memory is full (twemcache's
	// -M strategies, see Eviction); the zero value means EvictLRU, or
	// EvictNone with NoEvict. SetEviction changes it at run time.
	Eviction Eviction
	// CrawlInterval is how often the crawler, with the LRU maintainer,
	// checks which classes are due for a pass over their items; default
	// 1s, as memcached's maintainer checks once a second. A class is due
	// 5 seconds after its last pass when items in it expire soon, later
	// (up to an hour) when they do not.
	CrawlInterval time.Duration
	// Clock is the cache's time source; nil means the system's clocks,
	// read by a goroutine that advances the cache's clock once a second
	// as memcached does. When set, the clock is read on every operation,
	// so a test can move time; see Clock.
	Clock Clock
	// Now, when Clock is nil, is a test clock read for both of Clock's
	// readings: the cache's clock follows every step of Now.
	Now func() time.Time
}

// StoreMode selects the semantics of Store.
type StoreMode uint8

// Store modes, as memcached's storage commands.
const (
	ModeSet StoreMode = iota
	ModeAdd
	ModeReplace
	ModeAppend
	ModePrepend
	ModeCAS
)

// StoreResult is the outcome of a Store, Delete, Touch or Incr/Decr.
type StoreResult uint8

// Outcomes, answered as memcached's STORED, NOT_STORED, EXISTS, NOT_FOUND...
const (
	Stored     StoreResult = iota
	NotStored              // add on existing key, replace/append/prepend on missing key
	Exists                 // cas with a stale unique
	NotFound               // cas/delete/touch/incr on a missing key
	NonNumeric             // incr/decr on a value that is not a decimal number
)

// Item is the view of a stored item passed to the callback of Get. Key and
// Value point into slab memory and are valid only during the callback.
// The value of an item larger than SlabChunkMax is stored in pieces:
// Value is then only the first, and Len, AppendValue and Pieces give the
// whole value.
type Item struct {
	Key   []byte
	Value []byte // without memcached's trailing "\r\n"; see Len
	Flags uint32
	CAS   uint64
	// Exptime is the absolute Unix expiry time, 0 for never.
	Exptime int64
	// LastAccess is the Unix time of the previous access before this one.
	LastAccess int64
	// Fetched reports whether the item had been fetched before this access.
	Fetched bool

	cache *Cache  // set for a chained item: the rest of its value is in
	chain itemRef // the chain of body chunks from chain,
	n     int     // n bytes in all;
	ref   itemRef // its header chunk
}

// Stats is a snapshot of the cache's counters, under memcached's names
// (see ReadStats). Counters count since start or the last ResetStats.
type Stats struct {
	// Global ("stats").
	CurrItems, TotalItems uint64
	Bytes                 uint64 // bytes of linked items, counted as memcached counts them (its ITEM_ntotal)
	Evictions             uint64
	Reclaimed             uint64 // stores that reused the memory of an expired item
	ExpiredUnfetched      uint64
	EvictedUnfetched      uint64
	EvictedActive         uint64
	GetMisses             uint64 // key absent (including expired and flushed)
	GetExpired            uint64 // subset of misses: found expired
	GetFlushed            uint64 // subset of misses: found flushed
	DeleteMisses          uint64
	IncrMisses            uint64
	DecrMisses            uint64
	CasMisses             uint64
	TouchMisses           uint64
	LimitMaxbytes         uint64
	HashPowerLevel        uint64
	HashBytes             uint64
	HashIsExpanding       bool
	MallocFails           uint64
	TotalMalloced         uint64 // bytes of slab pages handed to classes
	CrawlerReclaimed      uint64
	CrawlerItemsChecked   uint64
	LRUCrawlerStarts      uint64
	LRUCrawlerRunning     bool
	SlabsMoved            uint64
	ActiveSlabs           int // classes with at least one page

	// Page moves between classes (memcached's slab_reassign_* stats):
	// items (and chained items' header chunks) moved within their class,
	// chained items' body chunks moved within theirs, and items evicted
	// because no chunk was free for them.
	SlabReassignRescues        uint64
	SlabReassignChunkRescues   uint64
	SlabReassignEvictionsNomem uint64
	SlabReassignBusyItems      uint64 // items found busy (stored, locked, pinned), each time
	SlabReassignRunning        bool   // a Reassign is in progress
	SlabGlobalPagePool         uint64 // free pages held by no class
	SlabEvictions              uint64 // whole pages emptied by a slab eviction policy
	LRUMaintainerJuggles       uint64 // LRU maintainer passes

	// Classes holds one entry per slab class, index 0 = class 1.
	Classes []ClassStats
}

// ClassStats holds the "stats slabs" and "stats items" fields of one class.
type ClassStats struct {
	ID            int
	ChunkSize     int
	ChunksPerPage int
	TotalPages    int
	TotalChunks   int
	UsedChunks    int
	FreeChunks    int
	FreeChunksEnd int
	MemRequested  uint64 // bytes of the class's linked items, counted as memcached counts them (its ITEM_ntotal)

	GetHits, CmdSet, DeleteHits, IncrHits, DecrHits       uint64
	CasHits, CasBadval, TouchHits                         uint64
	Number, NumberHot, NumberWarm, NumberCold, NumberTemp uint64
	AgeHot, AgeWarm, Age                                  uint64 // seconds since last access of the LRU tail
	Evicted, EvictedNonzero, EvictedUnfetched             uint64
	EvictedActive, EvictedTime, OutOfMemory               uint64
	Reclaimed, ExpiredUnfetched, CrawlerReclaimed         uint64
	CrawlerItemsChecked, MovesToCold, MovesToWarm         uint64
	MovesWithinLRU, DirectReclaims, HitsToHot             uint64
	HitsToWarm, HitsToCold, TailRepairs, LRUTailReflocked uint64
	HitsToTemp                                            uint64
}

// ClassInfo describes one slab class as "memcached -vv" prints it at start.
type ClassInfo struct {
	ID            int
	ChunkSize     int
	ChunksPerPage int
}

// The Cache API (implemented in cache.go and its siblings):
//
//	func New(cfg Config) (*Cache, error)
//	func (c *Cache) Close() error
//	func (c *Cache) Classes() []ClassInfo
//	func (c *Cache) ItemFits(keyLen, valueLen int) bool
//	func (c *Cache) Get(key []byte, fn func(Item)) bool
//	func (c *Cache) GetAndTouch(key []byte, exptime int64, fn func(Item)) bool
//	func (c *Cache) Store(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) (StoreResult, error)
//	func (c *Cache) StoreCAS(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) (StoreResult, uint64, error)
//	func (c *Cache) Unlink(key []byte) bool
//	func (c *Cache) Delete(key []byte) StoreResult
//	func (c *Cache) DeleteCAS(key []byte, cas uint64) StoreResult
//	func (c *Cache) Touch(key []byte, exptime int64) StoreResult
//	func (c *Cache) Incr(key []byte, delta uint64, decr bool) (uint64, StoreResult)
//	func (c *Cache) IncrCAS(key []byte, delta uint64, decr bool, cas uint64) (value, newCAS uint64, res StoreResult, err error)
//	func (c *Cache) ItemFitsFlags(keyLen, valueLen int, flags uint32) bool
//	func (c *Cache) MetaGet(key []byte, vivify, noBump bool, fn func(MetaEntry) MetaOutcome) bool
//	func (c *Cache) MetaDebug(key []byte, fn func(MetaEntry)) bool
//	func (c *Cache) StoreMeta(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64, opts MetaStoreOptions) (StoreResult, uint64, error)
//	func (c *Cache) DeleteMeta(key []byte, opts MetaDeleteOptions) StoreResult
//	func (c *Cache) ArithMeta(key []byte, delta uint64, decr bool, cas uint64, vivify bool, initial uint64, fn func(MetaEntry)) (StoreResult, error)
//	func (c *Cache) FlushAll(delay int64)
//	func (c *Cache) SetMemoryLimit(bytes int64) error
//	func (c *Cache) Reassign(src, dst int) error
//	func (c *Cache) SetAutomove(n int) error
//	func (c *Cache) Automove() int
//	func (c *Cache) SetEviction(e Eviction) error
//	func (c *Cache) Eviction() Eviction
//	func (c *Cache) ReadStats(s *Stats)
//	func (c *Cache) ResetStats()
//	func (c *Cache) Uptime() int64
//	func (c *Cache) ProcessStarted() int64
//	func (c *Cache) CurrentTime() int64
