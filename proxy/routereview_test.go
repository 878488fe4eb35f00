package proxy

import (
	"net"
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
