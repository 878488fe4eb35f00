package server_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// crawlerModes are command lines that set the crawler and the maintainer,
// with the storage settings corvid takes for them.
var crawlerModes = []struct {
	args []string
	cfg  storage.Config
}{
	{nil, storage.Config{}},
	{[]string{"-o", "lru_crawler,lru_maintainer"}, storage.Config{}},
	{[]string{"-o", "no_lru_crawler"}, storage.Config{NoCrawler: true}},
	{[]string{"-o", "no_lru_maintainer"}, storage.Config{NoLRUMaintainer: true}},
	{[]string{"-o", "no_lru_crawler,no_lru_maintainer"}, storage.Config{NoCrawler: true, NoLRUMaintainer: true}},
}

// stat returns the value of one "stats" (or "stats items") figure, "" when
// it is not listed.
func stat(a *adminConn, cmd, name string) string {
	a.t.Helper()
	re := regexp.MustCompile(`(?m)^STAT ` + regexp.QuoteMeta(name) + ` (\S+)\r$`)
	if m := re.FindStringSubmatch(a.do(cmd)); m != nil {
		return m[1]
	}
	return ""
}

// crawlerStatNames returns the crawler and maintainer figures "stats"
// lists, by name.
var crawlerStatRE = regexp.MustCompile(`(?m)^STAT (lru_crawler_running|lru_crawler_starts|lru_maintainer_juggles) `)

func crawlerStatNames(a *adminConn) string {
	var names []string
	for _, m := range crawlerStatRE.FindAllStringSubmatch(a.do("stats\r\n"), -1) {
		names = append(names, m[1])
	}
	return strings.Join(names, " ")
}

// TestCrawlerModesMatchMemcached starts both servers with each crawler
// and maintainer command line and compares "stats settings", the figures
// "stats" lists, and the lru_crawler replies, as the crawler is turned
// off and on.
func TestCrawlerModesMatchMemcached(t *testing.T) {
	reqs := []string{"lru_crawler crawl 1\r\n", "lru_crawler enable\r\n", "lru_crawler enable\r\n",
		"lru_crawler disable\r\n", "lru_crawler crawl 1\r\n", "lru_crawler crawl all\r\n",
		"lru_crawler metadump all\r\n", "lru_crawler disable\r\n", "lru_crawler enable\r\n"}
	for _, mode := range crawlerModes {
		t.Run(strings.Join(append([]string{"default"}, mode.args...), " "), func(t *testing.T) {
			mc := testutil.StartMemcached(t, mode.args...)
			cv := testutil.StartCorvid(t, server.Config{Storage: mode.cfg})
			run := func(addr string) []string {
				a := dialAdmin(t, addr)
				out := []string{lruSettingsLines(a), crawlerStatNames(a)}
				for _, req := range reqs {
					r := a.do(req)
					if r == busyCrawler {
						// memcached's maintainer may be crawling.
						testutil.WaitFor(t, func() bool {
							r = a.do(req)
							return r != busyCrawler
						})
					}
					if strings.HasPrefix(req, "lru_crawler disable") || strings.HasPrefix(req, "lru_crawler enable") {
						// memcached's crawler thread starts and stops
						// after it answers.
						on := "STAT lru_crawler yes\r\n"
						if strings.HasPrefix(req, "lru_crawler disable") {
							on = "STAT lru_crawler no\r\n"
						}
						testutil.WaitFor(t, func() bool { return strings.Contains(a.do("stats settings\r\n"), on) })
					}
					out = append(out, r, lruSettingsLines(a), crawlerStatNames(a))
				}
				return out
			}
			want, got := run(mc), run(cv)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("step %d: corvid %q, memcached %q", i, got[i], want[i])
				}
			}
		})
	}
}

// reclaimStats are the figures compared once expired items are gone.
var reclaimStats = []string{"curr_items", "reclaimed", "expired_unfetched", "crawler_reclaimed",
	"crawler_items_checked", "lrutail_reflocked", "lru_crawler_starts"}

// reclaimFigures returns the reclaim figures of "stats" and of class 1 in
// "stats items", as "name=value" lines.
func reclaimFigures(a *adminConn) string {
	var b strings.Builder
	for _, name := range reclaimStats {
		b.WriteString(name + "=" + stat(a, "stats\r\n", name) + "\n")
	}
	for _, name := range []string{"reclaimed", "expired_unfetched", "crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked"} {
		b.WriteString("items:1:" + name + "=" + stat(a, "stats items\r\n", "items:1:"+name) + "\n")
	}
	return b.String()
}

// waitSeconds waits until the server's clock ("stats" time) has moved n
// seconds past where it was.
func waitSeconds(t *testing.T, a *adminConn, n int64) {
	t.Helper()
	start, _ := strconv.ParseInt(stat(a, "stats\r\n", "time"), 10, 64)
	testutil.WaitFor(t, func() bool {
		now, _ := strconv.ParseInt(stat(a, "stats\r\n", "time"), 10, 64)
		return now >= start+n
	})
}

// TestBackgroundReclaimMatchesMemcached stores items that expire in a
// second on servers with the crawler and the maintainer on, waits until
// both have freed them in the background, and compares who counted them:
// memcached's maintainer takes them at the LRU tails (reclaimed) and its
// crawler, having crawled every class once at startup, is not due again.
func TestBackgroundReclaimMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t)
	cv := testutil.StartCorvid(t, server.Config{})
	const expiring, kept = 50, 5
	run := func(addr string) string {
		a := dialAdmin(t, addr)
		testutil.WaitFor(t, func() bool { return stat(a, "stats\r\n", "lru_crawler_starts") == "1" })
		for i := range expiring {
			a.do("set e" + strconv.Itoa(i) + " 0 1 1\r\nx\r\n")
		}
		for i := range kept {
			a.do("set k" + strconv.Itoa(i) + " 0 0 1\r\nx\r\n")
		}
		testutil.WaitFor(t, func() bool { return stat(a, "stats\r\n", "curr_items") == strconv.Itoa(kept) })
		return reclaimFigures(a)
	}
	if want, got := run(mc), run(cv); got != want {
		t.Errorf("corvid:\n%smemcached:\n%s", got, want)
	}
}

// TestReclaimOnStoreMatchesMemcached stores over an expired item and
// crawls, on servers without the maintainer (so nothing reclaims in the
// background), and compares the figures after each step: a store takes
// back the expired item at the tail (reclaimed), a crawl those behind
// live items (crawler_reclaimed), and crawls and metadumps count the items
// they check.
func TestReclaimOnStoreMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-o", "no_lru_maintainer")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{NoLRUMaintainer: true}})
	run := func(addr string) []string {
		a := dialAdmin(t, addr)
		a.do("set a 0 1 1\r\nx\r\n")
		a.do("set z 0 0 1\r\nx\r\n")
		a.do("set b 0 1 1\r\nx\r\n")
		a.do("set c 0 1 1\r\nx\r\n")
		waitSeconds(t, a, 2)
		out := []string{a.do("set b 0 0 1\r\ny\r\n"), reclaimFigures(a)}
		out = append(out, a.do("lru_crawler crawl 1\r\n"))
		testutil.WaitFor(t, func() bool { return stat(a, "stats\r\n", "lru_crawler_running") == "0" })
		out = append(out, reclaimFigures(a))
		r := a.do("lru_crawler metadump 1\r\n")
		out = append(out, strconv.Itoa(strings.Count(r, "key=")), reclaimFigures(a))
		return out
	}
	want, got := run(mc), run(cv)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: corvid\n%s\nmemcached\n%s", i, got[i], want[i])
		}
	}
}
