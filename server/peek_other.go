//go:build !linux

package server

// hasInput reports true: where the socket cannot be peeked at, the read
// that follows waits for input itself.
func hasInput(uintptr) bool { return true }

// sendQueueEmpty reports true: where the send queue cannot be looked at,
// a reply the socket took at once counts as taken by the peer.
func sendQueueEmpty(uintptr) bool { return true }
