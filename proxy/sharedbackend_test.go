package proxy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

// serverStat returns the stat name of the server at addr.
func serverStat(t *testing.T, addr, name string) int {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	for _, line := range strings.Split(roundTrip(c, "stats\r\n", testutil.StatsReply), "\r\n") {
		if v, ok := strings.CutPrefix(line, "STAT "+name+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("stat %s: %q", name, line)
			}
			return n
		}
	}
	t.Fatalf("no stat %s", name)
	return 0
}

// TestRouteSharedBackend: pools that name the same server share its
// connection, as mcrouter shares a destination, within a tree and across
// a reload that keeps a pool naming it; pools whose timeouts differ do
// not.
func TestRouteSharedBackend(t *testing.T) {
	srv := startCorvids(t, 1)[0]
	both := func(names ...string) map[string]*route.Pool {
		m := make(map[string]*route.Pool)
		for _, n := range names {
			m[n] = &route.Pool{Name: n, Servers: []route.Server{{Addr: srv}}}
		}
		return m
	}
	all := func(names ...string) *route.Handle {
		h := &route.Handle{Type: route.AllSyncRoute}
		for _, n := range names {
			h.Children = append(h.Children, poolRoute(n))
		}
		return h
	}
	// made returns the connections the server accepted since the
	// first call, less those made to ask it.
	asked, before := 0, 0
	made := func() int {
		asked++
		return serverStat(t, srv, "total_connections") - before - (asked - 1)
	}
	before = made()
	p, addr := startRouter(t, &route.Config{Pools: both("A", "B"), Root: all("A", "B")})
	c := testutil.Dial(t, addr)
	if got := setVia(t, c, "k", "v"); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	// One connection for both pools (the stats connections the test
	// opens count one each).
	if n := made(); n != 1 {
		t.Errorf("the proxy made %d connections to the server for two pools naming it, want 1", n)
	}
	// A reload that removes A and adds C keeps the backend B and C share.
	if err := p.ReloadRoutes(&route.Config{Pools: both("B", "C"), Root: all("B", "C")}); err != nil {
		t.Fatal(err)
	}
	if got := setVia(t, c, "k", "v"); got != "STORED\r\n" {
		t.Fatalf("set after the reload: %q", got)
	}
	if got := roundTrip(c, "flush_all\r\n", testutil.LineReply); got != "OK\r\n" {
		t.Fatalf("flush_all: %q", got)
	}
	if n := made(); n != 1 {
		t.Errorf("after the reload the proxy made %d connections in all, want still 1", n)
	}
	asked++
	if n := serverStat(t, srv, "cmd_flush"); n != 1 {
		t.Errorf("flush_all reached the shared server %d times, want once", n)
	}
	// Pools whose timeouts differ keep their own connections.
	pools := both("B", "C")
	pools["C"].Timeout = 3 * time.Second
	if err := p.ReloadRoutes(&route.Config{Pools: pools, Root: all("B", "C")}); err != nil {
		t.Fatal(err)
	}
	if got := setVia(t, c, "k", "v"); got != "STORED\r\n" {
		t.Fatalf("set after the second reload: %q", got)
	}
	if n := made(); n != 2 {
		t.Errorf("with different timeouts the proxy made %d connections in all, want 2", n)
	}
}

// TestRouteSharedBackendTimeout: a pool keeps the timeout of its own
// configuration on a backend it shares with the pool that owns it, when
// a reload gives that pool another timeout.
func TestRouteSharedBackendTimeout(t *testing.T) {
	srv := startCorvids(t, 1)[0]
	pools := func(timeoutA time.Duration) map[string]*route.Pool {
		return map[string]*route.Pool{
			"A": {Name: "A", Servers: []route.Server{{Addr: srv}}, Timeout: timeoutA},
			"B": {Name: "B", Servers: []route.Server{{Addr: srv}}},
		}
	}
	root := &route.Handle{Type: route.AllSyncRoute, Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, _ := startRouter(t, &route.Config{Pools: pools(0), Root: root}) // A owns the backend
	if err := p.ReloadRoutes(&route.Config{Pools: pools(3 * time.Second), Root: root}); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pl := range p.pools {
		if pl.name != "B" {
			continue
		}
		if got := pl.cur.Load().all[0].timeoutNow(); got != DefaultRouteTimeout {
			t.Errorf("pool B's server waits %v, want B's timeout %v", got, DefaultRouteTimeout)
		}
	}
}
