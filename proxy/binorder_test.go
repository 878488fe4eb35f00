package proxy

import (
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestBinaryServerConnectionsKeepClientOrder: with several connections
// per server, a binary client's requests to one server run in the order
// it sent them, as on one memcached connection: a get pipelined after a
// setq of the same key sees that set.
func TestBinaryServerConnectionsKeepClientOrder(t *testing.T) {
	_, addr := proxyFor(t, startCorvids(t, 2), "server_connections: 4")
	c := testutil.Dial(t, addr)
	defer c.Close()
	flags := make([]byte, 8)
	for round := range 20 {
		var req []byte
		for i := range 50 {
			k, v := fmt.Sprintf("k%d", i%5), fmt.Sprintf("%d-%d", round, i)
			req = append(req, testutil.BinaryRequest{Opcode: 0x11, Extras: flags, Key: []byte(k), Value: []byte(v)}.Bytes()...)
			req = append(req, testutil.BinaryRequest{Opcode: 0x00, Key: []byte(k)}.Bytes()...)
		}
		c.Send(req)
		for i := range 50 {
			want := fmt.Sprintf("%d-%d", round, i)
			r, err := c.ReadBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got := string(r.Value()); r.Status() != 0 || got != want {
				t.Fatalf("round %d, get %d: status %04x value %q, want %q", round, i, r.Status(), got, want)
			}
		}
	}
}
