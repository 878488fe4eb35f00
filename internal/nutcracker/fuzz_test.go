package nutcracker

import "testing"

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:1 x\n"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte(routed))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		for _, p := range c.Pools {
			if p.Route != nil && len(p.Servers) == 0 {
				continue // a pool that only routes
			}
			if len(p.Servers) == 0 || p.Listen == "" {
				t.Fatalf("accepted pool %+v", p)
			}
			if _, err := p.Ring(); err != nil {
				t.Fatalf("accepted pool %q whose ring fails: %v", p.Name, err)
			}
		}
	})
}

func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"127.0.0.1:11211:1", "/tmp/s:2 name", "h:1:0", "[::1]:11211:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		srv, err := ParseServer(s)
		if err == nil && (srv.Weight < 1 || srv.Addr == "") {
			t.Fatalf("%q accepted as %+v", s, srv)
		}
	})
}
