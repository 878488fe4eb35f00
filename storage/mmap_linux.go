//go:build linux && !race

package storage

import (
	"slices"
	"sync"
	"syscall"
	"unsafe"
)

const (
	// hugePageSize is the size of a transparent huge page on amd64 and
	// arm64 with 4 KiB base pages.
	hugePageSize = 2 << 20
	// arenaRegion is how much address space the arena maps at a time.
	// Mapping it costs no memory: the kernel backs it as pages are
	// touched.
	arenaRegion = 64 << 20
)

// pageArena gives the cache its slab pages from memory outside the Go heap,
// so the garbage collector neither scans nor accounts for them.
//
// SlabPageSize pages are cut from large mappings aligned to huge pages, which
// the kernel is asked to back with transparent huge pages (unless huge is
// false): a 1 GiB cache then needs 512 TLB entries instead of 262,144, and
// the random item accesses of a hash lookup stop paying a page-table walk.
// Pages of other sizes are mapped one by one. close unmaps everything.
type pageArena struct {
	huge bool

	mu      sync.Mutex
	regions [][]byte // whole region mappings, unmapped by close
	large   [][]byte // pages of other sizes in use, unmapped by free or close
	rest    []byte   // the unused tail of the newest region
	spare   [][]byte // SlabPageSize pages given back; their memory is released
	// warm is where the populated start of rest ends (prefault), or 0
	// before the newest region's first prefault.
	warm uintptr
	// noPopulate is set when the kernel lacks MADV_POPULATE_WRITE.
	noPopulate bool
}

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): fault a range in
// for writing without touching it.
const madvPopulateWrite = 23

// prefault makes the first ahead bytes of rest resident, so that the page
// faults (zeroing a huge page each) are paid here rather than by the store
// that takes the next page, which holds its class lock meanwhile. It works
// outside a.mu, a huge page at a time; alloc may hand out the pages it is
// populating, which is harmless: populating never changes their contents.
// It reports whether it populated anything.
func (a *pageArena) prefault(ahead int) bool {
	a.mu.Lock()
	if a.noPopulate || len(a.rest) == 0 {
		a.mu.Unlock()
		return false
	}
	rest := a.rest // its memory stays mapped until close
	region := len(a.regions)
	lo := uintptr(unsafe.Pointer(&rest[0]))
	hi := lo + uintptr(min(ahead, len(rest)))
	from := max(a.warm, lo)
	a.mu.Unlock()
	if from >= hi {
		return false
	}
	to := min(hi, (from+hugePageSize)&^(hugePageSize-1))
	if err := syscall.Madvise(rest[from-lo:to-lo], madvPopulateWrite); err != nil {
		a.mu.Lock()
		a.noPopulate = err == syscall.EINVAL // an older kernel
		a.mu.Unlock()
		return false
	}
	a.mu.Lock()
	if len(a.regions) == region { // no new region (nor close) meanwhile
		a.warm = max(a.warm, to)
	}
	a.mu.Unlock()
	return true
}

func newPageArena(huge bool) *pageArena {
	return &pageArena{huge: huge}
}

// alloc returns size bytes of zeroed memory.
func (a *pageArena) alloc(size int) ([]byte, error) {
	if size != SlabPageSize {
		m, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.large = append(a.large, m)
		a.mu.Unlock()
		return m, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.spare); n > 0 {
		p := a.spare[n-1]
		a.spare[n-1] = nil
		a.spare = a.spare[:n-1]
		return p, nil
	}
	if len(a.rest) < size {
		if err := a.grow(); err != nil {
			return nil, err
		}
	}
	p := a.rest[:size:size]
	a.rest = a.rest[size:]
	return p, nil
}

// grow maps a new region and makes its huge-page-aligned part the rest.
// The caller holds a.mu.
func (a *pageArena) grow() error {
	m, err := syscall.Mmap(-1, 0, arenaRegion+hugePageSize, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		return err
	}
	a.regions = append(a.regions, m)
	skip := (hugePageSize - int(uintptr(unsafe.Pointer(&m[0]))%hugePageSize)) % hugePageSize
	a.rest = m[skip : skip+arenaRegion]
	a.warm = 0
	if a.huge {
		// Advice only: where transparent huge pages are off, the
		// region is backed by small pages as before.
		_ = syscall.Madvise(a.rest, syscall.MADV_HUGEPAGE)
	}
	return nil
}

// free gives back a page from alloc. A SlabPageSize page's memory returns to
// the operating system at once; its address range is kept for the next
// alloc, which finds it zeroed.
func (a *pageArena) free(b []byte) {
	if len(b) != SlabPageSize {
		a.mu.Lock()
		a.large = slices.DeleteFunc(a.large, func(m []byte) bool { return unsafe.SliceData(m) == unsafe.SliceData(b) })
		a.mu.Unlock()
		_ = syscall.Munmap(b)
		return
	}
	_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
	a.mu.Lock()
	a.spare = append(a.spare, b)
	a.mu.Unlock()
}

// close unmaps every page the arena gave out. No page from it may be used
// afterwards.
func (a *pageArena) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range slices.Concat(a.regions, a.large) {
		_ = syscall.Munmap(m)
	}
	a.regions, a.large, a.rest, a.spare = nil, nil, nil, nil
	a.warm = 0
}

// allocTable returns a zeroed hash table of n buckets outside the Go heap.
// A table of a huge page or more is advised to be backed by huge pages when
// huge is set: lookups land on random buckets, so with 4 KiB pages nearly
// every one misses the TLB.
func allocTable(n int, huge bool) ([]uint32, error) {
	m, err := syscall.Mmap(-1, 0, n*4, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	if huge && len(m) >= hugePageSize {
		_ = syscall.Madvise(m, syscall.MADV_HUGEPAGE)
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(m))), n), nil
}

// retireTable releases the memory of a table an expansion replaced and
// returns it, to be freed at Close: it stays mapped (reading as zeros) so
// that Prefetch's unlocked reads of it never fault.
func retireTable(t []uint32) []uint32 {
	_ = syscall.Madvise(tableBytes(t), syscall.MADV_DONTNEED)
	return t
}

// freeTable unmaps a table from allocTable. Nothing may use it afterwards.
func freeTable(t []uint32) {
	_ = syscall.Munmap(tableBytes(t))
}

// tableBytes returns the mapping behind a table from allocTable.
func tableBytes(t []uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t))), len(t)*4)
}
