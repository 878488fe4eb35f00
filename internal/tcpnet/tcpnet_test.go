package tcpnet

import (
	"net"
	"strconv"
	"testing"
)

func TestNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:11211":       "tcp4",
		"127.0.0.1:0":         "tcp4",
		"[::]:11211":          "tcp6",
		"[::1]:0":             "tcp6",
		"[fe80::1%lo]:0":      "tcp6",
		":11211":              "tcp",
		"localhost:11211":     "tcp",
		"not an address":      "tcp",
		"[::ffff:1.2.3.4]:80": "tcp4",
	} {
		if got := Network(addr); got != want {
			t.Errorf("Network(%q) = %q, want %q", addr, got, want)
		}
		if got, want := UDP(addr), "udp"+want[3:]; got != want {
			t.Errorf("UDP(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestWildcardsShareAPort checks what Network is for: a listener on
// 0.0.0.0 takes IPv4 only, so another can bind the same port on [::],
// as two memcached can; with "tcp" the first would take the port in both
// families.
func TestWildcardsShareAPort(t *testing.T) {
	v4, err := net.Listen(Network("0.0.0.0:0"), "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer v4.Close()
	port := v4.Addr().(*net.TCPAddr).Port
	addr := net.JoinHostPort("::", strconv.Itoa(port))
	v6, err := net.Listen(Network(addr), addr)
	if err != nil {
		if probe, perr := net.Listen("tcp6", "[::1]:0"); perr != nil {
			t.Skip("no IPv6 here")
		} else {
			probe.Close()
		}
		t.Fatalf("[::]:%d after 0.0.0.0:%d: %v", port, port, err)
	}
	v6.Close()
}
