//go:build !unix

package server

import "syscall"

// rawIO is false where a socket's handle cannot be written without
// waiting, as on Windows: a connection then has no raw connection, so
// writeNow writes nothing and every reply goes out through net.Conn's
// blocking Write, and waitInput leaves the waiting to the read.
const rawIO = false

// writeFD is never called where rawIO is false.
func writeFD(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
