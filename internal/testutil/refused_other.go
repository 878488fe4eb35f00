//go:build !unix

package testutil

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback TCP address that refuses connections:
// here a listener's port, closed again (the port may be reused).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
