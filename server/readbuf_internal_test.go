package server

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

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

// TestLargeWriteBuffersOffHeap checks that a connection's write buffer
// grown past keepBufSize is mapped off the heap and given back when the
// connection lets it go, also when an append has since regrown it onto
// the heap (the mapped buffer is then no longer wbuf, and would leak).
func TestLargeWriteBuffersOffHeap(t *testing.T) {
	if !offheap.Mapped {
		t.Skip("buffers come from the heap in this build")
	}
	s := newTestServer(t)
	c := newConn(s, nil) // goroutine mode: no flushFn
	defer s.wbufs.hold(&c.wheld, 0)
	c.wbuf = append(c.wbuf, "VALUE k 0 1048576\r\n"...)
	c.reserve(1 << 20)
	big := c.wbuf
	if !offheap.Owns(big) || string(big) != "VALUE k 0 1048576\r\n" {
		t.Fatalf("reserve of 1 MiB: off the heap %v, holding %q", offheap.Owns(big), big)
	}
	c.releaseWbuf() // into the free list of its size
	if c.wbuf != nil || c.wbig != nil {
		t.Fatalf("after releaseWbuf: wbuf %d bytes, wbig %d bytes", cap(c.wbuf), cap(c.wbig))
	}

	c.reserve(5 << 20) // past the pooled sizes: unmapped when let go
	big = c.wbig
	c.wbuf = append(c.wbuf[:cap(c.wbuf)], 'x') // regrown onto the heap
	if offheap.Owns(c.wbuf) || !offheap.Owns(big) {
		t.Fatal("the append did not move wbuf off the mapped buffer")
	}
	c.releaseWbuf()
	if offheap.Owns(big) {
		t.Fatal("the mapped buffer an append left behind was not given back")
	}
}

// TestBlockedWriteHoldsOneBuffer checks that a reply regrown by an append
// off its mapped buffer does not keep that buffer too while its write
// blocks: only the buffer written is counted in write_buf_bytes.
func TestBlockedWriteHoldsOneBuffer(t *testing.T) {
	if !offheap.Mapped {
		t.Skip("buffers come from the heap in this build")
	}
	s := newTestServer(t)
	nc, peer := net.Pipe() // no descriptor: flush blocks in Write
	defer nc.Close()
	defer peer.Close()
	c := newConn(s, nc)
	defer c.releaseWbuf()
	defer s.wbufs.hold(&c.wheld, 0)
	c.reserve(5 << 20) // past the pooled sizes: unmapped when let go
	big := c.wbig
	if !offheap.Owns(big) {
		t.Fatal("reserve of 5 MiB is not off the heap")
	}
	c.wbuf = append(c.wbuf[:cap(c.wbuf)], 'x') // regrown onto the heap
	want := len(c.wbuf)
	done := make(chan error, 1)
	go func() { done <- c.flush() }()
	deadline := time.Now().Add(10 * time.Second)
	for c.state.Load() != connMwrite && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	held := offheap.Owns(big)
	n, err := io.Copy(io.Discard, io.LimitReader(peer, int64(want)))
	if err != nil || n != int64(want) {
		t.Fatalf("read %d of %d: %v", n, want, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if held {
		t.Fatal("the mapped buffer an append left behind was held while the write blocked")
	}
}
