//go:build linux && !race

package storage

import "syscall"

// allocPage returns size bytes of zeroed memory outside the Go heap, so that
// the garbage collector neither scans nor accounts for slab pages.
func allocPage(size int) ([]byte, error) {
	return syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

// freePage returns memory obtained from allocPage to the operating system.
func freePage(b []byte) {
	_ = syscall.Munmap(b)
}
