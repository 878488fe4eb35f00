package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// fillClass1 returns exchanges that store 30,000 small items, without
// replies, which take three pages of class 1 in memcached and in corvid.
// They go a thousand to an exchange: each reply is then due after a
// server has read a thousand sets, not all 30,000 (1.2 MB), which under
// the race detector on a busy machine took longer than a reply may take.
func fillClass1() []exchange {
	var steps []exchange
	for i := 0; i < 30000; i += 1000 {
		var b strings.Builder
		for j := i; j < i+1000; j++ {
			fmt.Fprintf(&b, "set k%05d 0 0 10 noreply\r\n0123456789\r\n", j)
		}
		steps = append(steps, exchange{b.String(), ""})
	}
	return steps
}

var slabsTranscripts = []transcript{
	{"slabs command errors", []exchange{
		{"slabs\r\n", "ERROR\r\n"},
		{"slabs foo 1 2\r\n", "ERROR\r\n"},
		{"slabs reassign\r\n", "ERROR\r\n"},
		{"slabs reassign 1\r\n", "ERROR\r\n"},
		{"slabs reassign 1 2 3\r\n", "ERROR\r\n"},
		{"slabs reassign 1 2 noreply\r\n", "ERROR\r\n"},
		{"slabs reassign a b\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"slabs reassign 1 2x\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"slabs reassign 99999999999999999999 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"slabs reassign 2 2\r\n", "SAME src and dst class are identical\r\n"},
		{"slabs reassign -1 -1\r\n", "SAME src and dst class are identical\r\n"},
		{"slabs reassign 4294967297 1\r\n", "SAME src and dst class are identical\r\n"},
		{"slabs reassign -1 2\r\n", "BADCLASS invalid src or dst class id\r\n"},
		{"slabs reassign -2 1\r\n", "BADCLASS invalid src or dst class id\r\n"},
		{"slabs reassign 1 -1\r\n", "BADCLASS invalid src or dst class id\r\n"},
		{"slabs reassign 4294967295 1\r\n", "BADCLASS invalid src or dst class id\r\n"},
		{"slabs reassign 40 1\r\n", "BADCLASS invalid src or dst class id\r\n"},
		{"slabs reassign 1 64\r\n", "BADCLASS invalid src or dst class id\r\n"},
		{"slabs reassign 39 1\r\n", "NOSPARE source class has no spare pages\r\n"},
		{"slabs reassign  +1  02 \r\n", "NOSPARE source class has no spare pages\r\n"},
		{"slabs reassign 0 1\r\n", "NOSPARE source class has no spare pages\r\n"},
		{"slabs reassign 1 0\r\n", "NOSPARE source class has no spare pages\r\n"},
		{"slabs automove\r\n", "ERROR\r\n"},
		{"slabs automove 0\r\n", "OK\r\n"},
		{"slabs automove 2\r\n", "OK\r\n"},
		{"slabs automove 1\r\n", "OK\r\n"},
		{"slabs automove 3\r\n", "ERROR\r\n"},
		{"slabs automove -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"slabs automove x\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"slabs automove 1x\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"slabs automove +1\r\n", "OK\r\n"},
		{"slabs automove 4294967297\r\n", "OK\r\n"},
		{"slabs automove 1 2\r\n", "OK\r\n"},
		{"slabs automove 1 noreply\r\n", ""},
		{"slabs automove 3 noreply\r\n", ""},
		{"slabs automove noreply\r\n", ""},
		{"slabs automove ratio\r\n", "ERROR\r\n"},
		{"slabs automove ratio x\r\n", "ERROR\r\n"},
		{"slabs automove ratio 0.5\r\n", "OK\r\n"},
	}},
	{"slabs reassign moves a page", append(fillClass1(), []exchange{
		{"slabs reassign 1 1\r\n", "SAME src and dst class are identical\r\n"},
		{"slabs reassign 2 1\r\n", "NOSPARE source class has no spare pages\r\n"},
		{"slabs reassign 1 2\r\n", "OK\r\n"},
	}...)},
}

// TestSlabsTranscripts runs the slabs transcripts against corvid and, when
// it is installed, memcached, each on a new server.
func TestSlabsTranscripts(t *testing.T) {
	for _, tr := range slabsTranscripts {
		t.Run(tr.name, func(t *testing.T) {
			runTranscript(t, tr, startCorvid(t), "corvid")
			if testutil.MemcachedPath() != "" {
				runTranscript(t, tr, startMemcached(t), "memcached")
			}
		})
	}
}

// runTranscript sends a transcript's requests one by one and checks each
// reply.
func runTranscript(t *testing.T, tr transcript, addr, name string) {
	t.Helper()
	p := newPeer(t, name, addr)
	for i, ex := range tr.steps {
		s := step{req: ex.send, versions: strings.Count(ex.want, "VERSION ")}
		err := p.conn.TrySend(p.encode([]step{s}))
		var got []byte
		if err == nil {
			got, err = p.recv(s)
		}
		if err != nil || string(got) != ex.want {
			t.Errorf("%s, request %d: %s\n got: %s (error: %v)\nwant: %s", name, i,
				testutil.Quote([]byte(ex.send), 200), testutil.Quote(got, 300), err,
				testutil.Quote([]byte(ex.want), 300))
			return
		}
	}
}

// TestSlabReassignDisabled checks -o no_slab_reassign: reassign is refused
// before its arguments are read, automove still answers OK.
func TestSlabReassignDisabled(t *testing.T) {
	tr := transcript{"disabled", []exchange{
		{"slabs reassign 1 2\r\n", "CLIENT_ERROR slab reassignment disabled\r\n"},
		{"slabs reassign x y\r\n", "CLIENT_ERROR slab reassignment disabled\r\n"},
		{"slabs reassign 1\r\n", "ERROR\r\n"},
		{"slabs automove 2\r\n", "OK\r\n"},
	}}
	runTranscript(t, tr, testutil.StartCorvid(t, server.Config{Storage: storage.Config{NoSlabReassign: true}}), "corvid")
	if testutil.MemcachedPath() != "" {
		runTranscript(t, tr, testutil.StartMemcached(t, "-o", "no_slab_reassign"), "memcached")
	}
}

// settingsOf returns the "stats settings" values named.
func settingsOf(t *testing.T, c *testutil.Conn, names ...string) string {
	t.Helper()
	c.Send([]byte("stats settings\r\n"))
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []string
	for _, line := range strings.Split(string(c.ReadReply(testutil.StatsReply)), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && want[f[1]] {
			out = append(out, f[1]+"="+f[2])
		}
	}
	return strings.Join(out, " ")
}

// TestSlabsSettings checks that "stats settings" follows the slabs
// commands as memcached's does.
func TestSlabsSettings(t *testing.T) {
	check := func(t *testing.T, addr string) {
		c := testutil.Dial(t, addr)
		defer c.Close()
		names := []string{"slab_reassign", "slab_automove", "slab_automove_ratio", "slab_automove_window"}
		if got, want := settingsOf(t, c, names...), "slab_reassign=yes slab_automove=1 slab_automove_ratio=0.80 slab_automove_window=30"; got != want {
			t.Errorf("at start: %s, want %s", got, want)
		}
		c.Send([]byte("slabs automove 2\r\nslabs automove ratio 0.25\r\n"))
		c.ReadReply(testutil.LineReply)
		c.ReadReply(testutil.LineReply)
		if got, want := settingsOf(t, c, names...), "slab_reassign=yes slab_automove=2 slab_automove_ratio=0.25 slab_automove_window=30"; got != want {
			t.Errorf("after slabs automove: %s, want %s", got, want)
		}
	}
	t.Run("corvid", func(t *testing.T) { check(t, testutil.StartCorvid(t, server.Config{})) })
	t.Run("memcached", func(t *testing.T) { check(t, testutil.StartMemcached(t)) })
}

// TestSlabsStats checks the page move counters after a reassign.
func TestSlabsStats(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	runTranscript(t, transcript{"fill", fillClass1()}, addr, "corvid")
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte("slabs reassign 1 2\r\n"))
	if got := string(c.ReadReply(testutil.LineReply)); got != "OK\r\n" {
		t.Fatalf("slabs reassign: %q", got)
	}
	stat := func(name string) string {
		c.Send([]byte("stats\r\n"))
		for _, line := range strings.Split(string(c.ReadReply(testutil.StatsReply)), "\r\n") {
			if f := strings.Fields(line); len(f) == 3 && f[1] == name {
				return f[2]
			}
		}
		return ""
	}
	testutil.WaitFor(t, func() bool { return stat("slab_reassign_running") == "0" && stat("slabs_moved") == "1" })
	if stat("slab_reassign_evictions_nomem") == "0" {
		t.Error("no item evicted by the move of a full page")
	}
	c.Send([]byte("slabs reassign 1 0\r\n"))
	c.ReadReply(testutil.LineReply)
	testutil.WaitFor(t, func() bool { return stat("slab_global_page_pool") == "1" })
}

// TestConfigEvict checks twemcache's "config evict" and the replies to bad
// input, and that "stats settings" follows.
func TestConfigEvict(t *testing.T) {
	c := testutil.Dial(t, testutil.StartCorvid(t, server.Config{}))
	defer c.Close()
	for _, ex := range []exchange{
		{"config evict 2\r\n", "OK\r\n"},
		{"config evict lra\r\n", "OK\r\n"},
		{"config evict 5\r\n", "OK\r\n"},
		{"config evict 0\r\n", "OK\r\n"},
		{"config evict 16\r\n", "CLIENT_ERROR\r\n"},
		{"config evict -1\r\n", "CLIENT_ERROR\r\n"},
		{"config evict lfu\r\n", "CLIENT_ERROR\r\n"},
		{"config evict\r\n", "CLIENT_ERROR\r\n"},
		{"config evict 1 2\r\n", "CLIENT_ERROR\r\n"},
		{"config\r\n", "ERROR\r\n"},
		{"config foo 1\r\n", "ERROR\r\n"},
	} {
		c.Send([]byte(ex.send))
		if got := string(c.ReadReply(testutil.LineReply)); got != ex.want {
			t.Errorf("%q: %q, want %q", ex.send, got, ex.want)
		}
	}
	if got := settingsOf(t, c, "evictions", "eviction"); got != "evictions=off eviction=none" {
		t.Errorf("after config evict 0: %s", got)
	}
	c.Send([]byte("config evict lrc\r\n"))
	c.ReadReply(testutil.LineReply)
	if got := settingsOf(t, c, "evictions", "eviction"); got != "evictions=on eviction=lrc" {
		t.Errorf("after config evict lrc: %s", got)
	}
}

// TestSlabsChunkRescues moves a page of the largest class while it holds
// body chunks of chained items and its other pages have free chunks: as
// memcached, the chunks are rescued (slab_reassign_chunk_rescues), no
// item is evicted and every value reads back intact.
func TestSlabsChunkRescues(t *testing.T) {
	check := func(t *testing.T, addr string) {
		a := dialAdmin(t, addr)
		val := func(i int) string { return strings.Repeat(string(rune('a'+i%26)), 200000+i*777) }
		var req strings.Builder
		for i := range 40 {
			fmt.Fprintf(&req, "set k%d 0 0 %d noreply\r\n%s\r\n", i, len(val(i)), val(i))
		}
		for i := 0; i < 40; i += 2 {
			fmt.Fprintf(&req, "delete k%d noreply\r\n", i)
		}
		req.WriteString("version\r\n")
		if r := a.do(req.String()); !strings.HasPrefix(r, "VERSION ") {
			t.Fatalf("fill: %.40q", r)
		}
		stats := func(cmd string) map[string]string {
			m := map[string]string{}
			for _, line := range strings.Split(a.do(cmd), "\r\n") {
				if f := strings.Fields(line); len(f) == 3 {
					m[f[1]] = f[2]
				}
			}
			return m
		}
		largest := 0
		for name := range stats("stats slabs\r\n") {
			var id int
			if n, _ := fmt.Sscanf(name, "%d:chunk_size", &id); n == 1 {
				largest = max(largest, id)
			}
		}
		if r := a.do(fmt.Sprintf("slabs reassign %d 0\r\n", largest)); r != "OK\r\n" {
			t.Fatalf("slabs reassign %d 0: %q", largest, r)
		}
		testutil.WaitFor(t, func() bool {
			s := stats("stats\r\n")
			return s["slab_reassign_running"] == "0" && s["slabs_moved"] != "0"
		})
		s := stats("stats\r\n")
		if s["slab_reassign_chunk_rescues"] == "0" || s["slab_reassign_evictions_nomem"] != "0" || s["curr_items"] != "20" {
			t.Errorf("chunk rescues %s, evictions %s, %s items left of 20",
				s["slab_reassign_chunk_rescues"], s["slab_reassign_evictions_nomem"], s["curr_items"])
		}
		for i := 1; i < 40; i += 2 {
			want := fmt.Sprintf("VALUE k%d 0 %d\r\n%s\r\nEND\r\n", i, len(val(i)), val(i))
			if got := a.do(fmt.Sprintf("get k%d\r\n", i)); got != want {
				t.Fatalf("k%d: read back %d bytes, want %d", i, len(got), len(want))
			}
		}
	}
	t.Run("corvid", func(t *testing.T) {
		check(t, testutil.StartCorvid(t, server.Config{Storage: storage.Config{SlabChunkMax: 64 << 10}}))
	})
	t.Run("memcached", func(t *testing.T) { check(t, testutil.StartMemcached(t, "-o", "slab_chunk_max=65536")) })
}
