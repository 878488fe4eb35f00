package proxy

import (
	"math/bits"
	"sync/atomic"

	"github.com/corvidcache/corvid/internal/offheap"
	"github.com/corvidcache/corvid/protocol"
)

// DefaultReadBufMemLimit bounds the large read buffers of all clients
// together when Config.ReadBufMemLimit is 0: the default of corvid
// server's (and memcached's) read_buf_mem_limit.
const DefaultReadBufMemLimit = 64 << 20

// A client reads into a clientReadBuf buffer from readBufPool. A request
// that does not fit (a long get line, a storage command's data) grows it
// into a large buffer, taken from readBufs, which bounds what clients hold
// in large buffers together and recycles them: large buffers come in
// power-of-two sizes, from free lists of at most largeBudget bytes each
// (at least two buffers), which, unlike a sync.Pool, collections do not
// empty. A client holds a large buffer only while it reads a request that
// needs it: once that request is handled and what is left of its input
// fits a small buffer, the large one goes back to its free list, so that
// clients that stop sending, and parked clients, hold none.
//
// Buffers past offheapMin are mapped outside the Go heap (package
// offheap), as corvid server's large read buffers: their size is the
// client's choice, and on the heap the collector would let what clients
// make the proxy hold, and the garbage of their growth, run to twice the
// bound. They are unmapped when a free list has no room for them.
const (
	offheapMin    = 64 << 10
	minLargeShift = 13 // 8 KiB, twice clientReadBuf
	maxLargeShift = 21 // 2 MiB: a 1 MiB get line, or a 1 MB value and its line
	largeBudget   = 2 << 20
	// maxLineBuf is the most an unfinished line may need: a get line of
	// protocol.MaxGetLineLen bytes and its newline.
	maxLineBuf = protocol.MaxGetLineLen + 1
)

// readBufs accounts and recycles the clients' large read buffers (those
// past clientReadBuf bytes): their total may not pass limit, and a
// request that needs more is refused (oom counts it). It is safe for
// concurrent use.
type readBufs struct {
	bytes atomic.Int64 // held by clients, in bytes
	oom   atomic.Int64 // buffers refused for the limit
	limit int64        // 0: none
	free  [maxLargeShift + 1]chan []byte
}

func newReadBufs(limit int64) *readBufs {
	m := &readBufs{limit: max(limit, 0)}
	for s := minLargeShift; s <= maxLargeShift; s++ {
		m.free[s] = make(chan []byte, max(2, largeBudget>>s))
	}
	return m
}

// largeSize returns the size of the large buffer that holds n bytes: a
// power of two up to the largest recycled size, n above it.
func largeSize(n int) int {
	shift := max(bits.Len(uint(n-1)), minLargeShift)
	if shift > maxLargeShift {
		return offheap.Size(n)
	}
	return 1 << shift
}

// growSize returns the size a full buffer of len cur grows to for a
// request that needs want bytes in all (want is at least cur+1; need is
// 0 when the request's size is not known yet). A known size is taken at
// once; an unfinished line grows fourfold, up to what the longest line
// needs, so that a 1 MiB line takes four steps from 4 KiB.
func growSize(cur, want, need int) int {
	if need > 0 {
		return largeSize(want)
	}
	return largeSize(max(want, min(4*cur, maxLineBuf)))
}

// grow returns a large buffer of at least n bytes holding old[r:w] at its
// start, and gives old back; or it counts an oom and reports false, old
// kept, when clients' large buffers would then pass the limit.
func (m *readBufs) grow(old []byte, r, w, n int) ([]byte, bool) {
	size := largeSize(n)
	delta := int64(size)
	if cap(old) > clientReadBuf {
		delta -= int64(cap(old))
	}
	if total := m.bytes.Add(delta); m.limit > 0 && delta > 0 && total > m.limit {
		m.bytes.Add(-delta)
		m.oom.Add(1)
		return old, false
	}
	var nb []byte
	if shift := bits.Len(uint(size - 1)); size&(size-1) == 0 && shift <= maxLargeShift {
		select {
		case nb = <-m.free[shift]:
		default:
		}
	}
	if nb == nil && size > offheapMin {
		nb = offheap.Alloc(size)
	}
	if nb == nil {
		nb = make([]byte, size)
	}
	copy(nb, old[r:w])
	m.recycle(old)
	return nb, true
}

// shrink returns a buffer from readBufPool holding old[r:w] (at most
// clientReadBuf bytes) at its start, and gives back the large buffer old.
func (m *readBufs) shrink(old []byte, r, w int) []byte {
	nb := *readBufPool.Get().(*[]byte)
	copy(nb, old[r:w])
	m.put(old)
	return nb
}

// put gives back a large buffer a client held; other buffers are left.
func (m *readBufs) put(b []byte) {
	if cap(b) <= clientReadBuf {
		return
	}
	m.bytes.Add(-int64(cap(b)))
	m.recycle(b)
}

// recycle puts a large buffer, no longer counted, on its free list when
// it has room, or unmaps it when it was mapped.
func (m *readBufs) recycle(b []byte) {
	c := cap(b)
	if c <= clientReadBuf {
		return
	}
	if shift := bits.Len(uint(c)) - 1; c&(c-1) == 0 && shift >= minLargeShift && shift <= maxLargeShift {
		select {
		case m.free[shift] <- b[:c]:
			return
		default:
		}
	}
	if c > offheapMin {
		offheap.Free(b)
	}
}

// drain unmaps the buffers of the free lists; the proxy calls it once
// its clients are gone.
func (m *readBufs) drain() {
	for _, ch := range m.free {
		for len(ch) > 0 {
			offheap.Free(<-ch)
		}
	}
}
