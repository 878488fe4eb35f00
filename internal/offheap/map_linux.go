//go:build linux && !race

package offheap

import "syscall"

// Mapped reports whether buffers are mapped outside the heap.
const Mapped = true

func mapBuf(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	return b
}

func unmapBuf(b []byte) { _ = syscall.Munmap(b) }
