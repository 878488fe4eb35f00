//go:build !linux

package server

// hasInput reports true: where the socket cannot be peeked at, the read
// that follows waits for input itself.
func hasInput(uintptr) bool { return true }
