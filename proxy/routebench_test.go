package proxy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
	"github.com/corvidcache/corvid/server"
)

// TestRouteSelectAllocs pins that selectors resolve a request to its
// server without allocating.
func TestRouteSelectAllocs(t *testing.T) {
	addrs := startCorvids(t, 3)
	root := &route.Handle{Type: route.OperationSelectorRoute,
		Policies: map[string]*route.Handle{"get": {Type: route.PrefixSelectorRoute,
			Policies: map[string]*route.Handle{"a:": poolRoute("A"), "b:": poolRoute("B")},
			Wildcard: &route.Handle{Type: route.HashRoute, Children: []*route.Handle{poolRoute("B"), poolRoute("C")}}}},
		Default: poolRoute("A")}
	p, _ := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	rt := p.fronts[0].rt.Load()
	keys := [][]byte{[]byte("a:1"), []byte("b:2"), []byte("zzz")}
	allocs := testing.AllocsPerRun(200, func() {
		for _, k := range keys {
			n := rt.root.resolve(k, rGet)
			if _, _, err := n.backend(k); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("resolve allocates %.1f times", allocs)
	}
}

// BenchmarkRouteThroughput compares, in one run, a plain PoolRoute, a
// PrefixSelectorRoute over three pools and a WarmUpRoute whose cold pool
// holds every key (the target: both within 0.9× of the plain
// pool): parallel clients pipelining gets of 100-byte values and sets.
func BenchmarkRouteThroughput(b *testing.B) {
	addrs := []string{testutil.StartCorvid(b, serverCfg()), testutil.StartCorvid(b, serverCfg()), testutil.StartCorvid(b, serverCfg())}
	pools := map[string]*route.Pool{
		"A": {Servers: []route.Server{{Addr: addrs[0]}, {Addr: addrs[1]}, {Addr: addrs[2]}}},
		"B": {Servers: []route.Server{{Addr: addrs[1]}}},
		"C": {Servers: []route.Server{{Addr: addrs[2]}}},
		"W": {Servers: []route.Server{{Addr: addrs[0]}}},
	}
	trees := []struct {
		name string
		root *route.Handle
	}{
		{"pool", poolRoute("A")},
		{"prefix3", &route.Handle{Type: route.PrefixSelectorRoute, Policies: map[string]*route.Handle{
			"b:": poolRoute("B"), "c:": poolRoute("C")}, Wildcard: poolRoute("A")}},
		{"warmup", &route.Handle{Type: route.WarmUpRoute, Cold: poolRoute("A"), Warm: poolRoute("W")}},
	}
	value := strings.Repeat("v", 100)
	for _, tr := range trees {
		b.Run(tr.name, func(b *testing.B) {
			_, addr := startRouter(b, &route.Config{Pools: pools, Root: tr.root})
			const conns, depth = 8, 16
			var fill strings.Builder
			for i := range 300 {
				fmt.Fprintf(&fill, "set %s 0 0 %d noreply\r\n%s\r\n", benchKey(i), len(value), value)
			}
			c := testutil.Dial(b, addr)
			c.Send([]byte(fill.String() + "mn\r\n"))
			c.ReadReply(testutil.LineReply)
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/conns + 1
			for w := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					benchClient(b, addr, w, per, depth, value)
				}()
			}
			wg.Wait()
		})
	}
}

func benchKey(i int) string {
	return [...]string{"a:", "b:", "c:"}[i%3] + fmt.Sprint(i)
}

// benchClient sends n requests (9 gets to a set) in batches of depth.
func benchClient(b *testing.B, addr string, w, n, depth int, value string) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer nc.Close()
	c := testutil.NewConn(b, nc)
	var req strings.Builder
	for i := 0; i < n; i += depth {
		req.Reset()
		kinds := make([]testutil.ReplyKind, 0, depth)
		for j := range depth {
			k := benchKey((w*7919 + i + j) % 300)
			if j%10 == 9 {
				fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\n", k, len(value), value)
				kinds = append(kinds, testutil.LineReply)
			} else {
				fmt.Fprintf(&req, "get %s\r\n", k)
				kinds = append(kinds, testutil.ValuesReply)
			}
		}
		c.Send([]byte(req.String()))
		for _, k := range kinds {
			c.ReadReply(k)
		}
	}
}

func serverCfg() server.Config { return server.Config{} }
