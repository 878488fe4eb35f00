package storage

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// chainCache returns a cache that chains items over slab_chunk_max.
func chainCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	if cfg.Now == nil && cfg.Clock == nil {
		cfg.Now = newFakeClock().Now
	}
	cfg.NoCrawler = true
	return newCache(t, cfg)
}

// pattern returns n bytes that differ with n and seed at every offset.
func pattern(n int, seed byte) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(i) ^ byte(i>>8)*31 ^ byte(i>>16)*7 ^ seed
	}
	return v
}

// usedChunks returns the used chunks of every class, by class id.
func usedChunks(c *Cache) map[int]int {
	m := map[int]int{}
	for _, cs := range stats(c).Classes {
		if cs.UsedChunks != 0 {
			m[cs.ID] = cs.UsedChunks
		}
	}
	return m
}

// wantChain returns the chunks memcached 1.6 takes for a text set of an
// nbytes value under an nkey-byte key with zero flags, by class id,
// computed from its rules (do_item_alloc, do_item_alloc_chunk) alone.
func wantChain(c *Cache, nkey, nbytes int) map[int]int {
	m := map[int]int{}
	classOf := func(size int) int {
		for _, ci := range c.Classes() {
			if ci.ChunkSize >= size {
				return ci.ID
			}
		}
		return c.Classes()[len(c.Classes())-1].ID
	}
	total := 48 + nkey + 1 + nbytes + 2 + 8
	if total <= c.cfg.SlabChunkMax {
		return nil
	}
	const chunkHeader = 48 // sizeof(item_chunk)
	m[classOf(48+nkey+1+chunkHeader+8)]++
	for left := nbytes + 2; left > 0; {
		size := min(left+chunkHeader, c.cfg.SlabChunkMax)
		m[classOf(size)]++
		left -= size - chunkHeader
	}
	return m
}

func TestChainSizesAcrossBoundaries(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 16 << 10})
	key := "chain-key"
	var sizes []int
	max := c.cfg.ItemSizeMax - 48 - len(key) - 1 - 2 - 8
	for _, base := range []int{1, 16 << 10, 2 * (16 << 10), 5 * (16 << 10), 16<<10 - 48, 2 * (16<<10 - 48), max} {
		for d := -3; d <= 3; d++ {
			if n := base + d; n >= 0 && n <= max {
				sizes = append(sizes, n)
			}
		}
	}
	for _, ci := range c.Classes() {
		for d := -1; d <= 1; d++ {
			sizes = append(sizes, 16<<10-48+ci.ChunkSize-48+d, 3*(16<<10-48)+ci.ChunkSize-48+d)
		}
	}
	for _, n := range sizes {
		v := pattern(n, byte(n))
		mustSet(t, c, key, string(v))
		got, ok := value(c, key)
		if !ok || got != string(v) {
			t.Fatalf("%d bytes: read back %d bytes (found %v)", n, len(got), ok)
		}
		if want := wantChain(c, len(key), n); want != nil {
			if got := usedChunks(c); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%d bytes: used chunks %v, want %v", n, got, want)
			}
		}
	}
	c.Delete([]byte(key))
	if got := usedChunks(c); len(got) != 0 {
		t.Fatalf("after delete: used chunks %v, want none", got)
	}
}

// checkChains reads every key of want back whole (when its value is not
// nil, and it is still there), then deletes them all
// and requires that no chunk is left in use.
func checkChains(t *testing.T, c *Cache, want map[string][]byte) {
	t.Helper()
	for k, v := range want {
		if got, ok := value(c, k); ok && v != nil && got != string(v) {
			t.Fatalf("%s: read back %d bytes, want %d", k, len(got), len(v))
		}
		c.Delete([]byte(k))
	}
	if got := usedChunks(c); len(got) != 0 {
		t.Fatalf("after deleting every key: used chunks %v, want none", got)
	}
}

func TestChainAppendPrependAcrossBoundaries(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 64 << 10, SlabChunkMax: 4 << 10})
	steps := []int{1, 3000, 1000, 56, 40, 4056, 1, 2, 4095, 9000, 1, 0, 20000}
	for _, mode := range []StoreMode{ModeAppend, ModePrepend} {
		want := []byte("x")
		mustSet(t, c, "k", "x")
		for i, n := range steps {
			v := pattern(n, byte(i))
			if res := mustStore(t, c, mode, "k", string(v), 0, 0, 0); res != Stored {
				t.Fatalf("mode %d step %d: %v", mode, i, res)
			}
			if mode == ModeAppend {
				want = append(want, v...)
			} else {
				want = append(append([]byte(nil), v...), want...)
			}
			if got, _ := value(c, "k"); got != string(want) {
				t.Fatalf("mode %d step %d: read back %d bytes, want %d", mode, i, len(got), len(want))
			}
		}
	}
	checkChains(t, c, map[string][]byte{"k": nil})
}

func TestChainIncrIsNonNumeric(t *testing.T) {
	c := chainCache(t, Config{ItemSizeMax: 64 << 10, SlabChunkMax: 1 << 10})
	mustSet(t, c, "n", "1"+string(bytes.Repeat([]byte{' '}, 2000)))
	if _, res := c.Incr([]byte("n"), 1, false); res != NonNumeric {
		t.Fatalf("incr on a chained value: %v, want NonNumeric (memcached refuses chunked items)", res)
	}
}

// TestChainLargeItemsTakeTheirSize stores many values far smaller than
// -I: each takes about its own size, not an -I sized page.
func TestChainLargeItemsTakeTheirSize(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 256 << 20, ItemSizeMax: 128 << 20})
	n := 60
	if raceEnabled {
		n = 20 // still ten times what pages of -I would hold
	}
	want := map[string][]byte{}
	for i := range n {
		k := fmt.Sprintf("big%d", i)
		want[k] = pattern(3<<20, byte(i))
		mustSet(t, c, k, string(want[k]))
	}
	st := stats(c)
	if st.CurrItems != uint64(n) || st.Evictions != 0 {
		t.Fatalf("%d items, %d evictions; want %d and none", st.CurrItems, st.Evictions, n)
	}
	checkChains(t, c, want)
}

// TestChainEviction fills a small cache with chained items: stores keep
// succeeding, the oldest items are evicted whole, and the survivors read
// back intact.
func TestChainEviction(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 8 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10})
	want := map[string][]byte{}
	for i := range 100 {
		k := fmt.Sprintf("k%d", i)
		want[k] = pattern(300<<10+i*1001, byte(i))
		mustSet(t, c, k, string(want[k]))
		if i%3 == 0 {
			mustSet(t, c, fmt.Sprintf("small%d", i), "v") // headers and small items share classes
		}
	}
	st := stats(c)
	if st.Evictions == 0 || st.CurrItems == 0 {
		t.Fatalf("%d items, %d evictions: want both", st.CurrItems, st.Evictions)
	}
	if got, ok := value(c, "k99"); !ok || got != string(want["k99"]) {
		t.Fatal("the newest item is gone or damaged")
	}
	for i := range 100 {
		want[fmt.Sprintf("small%d", i)] = nil
	}
	checkChains(t, c, want)
}

// reassignWait asks for a page move from src to dst and waits until the
// mover is done with it.
func reassignWait(t *testing.T, c *Cache, src, dst int) {
	t.Helper()
	before := stats(c).SlabsMoved
	if err := c.Reassign(src, dst); err != nil {
		t.Fatalf("Reassign(%d, %d): %v", src, dst, err)
	}
	waitFor(t, "the page move", func() bool { return !c.rebalBusy.Load() })
	if stats(c).SlabsMoved == before {
		t.Fatalf("Reassign(%d, %d): no page moved", src, dst)
	}
}

// chainFill stores n chained items of about 200 KB in c, then deletes
// every one of the first del, so that their chunks are free in the first
// pages; it returns the values of the items left.
func chainFill(t *testing.T, c *Cache, n, del int) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		want[k] = pattern(200<<10+i*777, byte(i))
		mustSet(t, c, k, string(want[k]))
	}
	for i := range del {
		k := fmt.Sprintf("k%d", i)
		c.Delete([]byte(k))
		delete(want, k)
	}
	return want
}

// checkValues requires every item of want to read back byte for byte.
func checkValues(t *testing.T, c *Cache, want map[string][]byte) {
	t.Helper()
	for k, v := range want {
		if v == nil {
			continue
		}
		got, ok := value(c, k)
		if !ok {
			t.Fatalf("%s is gone", k)
		}
		if got != string(v) {
			t.Fatalf("%s: read back %d bytes, not the %d stored", k, len(got), len(v))
		}
	}
}

// TestChainReassignRescues moves a page of body chunks, and a page of
// chained items' header chunks, while their classes have free chunks in
// other pages: as memcached, the chunks are copied there and relinked
// (slab_reassign_chunk_rescues, slab_reassign_rescues), no item is
// evicted, every value reads back intact and no chunk leaks.
func TestChainReassignRescues(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 64 << 10})
	want := chainFill(t, c, 40, 15)
	largest := c.Classes()[len(c.Classes())-1].ID
	before := stats(c)
	reassignWait(t, c, largest, 0)
	after := stats(c)
	if after.SlabReassignChunkRescues == before.SlabReassignChunkRescues {
		t.Errorf("a page of body chunks moved without rescuing them")
	}
	if after.SlabReassignEvictionsNomem != before.SlabReassignEvictionsNomem || after.CurrItems != before.CurrItems {
		t.Fatalf("with free chunks to spare: %d evicted, %d items before, %d after",
			after.SlabReassignEvictionsNomem-before.SlabReassignEvictionsNomem, before.CurrItems, after.CurrItems)
	}
	checkValues(t, c, want)

	// The header class: fill it to two pages with small items, free half
	// of them, and move its first page, where the headers are.
	hc := c.headerClass(len("k10"), 0)
	n := 1
	for c.classFor(c.ntotal(len("pad00000"), n)) != hc {
		n++
	}
	var pads []string
	for i := 0; c.classes[hc].npages.Load() < 2 && i < 99999; i++ {
		k := fmt.Sprintf("pad%05d", i)
		mustSet(t, c, k, string(pattern(n, 1)))
		pads = append(pads, k)
	}
	for i, k := range pads {
		if i%2 == 0 {
			c.Delete([]byte(k))
		} else {
			want[k] = pattern(n, 1)
		}
	}
	before = stats(c)
	reassignWait(t, c, hc, 0)
	after = stats(c)
	if after.SlabReassignRescues-before.SlabReassignRescues < uint64(len(pads)/2) {
		t.Errorf("%d rescues, want at least the %d small items", after.SlabReassignRescues-before.SlabReassignRescues, len(pads)/2)
	}
	if after.SlabReassignEvictionsNomem != before.SlabReassignEvictionsNomem || after.CurrItems != before.CurrItems {
		t.Fatalf("header page: %d evicted, %d items before, %d after",
			after.SlabReassignEvictionsNomem-before.SlabReassignEvictionsNomem, before.CurrItems, after.CurrItems)
	}
	checkValues(t, c, want)
	checkChains(t, c, want)
}

// TestChainReassignNomem moves the last page of body chunks of a full
// class, which has too few free chunks elsewhere for them: owners are
// evicted and counted as
// slab_reassign_evictions_nomem, the other items stay intact and no chunk
// leaks.
func TestChainReassignNomem(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 64 << 10})
	want := chainFill(t, c, 40, 0)
	largest := c.Classes()[len(c.Classes())-1].ID
	before := stats(c)
	reassignWait(t, c, largest, 0)
	after := stats(c)
	evicted := after.SlabReassignEvictionsNomem - before.SlabReassignEvictionsNomem
	if evicted == 0 || after.CurrItems != before.CurrItems-evicted {
		t.Fatalf("%d evicted, %d items before, %d after", evicted, before.CurrItems, after.CurrItems)
	}
	for k, v := range want {
		if got, ok := value(c, k); ok && got != string(v) {
			t.Fatalf("%s damaged by the move", k)
		}
	}
	checkChains(t, c, want)
}

// TestChainReassignConcurrentGets reads chained items back whole, from
// several goroutines, while pages of body chunks move out of the largest
// class and back: with free chunks to spare, no read misses and none sees
// a torn or freed chunk (run with -race).
func TestChainReassignConcurrentGets(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 64 << 10})
	want := chainFill(t, c, 40, 20)
	largest := c.Classes()[len(c.Classes())-1].ID
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		misses, torn, gets int
	)
	done := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := g; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := keys[i%len(keys)]
				ok := c.Get([]byte(k), func(it Item) { buf = it.AppendValue(buf[:0]) })
				mu.Lock()
				gets++
				if !ok {
					misses++
				} else if !bytes.Equal(buf, want[k]) {
					torn++
				}
				mu.Unlock()
			}
		}()
	}
	for range 12 {
		if c.pagesOf(0) >= 2 {
			reassignWait(t, c, 0, largest)
		} else {
			reassignWait(t, c, largest, 0)
		}
	}
	close(done)
	wg.Wait()
	if misses != 0 || torn != 0 {
		t.Fatalf("%d gets while pages moved: %d missed, %d read a damaged value", gets, misses, torn)
	}
	if stats(c).SlabReassignChunkRescues == 0 {
		t.Fatal("no body chunk was rescued")
	}
	checkChains(t, c, want)
}

// TestChainDump lists chained items with the largest class, as
// memcached's metadump does, once in a dump of every class and not with
// the classes of their header chunks.
func TestChainDump(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 16 << 10})
	mustSet(t, c, "small", "x")
	mustSet(t, c, "c1", string(pattern(20000, 1)))
	mustStore(t, c, ModeSet, "c2-longer-key", string(pattern(300000, 2)), 5, 0, 0)
	largest := c.Classes()[len(c.Classes())-1].ID
	dump := func(ids []int) string {
		var keys []string
		c.Dump(ids, func(it *DumpItem) bool {
			keys = append(keys, fmt.Sprintf("%s/%d", it.Key, it.Class))
			return true
		})
		sort.Strings(keys)
		return fmt.Sprint(keys)
	}
	want := fmt.Sprintf("[c1/%d c2-longer-key/%d]", largest, largest)
	if got := dump([]int{largest}); got != want {
		t.Errorf("dump of the largest class: %s, want %s", got, want)
	}
	for _, hc := range []int{c.headerClass(2, 0), c.headerClass(len("c2-longer-key"), 5)} {
		if got := dump([]int{hc}); strings.Contains(got, "c1/") || strings.Contains(got, "c2-") {
			t.Errorf("dump of header class %d: %s", hc, got)
		}
	}
	if got, want := dump(nil), fmt.Sprintf("[c1/%d c2-longer-key/%d small/%d]", largest, largest, c.classFor(c.ntotal(5, 1))); got != want {
		t.Errorf("dump of all classes: %s, want %s", got, want)
	}
}

// TestChainCrawlerReclaims expires chained items and asks the crawler for
// a pass over all classes, then over the largest class alone (the class
// chained items belong to, as "lru_crawler crawl <largest>" asks
// memcached): every item is reclaimed, every chunk freed.
func TestChainCrawlerReclaims(t *testing.T) {
	for _, only := range []bool{false, true} {
		t.Run(fmt.Sprint("largest only ", only), func(t *testing.T) { testChainCrawler(t, only) })
	}
}

// TestChainCrawlerLargestBusy asks for a pass while the largest class's
// lock is held elsewhere (a store of a large item, a reader of stats):
// the pass waits for it rather than leave the expired chained items whose
// headers it finds meanwhile.
func TestChainCrawlerLargestBusy(t *testing.T) {
	c := expiredChains(t)
	l := &c.classes[c.largest]
	l.mu.Lock()
	waitFor(t, "a crawl request", func() bool { return c.Crawl(nil) == nil })
	time.Sleep(50 * time.Millisecond)
	l.mu.Unlock()
	waitFor(t, "the crawler", func() bool { return !c.CrawlerBusy() })
	if st := stats(c); st.CurrItems != 0 || st.CrawlerReclaimed != 20 {
		t.Fatalf("after the crawl: curr_items %d, crawler_reclaimed %d; want 0 and 20", st.CurrItems, st.CrawlerReclaimed)
	}
	if got := usedChunks(c); len(got) != 0 {
		t.Fatalf("after the crawl: used chunks %v, want none", got)
	}
}

// expiredChains returns a cache holding 20 chained items (100 KB values
// in 16 KB chunks) that have expired, with no LRU maintainer to find them.
func expiredChains(t *testing.T) *Cache {
	t.Helper()
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, ItemSizeMax: 1 << 20, SlabChunkMax: 16 << 10, NoLRUMaintainer: true})
	for i := range 20 {
		if _, err := c.Store(ModeSet, []byte(fmt.Sprintf("k%d", i)), 0, 10, pattern(100<<10, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(20 * time.Second)
	return c
}

func testChainCrawler(t *testing.T, largestOnly bool) {
	c := expiredChains(t)
	var ids []int
	if largestOnly {
		ids = []int{c.largest}
	}
	waitFor(t, "a crawl request", func() bool { return c.Crawl(ids) == nil })
	waitFor(t, "the crawler", func() bool { return stats(c).CurrItems == 0 && !c.CrawlerBusy() })
	if got := usedChunks(c); len(got) != 0 {
		t.Fatalf("after the crawl: used chunks %v, want none", got)
	}
	if st := stats(c); st.CrawlerReclaimed != 20 {
		t.Fatalf("crawler_reclaimed %d, want 20", st.CrawlerReclaimed)
	}
}

func TestChainSnapshot(t *testing.T) {
	clk := newFakeClock()
	src := chainCache(t, Config{Now: clk.Now, ItemSizeMax: 4 << 20, SlabChunkMax: 16 << 10})
	want := map[string][]byte{}
	for i := range 30 {
		k := fmt.Sprintf("k%d", i)
		want[k] = pattern(1+i*i*4099, byte(i))
		mustSet(t, src, k, string(want[k]))
	}
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	// Into a cache with another slab_chunk_max: the chains are rebuilt.
	dst := newCache(t, Config{Now: clk.Now, NoCrawler: true, ItemSizeMax: 4 << 20, MemoryLimit: 128 << 20})
	if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got, ok := value(dst, k); !ok || got != string(v) {
			t.Fatalf("%s read back %d bytes (found %v), want %d", k, len(got), ok, len(v))
		}
	}
}

// TestChainConcurrent sets, gets, appends and deletes chained items from
// several goroutines in a cache small enough to evict, while pages move:
// every value read is one that was written, whole.
func TestChainConcurrent(t *testing.T) {
	c := newCache(t, Config{MemoryLimit: 16 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 32 << 10})
	const workers, rounds = 4, 300
	largest := c.Classes()[len(c.Classes())-1].ID
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				key := []byte(fmt.Sprintf("k%d", (i*7+w)%16))
				n := 1 + (i*9973+w*31)%(300<<10)
				v := pattern(n, byte(n))
				switch i % 5 {
				case 0, 1:
					if _, err := c.Store(ModeSet, key, uint32(n), 0, v, 0); err != nil {
						errs <- err
						return
					}
				case 2:
					c.Delete(key)
				case 3:
					_, _ = c.Store(ModeAppend, key, 0, 0, v[:n%5000], 0)
				default:
					if w == 0 {
						_ = c.Reassign(largest, 0)
					}
				}
				var bad error
				c.Get(key, func(it Item) {
					got := it.AppendValue(nil)
					if it.Len() != len(got) {
						bad = fmt.Errorf("%s: Len %d, %d bytes", key, it.Len(), len(got))
						return
					}
					// A value is a pattern of its flags' length, perhaps
					// followed by appended prefixes of patterns.
					f := int(it.Flags)
					if f > len(got) || !bytes.Equal(got[:f], pattern(f, byte(f))) {
						bad = fmt.Errorf("%s: value of %d bytes does not start with its %d-byte pattern", key, len(got), f)
					}
				})
				if bad != nil {
					errs <- bad
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "the mover", func() bool { return !c.rebalBusy.Load() })
	want := map[string][]byte{}
	for i := range 16 {
		want[fmt.Sprintf("k%d", i)] = nil
	}
	checkChains(t, c, want)
}

// TestChainAutocrawlReclaims: the crawler's automatic passes reclaim
// expired chained items, as memcached's autocrawl of the largest class's
// LRUs does, though their headers sit in smaller classes' pages.
func TestChainAutocrawlReclaims(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, ItemSizeMax: 1 << 20, SlabChunkMax: 16 << 10,
		CrawlInterval: time.Millisecond, CrawlerSleep: -1})
	// A flat LRU: the items stay on COLD, where only the crawler (or a
	// need for memory) reclaims them.
	if err := c.SetLRUSegmented(false); err != nil {
		t.Fatal(err)
	}
	step := func(d time.Duration) {
		t.Helper()
		clk.Advance(d)
		r := c.crawl.rounds.Load()
		waitFor(t, "the crawler's next turns", func() bool { return c.crawl.rounds.Load() >= r+3 })
	}
	step(0)
	// Items that never expire at the COLD tail, where the maintainer
	// looks, and the ones that do before them.
	for i := range 40 {
		exp := int64(0)
		if i >= 20 {
			exp = 30
		}
		if _, err := c.Store(ModeSet, []byte(fmt.Sprintf("k%d", i)), 0, exp, pattern(100<<10, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		step(time.Second)
		if stats(c).CurrItems == 20 {
			break
		}
	}
	st := stats(c)
	if st.CurrItems != 20 || st.CrawlerReclaimed != 20 {
		t.Fatalf("200s after setting 20 chained items with a TTL of 30s: curr_items %d crawler_reclaimed %d (reclaimed %d), want 20 and 20",
			st.CurrItems, st.CrawlerReclaimed, st.Reclaimed)
	}
}

// TestChainSetNoMemoryKeepsOld: a set of a chained item whose header
// chunk is found but not its body chunks fails with ErrNoMemoryRead (also
// an ErrNoMemory) and, as memcached's failed read, keeps the old value.
func TestChainSetNoMemoryKeepsOld(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 16 << 20, ItemSizeMax: 4 << 20, NoEvict: true})
	mustSet(t, c, "old", "v")
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = c.Store(ModeSet, []byte(fmt.Sprint("k", i)), 0, 0, pattern(3<<20, byte(i)), 0)
	}
	if err != ErrNoMemoryRead || !errors.Is(err, ErrNoMemory) {
		t.Fatalf("filling a -M cache with chained items: %v, want ErrNoMemoryRead", err)
	}
	if _, err := c.Store(ModeSet, []byte("old"), 0, 0, pattern(3<<20, 9), 0); err != ErrNoMemoryRead {
		t.Fatalf("set old: %v, want ErrNoMemoryRead", err)
	}
	if got, ok := value(c, "old"); !ok || got != "v" {
		t.Fatalf("old reads %d bytes (found %v) after the failed set, want its old value", len(got), ok)
	}
}

// TestChainCrawlerCountsLargest: the crawler checks chained items with
// the largest class's LRUs, whose items they are, as memcached's crawler
// walks its LRUs: "stats items" counts them in crawler_items_checked of
// the largest class, a crawl of their header chunks' class alone does
// not check them, and an automatic pass schedules them with the largest
// class's LRUs.
func TestChainCrawlerCountsLargest(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, ItemSizeMax: 1 << 20, SlabChunkMax: 16 << 10, NoLRUMaintainer: true})
	for i := range 10 {
		if _, err := c.Store(ModeSet, []byte(fmt.Sprintf("k%d", i)), 0, 0, pattern(100<<10, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	hdr := c.headerClass(2, 0)
	checked := func() (h, l uint64) {
		for _, cs := range stats(c).Classes {
			switch cs.ID {
			case hdr:
				h = cs.CrawlerItemsChecked
			case c.largest:
				l = cs.CrawlerItemsChecked
			}
		}
		return h, l
	}
	crawl := func(ids []int) {
		t.Helper()
		waitFor(t, "a crawl request", func() bool { return c.Crawl(ids) == nil })
		waitFor(t, "the crawl", func() bool { return !c.CrawlerBusy() })
	}
	crawl([]int{hdr})
	if h, l := checked(); h != 0 || l != 0 {
		t.Fatalf("crawl of class %d: checked %d there and %d in the largest class, want none", hdr, h, l)
	}
	crawl(nil)
	if h, l := checked(); h != 0 || l != 10 {
		t.Fatalf("crawl of all classes: checked %d in class %d and %d in the largest class, want 0 and 10", h, hdr, l)
	}

	// An automatic pass: the largest class's COLD LRU records the items
	// it saw, the header class's records none.
	sched := make([][numLRU]crawlSchedule, len(c.classes))
	want := make([]lruSet, len(c.classes))
	for i := range want {
		want[i] = allLRUs
	}
	if !c.crawlAll(want, sched) {
		t.Fatal("crawlAll: cache stopping")
	}
	var seenHdr, seenLargest uint64
	for l := range numLRU {
		seenHdr += sched[hdr][l].tally.seen
		seenLargest += sched[c.largest][l].tally.seen
	}
	if seenHdr != 0 || seenLargest != 10 {
		t.Fatalf("automatic pass: class %d's LRUs saw %d items, the largest class's %d; want 0 and 10", hdr, seenHdr, seenLargest)
	}
}
