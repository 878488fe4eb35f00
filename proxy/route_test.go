package proxy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/ring"
	"github.com/corvidcache/corvid/route"
	"github.com/corvidcache/corvid/server"
)

// startRouter starts corvid router with cfg on one loopback address and
// returns it and that address; it is closed when the test ends.
func startRouter(t testing.TB, cfg *route.Config) (*Proxy, string) {
	t.Helper()
	p, err := New(Config{Routes: cfg, Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	runProxy(t, p)
	return p, p.Addrs()["router"].String()
}

// pools returns one single-server pool per address, named A, B, C ...
func onePools(addrs ...string) map[string]*route.Pool {
	m := make(map[string]*route.Pool)
	for i, a := range addrs {
		name := string(rune('A' + i))
		m[name] = &route.Pool{Name: name, Servers: []route.Server{{Addr: a}}}
	}
	return m
}

func poolRoute(name string) *route.Handle {
	return &route.Handle{Type: route.PoolRoute, Pool: name, Name: "pool" + name}
}

// has reports whether the server at addr holds key.
func has(t *testing.T, addr, key string) bool {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	return strings.HasPrefix(roundTrip(c, "get "+key+"\r\n", testutil.ValuesReply), "VALUE ")
}

func setVia(t *testing.T, c *testutil.Conn, key, val string) string {
	t.Helper()
	return roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val), testutil.LineReply)
}

func TestRoutePrefixSelector(t *testing.T) {
	addrs := startCorvids(t, 3)
	root := &route.Handle{Type: route.PrefixSelectorRoute, Policies: map[string]*route.Handle{
		"a:":  poolRoute("A"),
		"a:b": poolRoute("B"), // longer: wins over "a:"
	}, Wildcard: poolRoute("C")}
	_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	c := testutil.Dial(t, addr)
	want := map[string]int{"a:x": 0, "a:bc": 1, "zz": 2, "a": 2, "b:1": 2}
	for k := range want {
		if got := setVia(t, c, k, "v"); got != "STORED\r\n" {
			t.Fatalf("set %s: %q", k, got)
		}
	}
	for k, i := range want {
		for j, a := range addrs {
			if has(t, a, k) != (i == j) {
				t.Errorf("key %q on server %d: %v, want only on %d", k, j, !(i == j), i)
			}
		}
	}
	// A multi-get over the three pools merges in key order.
	got := roundTrip(c, "get zz a:x nokey a:bc\r\n", testutil.ValuesReply)
	wantGet := "VALUE zz 0 1\r\nv\r\nVALUE a:x 0 1\r\nv\r\nVALUE a:bc 0 1\r\nv\r\nEND\r\n"
	if got != wantGet {
		t.Errorf("multi-get: %q, want %q", got, wantGet)
	}
}

func TestRouteFailoverKilledBackend(t *testing.T) {
	primary := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	paddr := primary.Addrs()[0].String()
	backup := startCorvids(t, 1)[0]
	root := &route.Handle{Type: route.FailoverRoute, Name: "fo",
		Children: []*route.Handle{poolRoute("A"), poolRoute("B")}}
	p, addr := startRouter(t, &route.Config{Pools: onePools(paddr, backup), Root: root})
	c := testutil.Dial(t, addr)
	if got := setVia(t, c, "k", "primary"); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	if !has(t, paddr, "k") || has(t, backup, "k") {
		t.Fatal("the set did not go to the primary only")
	}
	bc := testutil.Dial(t, backup)
	setVia(t, bc, "k", "backup")
	primary.Close()
	// The primary is gone: the get fails over to the backup.
	if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != "VALUE k 0 6\r\nbackup\r\nEND\r\n" {
		t.Fatalf("get after the primary died: %q", got)
	}
	if got := setVia(t, c, "k2", "x"); got != "STORED\r\n" {
		t.Fatalf("set after the primary died: %q", got)
	}
	if !has(t, backup, "k2") {
		t.Error("the set did not fail over to the backup")
	}
	if rs := routeStat(p, "fo"); rs.Failovers < 2 {
		t.Errorf("failovers = %d, want at least 2", rs.Failovers)
	}
}

func TestRouteFailoverAllFail(t *testing.T) {
	// Both children fail: the last error is the reply.
	root := &route.Handle{Type: route.FailoverRoute,
		Children: []*route.Handle{{Type: route.ErrorRoute, Response: "one"}, {Type: route.ErrorRoute, Response: "two"}}}
	_, addr := startRouter(t, &route.Config{Pools: onePools(startCorvids(t, 1)...), Root: root})
	c := testutil.Dial(t, addr)
	if got := roundTrip(c, "get k\r\n", testutil.LineReply); got != "SERVER_ERROR two\r\n" {
		t.Fatalf("get: %q", got)
	}
}

func TestRouterAdminGets(t *testing.T) {
	_, addr := startRouter(t, &route.Config{Pools: onePools(startCorvids(t, 1)...),
		Root: poolRoute("A"), Source: "/etc/mcrouter.json"})
	c := testutil.Dial(t, addr)
	if got := roundTrip(c, "get __mcrouter__.config_file\r\n", testutil.ValuesReply); got != "VALUE __mcrouter__.config_file 0 18\r\n/etc/mcrouter.json\r\nEND\r\n" {
		t.Errorf("config_file: %q", got)
	}
	if got := roundTrip(c, "get __mcrouter__.version\r\n", testutil.ValuesReply); !strings.HasPrefix(got, "VALUE __mcrouter__.version 0 ") {
		t.Errorf("version: %q", got)
	}
	if got := roundTrip(c, "get __mcrouter__.config_age\r\n", testutil.ValuesReply); !strings.HasPrefix(got, "VALUE __mcrouter__.config_age 0 1\r\n") {
		t.Errorf("config_age: %q", got)
	}
}

// routeStat returns the counters of the route node called name.
func routeStat(p *Proxy, name string) RouteStats {
	for _, rs := range p.Stats().Routes {
		if rs.Name == name {
			return rs
		}
	}
	return RouteStats{}
}

func TestRouteStatsReported(t *testing.T) {
	root := &route.Handle{Type: route.FailoverRoute, Name: "fo", Children: []*route.Handle{poolRoute("A")}}
	p, addr := startRouter(t, &route.Config{Pools: onePools(startCorvids(t, 1)...), Root: root})
	c := testutil.Dial(t, addr)
	roundTrip(c, "get k\r\n", testutil.ValuesReply)
	st := roundTrip(c, "stats\r\n", testutil.StatsReply)
	for _, want := range []string{"STAT route:fo:requests 1\r\n", "STAT route:poolA:requests 1\r\n", "STAT route:fo:failovers 0\r\n",
		"STAT route:poolA:shadow_dropped 0\r\n", "STAT route:fo:async_pending 0\r\n", "STAT A:client_connections 0\r\n"} {
		if !strings.Contains(st, want) {
			t.Errorf("stats lacks %q:\n%s", want, st)
		}
	}
	js := string(AppendStatsJSON(nil, p.Stats(), "h", "v"))
	var v map[string]any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	routes, _ := v["routes"].(map[string]any)
	fo, _ := routes["fo"].(map[string]any)
	if fo["type"] != "FailoverRoute" || fo["requests"] != 1.0 {
		t.Errorf("JSON routes: %s", js)
	}
}

// TestRouteBinary: a binary request follows its route.
func TestRouteBinary(t *testing.T) {
	addrs := startCorvids(t, 2)
	root := &route.Handle{Type: route.PrefixSelectorRoute, Policies: map[string]*route.Handle{
		"b:": {Type: route.FailoverRoute, Children: []*route.Handle{poolRoute("B"), poolRoute("A")}}},
		Wildcard: poolRoute("A")}
	_, addr := startRouter(t, &route.Config{Pools: onePools(addrs...), Root: root})
	c := testutil.Dial(t, addr)
	for _, k := range []string{"a:1", "b:1"} {
		set := testutil.BinaryRequest{Opcode: 0x01, Key: []byte(k), Value: []byte("v"), Extras: make([]byte, 8)}
		c.Send(set.Bytes())
		r, err := c.ReadBinary()
		if err != nil || r.Status() != 0 {
			t.Fatalf("binary set %s: %v %v", k, r, err)
		}
	}
	if !has(t, addrs[0], "a:1") || has(t, addrs[1], "a:1") || !has(t, addrs[1], "b:1") || has(t, addrs[0], "b:1") {
		t.Error("binary sets did not follow the route")
	}
	get := testutil.BinaryRequest{Opcode: 0x00, Key: []byte("b:1")}
	c.Send(get.Bytes())
	if r, err := c.ReadBinary(); err != nil || r.Status() != 0 || string(r.Value()) != "v" {
		t.Fatalf("binary get: %v %v", r, err)
	}
}

// TestRouteFlushAll: flush_all goes to every server of the pools the
// tree names.
func TestRouteFlushAll(t *testing.T) {
	addrs := startCorvids(t, 3)
	root := &route.Handle{Type: route.PrefixSelectorRoute, Policies: map[string]*route.Handle{
		"b:": poolRoute("B")}, Wildcard: poolRoute("A")}
	pools := onePools(addrs...) // C is not in the tree
	_, addr := startRouter(t, &route.Config{Pools: pools, Root: root})
	for _, a := range addrs {
		setVia(t, testutil.Dial(t, a), "k", "v")
	}
	if got := roundTrip(testutil.Dial(t, addr), "flush_all\r\n", testutil.LineReply); got != "OK\r\n" {
		t.Fatalf("flush_all: %q", got)
	}
	if has(t, addrs[0], "k") || has(t, addrs[1], "k") || !has(t, addrs[2], "k") {
		t.Error("flush_all did not reach exactly the tree's servers")
	}
}

// TestRoutePoolPlacement checks that a PoolRoute puts each key on the
// server mcrouter's hash picks (package ring's mcrouter hashes are checked
// against mcrouter's own test values): Ch3 by default, Crc32 and
// WeightedCh3 when named, with the salt appended.
func TestRoutePoolPlacement(t *testing.T) {
	addrs := startCorvids(t, 3)
	servers := make([]route.Server, len(addrs))
	for i, a := range addrs {
		servers[i] = route.Server{Addr: a}
	}
	weights := []float64{1, 0.5, 0.2}
	for _, tc := range []struct {
		hash route.Hash
		want func(key []byte) int
	}{
		{route.Hash{}, func(k []byte) int { return ring.Ch3(k, 3) }},
		{route.Hash{Func: "Crc32"}, func(k []byte) int { return ring.Crc32(k, 3) }},
		{route.Hash{Func: "Ch3", Salt: "s1"}, func(k []byte) int { return ring.Ch3(append(k, "s1"...), 3) }},
		{route.Hash{Func: "WeightedCh3", Weights: weights}, func(k []byte) int { return ring.WeightedCh3(k, weights) }},
	} {
		t.Run(tc.hash.Func+"/"+tc.hash.Salt, func(t *testing.T) {
			root := &route.Handle{Type: route.PoolRoute, Pool: "P", Name: "p", Hash: tc.hash}
			_, addr := startRouter(t, &route.Config{Pools: map[string]*route.Pool{"P": {Name: "P", Servers: servers}}, Root: root})
			c := testutil.Dial(t, addr)
			flush := testutil.Dial(t, addr)
			roundTrip(flush, "flush_all\r\n", testutil.LineReply)
			counts := make([]int, 3)
			for i := range 60 {
				key := fmt.Sprintf("place:%s:%d", tc.hash.Func, i)
				if r := setVia(t, c, key, "v"); r != "STORED\r\n" {
					t.Fatalf("set %s: %q", key, r)
				}
				want := tc.want([]byte(key))
				counts[want]++
				for j, a := range addrs {
					if got := has(t, a, key); got != (j == want) {
						t.Errorf("%s: on server %d is %v; mcrouter puts it on %d", key, j, got, want)
					}
				}
			}
			if slices.Contains(counts, 0) {
				t.Errorf("keys per server %v: the test does not tell the servers apart", counts)
			}
		})
	}
}

// TestRouteMultiGetCounts: the keys of a multi-get that go straight to a
// PoolRoute's servers count as requests of that node, as single gets do.
func TestRouteMultiGetCounts(t *testing.T) {
	root := &route.Handle{Type: route.PrefixSelectorRoute, Name: "sel",
		Policies: map[string]*route.Handle{"a:": poolRoute("A")}, Wildcard: poolRoute("B")}
	p, addr := startRouter(t, &route.Config{Pools: onePools(startCorvids(t, 2)...), Root: root})
	c := testutil.Dial(t, addr)
	if got := roundTrip(c, "get a:1 a:2 b:1\r\n", testutil.ValuesReply); got != "END\r\n" {
		t.Fatalf("get: %q", got)
	}
	if a, b := routeStat(p, "poolA").Requests, routeStat(p, "poolB").Requests; a != 2 || b != 1 {
		t.Errorf("requests: poolA %d, poolB %d; want 2 and 1", a, b)
	}
}
