//go:build !linux

package proxy

// unsentBytes returns -1: the send queue is not known here.
func (cl *client) unsentBytes() int { return -1 }
