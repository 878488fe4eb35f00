package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// placementSetup is one pool of the placement test.
type placementSetup struct {
	hash, dist, tag string
	weights         []int
	names           []string
}

func (s placementSetup) yaml(name, listen string, backends []string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  hash: %s\n  distribution: %s\n", name, listen, s.hash, s.dist)
	if s.tag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", s.tag)
	}
	for _, e := range extra {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	b.WriteString("  servers:\n")
	for i, a := range backends {
		w := 1
		if i < len(s.weights) {
			w = s.weights[i]
		}
		fmt.Fprintf(&b, "   - %s:%d", a, w)
		if i < len(s.names) {
			fmt.Fprintf(&b, " %s", s.names[i])
		}
		b.WriteString("\n")
	}
	return b.String()
}

var placementSetups = []placementSetup{
	{hash: "fnv1a_64", dist: "ketama"},
	{hash: "md5", dist: "ketama", weights: []int{1, 2, 3}},
	{hash: "murmur", dist: "modula"},
	{hash: "crc32a", dist: "ketama", tag: "{}"},
	{hash: "fnv1_64", dist: "modula", tag: "{}", weights: []int{2, 1, 1}},
	{hash: "one_at_a_time", dist: "ketama", names: []string{"cache-a", "cache-b", "cache-c"}},
	{hash: "hsieh", dist: "modula", names: []string{"zeta", "b", "alpha"}},
	{hash: "jenkins", dist: "ketama"},
}

// placementKeys returns n keys, some with hash tags.
func placementKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%d", prefix, i)
		if i%4 == 0 {
			keys[i] = fmt.Sprintf("%s{tag%d}:%d", prefix, i%7, i)
		}
	}
	return keys
}

// setAll stores every key (value = key) through addr.
func setAll(t *testing.T, addr string, keys []string) {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	var req strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
	}
	c.Send([]byte(req.String()))
	for _, k := range keys {
		if r := c.ReadReply(testutil.LineReply); string(r) != "STORED\r\n" {
			t.Fatalf("set %q through %s: %q", k, addr, r)
		}
	}
}

// missing returns the keys a get of keys through addr does not return.
func missing(t *testing.T, addr string, keys []string) []string {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	var miss []string
	for _, k := range keys {
		r := roundTrip(c, "get "+k+"\r\n", testutil.ValuesReply)
		if r != fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k) {
			miss = append(miss, k)
		}
	}
	return miss
}

// TestPlacementMatchesNutcracker stores keys through a real nutcracker
// and reads them back through corvid proxy in front of the same backends
// (and the other way round), for several hash, distribution, weight,
// name and hash tag combinations: every key must be found, so both put
// each key on the same server.
func TestPlacementMatchesNutcracker(t *testing.T) {
	if testutil.NutcrackerPath() == "" {
		t.Skip("nutcracker is not installed")
	}
	backends := startCorvids(t, 3)
	listen := testutil.StartNutcracker(t, len(placementSetups), func(listen []string) string {
		var b strings.Builder
		for i, s := range placementSetups {
			b.WriteString(s.yaml(fmt.Sprintf("p%d", i), listen[i], backends))
		}
		return b.String()
	})
	for i, s := range placementSetups {
		pool := fmt.Sprintf("p%d", i)
		paddr := startProxy(t, s.yaml(pool, "127.0.0.1:0", backends)).Addrs()[pool].String()
		viaNut := placementKeys(fmt.Sprintf("n%d:", i), 200)
		setAll(t, listen[i], viaNut)
		if m := missing(t, paddr, viaNut); len(m) > 0 {
			t.Errorf("%+v: %d keys stored by nutcracker not found through the proxy, e.g. %q", s, len(m), m[0])
		}
		viaProxy := placementKeys(fmt.Sprintf("c%d:", i), 200)
		setAll(t, paddr, viaProxy)
		if m := missing(t, listen[i], viaProxy); len(m) > 0 {
			t.Errorf("%+v: %d keys stored by the proxy not found through nutcracker, e.g. %q", s, len(m), m[0])
		}
	}
}

// TestEjectionPlacementMatchesNutcracker stops one of three backends and
// checks that, once both have ejected it, nutcracker and corvid proxy
// place keys alike over the two live servers.
func TestEjectionPlacementMatchesNutcracker(t *testing.T) {
	if testutil.NutcrackerPath() == "" {
		t.Skip("nutcracker is not installed")
	}
	var srvs []*server.Server
	var backends []string
	for range 3 {
		s := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
		srvs = append(srvs, s)
		backends = append(backends, s.Addrs()[0].String())
	}
	extra := []string{"auto_eject_hosts: true", "server_failure_limit: 1", "server_retry_timeout: 600000", "timeout: 2000"}
	for _, s := range []placementSetup{{hash: "fnv1a_64", dist: "ketama"}, {hash: "md5", dist: "modula"}} {
		t.Run(s.hash+"/"+s.dist, func(t *testing.T) {
			listen := testutil.StartNutcracker(t, 1, func(listen []string) string {
				return s.yaml("alpha", listen[0], backends, extra...)
			})
			p := startProxy(t, s.yaml("alpha", "127.0.0.1:0", backends, extra...))
			paddr := p.Addrs()["alpha"].String()
			srvs[1].Close() // the first subtest stops it; it stays down
			// Drive traffic through both until every request succeeds:
			// the dead server has been ejected.
			probe := placementKeys("probe:", 200)
			for _, addr := range []string{listen[0], paddr} {
				testutil.WaitFor(t, func() bool {
					c := testutil.Dial(t, addr)
					defer c.Close()
					ok := true
					for _, k := range probe {
						if r := roundTrip(c, "set "+k+" 0 0 1\r\nx\r\n", testutil.LineReply); r != "STORED\r\n" {
							ok = false
						}
					}
					return ok
				})
			}
			keys := placementKeys(s.dist+":", 300)
			setAll(t, listen[0], keys)
			if m := missing(t, paddr, keys); len(m) > 0 {
				t.Errorf("%d keys stored by nutcracker not found through the proxy after the ejection, e.g. %q", len(m), m[0])
			}
		})
	}
}
