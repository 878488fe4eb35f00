package admin

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/corvidcache/corvid/queue"
)

// QueueSource is what the queue's collector and dashboard read: the
// stats command's stats by name, and each queue's figures. queue.Server
// is one.
type QueueSource interface {
	Stats() [][2]string
	Queues() []queue.QueueStats
}

// The metric families of corvid queue, named after Kestrel's stats in
// the Prometheus way (there is no Kestrel exporter to follow): the
// server's counters without labels, each queue's labelled with the queue
// ("jobs", or "jobs+audit" for a fanout child). kestrel_up is 1 while the
// queue server answers, as memcached_up is.
var (
	kUp = newFamily("kestrel_up", "Whether the queue server answers (1).", prometheus.GaugeValue)

	kGeneral = []statFamily{
		counter("uptime", "kestrel_uptime_seconds", "Number of seconds since the queue server started."),
		gauge("curr_items", "kestrel_current_items", "Items in all queues."),
		gauge("bytes", "kestrel_current_bytes", "Bytes of the items in all queues."),
		counter("total_items", "kestrel_items_total", "Items added to queues since the server started."),
		gauge("curr_connections", "kestrel_current_connections", "Current number of open connections."),
		counter("total_connections", "kestrel_connections_total", "Total number of connections opened since the server started."),
		counter("cmd_get", "kestrel_cmd_get_total", "Gets that asked for an item (peeks not included)."),
		counter("cmd_set", "kestrel_cmd_set_total", "Set requests (enqueues)."),
		counter("cmd_peek", "kestrel_cmd_peek_total", "Peek requests."),
		counter("get_hits", "kestrel_get_hits_total", "Gets and peeks that returned an item."),
		counter("get_misses", "kestrel_get_misses_total", "Gets and peeks that found no item (after waiting, with /t=)."),
		counter("bytes_read", "kestrel_read_bytes_total", "Total number of bytes read from clients."),
		counter("bytes_written", "kestrel_written_bytes_total", "Total number of bytes written to clients."),
		counter("queue_creates", "kestrel_queues_created_total", "Queues created since the server started."),
		counter("queue_deletes", "kestrel_queues_deleted_total", "Queues deleted since the server started."),
		counter("queue_expires", "kestrel_queues_expired_total", "Queues deleted for having expired."),
	}

	kqItems     = newFamily("kestrel_queue_items", "Items in the queue.", prometheus.GaugeValue, "queue")
	kqBytes     = newFamily("kestrel_queue_bytes", "Bytes of the items in the queue.", prometheus.GaugeValue, "queue")
	kqTotal     = newFamily("kestrel_queue_total_items_total", "Items added to the queue.", prometheus.CounterValue, "queue")
	kqExpired   = newFamily("kestrel_queue_expired_items_total", "Items of the queue that expired.", prometheus.CounterValue, "queue")
	kqDiscarded = newFamily("kestrel_queue_discarded_total", "Items the queue discarded because it was full.", prometheus.CounterValue, "queue")
	kqWaiters   = newFamily("kestrel_queue_waiters", "Clients waiting for an item (get/t=).", prometheus.GaugeValue, "queue")
	kqOpen      = newFamily("kestrel_queue_open_transactions", "Items read with /open, not yet closed or aborted.", prometheus.GaugeValue, "queue")
	kqLogSize   = newFamily("kestrel_queue_logsize_bytes", "Size of the queue's journal.", prometheus.GaugeValue, "queue")
	kqMemItems  = newFamily("kestrel_queue_mem_items", "Items of the queue held in memory.", prometheus.GaugeValue, "queue")
	kqMemBytes  = newFamily("kestrel_queue_mem_bytes", "Bytes of the queue's items held in memory.", prometheus.GaugeValue, "queue")
	kqAge       = newFamily("kestrel_queue_age_seconds", "Time the queue's head item has waited.", prometheus.GaugeValue, "queue")

	kQueue = []*family{kqItems, kqBytes, kqTotal, kqExpired, kqDiscarded, kqWaiters, kqOpen, kqLogSize, kqMemItems, kqMemBytes, kqAge}
)

// KestrelCollector is a prometheus.Collector of a corvid queue's stats.
// It reads the server's stats on each scrape, as the stats command
// does; it is safe for concurrent use when its source is.
type KestrelCollector struct {
	src QueueSource
}

// NewKestrelCollector returns a collector of src's stats.
func NewKestrelCollector(src QueueSource) *KestrelCollector {
	return &KestrelCollector{src: src}
}

// Describe sends the descriptions of every family the collector emits.
func (c *KestrelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- kUp.desc
	for _, f := range kGeneral {
		ch <- f.desc
	}
	for _, f := range kQueue {
		ch <- f.desc
	}
}

// Collect reads the stats and sends their metrics.
func (c *KestrelCollector) Collect(ch chan<- prometheus.Metric) {
	stats := make(map[string]string, len(kGeneral))
	for _, kv := range c.src.Stats() {
		stats[kv[0]] = kv[1]
	}
	kUp.emit(ch, 1)
	for _, f := range kGeneral {
		if v, err := statValue(stats, f.stat); err == nil {
			f.emit(ch, v)
		}
	}
	for _, q := range c.src.Queues() {
		for _, s := range [...]struct {
			f *family
			v int64
		}{
			{kqItems, q.Items}, {kqBytes, q.Bytes}, {kqTotal, q.TotalItems}, {kqExpired, q.ExpiredItems},
			{kqDiscarded, q.Discarded}, {kqWaiters, q.Waiters}, {kqOpen, q.OpenTransactions},
			{kqLogSize, q.LogSize}, {kqMemItems, q.MemItems}, {kqMemBytes, q.MemBytes},
		} {
			s.f.emit(ch, float64(s.v), q.Name)
		}
		kqAge.emit(ch, q.Age.Seconds(), q.Name)
	}
}

// KestrelDashboard returns the dashboard of a corvid queue: enqueues,
// dequeues, hit ratio, items, bytes and connections over time, and a
// table of the queues with each one's items and rate of enqueues.
func KestrelDashboard(title string, src QueueSource) *Dashboard {
	// rates are each queue's enqueues per second between the last two
	// samples, which Sample (one goroutine) computes and Tables reads.
	var (
		mu     sync.Mutex // guards rates
		rates  map[string]float64
		prev   map[string]int64 // total_items by queue at prevAt
		prevAt time.Time
	)
	return &Dashboard{
		Title: title,
		Charts: []Chart{
			{ID: "ops", Title: "Operations", Unit: "per second", Lines: []Line{
				{Label: "set", Key: "cmd_set", Rate: true},
				{Label: "get", Key: "cmd_get", Rate: true},
				{Label: "get miss", Key: "get_misses", Rate: true},
				{Label: "peek", Key: "cmd_peek", Rate: true},
			}},
			{ID: "hits", Title: "Get hit ratio", Unit: "%", Lines: []Line{
				{Label: "hits", Key: "get_hits", Per: "get_lookups", Scale: 100},
			}},
			{ID: "items", Title: "Items", Unit: "count", Lines: []Line{
				{Label: "queued", Key: "curr_items"},
				{Label: "open reads", Key: "open_transactions"},
				{Label: "waiters", Key: "waiters"},
			}},
			{ID: "memory", Title: "Bytes", Unit: "bytes", Lines: []Line{
				{Label: "queued", Key: "bytes"},
				{Label: "in memory", Key: "mem_bytes"},
				{Label: "journals", Key: "logsize"},
			}},
			{ID: "conns", Title: "Connections", Unit: "open, new per second", Lines: []Line{
				{Label: "open", Key: "curr_connections"},
				{Label: "new/s", Key: "total_connections", Rate: true},
			}},
			{ID: "net", Title: "Network", Unit: "bytes per second", Lines: []Line{
				{Label: "read", Key: "bytes_read", Rate: true},
				{Label: "written", Key: "bytes_written", Rate: true},
			}},
		},
		Sample: func() map[string]float64 {
			m := map[string]float64{}
			for _, kv := range src.Stats() {
				if v, err := strconv.ParseFloat(kv[1], 64); err == nil {
					m[kv[0]] = v
				}
			}
			// Hits and misses count peeks too.
			m["get_lookups"] = m["get_hits"] + m["get_misses"]
			now := time.Now()
			qs := src.Queues()
			cur := make(map[string]int64, len(qs))
			r := make(map[string]float64, len(qs))
			dt := now.Sub(prevAt).Seconds()
			for _, q := range qs {
				m["open_transactions"] += float64(q.OpenTransactions)
				m["waiters"] += float64(q.Waiters)
				m["mem_bytes"] += float64(q.MemBytes)
				m["logsize"] += float64(q.LogSize)
				cur[q.Name] = q.TotalItems
				if p, ok := prev[q.Name]; ok && dt > 0 && q.TotalItems >= p {
					r[q.Name] = float64(q.TotalItems-p) / dt
				}
			}
			prev, prevAt = cur, now
			mu.Lock()
			rates = r
			mu.Unlock()
			return m
		},
		Tables: func() []Table {
			t := Table{ID: "queues", Title: "Queues", Columns: []string{"queue", "items", "bytes", "enqueued/s", "total items",
				"expired", "discarded", "open reads", "waiters", "age", "journal bytes"}}
			mu.Lock()
			r := rates
			mu.Unlock()
			for _, q := range src.Queues() {
				rate := "-"
				if v, ok := r[q.Name]; ok {
					rate = strconv.FormatFloat(v, 'f', 1, 64)
				}
				t.Rows = append(t.Rows, []string{q.Name, itoa(q.Items), itoa(q.Bytes), rate, itoa(q.TotalItems),
					itoa(q.ExpiredItems), itoa(q.Discarded), itoa(q.OpenTransactions), itoa(q.Waiters),
					strconv.FormatFloat(q.Age.Seconds(), 'f', 1, 64) + "s", itoa(q.LogSize)})
			}
			return []Table{t}
		},
	}
}
