//go:build unix

package server

import "syscall"

// rawIO is true where a socket's descriptor can be written without
// waiting (writeNow) and peeked at (waitInput) through its raw connection.
const rawIO = true

// writeFD makes one write of b to the descriptor fd.
func writeFD(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
