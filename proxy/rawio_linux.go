package proxy

import "github.com/corvidcache/corvid/internal/rawio"

// rawIO is true where a socket's descriptor can be read and written
// without waiting through its raw connection: a client's reader then holds
// no buffer while it waits (readBuf), and replies and requests are written
// by the goroutine that has them when the socket takes them at once
// (rawWriter).
const rawIO = true

// readFD makes one read from the non-blocking descriptor fd into b, a raw
// system call (see package rawio): the goroutine keeps its processor
// through it.
func readFD(fd uintptr, b []byte) (int, error) { return rawio.Read(int(fd), b) }

// writeFD makes one write of b to the non-blocking descriptor fd, a raw
// system call as readFD.
func writeFD(fd uintptr, b []byte) (int, error) { return rawio.Write(int(fd), b) }
