package admin_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/queue"
)

// kestrelFamilies are corvid queue's families: type and label names.
var kestrelFamilies = map[string]string{
	"kestrel_up":                        "gauge",
	"kestrel_uptime_seconds":            "counter",
	"kestrel_current_items":             "gauge",
	"kestrel_current_bytes":             "gauge",
	"kestrel_items_total":               "counter",
	"kestrel_current_connections":       "gauge",
	"kestrel_connections_total":         "counter",
	"kestrel_cmd_get_total":             "counter",
	"kestrel_cmd_set_total":             "counter",
	"kestrel_cmd_peek_total":            "counter",
	"kestrel_get_hits_total":            "counter",
	"kestrel_get_misses_total":          "counter",
	"kestrel_read_bytes_total":          "counter",
	"kestrel_written_bytes_total":       "counter",
	"kestrel_queues_created_total":      "counter",
	"kestrel_queues_deleted_total":      "counter",
	"kestrel_queues_expired_total":      "counter",
	"kestrel_queue_items":               "gauge queue",
	"kestrel_queue_bytes":               "gauge queue",
	"kestrel_queue_total_items_total":   "counter queue",
	"kestrel_queue_expired_items_total": "counter queue",
	"kestrel_queue_discarded_total":     "counter queue",
	"kestrel_queue_waiters":             "gauge queue",
	"kestrel_queue_open_transactions":   "gauge queue",
	"kestrel_queue_logsize_bytes":       "gauge queue",
	"kestrel_queue_mem_items":           "gauge queue",
	"kestrel_queue_mem_bytes":           "gauge queue",
	"kestrel_queue_age_seconds":         "gauge queue",
}

// noLeaks checks, once the test and its cleanups are done, that they
// left no goroutine behind.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// startQueue serves a queue server in memory on 127.0.0.1 until the
// test ends.
func startQueue(t *testing.T, fc *queue.FileConfig) (*queue.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := queue.New(queue.Config{Listener: ln, Queues: fc})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the queue server did not stop")
		}
	})
	return srv, ln.Addr().String()
}

// enqueue sets n items of 5 bytes on q.
func enqueue(t *testing.T, c *testutil.Conn, q string, n int) {
	t.Helper()
	for range n {
		c.Send(fmt.Appendf(nil, "set %s 0 0 5\r\nhello\r\n", q))
		if r := c.ReadReply(testutil.LineReply); string(r) != "STORED\r\n" {
			t.Fatalf("set %s: %q", q, r)
		}
	}
}

// TestKestrelCollector checks the queue's families, their types and
// labels, and that each queue's figures move with its traffic.
func TestKestrelCollector(t *testing.T) {
	noLeaks(t)
	fc, err := queue.ParseConfig([]byte("queues:\n  small:\n    max_items: 2\n    discard_old_when_full: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := startQueue(t, fc)
	c := admin.NewKestrelCollector(srv)
	conn := testutil.Dial(t, addr)
	enqueue(t, conn, "jobs", 3)
	before := gather(t, c)
	for name, want := range kestrelFamilies {
		if mf := before[name]; mf == nil {
			t.Errorf("no %s", name)
		} else if got := shape(mf); got != want {
			t.Errorf("%s is %q, want %q", name, got, want)
		}
	}
	if len(before) != len(kestrelFamilies) {
		t.Errorf("%d families, want %d", len(before), len(kestrelFamilies))
	}

	// jobs: 4 more sets, a get, a reliable read left open, a miss on
	// another queue; small: 3 sets, one of which discards the oldest;
	// one client blocked in get/t= on idle.
	enqueue(t, conn, "jobs", 4)
	conn.Send([]byte("get jobs\r\n"))
	conn.ReadReply(testutil.ValuesReply)
	conn.Send([]byte("get jobs/open\r\n"))
	conn.ReadReply(testutil.ValuesReply)
	conn.Send([]byte("get empty\r\n"))
	conn.ReadReply(testutil.ValuesReply)
	enqueue(t, conn, "small", 3)
	waiter := testutil.Dial(t, addr)
	waiter.Send([]byte("get idle/t=60000\r\n"))
	var after map[string]*dto.MetricFamily
	testutil.WaitFor(t, func() bool {
		after = gather(t, c)
		for _, m := range after["kestrel_queue_waiters"].GetMetric() {
			if m.GetLabel()[0].GetValue() == "idle" && m.GetGauge().GetValue() == 1 {
				return true
			}
		}
		return false
	})
	for _, d := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"kestrel_queue_items", []string{"queue", "jobs"}, 4 - 2},
		{"kestrel_queue_bytes", []string{"queue", "jobs"}, 5 * (4 - 2)},
		{"kestrel_queue_mem_items", []string{"queue", "jobs"}, 4 - 2},
		{"kestrel_queue_total_items_total", []string{"queue", "jobs"}, 4},
		{"kestrel_queue_open_transactions", []string{"queue", "jobs"}, 1},
		{"kestrel_queue_waiters", []string{"queue", "jobs"}, 0},
		{"kestrel_current_items", nil, 2 + 2},
		{"kestrel_items_total", nil, 4 + 3},
		{"kestrel_cmd_set_total", nil, 4 + 3},
		{"kestrel_cmd_get_total", nil, 4}, // the waiter's too
		{"kestrel_get_hits_total", nil, 2},
		{"kestrel_get_misses_total", nil, 1},
		{"kestrel_connections_total", nil, 1},
		{"kestrel_current_connections", nil, 1},
		{"kestrel_queues_created_total", nil, 3},
	} {
		if got := value(t, after, d.name, d.labels...) - value(t, before, d.name, d.labels...); got != d.delta {
			t.Errorf("%s%q moved by %v, want %v", d.name, d.labels, got, d.delta)
		}
	}
	for _, v := range []struct {
		name  string
		queue string
		want  float64
	}{
		{"kestrel_queue_items", "small", 2},
		{"kestrel_queue_total_items_total", "small", 3},
		{"kestrel_queue_discarded_total", "small", 1},
		{"kestrel_queue_items", "empty", 0},
		{"kestrel_queue_waiters", "idle", 1},
	} {
		if got := value(t, after, v.name, "queue", v.queue); got != v.want {
			t.Errorf("%s{queue=%q} = %v, want %v", v.name, v.queue, got, v.want)
		}
	}
	if value(t, after, "kestrel_up") != 1 {
		t.Error("kestrel_up is not 1")
	}
	if b := value(t, after, "kestrel_read_bytes_total"); b <= value(t, before, "kestrel_read_bytes_total") {
		t.Errorf("kestrel_read_bytes_total did not grow: %v", b)
	}
}

// TestKestrelDashboard checks the queue's dashboard figures and its
// table of queues.
func TestKestrelDashboard(t *testing.T) {
	noLeaks(t)
	srv, addr := startQueue(t, nil)
	d := admin.KestrelDashboard("corvid queue", srv)
	conn := testutil.Dial(t, addr)
	d.Sample()
	enqueue(t, conn, "a", 3)
	enqueue(t, conn, "b", 1)
	conn.Send([]byte("get a/open\r\n"))
	conn.ReadReply(testutil.ValuesReply)
	m := d.Sample()
	for k, want := range map[string]float64{"curr_items": 3, "bytes": 15, "cmd_set": 4, "cmd_get": 1,
		"get_lookups": 1, "open_transactions": 1, "curr_connections": 1} {
		if m[k] != want {
			t.Errorf("sample %s = %v, want %v", k, m[k], want)
		}
	}
	tables := d.Tables()
	if len(tables) != 1 || tables[0].ID != "queues" || len(tables[0].Rows) != 2 {
		t.Fatalf("tables: %+v", tables)
	}
	for i, want := range [][]string{{"a", "2", "10"}, {"b", "1", "5"}} {
		row := tables[0].Rows[i]
		if row[0] != want[0] || row[1] != want[1] || row[2] != want[2] {
			t.Errorf("queues row %d: %q, want %q...", i, row, want)
		}
		// The queues were new at the first sample: their rates are
		// known from the second sample on.
		if row[3] != "-" {
			t.Errorf("queue %s enqueued/s %q after its first sample, want -", row[0], row[3])
		}
	}
	enqueue(t, conn, "a", 2)
	d.Sample()
	if row := d.Tables()[0].Rows[0]; row[3] == "-" || row[3] == "0.0" {
		t.Errorf("queue a enqueued/s %q after 2 sets", row[3])
	}
}
