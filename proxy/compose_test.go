package proxy

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

// await polls cond until it holds, failing the test after 10 s.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRouteMissFailover(t *testing.T) {
	addrs := startCorvids(t, 3)
	root := &route.Handle{Type: route.MissFailoverRoute, Name: "mf",
		Children: []*route.Handle{poolRoute("A"), poolRoute("B"), poolRoute("C")}}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	setVia(t, testutil.Dial(t, addrs[1]), "k", "inB")
	setVia(t, testutil.Dial(t, addrs[2]), "k", "inC")
	c := testutil.Dial(t, addr)
	if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != "VALUE k 0 3\r\ninB\r\nEND\r\n" {
		t.Fatalf("get: %q, want B's value (A misses)", got)
	}
	if got := roundTrip(c, "get none\r\n", testutil.ValuesReply); got != "END\r\n" {
		t.Fatalf("get of a key nowhere: %q", got)
	}
	if rs := routeStat(p, "mf"); rs.Failovers != 3 {
		t.Errorf("failovers = %d, want 3 (1 for k, 2 for none)", rs.Failovers)
	}
	// Other operations go to the first child only.
	setVia(t, c, "s", "x")
	if !has(t, addrs[0], "s") || has(t, addrs[1], "s") {
		t.Error("a set did not go to the first child only")
	}
}

func TestRouteWarmUp(t *testing.T) {
	addrs := startCorvids(t, 2) // A cold, B warm
	root := &route.Handle{Type: route.WarmUpRoute, Name: "wu", Cold: poolRoute("A"), Warm: poolRoute("B"), Exptime: 100}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	setVia(t, testutil.Dial(t, addrs[1]), "k", "warmval")
	c := testutil.Dial(t, addr)
	want := "VALUE k 0 7\r\nwarmval\r\nEND\r\n"
	if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != want {
		t.Fatalf("first get: %q", got)
	}
	// The hit in warm is added to cold, detached.
	await(t, "the warm-up fill", func() bool { return has(t, addrs[0], "k") })
	// The second get hits cold: remove the warm copy to prove it.
	bc := testutil.Dial(t, addrs[1])
	roundTrip(bc, "delete k\r\n", testutil.LineReply)
	if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != want {
		t.Fatalf("second get: %q", got)
	}
	if rs := routeStat(p, "wu"); rs.WarmFills != 1 {
		t.Errorf("warmup_fills = %d, want 1", rs.WarmFills)
	}
	// Sets go to cold.
	setVia(t, c, "s", "x")
	if !has(t, addrs[0], "s") || has(t, addrs[1], "s") {
		t.Error("a set did not go to cold only")
	}
}

func TestRouteAllSyncWorstReply(t *testing.T) {
	addrs := startCorvids(t, 2)
	root := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	c := testutil.Dial(t, addr)
	if got := setVia(t, c, "k", "v"); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	if !has(t, addrs[0], "k") || !has(t, addrs[1], "k") {
		t.Fatal("AllSync did not send the set to both")
	}
	roundTrip(testutil.Dial(t, addrs[1]), "delete k\r\n", testutil.LineReply)
	// A answers DELETED, B NOT_FOUND: the worse is NOT_FOUND.
	if got := roundTrip(c, "delete k\r\n", testutil.LineReply); got != "NOT_FOUND\r\n" {
		t.Fatalf("delete: %q, want NOT_FOUND", got)
	}
	// An error is worse than a miss.
	root2 := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{
		poolRoute("A"), {Type: route.ErrorRoute, Response: "bad"}}}
	_, addr2 := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root2})
	if got := setVia(t, testutil.Dial(t, addr2), "k", "v"); got != "SERVER_ERROR bad\r\n" {
		t.Fatalf("set with an ErrorRoute child: %q", got)
	}
}

// silentServer accepts connections and reads without ever replying; it
// counts the bytes it read.
func silentServer(t *testing.T, read *atomic.Int64) string {
	return testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			read.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
}

func TestRouteAllAsyncDoesNotWait(t *testing.T) {
	var read atomic.Int64
	slow := silentServer(t, &read)
	fast := startCorvids(t, 1)[0]
	pools := onePools(slow, fast)
	pools["A"].Timeout = time.Minute // the slow server never times out in the test
	root := &route.Handle{Type: route.AllAsyncRoute, Name: "aa", Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	c := testutil.Dial(t, addr)
	c.Timeout = 2 * time.Second
	// mcrouter's AllAsyncRoute answers at once with NullRoute's reply.
	for i := range 5 {
		if got := setVia(t, c, fmt.Sprintf("k%d", i), "v"); got != "NOT_STORED\r\n" {
			t.Fatalf("set: %q", got)
		}
	}
	if got := roundTrip(c, "get k0\r\n", testutil.ValuesReply); got != "END\r\n" {
		t.Fatalf("get: %q", got)
	}
	await(t, "the copies to reach both servers", func() bool {
		return has(t, fast, "k4") && read.Load() > 0
	})
	if rs := routeStat(p, "aa"); rs.AsyncPending < 5 {
		t.Errorf("async_pending = %d, want at least the 5 sets the slow server holds", rs.AsyncPending)
	}
}

func TestRouteAsyncBounded(t *testing.T) {
	var read atomic.Int64
	slow := silentServer(t, &read)
	pools := onePools(slow)
	pools["A"].Timeout = time.Minute
	root := &route.Handle{Type: route.AllAsyncRoute, Name: "aa", Children: []*route.Handle{poolRoute("A")}}
	p, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	c := testutil.Dial(t, addr)
	n := maxAsyncPending + 100
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "set k%d 0 0 1 noreply\r\nv\r\n", i)
	}
	c.Send([]byte(b.String() + "mn\r\n"))
	if got := string(c.ReadReply(testutil.LineReply)); got != "MN\r\n" {
		t.Fatalf("reply: %q", got)
	}
	rs := routeStat(p, "aa")
	if rs.AsyncPending != maxAsyncPending || rs.AsyncDropped != 100 {
		t.Errorf("async_pending %d, async_dropped %d; want %d and 100", rs.AsyncPending, rs.AsyncDropped, maxAsyncPending)
	}
}

func TestRouteShadow(t *testing.T) {
	addrs := startCorvids(t, 2)
	prim := poolRoute("A")
	prim.Shadows = []route.Shadow{{Target: poolRoute("B"), KeyFractionRange: [2]float64{0, 0.3}}}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: prim})
	c := testutil.Dial(t, addr)
	const n = 400
	want := 0
	for i := range n {
		k := fmt.Sprintf("key%d", i)
		setVia(t, c, k, "v")
		if keyFraction([]byte(k)) <= 0.3 {
			want++
		}
	}
	if want < n/5 || want > n*2/5 {
		t.Fatalf("%d of %d keys in [0,0.3]: the key fraction is not spread", want, n)
	}
	await(t, "the shadow copies", func() bool { return routeStat(p, "poolA").ShadowSent == int64(want) })
	sc := testutil.Dial(t, addrs[1])
	for i := range n {
		k := fmt.Sprintf("key%d", i)
		in := keyFraction([]byte(k)) <= 0.3
		await(t, "shadow "+k, func() bool {
			return !in || strings.HasPrefix(roundTrip(sc, "get "+k+"\r\n", testutil.ValuesReply), "VALUE")
		})
		if !in && roundTrip(sc, "get "+k+"\r\n", testutil.ValuesReply) != "END\r\n" {
			t.Errorf("key %s outside the fraction was shadowed", k)
		}
	}
}

func TestRouteReloadUnderLoad(t *testing.T) {
	addrs := startCorvids(t, 2)
	cfgA := &route.Config{Pools: onePools(addrs[0]), Root: poolRoute("A")}
	cfgAB := &route.Config{Pools: onePools(addrs...), Root: &route.Handle{Type: route.PrefixSelectorRoute,
		Policies: map[string]*route.Handle{"b:": poolRoute("B")},
		Wildcard: &route.Handle{Type: route.FailoverRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}}}
	p, addr := startRouter(t, cfgA)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var failed, done atomic.Int64
	var firstErr atomic.Value
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				failed.Add(1)
				return
			}
			defer nc.Close()
			buf := make([]byte, 256)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, i%50)
				fmt.Fprintf(nc, "set %s 0 0 1\r\nv\r\nget %s\r\n", k, k)
				want := fmt.Sprintf("STORED\r\nVALUE %s 0 1\r\nv\r\nEND\r\n", k)
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(nc, buf[:len(want)]); err != nil || string(buf[:len(want)]) != want {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%q %v", buf[:len(want)], err))
					failed.Add(1)
					return
				}
				done.Add(1)
			}
		}()
	}
	for i := range 20 {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgAB
		}
		if err := p.ReloadRoutes(cfg); err != nil {
			t.Fatal(err)
		}
		at := done.Load()
		await(t, "requests after the reload", func() bool { return done.Load() > at+10 || failed.Load() > 0 })
	}
	// A bad configuration keeps the old tree.
	bad := &route.Config{Pools: onePools(addrs...), Root: poolRoute("nosuch")}
	if err := p.ReloadRoutes(bad); err == nil || !strings.Contains(err.Error(), `no pool "nosuch"`) {
		t.Errorf("bad reload: %v", err)
	}
	at := done.Load()
	await(t, "requests after the bad reload", func() bool { return done.Load() > at+10 || failed.Load() > 0 })
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d clients failed; first: %v", failed.Load(), firstErr.Load())
	}
}

func TestNutcrackerPoolRoute(t *testing.T) {
	addrs := startCorvids(t, 2)
	dir := t.TempDir()
	conf := fmt.Sprintf("alpha:\n  listen: 127.0.0.1:0\n  servers:\n   - %s:1\nbeta:\n  listen: %s/beta\n  servers:\n   - %s:1\ngamma:\n  listen: %s/gamma\n  servers:\n   - %s:1\n",
		addrs[0], dir, addrs[0], dir, addrs[1])
	pc, err := nutcracker.Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	pc.Pools[0].Route = &route.Handle{Type: route.PrefixSelectorRoute, Path: "alpha.route",
		Policies: map[string]*route.Handle{"x:": {Type: route.PoolRoute, Pool: "gamma"}},
		Wildcard: &route.Handle{Type: route.PoolRoute, Pool: "beta"}}
	p, err := New(Config{Pools: pc})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(t.Context()) }()
	defer func() { p.Close(); <-done }()
	c := testutil.Dial(t, p.Addrs()["alpha"].String())
	setVia(t, c, "x:1", "v")
	setVia(t, c, "y:1", "v")
	if !has(t, addrs[1], "x:1") || has(t, addrs[0], "x:1") || !has(t, addrs[0], "y:1") || has(t, addrs[1], "y:1") {
		t.Error("the pool's route did not place the keys")
	}
	// A route naming a missing pool is refused at reload; the old
	// configuration keeps serving.
	pc2, _ := nutcracker.Parse([]byte(conf))
	pc2.Pools[0].Route = &route.Handle{Type: route.PoolRoute, Pool: "delta", Path: "alpha.route"}
	if err := p.Reload(pc2); err == nil || !strings.Contains(err.Error(), `alpha.route: no pool "delta"`) {
		t.Errorf("reload: %v", err)
	}
	setVia(t, c, "x:2", "v")
	if !has(t, addrs[1], "x:2") {
		t.Error("the old route stopped serving")
	}
}

func TestRouteAllInitialFastestMajority(t *testing.T) {
	addrs := startCorvids(t, 3)
	// B has the key; A and C miss.
	setVia(t, testutil.Dial(t, addrs[1]), "k", "inB")
	kids := func(hs ...*route.Handle) []*route.Handle { return hs }
	errR := &route.Handle{Type: route.ErrorRoute, Response: "e"}
	for _, tc := range []struct {
		name string
		root *route.Handle
		req  string
		want string
	}{
		{"initial answers the first child", &route.Handle{Type: route.AllInitialRoute,
			Children: kids(poolRoute("A"), poolRoute("B"))}, "get k\r\n", "END\r\n"},
		{"fastest skips errors", &route.Handle{Type: route.AllFastestRoute,
			Children: kids(errR, poolRoute("B"), errR)}, "get k\r\n", "VALUE k 0 3\r\ninB\r\nEND\r\n"},
		{"fastest of all errors is an error", &route.Handle{Type: route.AllFastestRoute,
			Children: kids(errR, errR)}, "get k\r\n", "SERVER_ERROR e\r\n"},
		{"majority of misses", &route.Handle{Type: route.AllMajorityRoute,
			Children: kids(poolRoute("A"), poolRoute("B"), poolRoute("C"))}, "get k\r\n", "END\r\n"},
		{"majority of hits", &route.Handle{Type: route.AllMajorityRoute,
			Children: kids(poolRoute("B"), errR, poolRoute("B"))}, "get k\r\n", "VALUE k 0 3\r\ninB\r\nEND\r\n"},
		{"null get", &route.Handle{Type: route.NullRoute}, "get k\r\n", "END\r\n"},
		{"null set", &route.Handle{Type: route.NullRoute}, "set k 0 0 1\r\nv\r\n", "NOT_STORED\r\n"},
		{"null delete", &route.Handle{Type: route.NullRoute}, "delete k\r\n", "NOT_FOUND\r\n"},
		{"null mg", &route.Handle{Type: route.NullRoute}, "mg k v\r\n", "EN\r\n"},
		{"operation selector", &route.Handle{Type: route.OperationSelectorRoute,
			Policies: map[string]*route.Handle{"get": poolRoute("B")}, Default: errR}, "get k\r\n", "VALUE k 0 3\r\ninB\r\nEND\r\n"},
		{"operation selector default", &route.Handle{Type: route.OperationSelectorRoute,
			Policies: map[string]*route.Handle{"get": poolRoute("B")}, Default: errR}, "delete k\r\n", "SERVER_ERROR e\r\n"},
		{"composed keys in a multi-get", &route.Handle{Type: route.PrefixSelectorRoute,
			Policies: map[string]*route.Handle{"k": {Type: route.MissFailoverRoute, Children: kids(poolRoute("A"), poolRoute("B"))}},
			Wildcard: poolRoute("C")}, "get x k y k\r\n", "VALUE k 0 3\r\ninB\r\nVALUE k 0 3\r\ninB\r\nEND\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: tc.root})
			c := testutil.Dial(t, addr)
			kind := testutil.AnyReply
			if got := roundTrip(c, tc.req, kind); got != tc.want {
				t.Errorf("%q: %q, want %q", tc.req, got, tc.want)
			}
		})
	}
}

func TestRouteRateLimit(t *testing.T) {
	root := &route.Handle{Type: route.RateLimitRoute, Name: "rl", Children: []*route.Handle{poolRoute("A")},
		Rates: map[string]route.Rate{"sets": {PerSecond: 0.001, Burst: 2}}}
	p, addr := startRouter(t, &route.Config{Pools: onePools(startCorvids(t, 1)...), Root: root})
	c := testutil.Dial(t, addr)
	for i, want := range []string{"STORED\r\n", "STORED\r\n", "NOT_STORED\r\n"} {
		if got := setVia(t, c, "k", "v"); got != want {
			t.Errorf("set %d: %q, want %q", i, got, want)
		}
	}
	// Gets are not limited.
	for range 5 {
		if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != "VALUE k 0 1\r\nv\r\nEND\r\n" {
			t.Fatalf("get: %q", got)
		}
	}
	if rs := routeStat(p, "rl"); rs.Errors != 1 {
		t.Errorf("errors = %d, want 1 refused", rs.Errors)
	}
}

// TestRouteReloadInFlightComposed: a failover in flight when a reload
// removes its pools finishes on the old tree: its next child's server
// stays open until it has answered.
func TestRouteReloadInFlightComposed(t *testing.T) {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	primary := testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 512)
		if _, err := nc.Read(buf); err != nil {
			return
		}
		got <- struct{}{}
		<-release // then the connection closes: the request fails
	})
	addrs := startCorvids(t, 2)
	setVia(t, testutil.Dial(t, addrs[0]), "k", "backup")
	pools := onePools(primary, addrs[0])
	pools["A"].Timeout = time.Minute
	root := &route.Handle{Type: route.FailoverRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	c := testutil.Dial(t, addr)
	c.Send([]byte("get k\r\n"))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the primary got no request")
	}
	var b *backend
	for _, pl := range p.pools {
		if pl.name == "B" {
			b = pl.cur.Load().all[0]
		}
	}
	// The new tree keeps A (busy with the request) and drops B (idle).
	next := &route.Config{Pools: map[string]*route.Pool{"A": pools["A"],
		"C": {Servers: []route.Server{{Addr: addrs[1]}}}}, Root: poolRoute("C")}
	if err := p.ReloadRoutes(next); err != nil {
		t.Fatal(err)
	}
	// B must stay open while the failover is in flight: give the retire
	// goroutine a bounded while to (wrongly) close it.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		b.conns[0].mu.Lock()
		closed := b.conns[0].closed
		b.conns[0].mu.Unlock()
		if closed {
			break
		}
		time.Sleep(retirePoll)
	}
	close(release)
	if r := string(c.ReadReply(testutil.ValuesReply)); r != "VALUE k 0 6\r\nbackup\r\nEND\r\n" {
		t.Fatalf("in-flight get: %q", r)
	}
	if r := roundTrip(c, "get k\r\n", testutil.ValuesReply); r != "END\r\n" {
		t.Fatalf("get on the new tree: %q", r)
	}
}

func TestRouteShadowIndexRange(t *testing.T) {
	addrs := startCorvids(t, 3)
	pools := map[string]*route.Pool{
		"A": {Servers: []route.Server{{Addr: addrs[0]}, {Addr: addrs[1]}}},
		"B": {Servers: []route.Server{{Addr: addrs[2]}}},
	}
	prim := poolRoute("A")
	prim.Shadows = []route.Shadow{{Target: poolRoute("B"), IndexRange: [2]int{1, 1}, KeyFractionRange: [2]float64{0, 1}}}
	p, addr := startRouter(t, &route.Config{Pools: pools, Root: prim})
	c := testutil.Dial(t, addr)
	const n = 100
	on1 := 0
	for i := range n {
		setVia(t, c, fmt.Sprintf("key%d", i), "v")
	}
	for i := range n {
		if has(t, addrs[1], fmt.Sprintf("key%d", i)) {
			on1++
		}
	}
	if on1 == 0 || on1 == n {
		t.Fatalf("%d of %d keys on the second server", on1, n)
	}
	await(t, "the shadow copies", func() bool {
		rs := routeStat(p, "poolA")
		return rs.ShadowSent == int64(on1) && rs.AsyncPending == 0
	})
	for i := range n {
		k := fmt.Sprintf("key%d", i)
		if has(t, addrs[2], k) != has(t, addrs[1], k) {
			t.Errorf("key %s: shadowed %v, on server 1 %v", k, has(t, addrs[2], k), has(t, addrs[1], k))
		}
	}
}

// TestRouteAllInitialBounded: AllInitialRoute answers from its first
// child without waiting for a slow second, whose copies are bounded.
func TestRouteAllInitialBounded(t *testing.T) {
	var read atomic.Int64
	slow := silentServer(t, &read)
	fast := startCorvids(t, 1)[0]
	pools := onePools(fast, slow)
	pools["B"].Timeout = time.Minute
	root := &route.Handle{Type: route.AllInitialRoute, Name: "ai", Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	c := testutil.Dial(t, addr)
	n := maxAsyncPending + 10
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "set k%d 0 0 1\r\nv\r\n", i)
	}
	c.Send([]byte(b.String()))
	for i := range n {
		if got := string(c.ReadReply(testutil.LineReply)); got != "STORED\r\n" {
			t.Fatalf("set %d: %q", i, got)
		}
	}
	if rs := routeStat(p, "ai"); rs.AsyncPending != maxAsyncPending || rs.AsyncDropped != 10 {
		t.Errorf("async_pending %d, async_dropped %d; want %d and 10", rs.AsyncPending, rs.AsyncDropped, maxAsyncPending)
	}
}
