//go:build !linux

package proxy

import (
	"errors"
	"net"
)

// The event loop (Config.EventLoop) runs on Linux only; elsewhere every
// connection keeps its reader goroutine.
type loop struct{}

func newLoop(*Proxy) (*loop, error) { return nil, errors.New("the event loop runs on Linux only") }

func (*loop) start()                        {}
func (*loop) close()                        {}
func (*loop) addClient(*client) bool        { return false }
func (*loop) addConn(*bconn, net.Conn) bool { return false }
func (*loop) removeConn(*bconn)             {}
func (*loop) kick(*client)                  {}
func (*loop) armed()                        {}
func (*loop) queued(*bconn)                 {}
func (*loop) handover(*client)              {}
