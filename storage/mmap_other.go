//go:build !linux || race

package storage

// pageArena gives the cache its slab pages from the Go heap. It is used
// where anonymous mmap is not available, and in race-detector builds so that
// the detector watches slab memory too (it ignores memory outside the heap).
type pageArena struct{}

func newPageArena(bool) *pageArena { return &pageArena{} }

// alloc returns size bytes of zeroed memory.
func (*pageArena) alloc(size int) ([]byte, error) { return make([]byte, size), nil }

// free drops a page from alloc; the collector reclaims it.
func (*pageArena) free([]byte) {}

// prefault does nothing: heap pages are zeroed by the allocator.
func (*pageArena) prefault(int) bool { return false }

// close does nothing: the collector reclaims the pages.
func (*pageArena) close() {}

// allocTable returns a zeroed hash table of n buckets.
func allocTable(n int, _ bool) ([]uint32, error) { return make([]uint32, n), nil }

// retireTable drops a table an expansion replaced: the collector reclaims
// it once no Prefetch holds it.
func retireTable([]uint32) []uint32 { return nil }

// freeTable drops a table from allocTable; the collector reclaims it.
func freeTable([]uint32) {}
