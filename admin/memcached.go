package admin

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// StatsFunc reads one stats group of a memcached-protocol server ("" for
// the general stats, "settings", "items", "slabs"), handing each stat to
// fn by the name and value the stats command prints; it reports false
// when it cannot. server.Server.Stats is one.
type StatsFunc func(group string, fn func(name, value string)) bool

// The metric families of prometheus/memcached_exporter, by the names,
// types, labels and help texts it gives them, so that dashboards and
// alerts written for it work unchanged. Those it derives from one stat
// are tables mapping stat to family; the rest are filled by hand below.
var (
	mcUp      = newFamily("memcached_up", "Could the memcached server be reached.", prometheus.GaugeValue)
	mcVersion = newFamily("memcached_version", "The version of this memcached server.", prometheus.GaugeValue, "version")
	mcCmds    = newFamily("memcached_commands_total", "Total number of all requests broken down by command (get, set, etc.) and status.",
		prometheus.CounterValue, "command", "status")
	mcLRUHits = newFamily("memcached_slab_lru_hits_total", "Number of get_hits to the LRU.", prometheus.CounterValue, "slab", "lru")
	mcSlabCmd = newFamily("memcached_slab_commands_total", "Total number of all requests broken down by command (get, set, etc.) and status per slab.",
		prometheus.CounterValue, "slab", "command", "status")
)

// A statFamily is a family whose one sample is one stat's value.
type statFamily struct {
	stat string
	*family
}

func counter(stat, name, help string, labels ...string) statFamily {
	return statFamily{stat, newFamily(name, help, prometheus.CounterValue, labels...)}
}

func gauge(stat, name, help string, labels ...string) statFamily {
	return statFamily{stat, newFamily(name, help, prometheus.GaugeValue, labels...)}
}

// mcGeneral are derived from "stats" (and "stats slabs"'s totals).
var mcGeneral = []statFamily{
	counter("uptime", "memcached_uptime_seconds", "Number of seconds since the server started."),
	gauge("time", "memcached_time_seconds", "current UNIX time according to the server."),
	counter("rusage_user", "memcached_process_user_cpu_seconds_total", "Accumulated user time for this process."),
	counter("rusage_system", "memcached_process_system_cpu_seconds_total", "Accumulated system time for this process."),
	gauge("bytes", "memcached_current_bytes", "Current number of bytes used to store items."),
	gauge("limit_maxbytes", "memcached_limit_bytes", "Number of bytes this server is allowed to use for storage."),
	gauge("curr_items", "memcached_current_items", "Current number of items stored by this instance."),
	counter("total_items", "memcached_items_total", "Total number of items stored during the life of this instance."),
	counter("bytes_read", "memcached_read_bytes_total", "Total number of bytes read by this server from network."),
	counter("bytes_written", "memcached_written_bytes_total", "Total number of bytes sent by this server to network."),
	gauge("curr_connections", "memcached_current_connections", "Current number of open connections."),
	counter("total_connections", "memcached_connections_total", "Total number of connections opened since the server started running."),
	counter("rejected_connections", "memcached_connections_rejected_total",
		"Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode."),
	counter("conn_yields", "memcached_connections_yielded_total",
		"Total number of connections yielded running due to hitting the memcached's -R limit."),
	counter("listen_disabled_num", "memcached_connections_listener_disabled_total",
		"Number of times that memcached has hit its connections limit and disabled its listener."),
	counter("evictions", "memcached_items_evicted_total", "Total number of valid items removed from cache to free memory for new items."),
	counter("reclaimed", "memcached_items_reclaimed_total", "Total number of times an entry was stored using memory from an expired entry."),
	counter("store_too_large", "memcached_item_too_large_total", "The number of times an item exceeded the max-item-size when being stored."),
	counter("store_no_memory", "memcached_item_no_memory_total", "The number of times an item could not be stored due to no more memory."),
	counter("lru_crawler_starts", "memcached_lru_crawler_starts_total", "Times an LRU crawler was started."),
	counter("direct_reclaims", "memcached_direct_reclaims_total", "Times worker threads had to directly reclaim or evict items."),
	counter("crawler_items_checked", "memcached_lru_crawler_items_checked_total", "Total items examined by LRU Crawler."),
	counter("crawler_reclaimed", "memcached_lru_crawler_reclaimed_total", "Total items freed by LRU Crawler."),
	counter("moves_to_cold", "memcached_lru_crawler_moves_to_cold_total", "Total number of items moved from HOT/WARM to COLD LRU's."),
	counter("moves_to_warm", "memcached_lru_crawler_moves_to_warm_total", "Total number of items moved from COLD to WARM LRU."),
	counter("moves_within_lru", "memcached_lru_crawler_moves_within_lru_total", "Total number of items reshuffled within HOT or WARM LRU's."),
	gauge("total_malloced", "memcached_malloced_bytes", "Number of bytes of memory allocated to slab pages."),
	gauge("accepting_conns", "memcached_accepting_connections", "The Memcached server is currently accepting new connections."),
}

// mcSettings are derived from "stats settings"; all but max_connections
// only while the LRU crawler is enabled, as the exporter does.
var (
	mcMaxConns = gauge("maxconns", "memcached_max_connections", "Maximum number of clients allowed.")
	mcCrawler  = []statFamily{
		gauge("lru_crawler", "memcached_lru_crawler_enabled", "Whether the LRU crawler is enabled."),
		gauge("lru_crawler_sleep", "memcached_lru_crawler_sleep", "Microseconds to sleep between LRU crawls."),
		gauge("lru_crawler_tocrawl", "memcached_lru_crawler_to_crawl", "Max items to crawl per slab per run."),
		gauge("lru_maintainer_thread", "memcached_lru_crawler_maintainer_thread", "Split LRU mode and background threads."),
		gauge("hot_lru_pct", "memcached_lru_crawler_hot_percent", "Percent of slab memory reserved for HOT LRU."),
		gauge("warm_lru_pct", "memcached_lru_crawler_warm_percent", "Percent of slab memory reserved for WARM LRU."),
		gauge("hot_max_factor", "memcached_lru_crawler_hot_max_factor", "Set idle age of HOT LRU to COLD age * this"),
		gauge("warm_max_factor", "memcached_lru_crawler_warm_max_factor", "Set idle age of WARM LRU to COLD age * this"),
	}
)

// mcItems are derived from "stats items", per slab class: the first two
// always, the others when the class reports the stat.
var mcItems = []statFamily{
	gauge("number", "memcached_slab_current_items", "Number of items currently stored in this slab class.", "slab"),
	gauge("age", "memcached_slab_items_age_seconds", "Number of seconds the oldest item has been in the slab class.", "slab"),
	counter("crawler_reclaimed", "memcached_slab_items_crawler_reclaimed_total", "Number of items freed by the LRU Crawler.", "slab"),
	counter("evicted", "memcached_slab_items_evicted_total", "Total number of times an item had to be evicted from the LRU before it expired.", "slab"),
	counter("evicted_nonzero", "memcached_slab_items_evicted_nonzero_total",
		"Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.", "slab"),
	counter("evicted_time", "memcached_slab_items_evicted_time_seconds",
		"Seconds since the last access for the most recent item evicted from this class.", "slab"),
	counter("evicted_unfetched", "memcached_slab_items_evicted_unfetched_total", "Total nmber of items evicted and never fetched.", "slab"),
	counter("expired_unfetched", "memcached_slab_items_expired_unfetched_total",
		"Total number of valid items evicted from the LRU which were never touched after being set.", "slab"),
	counter("outofmemory", "memcached_slab_items_outofmemory_total",
		"Total number of items for this slab class that have triggered an out of memory error.", "slab"),
	counter("reclaimed", "memcached_slab_items_reclaimed_total", "Total number of items reclaimed.", "slab"),
	counter("tailrepairs", "memcached_slab_items_tailrepairs_total", "Total number of times the entries for a particular ID need repairing.", "slab"),
	counter("mem_requested", "memcached_slab_mem_requested_bytes", "Number of bytes of memory actual items take up within a slab.", "slab"),
	counter("moves_to_cold", "memcached_slab_items_moves_to_cold", "Number of items moved from HOT or WARM into COLD.", "slab"),
	counter("moves_to_warm", "memcached_slab_items_moves_to_warm", "Number of items moves from COLD into WARM.", "slab"),
	counter("moves_within_lru", "memcached_slab_items_moves_within_lru", "Number of times active items were bumped within HOT or WARM.", "slab"),
	gauge("number_hot", "memcached_slab_hot_items", "Number of items presently stored in the HOT LRU.", "slab"),
	gauge("number_warm", "memcached_slab_warm_items", "Number of items presently stored in the WARM LRU.", "slab"),
	gauge("number_cold", "memcached_slab_cold_items", "Number of items presently stored in the COLD LRU.", "slab"),
	gauge("number_temp", "memcached_slab_temporary_items", "Number of items presently stored in the TEMPORARY LRU.", "slab"),
	gauge("age_hot", "memcached_slab_hot_age_seconds", "Age of the oldest item in HOT LRU.", "slab"),
	gauge("age_warm", "memcached_slab_warm_age_seconds", "Age of the oldest item in HOT LRU.", "slab"),
}

// mcLRUs are the "stats items" hit counters by LRU, and the lru label
// each gets.
var mcLRUs = [][2]string{{"hits_to_hot", "hot"}, {"hits_to_warm", "warm"}, {"hits_to_cold", "cold"}, {"hits_to_temp", "temporary"}}

// mcSlabs are derived from "stats slabs", per slab class.
var mcSlabs = []statFamily{
	gauge("chunk_size", "memcached_slab_chunk_size_bytes", "Number of bytes allocated to each chunk within this slab class.", "slab"),
	gauge("chunks_per_page", "memcached_slab_chunks_per_page", "Number of chunks within a single page for this slab class.", "slab"),
	gauge("total_pages", "memcached_slab_current_pages", "Number of pages allocated to this slab class.", "slab"),
	gauge("total_chunks", "memcached_slab_current_chunks", "Number of chunks allocated to this slab class.", "slab"),
	gauge("used_chunks", "memcached_slab_chunks_used", "Number of chunks allocated to an item.", "slab"),
	gauge("free_chunks", "memcached_slab_chunks_free", "Number of chunks not yet allocated items.", "slab"),
	gauge("free_chunks_end", "memcached_slab_chunks_free_end", "Number of free chunks at the end of the last allocated page.", "slab"),
}

// hitOps are the commands whose hits (and, globally, misses) memcached
// counts as <op>_hits and <op>_misses.
var hitOps = []string{"get", "delete", "incr", "decr", "cas", "touch"}

// MemcachedCollector is a prometheus.Collector of a memcached-protocol
// server's stats under memcached_exporter's metric names, derived from
// the stats as the exporter derives them. It reads the stats on each
// scrape (over corvid server's Stats: its atomic counters, and each slab
// class's figures under that class's lock for a few loads, as the stats
// command takes them); it is safe for concurrent use when its StatsFunc
// is.
type MemcachedCollector struct {
	stats StatsFunc
}

// NewMemcachedCollector returns a collector of the stats stats reads.
func NewMemcachedCollector(stats StatsFunc) *MemcachedCollector {
	return &MemcachedCollector{stats: stats}
}

// Describe sends the descriptions of every family the collector can emit.
func (c *MemcachedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range []*family{mcUp, mcVersion, mcCmds, mcLRUHits, mcSlabCmd, mcMaxConns.family} {
		ch <- f.desc
	}
	for _, t := range [][]statFamily{mcGeneral, mcCrawler, mcItems, mcSlabs} {
		for _, f := range t {
			ch <- f.desc
		}
	}
}

// mcSnapshot is one scrape's stats: the general ones (with "stats slabs"'s
// totals) and settings by name, items and slabs by class and name.
type mcSnapshot struct {
	general, settings map[string]string
	items, slabs      map[int]map[string]string
}

func (c *MemcachedCollector) read() (*mcSnapshot, bool) {
	s := &mcSnapshot{general: map[string]string{}, settings: map[string]string{},
		items: map[int]map[string]string{}, slabs: map[int]map[string]string{}}
	ok := c.stats("", func(n, v string) { s.general[n] = v })
	ok = c.stats("settings", func(n, v string) { s.settings[n] = v }) && ok
	perClass := func(m map[int]map[string]string, fallback map[string]string) func(n, v string) {
		return func(n, v string) {
			id, field, found := strings.Cut(n, ":")
			class, err := strconv.Atoi(id)
			if !found || err != nil {
				fallback[n] = v
				return
			}
			if m[class] == nil {
				m[class] = map[string]string{}
			}
			m[class][field] = v
		}
	}
	items := perClass(s.items, map[string]string{})
	ok = c.stats("items", func(n, v string) { items(strings.TrimPrefix(n, "items:"), v) }) && ok
	ok = c.stats("slabs", perClass(s.slabs, s.general)) && ok
	return s, ok
}

// Collect reads the stats and sends the metrics derived from them.
// memcached_up is 0 when a group could not be read or a stat the
// exporter requires is missing or malformed.
func (c *MemcachedCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.read()
	if !ok {
		mcUp.emit(ch, 0)
		return
	}
	var bad bool
	one := func(f statFamily, stats map[string]string, optional bool, labels ...string) float64 {
		v, err := statValue(stats, f.stat)
		if err != nil {
			if err != errNoStat || !optional {
				bad = true
			}
			return 0
		}
		f.emit(ch, v, labels...)
		return v
	}
	value := func(stats map[string]string, key string) float64 {
		v, err := statValue(stats, key)
		if err != nil {
			bad = true
		}
		return v
	}

	g := s.general
	mcVersion.emit(ch, 1, g["version"])
	for _, op := range hitOps {
		mcCmds.emit(ch, value(g, op+"_hits"), op, "hit")
		mcCmds.emit(ch, value(g, op+"_misses"), op, "miss")
	}
	mcCmds.emit(ch, value(g, "cas_badval"), "cas", "badval")
	mcCmds.emit(ch, value(g, "cmd_flush"), "flush", "hit")
	// cmd_set counts cas commands too.
	mcCmds.emit(ch, value(g, "cmd_set")-value(g, "cas_misses")-value(g, "cas_hits")-value(g, "cas_badval"), "set", "hit")
	for _, f := range mcGeneral {
		// Only present while the crawler is enabled, and with
		// maxconns_fast.
		one(f, g, f.stat == "lru_crawler_starts" || f.stat == "rejected_connections")
	}

	one(mcMaxConns, s.settings, false)
	if s.settings["lru_crawler"] == "yes" {
		for _, f := range mcCrawler {
			one(f, s.settings, false)
		}
	}

	for _, id := range sortedKeys(s.items) {
		st, slab := s.items[id], strconv.Itoa(id)
		for i, f := range mcItems {
			one(f, st, i >= 2, slab)
		}
		for _, l := range mcLRUs {
			mcLRUHits.emit(ch, value(st, l[0]), slab, l[1])
		}
	}
	for _, id := range sortedKeys(s.slabs) {
		st, slab := s.slabs[id], strconv.Itoa(id)
		for _, op := range hitOps {
			mcSlabCmd.emit(ch, value(st, op+"_hits"), slab, op, "hit")
		}
		mcSlabCmd.emit(ch, value(st, "cas_badval"), slab, "cas", "badval")
		mcSlabCmd.emit(ch, value(st, "cmd_set")-value(st, "cas_hits")-value(st, "cas_badval"), slab, "set", "hit")
		for _, f := range mcSlabs {
			one(f, st, false, slab)
		}
	}
	up := 1.0
	if bad {
		up = 0
	}
	mcUp.emit(ch, up)
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
