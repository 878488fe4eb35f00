package client

import (
	"context"
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/ring"
)

func ringDist(name string) ring.Distribution { return ring.Distribution(name) }

// TestAgreesWithNutcracker writes keys straight to memcached servers with a
// Client configured like a nutcracker pool, and reads them back through
// nutcracker, and the other way round: every key is found only if both put
// it on the same server.
func TestAgreesWithNutcracker(t *testing.T) {
	if testutil.NutcrackerPath() == "" || testutil.MemcachedPath() == "" {
		t.Skip("needs nutcracker and memcached")
	}
	addrs := []string{
		testutil.StartMemcached(t, "-m", "16"),
		testutil.StartMemcached(t, "-m", "16"),
		testutil.StartMemcached(t, "-m", "16"),
	}
	for _, setup := range []struct {
		hash, dist string
		weights    []int
		names      []string
	}{
		{"fnv1a_64", "ketama", []int{1, 1, 1}, nil},
		{"md5", "ketama", []int{1, 2, 3}, []string{"alpha", "beta", "gamma"}},
		{"murmur", "modula", []int{2, 1, 1}, nil},
	} {
		t.Run(setup.hash+"/"+setup.dist, func(t *testing.T) {
			ctx := context.Background()
			var servers []Server
			pool := ""
			for i, a := range addrs {
				s := Server{Addr: a, Weight: setup.weights[i]}
				pool += fmt.Sprintf("   - %s:%d", a, s.Weight)
				if setup.names != nil {
					s.Name = setup.names[i]
					pool += " " + s.Name
				}
				pool += "\n"
				servers = append(servers, s)
			}
			listen := testutil.StartNutcracker(t, 1, func(listen []string) string {
				return fmt.Sprintf("pool:\n  listen: %s\n  hash: %s\n  distribution: %s\n  servers:\n%s",
					listen[0], setup.hash, setup.dist, pool)
			})[0]
			direct := newClient(t, nil, func(cfg *Config) {
				cfg.Servers, cfg.Hash, cfg.Distribution = servers, setup.hash, ringDist(setup.dist)
			})
			proxied := newClient(t, []string{listen}, nil)
			if err := direct.Flush(ctx, 0); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for i := range 300 {
				keys = append(keys, fmt.Sprintf("user:%d:profile", i))
			}
			for _, k := range keys[:150] {
				if err := direct.Set(ctx, &Item{Key: k, Value: []byte(k)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range keys[150:] {
				if err := proxied.Set(ctx, &Item{Key: k, Value: []byte(k)}); err != nil {
					t.Fatal(err)
				}
			}
			for name, c := range map[string]*Client{"direct": direct, "through nutcracker": proxied} {
				m, err := c.GetMulti(ctx, keys)
				if err != nil {
					t.Fatal(err)
				}
				if len(m) != len(keys) {
					t.Errorf("%s: found %d of %d keys", name, len(m), len(keys))
				}
			}
		})
	}
}
