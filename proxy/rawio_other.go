//go:build !unix

package proxy

import "syscall"

// rawIO is false where a socket's handle cannot be read or written
// without waiting, as on Windows: a client's reader then reads into a
// buffer through net.Conn, and every write goes through a goroutine that
// may wait (the client's writer, the server connection's writer) with
// net.Conn's blocking Write.
const rawIO = false

// readFD is never called where rawIO is false.
func readFD(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }

// writeFD is never called where rawIO is false.
func writeFD(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
