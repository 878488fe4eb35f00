package server

import (
	"net"
	"testing"
)

// TestSplitsInTwo checks which addresses memcached listens on with two
// sockets (IPv4 and IPv6) where Go listens on one: those without a host,
// when Go bound them dual-stack. They count twice in curr_connections
// and against -c.
func TestSplitsInTwo(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		bound net.Addr
		want  bool
	}{
		{":11211", &net.TCPAddr{IP: net.IPv6unspecified, Port: 11211}, true},
		{":11211", &net.UDPAddr{IP: net.IPv6unspecified, Port: 11211}, true},
		{":11211", &net.TCPAddr{IP: net.IPv4zero, Port: 11211}, false}, // no IPv6
		{"[::]:11211", &net.TCPAddr{IP: net.IPv6unspecified, Port: 11211}, false},
		{"0.0.0.0:11211", &net.TCPAddr{IP: net.IPv4zero, Port: 11211}, false},
		{"127.0.0.1:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, false},
	} {
		if got := splitsInTwo(tc.addr, tc.bound); got != tc.want {
			t.Errorf("splitsInTwo(%q, %v) = %v, want %v", tc.addr, tc.bound, got, tc.want)
		}
	}
}
