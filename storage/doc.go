// Package storage is corvid's cache engine: memcached 1.6's item storage —
// slab allocator, hash index, segmented LRU, expiry, eviction and the LRU
// crawler — with memcached's semantics and counters, written so that the
// garbage collector sees almost nothing of it.
//
// # Memory layout
//
// Item memory is slab pages of SlabPageSize (1 MiB) bytes, obtained with an
// anonymous mmap on Linux (outside the Go heap; see mmap_linux.go) and
// counted against Config.MemoryLimit: the pages never exceed it, except in
// a cache that does not evict (NoEvict), where a class gets its first page
// past the limit, as in memcached. Pages belong to slab classes, computed exactly as memcached computes them from
// -n, -f and slab_chunk_max (Classes); each page is split into equal
// chunks. Items larger than SlabChunkMax are chained as memcached 1.6
// chains them: a header chunk from a small class, then body chunks of the
// largest class, the last from the smallest class that holds what is
// left (chain.go); they belong to the largest class (its LRU and counts),
// and take about their own size of memory whatever ItemSizeMax is. A page
// move copies a chained item's header and body chunks into free chunks of
// their classes and relinks the chain, as memcached's slab mover does;
// only when its class has no chunk free is the item evicted.
//
// An item is one chunk: a 40-byte header (32 without CAS, see item.go),
// the key, then the value without memcached's "\r\n". Items are addressed
// by a ref, page id << 17 | offset/8, 0 being nil. A cache whose memory
// limit is at most MaxNarrowLimit (32 GiB less one page) stores refs in 32
// bits; a larger one, up to MaxMemoryLimit (4 TiB less one page), in 48:
// its headers are 48 bytes and its hash buckets two words, so that small
// caches pay nothing for the large ones. There is no Go pointer per item:
// the hash index is a []uint32 of bucket heads chained through the
// headers, and the LRU and free lists are refs in the headers too. The
// page table has one entry per page the limit allows (at least
// MaxNarrowPages), so the limit can be raised at run time up to that.
//
// # Concurrency and lock order
//
// All exported methods are safe for concurrent use. There is no global
// lock on the hot path:
//
//   - 1024 stripe locks over the hash buckets (stripe = hash mod 1024). A
//     stripe lock guards its buckets, their chains and the contents of the
//     items on them (value, flags, exptime, CAS). Get takes only its stripe
//     lock: it marks the item FETCHED/ACTIVE with atomic bit operations and
//     leaves the LRU lists alone.
//   - One lock per slab class guards the class's pages, free list, LRU
//     lists and byte counts, and the list links in its chunks.
//   - pageMu guards the page table, the pool of emptied pages and the
//     memory accounting.
//   - amMu guards the automover's window (automove.go); it is taken
//     before any class lock.
//   - moveGate, a read-write lock, keeps pages in their classes and items
//     in their chunks while Save walks them (Save holds it for writing).
//     The mover, the maintainer's page releases and the crawler's batches
//     hold it for reading, taken before any other lock; a store about to
//     steal or evict a page holds a class lock already, so it only tries
//     it.
//   - pins.mu guards the counts of Pinned references (pin.go). It is
//     taken last, under any of the others, and nothing is locked while it
//     is held; Release takes the largest class's lock only after
//     dropping it.
//
// The order is moveGate, amMu, stripe lock, then class lock, then pageMu. Code holding a
// class lock that needs an item's stripe (eviction at the LRU tail, the
// crawler, emptying a page) or another class's lock (stealing a page) only
// tries it (TryLock) and skips the item or class when it is busy, as
// memcached's lru_pull_tail does with its item locks; so it never waits
// against the order. One exception: freeing a chained item (chain.go),
// the holder of the largest class's lock waits for the locks of the
// smaller classes its header and last chunk came from. Code holding only
// smaller classes' locks never waits for another class lock (it tries the
// largest class's), so this cannot close a cycle. Close takes every lock, in this order, to set the
// closed flag that the other methods read under whichever lock they hold.
//
// A linked chained item's chain (its body chunks and links) is read under
// the item's stripe lock; it is freed, or a chunk of it moved to another
// page, only under both that stripe lock and the largest class's lock, so
// a reader never sees a chunk half moved or freed. A Pinned reference
// (pin.go) reads the chain without the lock: a pinned item is neither
// moved nor evicted, and once unlinked it is freed by its last release.
//
// Fields written under both a stripe and a class lock (an item's value
// length) may be read under either. An item's key and class never change
// while its chunk is allocated; its last-access time and flag bits are
// atomics because both kinds of lock holders use them.
//
// # Goroutines
//
// New starts: a clock that advances memcached's seconds counter (unless
// Config.Clock or Config.Now is set, in which case the time is read from
// it on each call);
// the LRU maintainer, which balances HOT/WARM/COLD, runs the automover
// once a second and releases pages over a lowered memory limit; the mover,
// which carries out page moves between classes (Reassign); the hash
// expander, which doubles the table one stripe at a time; and the
// crawler, which reclaims expired and flushed items: on request, and on
// its own while enabled (not NoCrawler) with the maintainer (not
// NoLRUMaintainer). Close stops and waits for all of them.
package storage
