package route

import "testing"

func TestCheck(t *testing.T) {
	pools := func() map[string]*Pool {
		return map[string]*Pool{
			"A": {Name: "A", Servers: []Server{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}}},
			"B": {Name: "B", Servers: []Server{{Addr: "127.0.0.1:3"}}},
		}
	}
	pool := func(name, path string) *Handle { return &Handle{Type: PoolRoute, Pool: name, Path: path} }
	loop := &Handle{Type: FailoverRoute, Path: "route"}
	loop.Children = []*Handle{pool("A", "route.children[0]"), {Type: AllSyncRoute, Path: "route.children[1]", Children: []*Handle{loop}}}
	shared := pool("B", "shared")
	for _, tc := range []struct {
		name string
		root *Handle
		want string
	}{
		{"good", &Handle{Type: FailoverRoute, Children: []*Handle{pool("A", ""), pool("B", "")}}, ""},
		{"shared node is not a cycle", &Handle{Type: AllSyncRoute, Children: []*Handle{shared, &Handle{Type: FailoverRoute, Children: []*Handle{shared}}}}, ""},
		{"no root", nil, "no route"},
		{"cycle", loop, "route.children[1].children[0]: a cycle: this route leads back to route"},
		{"unknown type", &Handle{Type: "FooRoute", Path: "route.children[1]"}, `route.children[1]: unknown type "FooRoute"`},
		{"missing pool", pool("C", "route"), `route: pool "C" is not defined`},
		{"no pool", &Handle{Type: PoolRoute}, `route: PoolRoute has no pool`},
		{"no children", &Handle{Type: MissFailoverRoute, Path: "r"}, `r: MissFailoverRoute has no children`},
		{"nil child", &Handle{Type: AllSyncRoute, Children: []*Handle{nil}}, `route.children[0]: no route`},
		{"warm-up without cold", &Handle{Type: WarmUpRoute, Warm: pool("A", "")}, `route.cold: no route`},
		{"key fraction", &Handle{Type: PoolRoute, Pool: "A", Shadows: []Shadow{{Target: pool("B", ""), KeyFractionRange: [2]float64{0.2, 1.01}}}},
			`route.shadows[0].key_fraction_range: [0.2, 1.01] is outside [0, 1]`},
		{"key fraction reversed", &Handle{Type: PoolRoute, Pool: "A", Shadows: []Shadow{{Target: pool("B", ""), KeyFractionRange: [2]float64{0.2, 0.1}, Path: "s"}}},
			`s.key_fraction_range: [0.2, 0.1] is reversed`},
		{"shadow without target", &Handle{Type: PoolRoute, Pool: "A", Shadows: []Shadow{{KeyFractionRange: [2]float64{0, 0.1}}}},
			`route.shadows[0].target: no route`},
		{"ring hash", &Handle{Type: PoolRoute, Pool: "A", Hash: Hash{Func: "ketama/fnv1a_64"}}, ""},
		{"bad ring hash", &Handle{Type: PoolRoute, Pool: "A", Hash: Hash{Func: "ketama/sha1"}}, `route: unknown hash "sha1" in "ketama/sha1"`},
		{"bad distribution", &Handle{Type: PoolRoute, Pool: "A", Hash: Hash{Func: "rings/md5"}}, `route: unknown distribution "rings" in hash "rings/md5"`},
		{"rate limit without target", &Handle{Type: RateLimitRoute}, `route: RateLimitRoute needs one target, has 0`},
		{"nil policy", &Handle{Type: OperationSelectorRoute, Policies: map[string]*Handle{"get": nil}}, `route.operation_policies.get: no route`},
		{"nil wildcard path", &Handle{Type: PrefixSelectorRoute, Policies: map[string]*Handle{"a:": nil}}, `route.policies.a:: no route`},
		{"bad operation", &Handle{Type: OperationSelectorRoute, Policies: map[string]*Handle{"fetch": pool("A", "")}}, `route: unknown operation "fetch"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(&Config{Pools: pools(), Root: tc.root})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Check\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	if err := Check(&Config{Pools: map[string]*Pool{"E": {Name: "E"}}, Root: pool("E", "")}); err == nil || err.Error() != `pools.E: pool "E" has no servers` {
		t.Errorf("empty pool: %v", err)
	}
}
