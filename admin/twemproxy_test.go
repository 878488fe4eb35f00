package admin_test

import (
	"testing"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/proxy"
)

// twemproxyFamilies are the twemproxy exporter's families (type and
// labels), and corvid's twemproxy_server_up.
var twemproxyFamilies = map[string]string{
	"twemproxy_curr_connections":   "gauge twemproxy",
	"twemproxy_total_connections":  "counter twemproxy",
	"twemproxy_uptime":             "gauge twemproxy",
	"twemproxy_client_connections": "counter cluster,twemproxy",
	"twemproxy_client_eof":         "counter cluster,twemproxy",
	"twemproxy_client_err":         "counter cluster,twemproxy",
	"twemproxy_forward_error":      "counter cluster,twemproxy",
	"twemproxy_fragments":          "counter cluster,twemproxy",
	"twemproxy_server_ejects":      "counter cluster,twemproxy",
	"twemproxy_in_queue":           "gauge cluster,server,twemproxy",
	"twemproxy_in_queue_bytes":     "gauge cluster,server,twemproxy",
	"twemproxy_out_queue":          "gauge cluster,server,twemproxy",
	"twemproxy_out_queue_bytes":    "gauge cluster,server,twemproxy",
	"twemproxy_request_bytes":      "counter cluster,server,twemproxy",
	"twemproxy_requests":           "counter cluster,server,twemproxy",
	"twemproxy_response_bytes":     "counter cluster,server,twemproxy",
	"twemproxy_responses":          "counter cluster,server,twemproxy",
	"twemproxy_server_connections": "counter cluster,server,twemproxy",
	"twemproxy_server_ejected_at":  "gauge cluster,server,twemproxy",
	"twemproxy_server_eof":         "counter cluster,server,twemproxy",
	"twemproxy_server_err":         "counter cluster,server,twemproxy",
	"twemproxy_server_timedout":    "gauge cluster,server,twemproxy",
	"twemproxy_server_up":          "gauge cluster,server,twemproxy",
}

func twoServers() proxy.Stats {
	return proxy.Stats{Uptime: 7, CurrConnections: 3, TotalConnections: 9, Pools: []proxy.PoolStats{{
		Name: "alpha", ClientConnections: 3, ServerEjects: 1, ForwardError: 4,
		Servers: []proxy.ServerStats{
			{Name: "127.0.0.1:11211", Requests: 100, Responses: 99, ServerConnections: 1},
			{Name: "b", Requests: 5, ServerErr: 5, ServerEjectedAt: 1700000000000000, Ejected: true},
		},
	}}}
}

func TestTwemproxyCollector(t *testing.T) {
	mfs := gather(t, admin.NewTwemproxyCollector("host1", twoServers))
	for name, want := range twemproxyFamilies {
		if mf := mfs[name]; mf == nil {
			t.Errorf("no %s", name)
		} else if got := shape(mf); got != want {
			t.Errorf("%s is %q, want %q", name, got, want)
		}
	}
	if len(mfs) != len(twemproxyFamilies) {
		t.Errorf("%d families, want %d", len(mfs), len(twemproxyFamilies))
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"twemproxy_curr_connections", []string{"twemproxy", "host1"}, 3},
		{"twemproxy_total_connections", nil, 9},
		{"twemproxy_uptime", nil, 7},
		{"twemproxy_server_ejects", []string{"cluster", "alpha"}, 1},
		{"twemproxy_forward_error", []string{"cluster", "alpha"}, 4},
		{"twemproxy_requests", []string{"cluster", "alpha", "server", "127.0.0.1:11211"}, 100},
		{"twemproxy_responses", []string{"server", "127.0.0.1:11211"}, 99},
		{"twemproxy_server_err", []string{"server", "b"}, 5},
		{"twemproxy_server_ejected_at", []string{"server", "b"}, 1700000000000000},
		{"twemproxy_server_up", []string{"server", "127.0.0.1:11211"}, 1},
		{"twemproxy_server_up", []string{"server", "b"}, 0},
	} {
		if got := value(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestTwemproxyDashboard checks the proxy's dashboard figures and its
// servers table, with the ejected server marked.
func TestTwemproxyDashboard(t *testing.T) {
	d := admin.TwemproxyDashboard("corvid proxy", twoServers)
	m := d.Sample()
	for k, want := range map[string]float64{"requests": 105, "responses": 99, "server_ejects": 1,
		"servers_up": 1, "servers_ejected": 1, "curr_connections": 3} {
		if m[k] != want {
			t.Errorf("sample %s = %v, want %v", k, m[k], want)
		}
	}
	tables := d.Tables()
	if len(tables) != 2 || tables[0].ID != "servers" || len(tables[0].Rows) != 2 {
		t.Fatalf("tables: %+v", tables)
	}
	for i, want := range []string{"up", "ejected"} {
		if row := tables[0].Rows[i]; row[2] != want || row[1] != twoServers().Pools[0].Servers[i].Name {
			t.Errorf("servers row %d: %q, want health %q", i, row, want)
		}
	}
}
