package server

import "sync/atomic"

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
	b := getBuf(n)
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
	putBuf(b)
}

// grow returns a buffer of at least n bytes to replace old, which it gives
// back after copying old[from:to] to the new buffer's start; or it reports
// false, counting a read_buf_oom, when that would take the total past the
// limit.
func (m *readBufs) grow(old []byte, from, to, n int) ([]byte, bool) {
	delta := int64(bufSize(n) - cap(old))
	if total := m.bytes.Add(delta); m.limit > 0 && total > m.limit {
		m.bytes.Add(-delta)
		m.oom.Add(1)
		return nil, false
	}
	nb := getBuf(n)
	copy(nb, old[from:to])
	putBuf(old)
	return nb, true
}
