package admin_test

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// exporterFamilies is what prometheus/memcached_exporter emits for a
// memcached 1.6.18 started with its defaults (LRU maintainer and crawler
// on, no TEMP LRU, no extstore, not a proxy): each family's type and
// label names. It is written from the exporter's collector: which stats
// it reads, under which name, type and labels.
var exporterFamilies = map[string]string{
	"memcached_up":                                  "gauge",
	"memcached_version":                             "gauge version",
	"memcached_commands_total":                      "counter command,status",
	"memcached_uptime_seconds":                      "counter",
	"memcached_time_seconds":                        "gauge",
	"memcached_process_user_cpu_seconds_total":      "counter",
	"memcached_process_system_cpu_seconds_total":    "counter",
	"memcached_current_bytes":                       "gauge",
	"memcached_limit_bytes":                         "gauge",
	"memcached_current_items":                       "gauge",
	"memcached_items_total":                         "counter",
	"memcached_read_bytes_total":                    "counter",
	"memcached_written_bytes_total":                 "counter",
	"memcached_current_connections":                 "gauge",
	"memcached_connections_total":                   "counter",
	"memcached_connections_rejected_total":          "counter",
	"memcached_connections_yielded_total":           "counter",
	"memcached_connections_listener_disabled_total": "counter",
	"memcached_items_evicted_total":                 "counter",
	"memcached_items_reclaimed_total":               "counter",
	"memcached_item_too_large_total":                "counter",
	"memcached_item_no_memory_total":                "counter",
	"memcached_lru_crawler_starts_total":            "counter",
	"memcached_direct_reclaims_total":               "counter",
	"memcached_lru_crawler_items_checked_total":     "counter",
	"memcached_lru_crawler_reclaimed_total":         "counter",
	"memcached_lru_crawler_moves_to_cold_total":     "counter",
	"memcached_lru_crawler_moves_to_warm_total":     "counter",
	"memcached_lru_crawler_moves_within_lru_total":  "counter",
	"memcached_malloced_bytes":                      "gauge",
	"memcached_accepting_connections":               "gauge",
	"memcached_max_connections":                     "gauge",
	"memcached_lru_crawler_enabled":                 "gauge",
	"memcached_lru_crawler_sleep":                   "gauge",
	"memcached_lru_crawler_to_crawl":                "gauge",
	"memcached_lru_crawler_maintainer_thread":       "gauge",
	"memcached_lru_crawler_hot_percent":             "gauge",
	"memcached_lru_crawler_warm_percent":            "gauge",
	"memcached_lru_crawler_hot_max_factor":          "gauge",
	"memcached_lru_crawler_warm_max_factor":         "gauge",
	// "stats items", per slab class
	"memcached_slab_current_items":                 "gauge slab",
	"memcached_slab_items_age_seconds":             "gauge slab",
	"memcached_slab_lru_hits_total":                "counter lru,slab",
	"memcached_slab_items_crawler_reclaimed_total": "counter slab",
	"memcached_slab_items_evicted_total":           "counter slab",
	"memcached_slab_items_evicted_nonzero_total":   "counter slab",
	"memcached_slab_items_evicted_time_seconds":    "counter slab",
	"memcached_slab_items_evicted_unfetched_total": "counter slab",
	"memcached_slab_items_expired_unfetched_total": "counter slab",
	"memcached_slab_items_outofmemory_total":       "counter slab",
	"memcached_slab_items_reclaimed_total":         "counter slab",
	"memcached_slab_items_tailrepairs_total":       "counter slab",
	"memcached_slab_mem_requested_bytes":           "counter slab",
	"memcached_slab_items_moves_to_cold":           "counter slab",
	"memcached_slab_items_moves_to_warm":           "counter slab",
	"memcached_slab_items_moves_within_lru":        "counter slab",
	"memcached_slab_hot_items":                     "gauge slab",
	"memcached_slab_warm_items":                    "gauge slab",
	"memcached_slab_cold_items":                    "gauge slab",
	"memcached_slab_hot_age_seconds":               "gauge slab",
	"memcached_slab_warm_age_seconds":              "gauge slab",
	// "stats slabs", per slab class
	"memcached_slab_commands_total":   "counter command,slab,status",
	"memcached_slab_chunk_size_bytes": "gauge slab",
	"memcached_slab_chunks_per_page":  "gauge slab",
	"memcached_slab_current_pages":    "gauge slab",
	"memcached_slab_current_chunks":   "gauge slab",
	"memcached_slab_chunks_used":      "gauge slab",
	"memcached_slab_chunks_free":      "gauge slab",
	"memcached_slab_chunks_free_end":  "gauge slab",
}

// exporterCommands are the command/status pairs of
// memcached_commands_total.
var exporterCommands = []string{"cas/badval", "cas/hit", "cas/miss", "decr/hit", "decr/miss", "delete/hit", "delete/miss",
	"flush/hit", "get/hit", "get/miss", "incr/hit", "incr/miss", "set/hit", "touch/hit", "touch/miss"}

// gather collects c once and returns its families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// shape is a family's type and label names as exporterFamilies has them.
func shape(mf *dto.MetricFamily) string {
	typ := strings.ToLower(mf.GetType().String())
	labels := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = true
		}
	}
	if len(labels) == 0 {
		return typ
	}
	var names []string
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	return typ + " " + strings.Join(names, ",")
}

// value returns the value of mf's sample with the given labels.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no %s%q", name, labels)
	return 0
}

// traffic sends n sets and n gets of distinct keys, a miss, a delete and
// an incr to addr.
func traffic(t *testing.T, addr string, n int) {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	for i := range n {
		c.Send(fmt.Appendf(nil, "set k%d 0 0 5\r\nhello\r\n", i))
		c.ReadReply(testutil.LineReply)
		c.Send(fmt.Appendf(nil, "get k%d\r\n", i))
		c.ReadReply(testutil.ValuesReply)
	}
	c.Send([]byte("get nothing\r\n"))
	c.ReadReply(testutil.ValuesReply)
	c.Send([]byte("delete k0\r\n"))
	c.ReadReply(testutil.LineReply)
	c.Send([]byte("incr nothing 1\r\n"))
	c.ReadReply(testutil.LineReply)
}

func checkFamilies(t *testing.T, who string, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	for name, want := range exporterFamilies {
		mf := mfs[name]
		if mf == nil {
			t.Errorf("%s: no %s", who, name)
			continue
		}
		if got := shape(mf); got != want {
			t.Errorf("%s: %s is %q, the exporter's is %q", who, name, got, want)
		}
	}
	for name := range mfs {
		if _, ok := exporterFamilies[name]; !ok {
			t.Errorf("%s: %s, which the exporter does not emit", who, name)
		}
	}
	var cmds []string
	for _, m := range mfs["memcached_commands_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		cmds = append(cmds, l["command"]+"/"+l["status"])
	}
	slices.Sort(cmds)
	if !slices.Equal(cmds, exporterCommands) {
		t.Errorf("%s: memcached_commands_total has %q, want %q", who, cmds, exporterCommands)
	}
}

// TestMemcachedCollectorNames checks that corvid server's metrics have
// the exporter's names, types and labels, and that they move with the
// traffic.
func TestMemcachedCollectorNames(t *testing.T) {
	srv := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	addr := srv.Addrs()[0].String()
	c := admin.NewMemcachedCollector(srv.Stats)
	traffic(t, addr, 10)
	before := gather(t, c)
	checkFamilies(t, "corvid", before)
	if v := value(t, before, "memcached_up"); v != 1 {
		t.Errorf("memcached_up %v", v)
	}
	if v := value(t, before, "memcached_version", "version", server.Version); v != 1 {
		t.Errorf("memcached_version{version=%q} %v", server.Version, v)
	}

	traffic(t, addr, 20)
	after := gather(t, c)
	for _, d := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"memcached_commands_total", []string{"command", "get", "status", "hit"}, 20},
		{"memcached_commands_total", []string{"command", "get", "status", "miss"}, 1},
		{"memcached_commands_total", []string{"command", "set", "status", "hit"}, 20},
		{"memcached_commands_total", []string{"command", "delete", "status", "hit"}, 1},
		{"memcached_commands_total", []string{"command", "incr", "status", "miss"}, 1},
		{"memcached_current_items", nil, 10}, // 9 (k1..k9), then 19 (k1..k19)
		{"memcached_items_total", nil, 20},
		{"memcached_connections_total", nil, 1},
		{"memcached_slab_commands_total", []string{"slab", "1", "command", "set", "status", "hit"}, 20},
		{"memcached_slab_current_items", []string{"slab", "1"}, 10},
	} {
		if got := value(t, after, d.name, d.labels...) - value(t, before, d.name, d.labels...); got != d.delta {
			t.Errorf("%s%q moved by %v, want %v", d.name, d.labels, got, d.delta)
		}
	}
	if b := value(t, after, "memcached_read_bytes_total"); b <= value(t, before, "memcached_read_bytes_total") {
		t.Errorf("memcached_read_bytes_total did not grow: %v", b)
	}
	if v := value(t, after, "memcached_limit_bytes"); v != 64<<20 {
		t.Errorf("memcached_limit_bytes %v, want 64 MiB", v)
	}
}

// statsOver reads stats groups from a memcached-protocol server over TCP.
func statsOver(t *testing.T, addr string) admin.StatsFunc {
	return func(group string, fn func(name, value string)) bool {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Error(err)
			return false
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(nc, "stats %s\r\n", group)
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), " ", 3)
			if f[0] == "END" {
				return true
			}
			if len(f) == 3 && f[0] == "STAT" {
				fn(f[1], f[2])
			}
		}
		t.Errorf("stats %s: no END: %v", group, sc.Err())
		return false
	}
}

// TestMemcachedCollectorAgainstMemcached runs the collector over real
// memcached's stats: it yields the families the exporter's table says,
// as it does over corvid's.
func TestMemcachedCollectorAgainstMemcached(t *testing.T) {
	addr := testutil.StartMemcached(t)
	traffic(t, addr, 10)
	mfs := gather(t, admin.NewMemcachedCollector(statsOver(t, addr)))
	checkFamilies(t, "memcached", mfs)
	if v := value(t, mfs, "memcached_up"); v != 1 {
		t.Errorf("memcached_up %v", v)
	}
}

// TestMemcachedCollectorDown checks memcached_up is 0, alone, when the
// stats cannot be read.
func TestMemcachedCollectorDown(t *testing.T) {
	mfs := gather(t, admin.NewMemcachedCollector(func(string, func(string, string)) bool { return false }))
	if len(mfs) != 1 || value(t, mfs, "memcached_up") != 0 {
		t.Errorf("with no stats: %v", mfs)
	}
}

// TestMemcachedCollectorNoMaxConnsFast checks that a server without
// maxconns_fast, which shows no rejected_connections, is up.
func TestMemcachedCollectorNoMaxConnsFast(t *testing.T) {
	srv := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}, NoMaxConnsFast: true})
	if v := value(t, gather(t, admin.NewMemcachedCollector(srv.Stats)), "memcached_up"); v != 1 {
		t.Errorf("memcached_up %v", v)
	}
}
