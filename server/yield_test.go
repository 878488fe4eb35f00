package server_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// replyStat returns the value of "STAT name" in a stats reply, or -1.
func replyStat(reply, name string) int64 {
	for _, line := range strings.Split(reply, "\r\n") {
		if v, ok := strings.CutPrefix(line, "STAT "+name+" "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// pipelinedYields sends n gets to addr in one write, reads their replies,
// and returns by how much conn_yields grew: polled until it reaches want
// or a second has passed, since a server may count a yield after the
// replies are out.
func pipelinedYields(t *testing.T, addr string, n int, want int64) int64 {
	t.Helper()
	a := dialAdmin(t, addr)
	before := replyStat(a.do("stats\r\n"), "conn_yields")
	c := dialAdmin(t, addr)
	c.nc.SetDeadline(time.Now().Add(replyTimeout))
	if _, err := c.nc.Write([]byte(strings.Repeat("get k\r\n", n))); err != nil {
		t.Fatal(err)
	}
	for range n {
		if reply := c.read(); reply != "END\r\n" {
			t.Fatalf("get: %q", reply)
		}
	}
	var got int64
	for deadline := time.Now().Add(time.Second); ; {
		got = replyStat(a.do("stats\r\n"), "conn_yields") - before
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConnYieldsMatchMemcached pipelines gets with -R set and compares
// conn_yields with (gets-1)/R, which is what memcached counts for
// requests read at once, and with memcached's own count when installed.
func TestConnYieldsMatchMemcached(t *testing.T) {
	mc := ""
	if testutil.MemcachedPath() != "" {
		mc = "memcached"
	}
	for _, r := range []int{2, 5, 20} {
		cv := testutil.StartCorvid(t, server.Config{ReqsPerEvent: r})
		var m string
		if mc != "" {
			m = testutil.StartMemcached(t, "-R", strconv.Itoa(r))
		}
		for _, n := range []int{1, r, r + 1, 2 * r, 2*r + 1, 41} {
			want := int64((n - 1) / r)
			if got := pipelinedYields(t, cv, n, want); got != want {
				t.Errorf("-R %d, %d gets: corvid counted %d conn_yields, want %d", r, n, got, want)
			}
			if m != "" {
				if got := pipelinedYields(t, m, n, want); got != want {
					t.Errorf("-R %d, %d gets: memcached counted %d conn_yields, want %d", r, n, got, want)
				}
			}
		}
	}
}

// TestReqsPerEventSetting checks stats settings' reqs_per_event and that a
// negative -R, which memcached takes, serves requests.
func TestReqsPerEventSetting(t *testing.T) {
	for _, r := range []int{0, 7, -1} {
		addr := testutil.StartCorvid(t, server.Config{ReqsPerEvent: r})
		a := dialAdmin(t, addr)
		want := int64(r)
		if r == 0 {
			want = 20
		}
		if got := replyStat(a.do("stats settings\r\n"), "reqs_per_event"); got != want {
			t.Errorf("ReqsPerEvent %d: reqs_per_event %d, want %d", r, got, want)
		}
		if r < 0 {
			if got := pipelinedYields(t, addr, 5, 4); got != 4 {
				t.Errorf("ReqsPerEvent %d: %d conn_yields for 5 gets, want 4 (as -R 1)", r, got)
			}
		}
	}
}

// TestEventSettingsMatchMemcached compares reqs_per_event,
// watcher_logbuf_size and worker_logbuf_size in stats settings with
// memcached's, by default and set. (worker_logbuf_size=64 also sets
// memcached 1.6.18's slab_sizes, which a missing break lets it read; 64
// is a size it takes.)
func TestEventSettingsMatchMemcached(t *testing.T) {
	for _, c := range []struct {
		cfg  server.Config
		args []string
	}{
		{server.Config{}, nil},
		{server.Config{ReqsPerEvent: 7, WatcherLogBufSize: 8 << 10, WorkerLogBufSize: 64 << 10},
			[]string{"-R", "7", "-o", "watcher_logbuf_size=8,worker_logbuf_size=64"}},
	} {
		mc := dialAdmin(t, testutil.StartMemcached(t, c.args...)).do("stats settings\r\n")
		cv := dialAdmin(t, testutil.StartCorvid(t, c.cfg)).do("stats settings\r\n")
		for _, name := range []string{"reqs_per_event", "watcher_logbuf_size", "worker_logbuf_size"} {
			if got, want := replyStat(cv, name), replyStat(mc, name); got != want || want < 0 {
				t.Errorf("%v: %s corvid %d, memcached %d", c.args, name, got, want)
			}
		}
	}
}

// TestReportedSettingsMatchMemcached compares with memcached's the
// settings corvid reports without acting on them: tail_repair_time (given
// and not), inline_ascii_response, and memory_file without -e.
func TestReportedSettingsMatchMemcached(t *testing.T) {
	for _, c := range []struct {
		cfg  server.Config
		args []string
	}{
		{server.Config{}, nil},
		{server.Config{TailRepairTime: 30 * time.Second}, []string{"-o", "tail_repair_time=30"}},
	} {
		names := []string{"tail_repair_time", "inline_ascii_response", "memory_file"}
		mc := settingsOf(t, testutil.Dial(t, testutil.StartMemcached(t, c.args...)), names...)
		cv := settingsOf(t, testutil.Dial(t, testutil.StartCorvid(t, c.cfg)), names...)
		if cv != mc || strings.Count(mc, "=") != len(names) {
			t.Errorf("%v: corvid %q, memcached %q", c.args, cv, mc)
		}
	}
	file := filepath.Join(t.TempDir(), "snap")
	if got := settingsOf(t, testutil.Dial(t, testutil.StartCorvid(t, server.Config{SnapshotFile: file})), "memory_file"); got != "memory_file="+file {
		t.Errorf("with -e %s: %q", file, got)
	}
}
