package proxy

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
)

// startRouterWith is startRouter with the proxy's other settings from
// cfg.
func startRouterWith(t testing.TB, cfg Config, rc *route.Config) (*Proxy, string) {
	t.Helper()
	cfg.Routes, cfg.Listen = rc, []string{"127.0.0.1:0"}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runProxy(t, p)
	return p, p.Addrs()["router"].String()
}

// blockedServer accepts connections and never reads from them, until
// the test ends.
func blockedServer(t *testing.T) string {
	stop := make(chan struct{})
	addr := testutil.FakeServer(t, func(nc net.Conn) { <-stop })
	t.Cleanup(func() { close(stop) })
	return addr
}

// serverQueueBytes returns the request bytes the proxy holds for the
// servers of pool (unsent, and sent without a reply).
func serverQueueBytes(p *Proxy, pool string) int64 {
	var n int64
	for _, ps := range p.Stats().Pools {
		if ps.Name == pool {
			for _, ss := range ps.Servers {
				n += ss.InQueueBytes + ss.OutQueueBytes
			}
		}
	}
	return n
}

// TestRouteAsyncBytesBounded sends large sets whose shadow copies go to
// a server that never reads: the copies the proxy holds stay within the
// bound in bytes (Config.WriteBufMemLimit), those past it are dropped
// and counted, and the client's own sets are answered throughout.
func TestRouteAsyncBytesBounded(t *testing.T) {
	const limit = 1 << 20
	prim := startCorvids(t, 1)[0]
	pools := onePools(prim, blockedServer(t))
	pools["B"].Timeout = time.Minute // the copies stay pending during the test
	root := poolRoute("A")
	root.Shadows = []route.Shadow{{Target: poolRoute("B"), KeyFractionRange: [2]float64{0, 1}}}
	p, addr := startRouterWith(t, Config{WriteBufMemLimit: limit}, &route.Config{Pools: pools, Root: root})
	c := testutil.Dial(t, addr)
	c.Timeout = 5 * time.Second
	val := strings.Repeat("v", 128<<10)
	const n = 64 // 8 MiB of copies
	for i := range n {
		if got := setVia(t, c, fmt.Sprintf("k%d", i), val); got != "STORED\r\n" {
			t.Fatalf("set %d: %q", i, got)
		}
		if b := routeStat(p, "poolA").AsyncPendingBytes; b > limit {
			t.Fatalf("after set %d: async_pending_bytes %d, past the bound %d", i, b, limit)
		}
		if b := serverQueueBytes(p, "B"); b > limit {
			t.Fatalf("after set %d: the shadow's server holds %d bytes, past the bound %d", i, b, limit)
		}
	}
	rs := routeStat(p, "poolA")
	if rs.ShadowDropped == 0 || rs.AsyncDropped != rs.ShadowDropped || rs.ShadowSent+rs.ShadowDropped != n {
		t.Errorf("shadow_sent %d, shadow_dropped %d, async_dropped %d: want drops, counted in both, of %d copies",
			rs.ShadowSent, rs.ShadowDropped, rs.AsyncDropped, n)
	}
	if rs.AsyncPendingBytes <= 0 || rs.AsyncPendingBytes > limit {
		t.Errorf("async_pending_bytes %d, want within (0, %d]", rs.AsyncPendingBytes, limit)
	}
	if got := roundTrip(c, fmt.Sprintf("get k%d\r\n", n-1), testutil.ValuesReply); !strings.HasPrefix(got, "VALUE ") {
		t.Fatalf("get: %.40q", got)
	}
}
