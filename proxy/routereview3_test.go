package proxy

import (
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

// TestRouteLocalMetaReplyOwnFlags: a meta request that a route answers
// itself (AllAsyncRoute, NullRoute) gets the reply a server gives it
// when it misses: its opaque and key (flags O and k) carried back, so
// that a client matching replies by opaque takes it for its request, and
// a meta reply to me, not a text one.
func TestRouteLocalMetaReplyOwnFlags(t *testing.T) {
	addrs := startCorvids(t, 1)
	direct := testutil.Dial(t, addrs[0])
	reqs := []string{
		"mg foo v O42 k\r\n",
		"mg foo k t O7\r\n",
		"ms foo 1 O8 k MR\r\nx\r\n", // replace: not stored, as the key is nowhere
		"md foo O9 k\r\n",
		"ma foo O10 k\r\n",
		"mg Zm9v b k v O11\r\n",
		"mg foo v\r\n",
		"me foo\r\n",
	}
	for _, root := range []*route.Handle{
		{Type: route.AllAsyncRoute, Children: []*route.Handle{poolRoute("A")}},
		{Type: route.NullRoute},
	} {
		t.Run(string(root.Type), func(t *testing.T) {
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
			c := testutil.Dial(t, addr)
			for _, req := range reqs {
				want := roundTrip(direct, req, testutil.LineReply)
				if got := roundTrip(c, req, testutil.LineReply); got != want {
					t.Errorf("%q: %q, want the server's %q", req, got, want)
				}
			}
		})
	}
}
