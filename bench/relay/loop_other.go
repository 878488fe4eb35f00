//go:build !linux

package main

import (
	"errors"
	"net"
)

// loop is the event loop of -mode epoll, which needs Linux.
type loop struct{}

func newLoop() (*loop, error) { return nil, errors.New("-mode epoll needs Linux") }

func (*loop) run() {}

func (*loop) add(net.Conn, net.Conn) error { return errors.New("-mode epoll needs Linux") }
