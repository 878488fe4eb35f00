// Package offheap hands out byte buffers from memory Mapped outside the Go
// heap, for the large buffers whose size a client chooses (a value read
// whole, a long get line). The garbage collector lets the heap grow to
// twice what it found live before it collects again, so a server holding
// N bytes of such buffers on the heap may take 2N of memory; Mapped
// buffers take what they hold, and give it back to the system the moment
// they are freed.
//
// Where anonymous mappings are not available, and in race-detector builds
// (the detector watches only the heap), the buffers come from the heap and
// Free leaves them to the collector.
package offheap

import (
	"os"
	"sync"
	"unsafe"
)

var pageSize = os.Getpagesize()

// Size returns the capacity of the buffer Alloc(n) returns: n rounded up
// to the page size.
func Size(n int) int {
	return (n + pageSize - 1) &^ (pageSize - 1)
}

// live holds the Mapped buffers not yet freed, by address, so that Free
// can tell them from heap memory and unmaps nothing else.
var live struct {
	sync.Mutex
	bufs  map[unsafe.Pointer]int
	bytes int64
}

// Alloc returns a zeroed buffer of Size(n) bytes, or nil when the memory
// cannot be had. It is released by Free, and is never reclaimed otherwise.
func Alloc(n int) []byte {
	if n <= 0 {
		return nil
	}
	b := mapBuf(Size(n))
	if b == nil || !Mapped {
		return b
	}
	live.Lock()
	if live.bufs == nil {
		live.bufs = make(map[unsafe.Pointer]int)
	}
	live.bufs[unsafe.Pointer(unsafe.SliceData(b))] = len(b)
	live.bytes += int64(len(b))
	live.Unlock()
	return b
}

// Free releases a buffer Alloc returned (any slice of it that starts where
// it starts). Buffers from elsewhere are left to the collector. Nothing may
// use the buffer afterwards.
func Free(b []byte) {
	if !Mapped || cap(b) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	live.Lock()
	n, ok := live.bufs[p]
	if ok {
		delete(live.bufs, p)
		live.bytes -= int64(n)
	}
	live.Unlock()
	if ok {
		unmapBuf(unsafe.Slice((*byte)(p), n))
	}
}

// Owns reports whether b starts a mapped buffer Alloc returned and Free
// has not released (always false where buffers come from the heap).
func Owns(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	live.Lock()
	defer live.Unlock()
	_, ok := live.bufs[unsafe.Pointer(unsafe.SliceData(b))]
	return ok
}

// InUse returns the bytes of Mapped buffers not yet freed (0 where buffers
// come from the heap).
func InUse() int64 {
	live.Lock()
	defer live.Unlock()
	return live.bytes
}
