//go:build unix && !linux

package proxy

import "syscall"

// rawIO is true where a socket's descriptor can be read and written
// without waiting through its raw connection: a client's reader then holds
// no buffer while it waits (readBuf), and replies and requests are written
// by the goroutine that has them when the socket takes them at once
// (rawWriter).
const rawIO = true

// readFD makes one read from the descriptor fd into b.
func readFD(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }

// writeFD makes one write of b to the descriptor fd.
func writeFD(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
