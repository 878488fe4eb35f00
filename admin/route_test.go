package admin_test

import (
	"testing"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/proxy"
)

// routeFamilies are the route trees' families: type and label names.
var routeFamilies = map[string]string{
	"corvid_route_requests_total":       "counter route,type",
	"corvid_route_errors_total":         "counter route,type",
	"corvid_route_failovers_total":      "counter route,type",
	"corvid_route_warmup_fills_total":   "counter route,type",
	"corvid_route_shadow_sent_total":    "counter route,type",
	"corvid_route_shadow_dropped_total": "counter route,type",
	"corvid_route_async_pending":        "gauge route,type",
	"corvid_route_async_pending_bytes":  "gauge route,type",
	"corvid_route_async_dropped_total":  "counter route,type",
}

// routed is a router's snapshot: twoServers' pool under a failover
// route, whose node appears twice (two handles of one name share their
// counters), and a warm-up route with shadows.
func routed() proxy.Stats {
	s := twoServers()
	fo := proxy.RouteStats{Name: "fo", Type: "FailoverRoute", Requests: 50, Errors: 3, Failovers: 2}
	s.Routes = []proxy.RouteStats{
		fo,
		{Name: "route", Type: "WarmUpRoute", Requests: 70, WarmFills: 6, AsyncPending: 1, AsyncDropped: 4},
		{Name: "route.cold", Type: "PoolRoute", Requests: 20, ShadowSent: 9, ShadowDropped: 1, AsyncDropped: 1},
		fo,
	}
	return s
}

func TestRouteCollector(t *testing.T) {
	mfs := gather(t, admin.NewRouteCollector(routed))
	for name, want := range routeFamilies {
		if mf := mfs[name]; mf == nil {
			t.Errorf("no %s", name)
		} else if got := shape(mf); got != want {
			t.Errorf("%s is %q, want %q", name, got, want)
		} else if n := len(mf.GetMetric()); n != 3 {
			t.Errorf("%s has %d samples, want one a route", name, n)
		}
	}
	if len(mfs) != len(routeFamilies) {
		t.Errorf("%d families, want %d", len(mfs), len(routeFamilies))
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"corvid_route_requests_total", []string{"route", "fo", "type", "FailoverRoute"}, 50},
		{"corvid_route_errors_total", []string{"route", "fo"}, 3},
		{"corvid_route_failovers_total", []string{"route", "fo"}, 2},
		{"corvid_route_requests_total", []string{"route", "route", "type", "WarmUpRoute"}, 70},
		{"corvid_route_warmup_fills_total", []string{"route", "route"}, 6},
		{"corvid_route_async_pending", []string{"route", "route"}, 1},
		{"corvid_route_async_dropped_total", []string{"route", "route"}, 4},
		{"corvid_route_shadow_sent_total", []string{"route", "route.cold", "type", "PoolRoute"}, 9},
		{"corvid_route_shadow_dropped_total", []string{"route", "route.cold"}, 1},
	} {
		if got := value(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if mfs := gather(t, admin.NewRouteCollector(twoServers)); len(mfs) != 0 {
		t.Errorf("without route trees: %d families", len(mfs))
	}
}

// TestRouterDashboard checks the router's dashboard: the proxy's figures
// and tables, and its routes', each node once.
func TestRouterDashboard(t *testing.T) {
	d := admin.RouterDashboard("corvid router", routed)
	m := d.Sample()
	for k, want := range map[string]float64{"requests": 105, "servers_ejected": 1, "route_failovers": 2,
		"route_errors": 3, "route_warmup_fills": 6, "route_dropped": 5} {
		if m[k] != want {
			t.Errorf("sample %s = %v, want %v", k, m[k], want)
		}
	}
	if got := len(d.Charts); got != len(admin.TwemproxyDashboard("", twoServers).Charts)+1 {
		t.Errorf("%d charts", got)
	}
	tables := d.Tables()
	if len(tables) != 3 || tables[0].ID != "routes" || tables[1].ID != "servers" || tables[2].ID != "pools" {
		t.Fatalf("tables: %+v", tables)
	}
	if rows := tables[0].Rows; len(rows) != 3 || rows[0][0] != "fo" || rows[0][1] != "FailoverRoute" || rows[0][4] != "2" {
		t.Errorf("routes table: %q", rows)
	}
}
