//go:build !linux

package server

// loop is an event loop; they exist on Linux only. Elsewhere
// Config.EventLoops is ignored and every connection has its own goroutine.
type loop struct{}

func (s *Server) startLoops() error { return nil }

func (s *Server) stopLoops() {}

func (s *Server) killLoops() {}

func (s *Server) poll(c *conn) bool { return false }

// spareReadBytes returns the bytes of the loop's spare read buffers.
func (l *loop) spareReadBytes() int64 { return 0 }
