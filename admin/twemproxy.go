package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corvidcache/corvid/proxy"
)

// The metric families of the twemproxy exporter (twemproxy_exporter, after
// nutcracker's stats JSON), by its names, types, label names and help
// texts: proxy-wide figures labelled with the proxy's source (its
// hostname, as nutcracker's "source"), pool figures with the pool as
// "cluster" too, server figures with the server as well. One is
// corvid's own: twemproxy_server_up, the health of each server.
var (
	tpCurrConns  = newFamily("twemproxy_curr_connections", "Current Connections", prometheus.GaugeValue, "twemproxy")
	tpTotalConns = newFamily("twemproxy_total_connections", "Total Connections", prometheus.CounterValue, "twemproxy")
	tpUptime     = newFamily("twemproxy_uptime", "Current Uptime", prometheus.GaugeValue, "twemproxy")

	tpPool = map[string]*family{
		"client_connections": newFamily("twemproxy_client_connections", "Client Connections", prometheus.CounterValue, "twemproxy", "cluster"),
		"client_eof":         newFamily("twemproxy_client_eof", "Client EOFs", prometheus.CounterValue, "twemproxy", "cluster"),
		"client_err":         newFamily("twemproxy_client_err", "Client Errors", prometheus.CounterValue, "twemproxy", "cluster"),
		"forward_error":      newFamily("twemproxy_forward_error", "Forwarding Errors", prometheus.CounterValue, "twemproxy", "cluster"),
		"fragments":          newFamily("twemproxy_fragments", "Fragments", prometheus.CounterValue, "twemproxy", "cluster"),
		"server_ejects":      newFamily("twemproxy_server_ejects", "Server Errors", prometheus.CounterValue, "twemproxy", "cluster"),
	}

	tpServer = map[string]*family{
		"in_queue":           newFamily("twemproxy_in_queue", "In Queue Depth", prometheus.GaugeValue, "twemproxy", "cluster", "server"),
		"in_queue_bytes":     newFamily("twemproxy_in_queue_bytes", "In Queue Bytes", prometheus.GaugeValue, "twemproxy", "cluster", "server"),
		"out_queue":          newFamily("twemproxy_out_queue", "Out Queue Depth", prometheus.GaugeValue, "twemproxy", "cluster", "server"),
		"out_queue_bytes":    newFamily("twemproxy_out_queue_bytes", "Out Queue Bytes", prometheus.GaugeValue, "twemproxy", "cluster", "server"),
		"request_bytes":      newFamily("twemproxy_request_bytes", "Request Bytes", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"requests":           newFamily("twemproxy_requests", "Request Count", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"response_bytes":     newFamily("twemproxy_response_bytes", "Response Bytes", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"responses":          newFamily("twemproxy_responses", "Response Count", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"server_connections": newFamily("twemproxy_server_connections", "Server Connections", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"server_ejected_at":  newFamily("twemproxy_server_ejected_at", "Server Ejected At", prometheus.GaugeValue, "twemproxy", "cluster", "server"),
		"server_eof":         newFamily("twemproxy_server_eof", "Server EOFs", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"server_err":         newFamily("twemproxy_server_err", "Server Errors", prometheus.CounterValue, "twemproxy", "cluster", "server"),
		"server_timedout":    newFamily("twemproxy_server_timedout", "Server Timed Out", prometheus.GaugeValue, "twemproxy", "cluster", "server"),
	}

	tpServerUp = newFamily("twemproxy_server_up", "Whether the server is in its pool's continuum (1), or ejected (0).",
		prometheus.GaugeValue, "twemproxy", "cluster", "server")
)

// TwemproxyCollector is a prometheus.Collector of a corvid proxy's
// counters under the twemproxy exporter's metric names. It takes a
// snapshot (proxy.Proxy.Stats, which reads atomic counters) on each
// scrape; it is safe for concurrent use when its stats function is.
type TwemproxyCollector struct {
	source string
	stats  func() proxy.Stats
}

// NewTwemproxyCollector returns a collector of the snapshots stats
// takes, labelled twemproxy=source.
func NewTwemproxyCollector(source string, stats func() proxy.Stats) *TwemproxyCollector {
	return &TwemproxyCollector{source: source, stats: stats}
}

// Describe sends the descriptions of every family the collector emits.
func (c *TwemproxyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range []*family{tpCurrConns, tpTotalConns, tpUptime, tpServerUp} {
		ch <- f.desc
	}
	for _, m := range []map[string]*family{tpPool, tpServer} {
		for _, f := range m {
			ch <- f.desc
		}
	}
}

// Collect takes a snapshot and sends its metrics.
func (c *TwemproxyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	tpCurrConns.emit(ch, float64(s.CurrConnections), c.source)
	tpTotalConns.emit(ch, float64(s.TotalConnections), c.source)
	tpUptime.emit(ch, float64(s.Uptime), c.source)
	for i := range s.Pools {
		p := &s.Pools[i]
		for _, k := range p.Counters() {
			tpPool[k.Name].emit(ch, float64(k.Value), c.source, p.Name)
		}
		for j := range p.Servers {
			sv := &p.Servers[j]
			for _, k := range sv.Counters() {
				tpServer[k.Name].emit(ch, float64(k.Value), c.source, p.Name, sv.Name)
			}
			up := 1.0
			if sv.Ejected {
				up = 0
			}
			tpServerUp.emit(ch, up, c.source, p.Name, sv.Name)
		}
	}
}
