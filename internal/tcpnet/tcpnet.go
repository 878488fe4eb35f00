// Package tcpnet picks the network a TCP (or UDP) listener binds, as
// memcached and twemproxy bind theirs.
package tcpnet

import (
	"net"
	"net/netip"
)

// Network returns the network to listen on addr (host:port) with: "tcp4"
// for an IPv4 address, "tcp6" for an IPv6 one, else "tcp". Given "tcp",
// Go binds 0.0.0.0 as an IPv6 socket that takes IPv4 too, and [::] the
// same; memcached and twemproxy bind an address in its own family (and
// memcached's IPv6 sockets take IPv6 alone), so that 0.0.0.0 is reached
// over IPv4 only, and a server on [::] can share its port with another on
// 0.0.0.0. A host name, or no host (":11211"), takes both.
func Network(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "tcp"
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return "tcp"
	case ip.Is4() || ip.Is4In6():
		return "tcp4"
	}
	return "tcp6"
}

// UDP is Network for a UDP socket: "udp4", "udp6" or "udp".
func UDP(addr string) string { return "udp" + Network(addr)[len("tcp"):] }
