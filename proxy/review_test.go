package proxy

import (
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestGatWithoutKeys: "gat <exptime>" with no key is answered END, as
// memcached answers it, in order, whatever the number of servers; it
// must not leave the client waiting (nor the proxy's Close).
func TestGatWithoutKeys(t *testing.T) {
	for _, n := range []int{1, 3} {
		backends := startCorvids(t, n)
		_, addr := proxyFor(t, backends)
		c := testutil.Dial(t, addr)
		if r := roundTrip(c, "set k 0 0 1\r\nv\r\n", testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
		c.Send([]byte("gat 10\r\ngats 0\r\nget k\r\n"))
		for i, want := range []string{"END\r\n", "END\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n"} {
			r, err := c.TryReadReply(testutil.ValuesReply)
			if err != nil || string(r) != want {
				t.Fatalf("%d servers, reply %d: %q, %v; want %q", n, i, r, err, want)
			}
		}
		c.Close()
	}
}
