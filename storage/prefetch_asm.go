//go:build amd64 || arm64

package storage

// canPrefetch reports whether prefetch is an instruction here.
const canPrefetch = true

// prefetch asks the CPU to bring the cache line at addr closer. It never
// faults, whatever addr is, so it may be given an address read without a
// lock.
func prefetch(addr uintptr)
