package server

import (
	"math/bits"
	"sync/atomic"

	"github.com/corvidcache/corvid/internal/offheap"
)

// defaultReadBufMemLimit is the bound on read-buffer memory when
// Config.ReadBufMemLimit is 0 and the item size limit is small enough.
const defaultReadBufMemLimit = 64 << 20

// readBufs counts the memory of the connections' read buffers (those the
// event loops keep for reuse included), reported as memcached's
// read_buf_count, read_buf_bytes and read_buf_oom, and bounds it: a buffer
// may always have its first readBufSize bytes, but grows past them only
// while the total stays within limit. Buffers change hands between a
// connection and its loop's spares without being counted again, so the
// counts cost nothing per request. It is safe for concurrent use.
type readBufs struct {
	bytes atomic.Int64 // read_buf_bytes
	count atomic.Int64 // read_buf_count
	oom   atomic.Uint64
	limit int64 // 0: none
}

// get returns a new read buffer of at least n bytes.
func (m *readBufs) get(n int) []byte {
	b := allocBig(n)
	m.bytes.Add(int64(cap(b)))
	m.count.Add(1)
	return b
}

// put gives back a read buffer (nil is ignored).
func (m *readBufs) put(b []byte) {
	if b == nil {
		return
	}
	m.bytes.Add(-int64(cap(b)))
	m.count.Add(-1)
	freeBig(b)
}

// grow returns a buffer of at least n bytes to replace old, which it gives
// back after copying old[from:to] to the new buffer's start; or it reports
// false, counting a read_buf_oom, when that would take the total past the
// limit or the memory cannot be had.
func (m *readBufs) grow(old []byte, from, to, n int) ([]byte, bool) {
	delta := int64(readSize(n) - cap(old))
	if total := m.bytes.Add(delta); m.limit > 0 && total > m.limit {
		m.bytes.Add(-delta)
		m.oom.Add(1)
		return nil, false
	}
	nb := allocBig(n)
	if nb == nil {
		m.bytes.Add(-delta)
		m.oom.Add(1)
		return nil, false
	}
	copy(nb, old[from:to])
	freeBig(old)
	return nb, true
}

// Read and write buffers past keepBufSize, which connections give back as
// soon as their input is consumed or their replies written, are mapped
// outside the Go heap (package offheap): their size is the client's
// choice, and on the heap the collector would let the memory they take
// run to twice what they hold.
// The power-of-two sizes up to 1<<maxPooledShift are recycled through
// their own free lists, as getBuf's, so that a workload of large values
// does not map and fault in a buffer per request; larger ones are
// unmapped when given back.
var bigPools = newBigPools()

func newBigPools() (p [maxPooledShift + 1]chan []byte) {
	for s := bigShift; s <= maxPooledShift; s++ {
		p[s] = make(chan []byte, max(2, poolBudget>>s))
	}
	return p
}

// bigShift is the log2 of the smallest buffer mapped off the heap.
var bigShift = bits.Len(uint(keepBufSize))

// readSize returns the capacity of the buffer allocBig(n) returns.
func readSize(n int) int {
	if n <= keepBufSize {
		return bufSize(n)
	}
	if shift := bits.Len(uint(n - 1)); shift <= maxPooledShift {
		return 1 << shift
	}
	return offheap.Size(n)
}

// allocBig returns a buffer of readSize(n) bytes, or nil when the memory
// cannot be had.
func allocBig(n int) []byte {
	if n <= keepBufSize {
		return getBuf(n)
	}
	size := readSize(n)
	if shift := bits.Len(uint(size - 1)); shift <= maxPooledShift {
		select {
		case b := <-bigPools[shift]:
			return b
		default:
		}
	}
	return offheap.Alloc(size)
}

// freeBig recycles or releases a buffer from allocBig. Nothing may use
// it afterwards.
func freeBig(b []byte) {
	c := cap(b)
	if c <= keepBufSize {
		putBuf(b)
		return
	}
	if c&(c-1) == 0 && bits.Len(uint(c))-1 <= maxPooledShift {
		select {
		case bigPools[bits.Len(uint(c))-1] <- b[:c]:
			return
		default:
		}
	}
	offheap.Free(b)
}

// MemcachedMaxGetKeys returns the most keys memcached 1.6 answers in one
// get line with -o read_buf_mem_limit=limit (bytes) and -t threads, for
// Config.MaxGetKeys: each worker thread has limit/threads of 16 KiB
// buffers (at least one), shared by its read buffers and its bundles of
// 13 response objects, and a line takes one response object per key while
// its connection holds one read buffer. It returns -1 where memcached
// has no buffer left for any response, and 0 (no bound) for no limit.
func MemcachedMaxGetKeys(limit int64, threads int) int {
	const (
		bufSize       = 16 << 10 // memcached's READ_BUFFER_SIZE
		respPerBundle = 13       // MAX_RESP_PER_BUNDLE on 64-bit builds
	)
	if limit <= 0 {
		return 0
	}
	bufs := limit / int64(max(threads, 1)) / bufSize
	if bufs <= 1 {
		return -1
	}
	return int(bufs-1) * respPerBundle
}
