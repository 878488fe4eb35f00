package proxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

// bconnClosed reports whether the first connection of pool name's first
// server is closed.
func poolClosed(p *Proxy, b *backend) bool {
	b.conns[0].mu.Lock()
	defer b.conns[0].mu.Unlock()
	return b.conns[0].closed
}

// poolBackend returns the first server of p's pool name.
func poolBackend(p *Proxy, name string) *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pl := range p.pools {
		if pl.name == name {
			return pl.cur.Load().all[0]
		}
	}
	return nil
}

// TestRouteTwoReloadsInFlightComposed: a composed request that started
// on a tree two reloads ago still fails over to a pool the second
// reload removes: the servers it removes are closed only once every
// older tree's composed requests are done, not only the last tree's.
func TestRouteTwoReloadsInFlightComposed(t *testing.T) {
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
	addrs := startCorvids(t, 1)
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
	b := poolBackend(p, "B")
	// The first reload removes nothing; the second removes B.
	if err := p.ReloadRoutes(&route.Config{Pools: pools, Root: poolRoute("A")}); err != nil {
		t.Fatal(err)
	}
	if err := p.ReloadRoutes(&route.Config{Pools: map[string]*route.Pool{"A": pools["A"]}, Root: poolRoute("A")}); err != nil {
		t.Fatal(err)
	}
	// B must stay open while the failover is in flight: give the retire
	// goroutine a bounded while to (wrongly) close it.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) && !poolClosed(p, b) {
		time.Sleep(retirePoll)
	}
	close(release)
	if r := string(c.ReadReply(testutil.ValuesReply)); r != "VALUE k 0 6\r\nbackup\r\nEND\r\n" {
		t.Fatalf("in-flight get: %q", r)
	}
	await(t, "B closed once the failover is done", func() bool { return poolClosed(p, b) })
}

// TestRouteWarmUpKeepsWarmTTL: a WarmUpRoute without an exptime fills
// cold with the time the warm item has left, as mcrouter does (it asks
// warm with a metaget), not with no expiry: otherwise cold would serve a
// value forever after warm let it expire.
func TestRouteWarmUpKeepsWarmTTL(t *testing.T) {
	addrs := startCorvids(t, 2) // A cold, B warm
	root := &route.Handle{Type: route.WarmUpRoute, Name: "wu", Cold: poolRoute("A"), Warm: poolRoute("B")}
	p, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	warm := testutil.Dial(t, addrs[1])
	if got := roundTrip(warm, "set k 7 100 3\r\nabc\r\nset forever 0 0 1\r\nx\r\n", testutil.LineReply); got != "STORED\r\n" {
		t.Fatalf("set in warm: %q", got)
	}
	warm.ReadReply(testutil.LineReply)
	c := testutil.Dial(t, addr)
	if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != "VALUE k 7 3\r\nabc\r\nEND\r\n" {
		t.Fatalf("get: %q", got)
	}
	if got := roundTrip(c, "get forever\r\n", testutil.ValuesReply); got != "VALUE forever 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("get: %q", got)
	}
	await(t, "the warm-up fills", func() bool { return has(t, addrs[0], "k") && has(t, addrs[0], "forever") })
	cold := testutil.Dial(t, addrs[0])
	got := roundTrip(cold, "mg k t f v\r\n", testutil.AnyReply)
	var ttl, flags int
	if _, err := fmt.Sscanf(got, "VA 3 t%d f%d\r\nabc\r\n", &ttl, &flags); err != nil || ttl < 1 || ttl > 100 || flags != 7 {
		t.Fatalf("cold's copy: %q, want the warm item's flags and remaining time (1..100 s)", got)
	}
	if got := roundTrip(cold, "mg forever t\r\n", testutil.AnyReply); got != "HD t-1\r\n" {
		t.Fatalf("cold's copy of an item without expiry: %q", got)
	}
	// The adds' replies may still be on their way.
	await(t, "no detached request pending", func() bool { return routeStat(p, "wu").AsyncPending == 0 })
	if rs := routeStat(p, "wu"); rs.WarmFills != 2 {
		t.Errorf("warmup_fills = %d, want 2", rs.WarmFills)
	}
}

// TestRouteTooLargeRemovesOldValue: a set whose value is too large is
// refused and removes the key's old value (as memcached) through a route
// tree too, in text and in binary, so that a client never reads the
// value it meant to replace.
func TestRouteTooLargeRemovesOldValue(t *testing.T) {
	addrs := startCorvids(t, 2)
	_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: poolRoute("B")})
	c := testutil.Dial(t, addr)
	big := strings.Repeat("x", DefaultMaxValueLen+1)
	for _, k := range []string{"t", "b"} {
		if r := setVia(t, c, k, "old"); r != "STORED\r\n" {
			t.Fatalf("set %s: %q", k, r)
		}
	}
	if r := roundTrip(c, fmt.Sprintf("set t 0 0 %d\r\n%s\r\n", len(big), big), testutil.LineReply); r != "SERVER_ERROR object too large for cache\r\n" {
		t.Fatalf("too large text set: %q", r)
	}
	bc := testutil.Dial(t, addr)
	set := testutil.BinaryRequest{Opcode: 0x01, Key: []byte("b"), Value: []byte(big), Extras: make([]byte, 8)}
	bc.Send(set.Bytes())
	if r, err := bc.ReadBinary(); err != nil || r.Status() == 0 {
		t.Fatalf("too large binary set: %v %v", r, err)
	}
	for _, k := range []string{"t", "b"} {
		k := k
		await(t, "the old value of "+k+" removed", func() bool { return !has(t, addrs[1], k) })
	}
}

// TestRouteAllSyncTiesKeepFirst: among replies that rank alike, AllSync
// answers the first to arrive, as mcrouter keeps the reply it has unless
// a later one is strictly worse: here two hits, the fast child's first.
func TestRouteAllSyncTiesKeepFirst(t *testing.T) {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 512)
		if _, err := nc.Read(buf); err != nil {
			return
		}
		got <- struct{}{}
		<-release
		nc.Write([]byte("VALUE k 0 4\r\nslow\r\nEND\r\n"))
		nc.Read(buf) // until the proxy closes
	})
	fast := startCorvids(t, 1)[0]
	setVia(t, testutil.Dial(t, fast), "k", "fast")
	pools := onePools(slow, fast)
	pools["A"].Timeout = time.Minute
	root := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	c := testutil.Dial(t, addr)
	c.Send([]byte("get k\r\n"))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow server got no request")
	}
	b := poolBackend(p, "B")
	await(t, "the fast child's reply", func() bool { return b.st.responses.Load() == 1 })
	close(release)
	if r := string(c.ReadReply(testutil.ValuesReply)); r != "VALUE k 0 4\r\nfast\r\nEND\r\n" {
		t.Fatalf("AllSync of two hits: %q, want the first to arrive", r)
	}
}

// TestRouteAllSyncRepliesBudgeted: the replies an AllSyncRoute holds
// while a child is slow count against the proxy's bound on held replies
// (Config.WriteBufMemLimit) as any reply does: a client whose pipelined
// gets would make it hold more is closed and counted in write_buf_oom,
// instead of the proxy holding whatever it asks for.
func TestRouteAllSyncRepliesBudgeted(t *testing.T) {
	var read atomic.Int64
	slow := silentServer(t, &read)
	fast := startCorvids(t, 1)[0]
	fc := testutil.Dial(t, fast)
	val := strings.Repeat("v", 1000*1000)
	const n = 8 // the window a new client starts with
	for i := range n {
		if r := setVia(t, fc, fmt.Sprintf("k%d", i), val); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	pools := onePools(slow, fast)
	pools["A"].Timeout = time.Minute
	root := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, err := New(Config{Routes: &route.Config{Pools: pools, Root: root}, Listen: []string{"127.0.0.1:0"},
		WriteBufMemLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(context.Background()) }()
	defer func() {
		p.Close()
		<-done
	}()
	c := testutil.Dial(t, p.Addrs()["router"].String())
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "get k%d\r\n", i)
	}
	c.Send([]byte(b.String()))
	bk := poolBackend(p, "B")
	await(t, "the fast child's replies", func() bool { return bk.st.responses.Load() == n })
	// 8 MB held for one client, past 1 MiB and its allowance (2 MB of
	// the largest replies for a client).
	if oom := p.replies.oom.Load(); oom != 1 {
		t.Fatalf("write_buf_oom = %d, want the client closed (held: %d bytes)", oom, p.replies.bytes.Load())
	}
}

// TestRouteOperationPoliciesMetaget: mcrouter's metaget is an operation
// of its own (no memcached request becomes it), so an operation_policies
// entry for it does not take gets from the get entry: gets and mg go to
// the get route on every load, not to whichever of the two the map
// iteration of one load happened to apply last.
func TestRouteOperationPoliciesMetaget(t *testing.T) {
	addrs := startCorvids(t, 3)
	cfg := &route.Config{Pools: onePools(addrs...), Root: &route.Handle{Type: route.OperationSelectorRoute,
		Policies: map[string]*route.Handle{"get": poolRoute("A"), "metaget": poolRoute("B")},
		Default:  poolRoute("C")}}
	p, _ := startRouter(t, cfg)
	for i := range 40 {
		if i > 0 {
			if err := p.ReloadRoutes(cfg); err != nil {
				t.Fatal(err)
			}
		}
		root := p.fronts[0].rt.Load().root
		for _, op := range []rop{rGet, rMetaGet} {
			if n := root.resolve([]byte("k"), op); n.pool == nil || n.pool.name != "A" {
				t.Fatalf("load %d: %s goes to %s, want the get policy's pool A", i, ropNames[op], n.name)
			}
		}
	}
}

// TestRouteWarmUpGets: a gets that misses in cold and hits in warm is
// answered as mcrouter answers it: the value is added to cold (with the
// warm item's flags and remaining time), and the gets is asked of cold
// again, so that its CAS unique is cold's, which a cas through the
// route (to cold) then matches. It used to go to cold only, missing.
func TestRouteWarmUpGets(t *testing.T) {
	addrs := startCorvids(t, 2) // A cold, B warm
	root := &route.Handle{Type: route.WarmUpRoute, Name: "wu", Cold: poolRoute("A"), Warm: poolRoute("B")}
	_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	warm := testutil.Dial(t, addrs[1])
	if got := roundTrip(warm, "set k 5 100 3\r\nabc\r\n", testutil.LineReply); got != "STORED\r\n" {
		t.Fatalf("set in warm: %q", got)
	}
	c := testutil.Dial(t, addr)
	got := roundTrip(c, "gets k\r\n", testutil.ValuesReply)
	var cas uint64
	if _, err := fmt.Sscanf(got, "VALUE k 5 3 %d\r\nabc\r\nEND\r\n", &cas); err != nil {
		t.Fatalf("gets through the warm-up: %q", got)
	}
	cold := testutil.Dial(t, addrs[0])
	if direct := roundTrip(cold, "gets k\r\n", testutil.ValuesReply); direct != got {
		t.Fatalf("cold has %q, the client got %q", direct, got)
	}
	var ttl int
	if r := roundTrip(cold, "mg k t\r\n", testutil.AnyReply); func() bool {
		_, err := fmt.Sscanf(r, "HD t%d\r\n", &ttl)
		return err != nil || ttl < 1 || ttl > 100
	}() {
		t.Fatalf("cold's copy: %q, want the warm item's remaining time (1..100 s)", r)
	}
	if r := roundTrip(c, fmt.Sprintf("cas k 0 0 1 %d\r\nz\r\n", cas), testutil.LineReply); r != "STORED\r\n" {
		t.Fatalf("cas with the unique gets returned: %q", r)
	}
	if r := roundTrip(c, "gets none\r\n", testutil.ValuesReply); r != "END\r\n" {
		t.Fatalf("gets of a key nowhere: %q", r)
	}
}
