package server

import (
	"testing"

	"github.com/corvidcache/corvid/internal/offheap"
)

// TestLargeReadBuffersOffHeap checks that read buffers past keepBufSize
// are mapped outside the Go heap (where mapping is available), pooled or
// not, and that readBufs counts what it hands out and takes back.
func TestLargeReadBuffersOffHeap(t *testing.T) {
	if !offheap.Mapped {
		t.Skip("buffers come from the heap in this build")
	}
	var m readBufs
	small := m.get(readBufSize)
	if offheap.Owns(small) {
		t.Fatal("a connection's first read buffer is mapped off the heap")
	}
	b := small
	for _, n := range []int{keepBufSize, keepBufSize + 1, 1 << 20, 5 << 20} {
		copy(b, "abc")
		nb, ok := m.grow(b, 0, 3, n)
		if !ok {
			t.Fatalf("grow to %d refused", n)
		}
		if len(nb) != readSize(n) || len(nb) < n {
			t.Fatalf("grow to %d: %d bytes, want %d", n, len(nb), readSize(n))
		}
		if string(nb[:3]) != "abc" {
			t.Fatalf("grow to %d lost the input: %q", n, nb[:3])
		}
		if got, want := offheap.Owns(nb), n > keepBufSize; got != want {
			t.Fatalf("buffer of %d bytes off the heap: %v, want %v", n, got, want)
		}
		if got := m.bytes.Load(); got != int64(len(nb)) {
			t.Fatalf("read_buf_bytes %d with one buffer of %d", got, len(nb))
		}
		b = nb
	}
	m.put(b)
	if m.bytes.Load() != 0 || m.count.Load() != 0 {
		t.Fatalf("after put: read_buf_bytes %d, read_buf_count %d", m.bytes.Load(), m.count.Load())
	}
	if offheap.Owns(b) {
		t.Fatal("a buffer past the pooled sizes is still mapped after put")
	}
}
