//go:build linux && race

package rawio

import (
	"runtime"
	"unsafe"
)

// raceEnabled is true under the race detector.
const raceEnabled = true

// noteRead tells the race detector that b is read, as by a write(2) of it.
func noteRead(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}

// noteWritten tells the race detector that b is written, as by a read(2)
// into it.
func noteWritten(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b))
	}
}
