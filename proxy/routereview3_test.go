package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

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

// heldServer answers nothing until release is closed; then it answers
// each set it read, and every one after, with SERVER_ERROR.
func heldServer(t *testing.T, release <-chan struct{}) string {
	return testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		var mu sync.Mutex
		owed, released := 0, false
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-release:
			case <-done:
				return
			}
			mu.Lock()
			defer mu.Unlock()
			released = true
			nc.Write([]byte(strings.Repeat("SERVER_ERROR held\r\n", owed)))
		}()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if !strings.HasPrefix(line, "set ") {
				continue
			}
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			mu.Lock()
			if released {
				nc.Write([]byte("SERVER_ERROR held\r\n"))
			} else {
				owed++
			}
			mu.Unlock()
		}
	})
}

// TestRouteAnsweredEarlyBounded: the sub-calls AllFastestRoute and
// AllMajorityRoute leave in flight once they have answered (mcrouter
// completes them in the background) count as the route's detached
// requests: past maxAsyncPending of them, a request's answer waits for
// its last sub-call, so that a client cannot pile up requests (and the
// copies of their bytes) on a child that does not answer. The answer
// that waited is still the route's: the first non-error, the majority.
func TestRouteAnsweredEarlyBounded(t *testing.T) {
	fast := startCorvids(t, 2)
	for _, tc := range []struct {
		typ   route.Type
		pools []string
	}{
		{route.AllFastestRoute, []string{"A", "C"}},
		{route.AllMajorityRoute, []string{"A", "B", "C"}},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			release := make(chan struct{})
			pools := onePools(fast[0], fast[1], heldServer(t, release))
			pools["C"].Timeout = time.Minute // C never times out in the test
			root := &route.Handle{Type: tc.typ, Name: "early"}
			for _, pl := range tc.pools {
				root.Children = append(root.Children, poolRoute(pl))
			}
			p, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
			c := testutil.Dial(t, addr)
			c.Timeout = 3 * time.Second
			n := maxAsyncPending + maxInflightUnits + 200
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, "set k%d 0 0 1\r\nv\r\n", i)
			}
			c.Send([]byte(b.String()))
			got := 0
			for ; got < n; got++ {
				reply, err := c.TryReadReply(testutil.LineReply)
				if err != nil {
					break // held: C has not answered
				}
				if string(reply) != "STORED\r\n" {
					t.Fatalf("set %d: %q", got, reply)
				}
			}
			steps := p.fronts[0].rt.Load().steps.Load()
			if got != maxAsyncPending || steps > maxAsyncPending+maxInflightUnits {
				t.Fatalf("%d sets answered, %d in flight, before C answered; want %d answered, at most %d in flight",
					got, steps, maxAsyncPending, maxAsyncPending+maxInflightUnits)
			}
			if rs := routeStat(p, "early"); rs.AsyncPending != maxAsyncPending {
				t.Errorf("async_pending %d, want %d", rs.AsyncPending, maxAsyncPending)
			}
			close(release)
			for ; got < n; got++ {
				if reply := string(c.ReadReply(testutil.LineReply)); reply != "STORED\r\n" {
					t.Fatalf("set %d, once C answered: %q", got, reply)
				}
			}
			await(t, "the requests to end", func() bool {
				return p.fronts[0].rt.Load().steps.Load() == 0 && routeStat(p, "early").AsyncPending == 0
			})
		})
	}
}
