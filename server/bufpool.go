package server

import "math/bits"

// Connection buffers are recycled through free lists by power-of-two size
// instead of being left to the garbage collector: a workload of large values
// would otherwise allocate and drop a buffer every request, which runs the
// collector hundreds of times a second and lets resident memory drift above
// the heap in use. Unlike sync.Pool, the lists are not emptied by each
// collection, and each keeps at most poolBudget bytes, so idle memory stays
// bounded.
const (
	minPooledShift = 14 // 16 KiB, a connection's initial read buffer
	maxPooledShift = 22 // 4 MiB
	poolBudget     = 2 << 20
)

var bufPools = newBufPools()

func newBufPools() (p [maxPooledShift + 1]chan []byte) {
	for s := minPooledShift; s <= maxPooledShift; s++ {
		p[s] = make(chan []byte, max(2, poolBudget>>s))
	}
	return p
}

// bufSize returns the capacity of the buffer getBuf(n) returns.
func bufSize(n int) int {
	shift := max(bits.Len(uint(n-1)), minPooledShift)
	if shift > maxPooledShift {
		return n
	}
	return 1 << shift
}

// getBuf returns a buffer of length at least n (a power of two when pooled).
func getBuf(n int) []byte {
	shift := max(bits.Len(uint(n-1)), minPooledShift)
	if shift > maxPooledShift {
		return make([]byte, n)
	}
	select {
	case b := <-bufPools[shift]:
		return b
	default:
		return make([]byte, 1<<shift)
	}
}

// putBuf recycles b if it came from getBuf's pooled sizes and its list has
// room.
func putBuf(b []byte) {
	c := cap(b)
	if c&(c-1) != 0 {
		return
	}
	shift := bits.Len(uint(c)) - 1
	if shift < minPooledShift || shift > maxPooledShift {
		return
	}
	select {
	case bufPools[shift] <- b[:c]:
	default:
	}
}
