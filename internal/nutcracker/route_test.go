package nutcracker

import (
	"strings"
	"testing"

	"github.com/corvidcache/corvid/route"
)

const routed = `front:
  listen: 127.0.0.1:22121
  route:
    type: WarmUpRoute
    cold: PoolRoute|new
    warm:
      type: PoolRoute
      pool: old
      shadows:
        - target: PoolRoute|test
          index_range: [0, 2]
          key_fraction_range: [0, 0.1]
    exptime: 600

sessions:
  listen: 127.0.0.1:22122
  route:
    type: FailoverRoute
    children: [PoolRoute|new, {type: PoolRoute, pool: old, hash: Crc32}]

old:
  listen: 127.0.0.1:22123
  hash: md5
  distribution: ketama
  servers:
   - 127.0.0.1:11211:1 a
   - 127.0.0.1:11212:2 b

new:
  listen: 127.0.0.1:22124
  hash_tag: "{}"
  distribution: modula
  timeout: 400
  servers:
   - 127.0.0.1:11213:1

test:
  listen: 127.0.0.1:22125
  servers:
   - 127.0.0.1:11214:1
`

func TestParseRoutes(t *testing.T) {
	c, err := Parse([]byte(routed))
	if err != nil {
		t.Fatal(err)
	}
	front, _ := c.Pool("front")
	if front.Servers != nil {
		t.Errorf("front has servers %v", front.Servers)
	}
	r := front.Route
	if r == nil || r.Type != route.WarmUpRoute || r.Exptime != 600 || r.Cold == nil || r.Warm == nil {
		t.Fatalf("front's route %+v", r)
	}
	if r.Cold.Pool != "new" || r.Cold.Hash.Func != "modula/fnv1a_64" || r.Cold.Hash.HashTag != "{}" {
		t.Errorf("cold %+v", r.Cold)
	}
	w := r.Warm
	if w.Pool != "old" || w.Hash.Func != "ketama/md5" || len(w.Shadows) != 1 {
		t.Fatalf("warm %+v", w)
	}
	if s := w.Shadows[0]; s.Target.Pool != "test" || s.IndexRange != [2]int{0, 1} || s.KeyFractionRange != [2]float64{0, 0.1} {
		t.Errorf("shadow %+v", s)
	}
	sess, _ := c.Pool("sessions")
	if r := sess.Route; r == nil || r.Type != route.FailoverRoute || len(r.Children) != 2 || r.Children[1].Hash.Func != "Crc32" {
		t.Errorf("sessions' route %+v", r)
	}
	if old, _ := c.Pool("old"); old.Route != nil {
		t.Errorf("a pool without route: has one")
	}
}

func TestParseRouteErrors(t *testing.T) {
	base := `
b:
  listen: 127.0.0.1:22122
  servers:
   - 127.0.0.1:11211:1
a:
  listen: 127.0.0.1:22121
  route:`
	for _, tc := range []struct{ name, route, want string }{
		{"unknown type", `
    type: FailoverRoute
    children: [PoolRoute|b, {type: FooRoute}]`, `nutcracker: pool "a": route.children[1]: unknown type "FooRoute"`},
		{"unknown property", `
    type: PoolRoute
    pool: b
    weight: 3`, `nutcracker: pool "a": route: unknown property "weight" of PoolRoute`},
		{"missing pool", ` PoolRoute|c`, `nutcracker: pool "a": route: pool "c" is not defined`},
		{"pool without servers", ` PoolRoute|a`, `nutcracker: pool "a": route: pool "a" is not defined`},
		{"inline pool", `
    type: PoolRoute
    pool: {name: x, servers: ["127.0.0.1:1"]}`, `nutcracker: pool "a": route.pool: name a pool of this file instead of defining one here`},
		{"Pool|", ` FailoverRoute|Pool|b`, `nutcracker: pool "a": route: "Pool|b" is not available here: use "PoolRoute|b"`},
		{"children of the wrong type", `
    type: AllSyncRoute
    children: 7`, `nutcracker: pool "a": route.children: want a route or a list of routes, not a number`},
		{"key_fraction_range", `
    type: PoolRoute
    pool: b
    shadows: [{target: PoolRoute|b, key_fraction_range: [0.9, 0.1]}]`, `nutcracker: pool "a": route.shadows[0].key_fraction_range: [0.9, 0.1] is reversed`},
		{"no route", ` ~`, `nutcracker: pool "a": route: want a route (an object, a string or a list), not null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.route + "\n"))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
	// a pool without route: still needs servers
	_, err := Parse([]byte("a:\n  listen: 127.0.0.1:1\n"))
	if err == nil || !strings.Contains(err.Error(), `directive "servers" is missing or empty`) {
		t.Errorf("a pool with neither servers nor route: %v", err)
	}
}
