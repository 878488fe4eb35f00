package storage

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// lruOf returns the LRU list key's item is on, or -1.
func lruOf(c *Cache, key string) int {
	hv := c.hashKey([]byte(key))
	s := c.stripeFor(hv)
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, h := c.findRawLocked(s, []byte(key), hv)
	if ref == 0 {
		return -1
	}
	return bitsLRU(h.bits.Load())
}

func TestTempLRU(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true, TempLRU: true, TemporaryTTL: 30})
	mustStore(t, c, ModeSet, "short", "x", 0, 30, 0)
	mustStore(t, c, ModeSet, "long", "x", 0, 31, 0)
	mustStore(t, c, ModeSet, "never", "x", 0, 0, 0)
	mustStore(t, c, ModeSet, "past", "x", 0, -1, 0)
	for key, want := range map[string]int{"short": lruTemp, "long": lruHot, "never": lruHot, "past": lruHot} {
		if got := lruOf(c, key); got != want {
			t.Errorf("%s on LRU %d, want %d", key, got, want)
		}
	}
	// Hits never move a TEMP item, whatever the maintainer does.
	for range 3 {
		value(c, "short")
	}
	cl := &c.classes[c.classFor(c.ntotal(5, 1))]
	for range 3 {
		c.juggle(cl)
	}
	if got := lruOf(c, "short"); got != lruTemp {
		t.Fatalf("short moved to LRU %d", got)
	}
	s := stats(c)
	cs := s.Classes[cl.id-1]
	if cs.NumberTemp != 1 || cs.HitsToTemp != 3 || cs.Number != 3 {
		t.Fatalf("number_temp %d hits_to_temp %d number %d", cs.NumberTemp, cs.HitsToTemp, cs.Number)
	}
	// Once expired, the maintainer reclaims it from the TEMP tail.
	clk.Advance(31 * time.Second)
	c.juggle(cl)
	if s := stats(c); s.Classes[cl.id-1].NumberTemp != 0 {
		t.Fatalf("expired TEMP item not reclaimed: %+v", s.Classes[cl.id-1])
	}
	// temp_ttl -1 turns the TEMP LRU off.
	if err := c.SetTemporaryTTL(-1); err != nil {
		t.Fatal(err)
	}
	mustStore(t, c, ModeSet, "short2", "x", 0, 5, 0)
	if got := lruOf(c, "short2"); got != lruHot {
		t.Fatalf("with temp_lru off, short2 on LRU %d", got)
	}
	if set := c.LRUSettings(); set.TempLRU || set.TemporaryTTL != 30 {
		t.Fatalf("settings after temp_ttl -1: %+v", set)
	}
}

func TestFlatLRU(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	mustSet(t, c, "seg", "x")
	if err := c.SetLRUSegmented(false); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "a", "x")
	mustSet(t, c, "b", "x")
	if got := lruOf(c, "a"); got != lruCold {
		t.Fatalf("flat LRU: new item on LRU %d, want COLD", got)
	}
	cl := &c.classes[c.classFor(c.ntotal(1, 1))]
	// The maintainer drains what HOT still holds.
	c.juggle(cl)
	if got := lruOf(c, "seg"); got != lruCold {
		t.Fatalf("flat LRU: HOT item left on LRU %d", got)
	}
	// A fetch relinks an item at the COLD head once it is a minute old:
	// "a" was the tail after "seg"; fetched, it goes behind "b".
	clk.Advance(61 * time.Second)
	value(c, "seg")
	value(c, "a")
	cl.mu.Lock()
	var order []string
	for ref := cl.lru[lruCold].tail; ref != 0; ref = c.prev(c.hdr(ref)) {
		order = append(order, string(c.itemKey(ref, c.hdr(ref).bits.Load())))
	}
	cl.mu.Unlock()
	if fmt.Sprint(order) != "[b seg a]" {
		t.Fatalf("COLD from the tail: %v, want [b seg a]", order)
	}
	if it, _ := lookup(c, "a"); it.Fetched != true {
		t.Fatal("a not marked fetched")
	}
}

func TestNoMaintainer(t *testing.T) {
	c := newCache(t, Config{NoLRUMaintainer: true, NoCrawler: true})
	set := c.LRUSettings()
	if set.Maintainer || set.Segmented {
		t.Fatalf("settings %+v", set)
	}
	if err := c.SetLRUSegmented(true); !errors.Is(err, ErrNoMaintainer) {
		t.Fatalf("lru mode without maintainer: %v", err)
	}
	if err := c.SetTemporaryTTL(5); !errors.Is(err, ErrNoMaintainer) {
		t.Fatalf("temp_ttl without maintainer: %v", err)
	}
	mustSet(t, c, "a", "x")
	if got := lruOf(c, "a"); got != lruCold {
		t.Fatalf("without maintainer, new item on LRU %d", got)
	}
	if _, err := New(Config{NoLRUMaintainer: true, TempLRU: true}); err == nil {
		t.Fatal("temporary_ttl without maintainer accepted")
	}
}

func TestTuneLRU(t *testing.T) {
	c, _ := newFakeCache(t)
	for _, tc := range []struct {
		hot, warm uint32
		hf, wf    float64
		ok        bool
	}{
		{10, 30, 0.1, 3, true}, {0, 0, 1, 1, true}, {60, 21, 1, 1, false},
		{10, 30, 0, 1, false}, {10, 30, 1, -1, false}, {1 << 31, 1 << 31, 1, 1, false},
	} {
		err := c.TuneLRU(tc.hot, tc.warm, tc.hf, tc.wf)
		if (err == nil) != tc.ok {
			t.Errorf("TuneLRU(%v): %v", tc, err)
		}
	}
	if set := c.LRUSettings(); set.HotPct != 0 || set.WarmPct != 0 || set.HotMaxFactor != 1 {
		t.Fatalf("settings %+v", set)
	}
	// With no share for HOT, the maintainer moves new items on at once.
	mustSet(t, c, "a", "x")
	c.juggle(&c.classes[c.classFor(c.ntotal(1, 1))])
	if got := lruOf(c, "a"); got != lruCold {
		t.Fatalf("hot_lru_pct 0: item on LRU %d", got)
	}
}

func TestDump(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	keys := map[string]int{}
	for i := range 1000 {
		k := fmt.Sprintf("key%d", i)
		n := 1 + i%3*400
		mustStore(t, c, ModeSet, k, string(make([]byte, n)), uint32(i%2), int64(i%2*100), 0)
		keys[k] = n
	}
	mustStore(t, c, ModeSet, "expired", "x", 0, -1, 0)
	value(c, "key7")
	collect := func(dump func(func(*DumpItem) bool)) []string {
		var got []string
		dump(func(it *DumpItem) bool {
			got = append(got, string(it.Key))
			n, ok := keys[string(it.Key)]
			if !ok {
				t.Errorf("dumped %q", it.Key)
				return true
			}
			flags := uint32(0)
			if it.Exptime != 0 {
				flags = 1
			}
			if want := int(c.mcItemSize(len(it.Key), n, flags)); it.Size != want {
				t.Errorf("%s: size %d, want %d", it.Key, it.Size, want)
			}
			if it.Fetched != (string(it.Key) == "key7") || it.CAS == 0 || it.LastAccess == 0 {
				t.Errorf("%s: %+v", it.Key, *it)
			}
			return true
		})
		sort.Strings(got)
		return got
	}
	all := collect(func(fn func(*DumpItem) bool) { c.Dump(nil, fn) })
	hash := collect(c.DumpHash)
	if len(all) != len(keys) || fmt.Sprint(all) != fmt.Sprint(hash) {
		t.Fatalf("Dump listed %d items, DumpHash %d, want %d", len(all), len(hash), len(keys))
	}
	cls := c.classFor(c.ntotal(4, 1))
	one := collect(func(fn func(*DumpItem) bool) { c.Dump([]int{cls, 63}, fn) })
	if len(one) == 0 || len(one) >= len(keys) {
		t.Fatalf("Dump of class %d listed %d items", cls, len(one))
	}
	n := 0
	c.Dump(nil, func(*DumpItem) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("Dump went on after false: %d calls", n)
	}
}

func TestCrawlRequest(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoLRUMaintainer: true}) // nothing else reclaims
	mustStore(t, c, ModeSet, "a", "x", 0, 1, 0)
	clk.Advance(3 * time.Second)
	if err := c.Crawl([]int{0}); !errors.Is(err, ErrBadClass) {
		t.Fatalf("Crawl(0): %v", err)
	}
	if err := c.Crawl(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crawl", func() bool { return stats(c).CrawlerReclaimed == 1 && !c.CrawlerBusy() })
	c.DisableCrawler()
	if err := c.Crawl(nil); !errors.Is(err, ErrCrawlerDisabled) {
		t.Fatalf("Crawl while disabled: %v", err)
	}
	if !c.EnableCrawler() || c.EnableCrawler() {
		t.Fatal("EnableCrawler should succeed once")
	}
}

// TestFlatLRUReclaimsOnStore: without the maintainer, every store first
// takes back the expired items at the COLD tail and counts them as
// reclaimed, as memcached's flat LRU does; in the middle of the LRU they
// stay until something finds them.
func TestFlatLRUReclaimsOnStore(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoLRUMaintainer: true, NoCrawler: true})
	mustStore(t, c, ModeSet, "a", "x", 0, 1, 0)
	mustStore(t, c, ModeSet, "z", "x", 0, 0, 0)
	mustStore(t, c, ModeSet, "b", "x", 0, 1, 0)
	clk.Advance(3 * time.Second)
	mustStore(t, c, ModeSet, "b", "y", 0, 0, 0) // reclaims a, not b
	st := stats(c)
	var cl ClassStats
	for _, k := range st.Classes {
		if k.ID == c.classFor(c.ntotal(1, 1)) {
			cl = k
		}
	}
	if st.Reclaimed != 1 || cl.Reclaimed != 1 || st.ExpiredUnfetched != 1 || st.CurrItems != 2 {
		t.Fatalf("reclaimed %d (class %d), expired_unfetched %d, curr_items %d; want 1, 1, 1, 2",
			st.Reclaimed, cl.Reclaimed, st.ExpiredUnfetched, st.CurrItems)
	}
}

// TestCrawlSchedule follows memcached's autocrawl schedule: an LRU whose
// items expire within the minute is crawled again 5s after a pass; one
// with nothing to expire waits a minute more each pass, up to an hour.
func TestCrawlSchedule(t *testing.T) {
	var cs crawlSchedule
	cs.tally = crawlTally{seen: 100, noexp: 50}
	cs.tally.histo[0] = 50
	cs.reschedule(1000)
	if cs.wait != 0 || cs.next != 1005 || cs.complete {
		t.Fatalf("expiring soon: wait %d next %d complete %v", cs.wait, cs.next, cs.complete)
	}
	for i := 1; i <= 70; i++ {
		cs.tally = crawlTally{seen: 10, noexp: 10}
		cs.reschedule(1000)
		if want := uint32(min(i*60, 3600)); cs.wait != want || cs.next != 1005+want {
			t.Fatalf("pass %d with nothing to expire: wait %d next %d, want %d", i, cs.wait, cs.next, want)
		}
	}
	// Items expiring in 10 minutes bring the wait down a minute a pass.
	cs.tally = crawlTally{seen: 10}
	cs.tally.histo[10] = 10
	cs.reschedule(1000)
	if cs.wait != 3540 {
		t.Fatalf("wait %d after items expiring in 10 minutes, want 3540", cs.wait)
	}
}

// TestCrawlSchedulePerLRU: as memcached, the crawler schedules each LRU
// of each class on its own. Items with a short TTL go to the TEMP LRU of a
// class whose HOT LRU holds items that never expire, beside a class of
// such items only: the TEMP LRU is crawled again every 5s or so while its
// items are about to expire; the other LRUs, of the same class and of the
// other, wait 65s after the first pass that found them, and 125s after the
// next.
func TestCrawlSchedulePerLRU(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, CrawlInterval: time.Millisecond, CrawlerSleep: -1,
		TempLRU: true, TemporaryTTL: 120})
	// step lets d pass and waits for two whole turns of the crawler's
	// loop after it: one that crawls what is due, and one that
	// reschedules what that crawled, as the clock still reads the same.
	step := func(d time.Duration) {
		t.Helper()
		clk.Advance(d)
		r := c.crawl.rounds.Load()
		waitFor(t, "the crawler's next turns", func() bool { return c.crawl.rounds.Load() >= r+3 })
	}
	step(0) // the first pass, over every (empty) LRU
	if s := stats(c); s.LRUCrawlerStarts != 1 {
		t.Fatalf("lru_crawler_starts %d after the first pass, want 1", s.LRUCrawlerStarts)
	}
	const n = 100
	for i := range n {
		mustStore(t, c, ModeSet, fmt.Sprintf("t%03d", i), "v", 0, 120, 0)
		mustStore(t, c, ModeSet, fmt.Sprintf("h%03d", i), "v", 0, 0, 0)
		mustStore(t, c, ModeSet, fmt.Sprintf("b%03d", i), strings.Repeat("v", 500), 0, 0, 0)
	}
	small, big := c.classFor(c.ntotal(4, 1)), c.classFor(c.ntotal(4, 500))
	checked := func() (a, b uint64) {
		t.Helper()
		for _, k := range stats(c).Classes {
			switch k.ID {
			case small:
				a = k.CrawlerItemsChecked
				if k.NumberTemp != n && k.CrawlerReclaimed == 0 && k.Reclaimed == 0 {
					t.Fatalf("class %d: %d items on TEMP, want %d", small, k.NumberTemp, n)
				}
			case big:
				b = k.CrawlerItemsChecked
			}
		}
		return a, b
	}
	// The LRUs, empty in the first pass, are due 65s after it.
	step(65 * time.Second)
	if a, b := checked(); a != 0 || b != 0 {
		t.Fatalf("crawled before the LRUs were due: checked %d and %d", a, b)
	}
	step(time.Second)
	a, b := checked()
	if s := stats(c); a != 2*n || b != n || s.LRUCrawlerStarts != 2 {
		t.Fatalf("second pass: checked %d and %d, starts %d; want %d, %d, 2", a, b, s.LRUCrawlerStarts, 2*n, n)
	}
	// Up to 4s before the TEMP items expire, only their LRU is
	// crawled: every 6s, as the clock moves by whole seconds.
	for range 50 {
		step(time.Second)
	}
	s := stats(c)
	passes := s.LRUCrawlerStarts - 2
	a, b = checked()
	if passes != 8 || a != 2*n+passes*n || b != n || s.CrawlerReclaimed != 0 {
		t.Fatalf("after 50s: %d more passes checked %d and %d items, reclaimed %d; want 8 passes "+
			"of the %d TEMP items only", passes, a-2*n, b-n, s.CrawlerReclaimed, n)
	}
	// The big class and the small class's HOT LRU are due 125s after
	// the second pass.
	for range 125 - 50 {
		step(time.Second)
	}
	if _, b := checked(); b != n {
		t.Fatalf("big class crawled again (%d items) within 125s", b-n)
	}
	step(time.Second)
	if _, b := checked(); b != 2*n {
		t.Fatalf("big class: checked %d, want %d 126s after its last pass", b, 2*n)
	}
}

// TestCrawlToCrawlPerLRU: lru_crawler_tocrawl bounds the items a pass
// checks on each LRU of a class, as memcached's crawler counts down each
// LRU's remaining items.
func TestCrawlToCrawlPerLRU(t *testing.T) {
	clk := newFakeClock()
	// A flat LRU: new items go to COLD, or TEMP, and stay there. No
	// automatic pass after the first.
	c := newCache(t, Config{Now: clk.Now, TempLRU: true, TemporaryTTL: 61, CrawlerToCrawl: 10, CrawlInterval: time.Hour})
	if err := c.SetLRUSegmented(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first pass", func() bool { return c.crawl.rounds.Load() >= 2 })
	for i := range 50 {
		mustStore(t, c, ModeSet, fmt.Sprintf("t%03d", i), "v", 0, 30, 0) // TEMP
		mustStore(t, c, ModeSet, fmt.Sprintf("c%03d", i), "v", 0, 0, 0)  // COLD
	}
	if err := c.Crawl(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crawl", func() bool { return !c.CrawlerBusy() })
	if got := stats(c).CrawlerItemsChecked; got != 20 {
		t.Fatalf("crawler_items_checked %d, want 10 on each of TEMP and COLD", got)
	}
}

// TestNoAutocrawlWithoutMaintainer: memcached's crawler crawls on its own
// only when the LRU maintainer starts it; without, only on request.
func TestNoAutocrawlWithoutMaintainer(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoLRUMaintainer: true, CrawlInterval: time.Millisecond})
	mustStore(t, c, ModeSet, "a", "x", 0, 0, 0)
	mustStore(t, c, ModeSet, "b", "x", 0, 1, 0)
	clk.Advance(100 * time.Second)
	// Many ticks pass while waiting for the Crawl request to be taken.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		if s := stats(c); s.LRUCrawlerStarts != 0 || s.CrawlerItemsChecked != 0 {
			t.Fatalf("crawled without the maintainer: starts %d checked %d", s.LRUCrawlerStarts, s.CrawlerItemsChecked)
		}
		runtime.Gosched()
	}
	if err := c.Crawl(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crawl", func() bool { return !c.CrawlerBusy() })
	if s := stats(c); s.LRUCrawlerStarts != 1 || s.CrawlerReclaimed != 1 || s.CrawlerItemsChecked != 2 {
		t.Fatalf("after one crawl: starts %d crawler_reclaimed %d checked %d, want 1 1 2",
			s.LRUCrawlerStarts, s.CrawlerReclaimed, s.CrawlerItemsChecked)
	}
}
