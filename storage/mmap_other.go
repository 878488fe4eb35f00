//go:build !linux || race

package storage

// allocPage returns size bytes of zeroed memory from the Go heap. It is used
// where anonymous mmap is not available, and in race-detector builds so that
// the detector watches slab memory too (it ignores memory outside the heap).
func allocPage(size int) ([]byte, error) {
	return make([]byte, size), nil
}

// freePage drops a page obtained from allocPage; the collector reclaims it.
func freePage([]byte) {}
