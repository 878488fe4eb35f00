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

// TestRouteShadowOfFailedSend: a PoolRoute under a composer whose send
// fails at once (its server's queue is full) completes the composer's
// step, which may then be reused; its shadow still gets a copy of its own
// request, not of whatever the step holds by then (nothing: a request
// with no bytes, whose reply the shadow's connection would wait for,
// giving the replies after it to the requests before).
func TestRouteShadowOfFailedSend(t *testing.T) {
	shadow := startCorvids(t, 1)[0]
	stop := make(chan struct{})
	deaf := testutil.FakeServer(t, func(nc net.Conn) {
		nc.(*net.TCPConn).SetReadBuffer(4096)
		<-stop // reads nothing
	})
	t.Cleanup(func() { close(stop) })
	pools := onePools(deaf, shadow)
	pools["A"].Timeout, pools["B"].Timeout = time.Minute, time.Minute
	prim := poolRoute("A")
	prim.Shadows = []route.Shadow{{Target: poolRoute("B"), KeyFractionRange: [2]float64{0, 1}}}
	root := &route.Handle{Type: route.PrefixSelectorRoute, Policies: map[string]*route.Handle{
		"b:": poolRoute("B"),
	}, Wildcard: &route.Handle{Type: route.FailoverRoute, Children: []*route.Handle{prim}}}
	_, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	// Past what the kernel holds and A's queue (8 MiB), sends to A fail.
	// A client has initialWindow requests in flight: A answers none.
	val := strings.Repeat("x", 256<<10)
	const clients = 16
	for i := range clients {
		var b strings.Builder
		for j := range initialWindow {
			fmt.Fprintf(&b, "set k%d.%d 0 0 %d\r\n%s\r\n", i, j, len(val), val)
		}
		testutil.Dial(t, addr).Send([]byte(b.String()))
	}
	sc := testutil.Dial(t, shadow)
	for i := range clients {
		for j := range initialWindow {
			await(t, "the shadow copies", func() bool {
				return strings.HasPrefix(roundTrip(sc, fmt.Sprintf("mg k%d.%d s\r\n", i, j), testutil.LineReply), "HD")
			})
		}
	}
	c := testutil.Dial(t, addr)
	if got := setVia(t, c, "b:x", "v"); got != "STORED\r\n" {
		t.Fatalf("set through B, after the copies: %q", got)
	}
}

// TestRouteComposedMetaOpaque: a meta request with an opaque through a
// composer, which sends its children the request as one piece (its line,
// its data, the proxy's mn after a quiet one), is checked against its
// line alone: its server's reply, which carries the opaque, is its own,
// not taken for another request's (failing the request, after a store
// the server made, and the connection with every request on it).
func TestRouteComposedMetaOpaque(t *testing.T) {
	addrs := startCorvids(t, 2)
	for _, root := range []*route.Handle{
		{Type: route.FailoverRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}},
		{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}},
	} {
		t.Run(string(root.Type), func(t *testing.T) {
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
			c := testutil.Dial(t, addr)
			key := "k" + string(root.Type)
			if got := roundTrip(c, "ms "+key+" 2 T0 O5\r\nab\r\n", testutil.LineReply); got != "HD O5\r\n" {
				t.Fatalf("ms: %q", got)
			}
			if got := roundTrip(c, "mg "+key+" v O6\r\n", testutil.MetaValueReply); got != "VA 2 O6\r\nab\r\n" {
				t.Fatalf("mg: %q", got)
			}
			if got := roundTrip(c, "mg "+key+" v q O7\r\nmn\r\n", testutil.MetaValueReply); got != "VA 2 O7\r\nab\r\n" {
				t.Fatalf("quiet mg: %q", got)
			}
			if got := roundTrip(c, "mn\r\n", testutil.LineReply); got != "MN\r\n" {
				t.Fatalf("mn: %q", got)
			}
		})
	}
}
