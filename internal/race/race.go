//go:build race

// Package race tells the race detector about memory that a raw system
// call reads or writes. syscall.Read and syscall.Write note the buffer
// they hand the kernel; syscall.RawSyscall, which corvid uses for reads
// and writes of non-blocking sockets, notes nothing, so without these
// notes a goroutine that touched a buffer while the kernel filled or sent
// it would go unreported.
package race

import (
	"runtime"
	"unsafe"
)

// Enabled is true under the race detector.
const Enabled = true

// ReadRange notes that b is read, as by a write(2) of it.
func ReadRange(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}

// WriteRange notes that b is written, as by a read(2) into it.
func WriteRange(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b))
	}
}
