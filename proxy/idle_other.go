//go:build !linux

package proxy

// An idler parks clients on Linux only; elsewhere every client keeps its
// reader goroutine.
type idler struct{}

func newIdler(*Proxy) (*idler, error) { return nil, nil }

func (*idler) park(*client) bool { return false }
func (*idler) wake(*client)      {}
func (*idler) start()            {}
func (*idler) close()            {}
