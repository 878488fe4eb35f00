package storage

import "errors"

// Errors returned by Cache methods. Compare with errors.Is.
var (
	// ErrTooLarge reports an item that cannot fit the largest slab class
	// (memcached's "SERVER_ERROR object too large for cache").
	ErrTooLarge = errors.New("storage: object too large for cache")

	// ErrNoMemory reports that no memory could be found for an item: the
	// memory limit is reached and eviction is disabled, or nothing could be
	// evicted (memcached's "SERVER_ERROR out of memory storing object").
	ErrNoMemory = errors.New("storage: out of memory storing object")

	// ErrNoMemoryRead reports that a chained item (one larger than
	// SlabChunkMax) found memory for its header chunk but not for all of
	// its body chunks: memcached finds this while it reads the value into
	// the chunks and answers "SERVER_ERROR Out of memory during read",
	// leaving the key's old value in place. errors.Is(ErrNoMemoryRead,
	// ErrNoMemory) holds.
	ErrNoMemoryRead error = noMemoryRead{}

	// ErrKeyTooLong reports a key longer than KeyMaxLength bytes.
	ErrKeyTooLong = errors.New("storage: key too long")

	// ErrClosed reports a call on a closed Cache.
	ErrClosed = errors.New("storage: cache closed")

	// ErrBadConfig reports a Config that memcached would refuse to start
	// with; New wraps it with the reason.
	ErrBadConfig = errors.New("storage: invalid configuration")

	// ErrMemoryLimit reports a memory limit that the cache cannot address
	// (see MaxMemoryLimit).
	ErrMemoryLimit = errors.New("storage: memory limit out of range")

	// ErrBadLRUTune reports LRU settings memcached's "lru tune" refuses.
	ErrBadLRUTune = errors.New("storage: invalid LRU settings")

	// ErrNoMaintainer reports an LRU change that needs the LRU maintainer
	// on a cache running without it.
	ErrNoMaintainer = errors.New("storage: LRU maintainer disabled")

	// ErrBadClass reports a slab class id outside 1..63, or a Reassign
	// naming a class that does not exist (memcached's "BADCLASS").
	ErrBadClass = errors.New("storage: invalid class id")

	// ErrCrawlerBusy reports a crawl requested while another is running.
	ErrCrawlerBusy = errors.New("storage: crawler busy")

	// ErrSizesNeedCAS reports "stats sizes_enable" on a cache without
	// CAS (-C), which memcached refuses.
	ErrSizesNeedCAS = errors.New("storage: sizes need cas")

	// ErrCrawlerDisabled reports a crawl requested while the crawler is
	// disabled.
	ErrCrawlerDisabled = errors.New("storage: crawler disabled")

	// ErrBusy reports a Reassign while a page move is in progress
	// (memcached's "BUSY currently processing reassign request").
	ErrBusy = errors.New("storage: currently processing reassign request")

	// ErrNoSpare reports a Reassign from a class with fewer than two pages
	// (memcached's "NOSPARE source class has no spare pages").
	ErrNoSpare = errors.New("storage: source class has no spare pages")

	// ErrSameClass reports a Reassign whose source and destination are the
	// same (memcached's "SAME src and dst class are identical").
	ErrSameClass = errors.New("storage: src and dst class are identical")

	// ErrReassignDisabled reports a Reassign on a cache configured with
	// NoSlabReassign.
	ErrReassignDisabled = errors.New("storage: slab reassignment disabled")

	// ErrBadSetting reports an out-of-range SetAutomove or SetEviction
	// argument.
	ErrBadSetting = errors.New("storage: invalid setting")
)

// noMemoryRead is ErrNoMemoryRead's type: an ErrNoMemory that memcached
// meets while reading a value.
type noMemoryRead struct{}

func (noMemoryRead) Error() string        { return "storage: out of memory during read" }
func (noMemoryRead) Is(target error) bool { return target == ErrNoMemory }
