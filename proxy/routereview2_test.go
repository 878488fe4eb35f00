package proxy

import (
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

const binAdd = 0x02

// TestRouteBinaryAddExistsRanked: a binary add that one child refuses
// because it holds the key (memcached's binary "key exists", text's
// NOT_STORED) ranks as the text add's NOT_STORED, a miss, below the
// other child's success: AllSyncRoute answers it whichever reply comes
// first, and AllMajorityRoute answers it when most children hold the key.
func TestRouteBinaryAddExistsRanked(t *testing.T) {
	addrs := startCorvids(t, 3)
	sync := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("B"), poolRoute("A")}}
	maj := &route.Handle{Type: route.AllMajorityRoute, Children: []*route.Handle{
		poolRoute("C"), poolRoute("A"), poolRoute("B")}}
	for _, tc := range []struct {
		name string
		root *route.Handle
		has  []string // the servers that hold the key before the add
	}{
		{"AllSync", sync, addrs[:1]},
		{"AllMajority", maj, addrs[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: tc.root})
			c, bc := testutil.Dial(t, addr), testutil.Dial(t, addr) // text, binary
			for i := range 20 {
				key := fmt.Sprintf("%s%d", tc.name, i)
				for _, s := range tc.has {
					roundTrip(testutil.Dial(t, s), "set "+key+" 0 0 1\r\nx\r\n", testutil.LineReply)
				}
				text := roundTrip(c, "add "+key+" 0 0 1\r\ny\r\n", testutil.LineReply)
				if text != "NOT_STORED\r\n" {
					t.Fatalf("text add %s: %q, want NOT_STORED", key, text)
				}
				key += "b"
				for _, s := range tc.has {
					roundTrip(testutil.Dial(t, s), "set "+key+" 0 0 1\r\nx\r\n", testutil.LineReply)
				}
				r := binDo(t, bc, testutil.BinaryRequest{Opcode: binAdd, Key: []byte(key), Value: []byte("y"),
					Extras: make([]byte, 8)})
				if r.Status() != 2 {
					t.Fatalf("binary add %s: %v, want status 2 (key exists), as the text add's NOT_STORED", key, r)
				}
			}
		})
	}
}
