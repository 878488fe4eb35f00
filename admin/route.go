package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corvidcache/corvid/proxy"
)

// The metric families of a route tree's nodes (corvid router's, and the
// route: of nutcracker.yml pools), one per counter of proxy.RouteStats,
// labelled with the node's name (its name property, else where the
// configuration defines it) and its type ("FailoverRoute").
var routeFamilies = map[string]*family{
	"requests": newFamily("corvid_route_requests_total", "Requests that took the route.", prometheus.CounterValue, "route", "type"),
	"errors": newFamily("corvid_route_errors_total",
		"Error replies the route saw from its children, and requests it refused or could not send.", prometheus.CounterValue, "route", "type"),
	"failovers": newFamily("corvid_route_failovers_total", "Requests the route sent on to a next child.", prometheus.CounterValue, "route", "type"),
	"warmup_fills": newFamily("corvid_route_warmup_fills_total", "Adds a WarmUpRoute sent to its cold route after a hit in its warm one.",
		prometheus.CounterValue, "route", "type"),
	"shadow_sent":         newFamily("corvid_route_shadow_sent_total", "Shadow copies of requests the route sent.", prometheus.CounterValue, "route", "type"),
	"shadow_dropped":      newFamily("corvid_route_shadow_dropped_total", "Shadow copies the route dropped at its bound on copies in flight.", prometheus.CounterValue, "route", "type"),
	"async_pending":       newFamily("corvid_route_async_pending", "Detached copies of requests in flight (AllAsync, shadows, warm-up adds).", prometheus.GaugeValue, "route", "type"),
	"async_pending_bytes": newFamily("corvid_route_async_pending_bytes", "Bytes of the detached copies of requests in flight.", prometheus.GaugeValue, "route", "type"),
	"async_dropped":       newFamily("corvid_route_async_dropped_total", "Detached copies (shadows among them) the route dropped at its bounds on copies in flight.", prometheus.CounterValue, "route", "type"),
}

// RouteCollector is a prometheus.Collector of the counters of a corvid
// proxy's route trees, as corvid_route_* families. It takes a snapshot
// (proxy.Proxy.Stats) on each scrape; it is safe for concurrent use when
// its stats function is.
type RouteCollector struct {
	stats func() proxy.Stats
}

// NewRouteCollector returns a collector of the route counters of the
// snapshots stats takes.
func NewRouteCollector(stats func() proxy.Stats) *RouteCollector {
	return &RouteCollector{stats: stats}
}

// Describe sends the descriptions of every family the collector emits.
func (c *RouteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range routeFamilies {
		ch <- f.desc
	}
}

// Collect takes a snapshot and sends its route metrics. Nodes of one
// name and type share their counters, so each is sent once.
func (c *RouteCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	seen := make(map[[2]string]bool, len(s.Routes))
	for i := range s.Routes {
		r := &s.Routes[i]
		id := [2]string{r.Name, r.Type}
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, k := range r.Counters() {
			routeFamilies[k.Name].emit(ch, float64(k.Value), r.Name, r.Type)
		}
	}
}

// RouterDashboard returns the dashboard of a corvid router: the proxy's
// (TwemproxyDashboard) with a chart of what its routes do besides
// forwarding (failovers, errors, warm-up fills, dropped copies) and a
// table of its route nodes.
func RouterDashboard(title string, stats func() proxy.Stats) *Dashboard {
	d := TwemproxyDashboard(title, stats)
	d.Charts = append(d.Charts, Chart{ID: "routes", Title: "Routes", Unit: "per second", Lines: []Line{
		{Label: "failovers", Key: "route_failovers", Rate: true},
		{Label: "errors", Key: "route_errors", Rate: true},
		{Label: "warm-up fills", Key: "route_warmup_fills", Rate: true},
		{Label: "copies dropped", Key: "route_dropped", Rate: true},
	}})
	d.Sample = func() map[string]float64 {
		s := stats()
		m := twemproxySample(s)
		seen := make(map[[2]string]bool, len(s.Routes))
		for _, r := range s.Routes {
			if id := [2]string{r.Name, r.Type}; !seen[id] {
				seen[id] = true
				m["route_failovers"] += float64(r.Failovers)
				m["route_errors"] += float64(r.Errors)
				m["route_warmup_fills"] += float64(r.WarmFills)
				// A shadow dropped is also an async copy dropped.
				m["route_dropped"] += float64(r.AsyncDropped)
			}
		}
		return m
	}
	d.Tables = func() []Table {
		s := stats()
		t := Table{ID: "routes", Title: "Routes", Columns: []string{"route", "type", "requests", "errors", "failovers",
			"warm-up fills", "shadow sent", "shadow dropped", "async pending", "async dropped"}}
		seen := make(map[[2]string]bool, len(s.Routes))
		for _, r := range s.Routes {
			if id := [2]string{r.Name, r.Type}; !seen[id] {
				seen[id] = true
				t.Rows = append(t.Rows, []string{r.Name, r.Type, itoa(r.Requests), itoa(r.Errors), itoa(r.Failovers),
					itoa(r.WarmFills), itoa(r.ShadowSent), itoa(r.ShadowDropped), itoa(r.AsyncPending), itoa(r.AsyncDropped)})
			}
		}
		return append([]Table{t}, twemproxyTables(s)...)
	}
	return d
}
