package server_test

import (
	"bufio"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// adminConn sends administrative commands one at a time and reads their
// replies whole: one line, or metadump lines through END, or STAT lines
// through END.
type adminConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialAdmin(t *testing.T, addr string) *adminConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, replyTimeout)
	if err != nil {
		t.Fatalf("cannot dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &adminConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// do sends req and returns its reply; a request with noreply gets none.
func (a *adminConn) do(req string) string {
	a.t.Helper()
	return a.doWithin(req, replyTimeout)
}

// doWithin is do with a deadline of d for the request and its reply.
func (a *adminConn) doWithin(req string, d time.Duration) string {
	a.t.Helper()
	a.nc.SetDeadline(time.Now().Add(d))
	if _, err := a.nc.Write([]byte(req)); err != nil {
		a.t.Fatalf("cannot send %q: %v", req, err)
	}
	if strings.HasSuffix(req, "noreply\r\n") {
		return ""
	}
	if strings.HasPrefix(req, "get ") {
		var out string
		for !strings.HasSuffix(out, "END\r\n") {
			out += a.read()
		}
		return out
	}
	return a.read()
}

// read reads one reply.
func (a *adminConn) read() string {
	a.t.Helper()
	var out strings.Builder
	for {
		line, err := a.r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			a.t.Fatalf("cannot read reply: %v (read %q)", err, out.String())
		}
		if !strings.HasPrefix(line, "key=") && !strings.HasPrefix(line, "STAT ") {
			return out.String()
		}
	}
}

// lruTranscript are requests whose replies do not depend on timing. (A
// crawl right after "lru_crawler enable" may find memcached's crawler busy,
// so the enable comes last; "crawl hash", which memcached refuses with
// "ERROR an unknown error happened" unless it is busy, is left out.)
var lruTranscript = []string{
	"lru\r\n", "lru tune\r\n", "lru tune 10 30 0.1 3\r\n", "lru tune 10 30 0.1\r\n",
	"lru tune 60 50 0.1 3\r\n", "lru tune 61 20 0.1 3\r\n", "lru tune 60 20 0.1 3\r\n",
	"lru tune 0 30 0.1 3\r\n", "lru tune 10 0 0.1 3\r\n", "lru tune 10 30 0 3\r\n",
	"lru tune 10 30 0.1 0\r\n", "lru tune 10 30 -1 3\r\n", "lru tune x 30 1 3\r\n",
	"lru tune 10 30 x 3\r\n", "lru tune -1 30 1 3\r\n", "lru tune 10 30 0.1 3 5\r\n",
	"lru tune 4294967296 0 0.1 3\r\n", "lru tune 10 30 1e1 1e-1\r\n",
	"lru tune 10 30 0.1 3 noreply\r\n", "lru tune 90 30 0.1 3 noreply\r\n",
	"lru mode flat\r\n", "lru mode segmented\r\n", "lru mode x\r\n", "lru mode\r\n",
	"lru temp_ttl 100\r\n", "lru temp_ttl -1\r\n", "lru temp_ttl x\r\n", "lru temp_ttl\r\n",
	"lru foo 1\r\n", "lru foo\r\n",
	"lru_crawler\r\n", "lru_crawler foo\r\n", "lru_crawler crawl 0\r\n", "lru_crawler crawl 64\r\n",
	"lru_crawler crawl abc\r\n", "lru_crawler crawl -1\r\n",
	"lru_crawler crawl\r\n", "lru_crawler crawl 1 2\r\n",
	"lru_crawler metadump 0\r\n", "lru_crawler metadump 64\r\n", "lru_crawler metadump x\r\n",
	"lru_crawler metadump -1\r\n", "lru_crawler metadump 1,x\r\n", "lru_crawler metadump\r\n",
	"lru_crawler metadump all extra\r\n", "lru_crawler metadump 2\r\n", "lru_crawler metadump 63\r\n",
	"lru_crawler sleep 1000001\r\n", "lru_crawler sleep -1\r\n", "lru_crawler sleep x\r\n",
	"lru_crawler sleep\r\n", "lru_crawler sleep 50\r\n", "lru_crawler tocrawl -1\r\n",
	"lru_crawler tocrawl x\r\n", "lru_crawler tocrawl 4294967296\r\n", "lru_crawler tocrawl 5\r\n",
	"lru_crawler enable x\r\n", "lru_crawler mgdump 1\r\n",
	"lru_crawler disable\r\n", "lru_crawler disable\r\n", "lru_crawler crawl 1\r\n",
	"lru_crawler crawl x\r\n", "lru_crawler metadump 1\r\n", "lru_crawler enable\r\n",
	"lru_crawler enable\r\n",
	"version\r\nlru_crawler metadump all\r\n",
}

// settingsRE picks the "stats settings" lines the lru commands change.
var settingsRE = regexp.MustCompile(`(?m)^STAT (lru_crawler|lru_crawler_sleep|lru_crawler_tocrawl|dump_enabled|` +
	`lru_maintainer_thread|lru_segmented|hot_lru_pct|warm_lru_pct|hot_max_factor|warm_max_factor|temp_lru|temporary_ttl|` +
	`watcher_logbuf_size) .*\r\n`)

// lruSettingsLines returns those lines of a "stats settings" reply.
func lruSettingsLines(a *adminConn) string {
	return strings.Join(settingsRE.FindAllString(a.do("stats settings\r\n"), -1), "")
}

// versionRE masks the version, which differs between corvid builds.
var versionRE = regexp.MustCompile(`VERSION \S+`)

// busyCrawler is the reply to a crawl or metadump while the crawler works.
const busyCrawler = "BUSY currently processing crawler request\r\n"

// TestLRUCommandsMatchMemcached runs the lru and lru_crawler commands,
// valid and not, against corvid and memcached and requires the same
// replies and the same settings afterwards.
func TestLRUCommandsMatchMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t)
	cv := testutil.StartCorvid(t, server.Config{})
	run := func(addr string) []string {
		a := dialAdmin(t, addr)
		var out []string
		for _, req := range lruTranscript {
			r := a.do(req)
			if r == busyCrawler && !strings.HasPrefix(req, "version") {
				// memcached's maintainer starts crawls of its own at
				// times: wait for the crawler instead of comparing a
				// BUSY that depends on when the request came.
				testutil.WaitFor(t, func() bool {
					r = a.do(req)
					return r != busyCrawler
				})
			}
			if req == "lru_crawler disable\r\n" {
				// memcached stops its crawler thread after it answers.
				testutil.WaitFor(t, func() bool {
					return strings.Contains(a.do("stats settings\r\n"), "STAT lru_crawler no\r\n")
				})
			}
			if strings.HasPrefix(req, "version") {
				r = versionRE.ReplaceAllString(r+a.read(), "VERSION v")
			}
			out = append(out, r)
		}
		return append(out, lruSettingsLines(a))
	}
	want, got := run(mc), run(cv)
	for i := range want {
		req := "stats settings"
		if i < len(lruTranscript) {
			req = lruTranscript[i]
		}
		if got[i] != want[i] {
			t.Errorf("%q: corvid %q, memcached %q", req, got[i], want[i])
		}
	}
}

// TestLRUNoMaintainerMatchesMemcached checks the replies and stats of a
// server started without the LRU maintainer.
func TestLRUNoMaintainerMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-o", "no_lru_maintainer")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{NoLRUMaintainer: true}})
	reqs := []string{"lru mode flat\r\n", "lru mode segmented\r\n", "lru temp_ttl 5\r\n",
		"lru tune 10 30 0.1 3\r\n", "set a 0 0 1\r\nx\r\n"}
	run := func(addr string) []string {
		a := dialAdmin(t, addr)
		var out []string
		for _, req := range reqs {
			out = append(out, a.do(req))
		}
		return append(out, lruSettingsLines(a), itemStatNames(a))
	}
	want, got := run(mc), run(cv)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: corvid %q, memcached %q", i, got[i], want[i])
		}
	}
}

// itemStatNames returns the names "stats items" lists, in order.
func itemStatNames(a *adminConn) string {
	var names []string
	for _, line := range strings.Split(a.do("stats items\r\n"), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 {
			names = append(names, f[1])
		}
	}
	return strings.Join(names, " ")
}

// TestTemporaryTTLMatchesMemcached stores items with short and long TTLs
// on servers started with -o temporary_ttl and compares the TEMP LRU's
// figures and the stats listed.
func TestTemporaryTTLMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-o", "temporary_ttl=30")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{TempLRU: true, TemporaryTTL: 30}})
	tempRE := regexp.MustCompile(`(?m)^STAT items:1:(number|number_temp|hits_to_temp) .*\r\n`)
	run := func(addr string) []string {
		a := dialAdmin(t, addr)
		out := []string{
			a.do("set t 0 30 1\r\nx\r\n"), a.do("set u 0 31 1\r\nx\r\n"), a.do("set v 0 0 1\r\nx\r\n"),
			a.do("get t\r\n"), a.do("get t\r\n"),
		}
		items := a.do("stats items\r\n")
		out = append(out, strings.Join(tempRE.FindAllString(items, -1), ""), itemStatNames(a), lruSettingsLines(a))
		return out
	}
	want, got := run(mc), run(cv)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: corvid %q, memcached %q", i, got[i], want[i])
		}
	}
}

// dumpRE masks the times of a metadump line, which differ between two
// servers started at different moments.
var dumpRE = regexp.MustCompile(`exp=\d+|la=\d+`)

// TestMetadumpMatchesMemcached stores the same items in both servers and
// compares their metadumps, in every form, as sets of lines (memcached
// walks its LRUs, corvid its memory).
func TestMetadumpMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t)
	cv := testutil.StartCorvid(t, server.Config{})
	reqs := []string{
		"set plain 0 0 1\r\nx\r\n",
		"set with%20space/and:colon 5 100 2\r\nxy\r\n",
		"set a-._~!*()+ 4294967295 0 3\r\nabc\r\n",
		"set \x01\x7f\xff 0 1000 10\r\n0123456789\r\n",
		"set big 0 0 2000\r\n" + strings.Repeat("b", 2000) + "\r\n",
		"get plain\r\n",
		"set gone 0 -1 1\r\nx\r\n",
	}
	dumps := []string{"all", "1", "1,", ",1,", "hash", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18", "2"}
	run := func(addr string) []string {
		a := dialAdmin(t, addr)
		for _, req := range reqs {
			a.do(req)
		}
		var out []string
		for _, d := range dumps {
			r := a.do("lru_crawler metadump " + d + "\r\n")
			lines := strings.SplitAfter(dumpRE.ReplaceAllString(r, "T"), "\n")
			sort.Strings(lines)
			// memcached may meet an item twice when the maintainer moves
			// it between LRUs during the walk.
			out = append(out, strings.Join(slices.Compact(lines), ""))
		}
		return out
	}
	want, got := run(mc), run(cv)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("metadump %s:\ncorvid    %q\nmemcached %q", dumps[i], got[i], want[i])
		}
	}
}

// TestMetadumpChainedMatchesMemcached stores items larger than
// slab_chunk_max, which both servers chain, next to small ones, and
// compares the metadumps of every class, of all and of the hash table:
// chained items are listed with the largest class, whose LRUs they are
// on, and not with the classes of their header chunks.
func TestMetadumpChainedMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-I", "4m", "-o", "slab_chunk_max=65536")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{ItemSizeMax: 4 << 20, SlabChunkMax: 64 << 10}})
	set := func(key string, flags, exptime, n int) string {
		return "set " + key + " " + strconv.Itoa(flags) + " " + strconv.Itoa(exptime) + " " +
			strconv.Itoa(n) + "\r\n" + strings.Repeat("v", n) + "\r\n"
	}
	reqs := []string{
		set("small", 0, 0, 10), set("mid", 3, 0, 1000), set("edge", 0, 0, 65000),
		set("chained1", 0, 0, 100000), set("chained2", 7, 0, 300000),
		set("chained3", 0, 1000, 70000), set(strings.Repeat("k", 200), 1, 0, 3<<20),
		"get chained1\r\n",
	}
	run := func(addr string) []string {
		a := dialAdmin(t, addr)
		for _, req := range reqs {
			if r := a.do(req); strings.HasPrefix(req, "set ") && r != "STORED\r\n" {
				t.Fatalf("%s: %.20q", addr, r)
			}
		}
		largest := 0
		for _, line := range strings.Split(a.do("stats slabs\r\n"), "\r\n") {
			if f := strings.Fields(line); len(f) == 3 && strings.HasSuffix(f[1], ":chunk_size") {
				id, _ := strconv.Atoi(strings.TrimSuffix(f[1], ":chunk_size"))
				largest = max(largest, id)
			}
		}
		dumps := []string{"all", "hash"}
		for id := 1; id <= largest; id++ {
			dumps = append(dumps, strconv.Itoa(id))
		}
		out := []string{"largest class " + strconv.Itoa(largest)}
		for _, d := range dumps {
			r := a.do("lru_crawler metadump " + d + "\r\n")
			lines := strings.SplitAfter(dumpRE.ReplaceAllString(r, "T"), "\n")
			sort.Strings(lines)
			out = append(out, d+": "+strings.Join(slices.Compact(lines), ""))
		}
		return out
	}
	want, got := run(mc), run(cv)
	if len(got) != len(want) {
		t.Fatalf("corvid %q\nmemcached %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("metadump\ncorvid    %q\nmemcached %q", got[i], want[i])
		}
	}
}

// TestMetadumpLarge dumps more than one write buffer's worth of lines:
// every item is listed once and the dump ends with END.
func TestMetadumpLarge(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	a := dialAdmin(t, addr)
	const n = 20000
	var req strings.Builder
	for i := range n {
		req.WriteString("set key:" + strconv.Itoa(i) + " 0 0 1 noreply\r\nx\r\n")
	}
	req.WriteString("version\r\n")
	if r := a.do(req.String()); !strings.HasPrefix(r, "VERSION ") {
		t.Fatalf("version: %q", r)
	}
	dump := a.do("lru_crawler metadump all\r\n")
	if !strings.HasSuffix(dump, "\nEND\r\n") {
		t.Fatalf("dump ends with %q", dump[max(0, len(dump)-40):])
	}
	lines := strings.Split(strings.TrimSuffix(dump, "END\r\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		key := strings.Fields(l)[0]
		if seen[key] {
			t.Fatalf("%s listed twice", key)
		}
		seen[key] = true
	}
	if len(seen) != n {
		t.Fatalf("dump lists %d items, want %d", len(seen), n)
	}
}

// TestMetadumpOneAtATime checks that a metadump runs alone, as memcached's
// crawler runs one request at a time: while a client that does not read
// holds one dump open, another metadump and a crawl are answered BUSY; once
// the first dump is read to its END, a new one runs.
func TestMetadumpOneAtATime(t *testing.T) {
	servers := map[string]string{"corvid": testutil.StartCorvid(t, server.Config{})}
	if testutil.MemcachedPath() != "" {
		servers["memcached"] = testutil.StartMemcached(t)
	}
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			a := dialAdmin(t, addr)
			// About 11 MB of dump lines: more than the socket buffers of
			// a client that does not read (a loopback socket's send
			// buffer grows to 4 MB).
			const n = 40000
			long := strings.Repeat("k", 200)
			var req strings.Builder
			for i := range n {
				req.WriteString("set dumpkey:" + long + strconv.Itoa(i) + " 0 0 1 noreply\r\nx\r\n")
			}
			req.WriteString("version\r\n")
			// 40,000 sets take longer than one reply's timeout under the
			// race detector on a busy machine.
			a.nc.SetDeadline(time.Now().Add(time.Minute))
			if _, err := a.nc.Write([]byte(req.String())); err != nil {
				t.Fatal(err)
			}
			if r := a.read(); !strings.HasPrefix(r, "VERSION ") {
				t.Fatalf("version: %q", r)
			}
			nc, err := net.DialTimeout("tcp", addr, replyTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// (memcached 1.6.18's crawler stalls for good when the
			// client's receive buffer is as small as 4 KB.)
			nc.(*net.TCPConn).SetReadBuffer(32 << 10)
			nc.SetDeadline(time.Now().Add(time.Minute))
			first := &adminConn{t: t, nc: nc, r: bufio.NewReader(nc)}
			if _, err := nc.Write([]byte("lru_crawler metadump all\r\n")); err != nil {
				t.Fatal(err)
			}
			if l, err := first.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "key=") {
				t.Fatalf("first dump line: %q, %v", l, err)
			}
			const busy = "BUSY currently processing crawler request\r\n"
			if name == "memcached" {
				// memcached 1.6.18 sometimes never answers: its worker
				// waits for the crawler's lock, which the crawler holds
				// while blocked writing to the first client, who does
				// not read (no reply in 20 s, twice in CI). What it
				// answers when it does is checked; a silence is not
				// what corvid is held to.
				a.nc.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := a.nc.Write([]byte("lru_crawler metadump all\r\n")); err != nil {
					t.Fatal(err)
				}
				r, err := a.r.ReadString('\n')
				if err != nil {
					t.Skipf("memcached did not answer a metadump during another: %v", err)
				}
				if r != busy {
					t.Fatalf("second metadump: %q..., want %q", r[:min(len(r), 80)], busy)
				}
			} else if r := a.do("lru_crawler metadump all\r\n"); r != busy {
				t.Fatalf("second metadump: %q..., want %q", r[:min(len(r), 80)], busy)
			}
			if r := a.doWithin("lru_crawler crawl all\r\n", 20*time.Second); r != busy {
				t.Fatalf("crawl during a metadump: %q, want %q", r, busy)
			}
			for {
				l, err := first.r.ReadString('\n')
				if err != nil {
					t.Fatalf("reading the first dump: %v", err)
				}
				if l == "END\r\n" {
					break
				}
			}
			// memcached's crawler finishes a moment after the END.
			deadline := time.Now().Add(10 * time.Second)
			for {
				// The whole 11 MB dump is read here: more than one reply's
				// timeout under the race detector on a busy machine.
				r := a.doWithin("lru_crawler metadump all\r\n", time.Minute)
				if strings.HasSuffix(r, "END\r\n") {
					break
				}
				if r != busy || time.Now().After(deadline) {
					t.Fatalf("metadump after the first ended: %q", r[:min(len(r), 80)])
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
