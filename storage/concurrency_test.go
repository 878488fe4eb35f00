package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestHashGrowth(t *testing.T) {
	c := newCache(t, Config{HashPowerInit: 12, NoCrawler: true})
	const n = 50000 // > 1.5 * 2^15: at least three doublings
	for i := 0; i < n; i++ {
		mustSet(t, c, "key"+strconv.Itoa(i), strconv.Itoa(i))
		if i%5000 == 0 {
			// Lookups while the table may be growing.
			for j := 0; j < i; j += 97 {
				if v, ok := value(c, "key"+strconv.Itoa(j)); !ok || v != strconv.Itoa(j) {
					t.Fatalf("key%d lost during growth (found %v)", j, ok)
				}
			}
		}
	}
	waitFor(t, "hash expansion", func() bool {
		s := stats(c)
		return !s.HashIsExpanding && s.HashPowerLevel >= 16
	})
	for i := 0; i < n; i++ {
		if v, ok := value(c, "key"+strconv.Itoa(i)); !ok || v != strconv.Itoa(i) {
			t.Fatalf("key%d lost after growth", i)
		}
	}
	if s := stats(c); s.HashBytes != 4<<s.HashPowerLevel || s.CurrItems != n {
		t.Fatalf("hash bytes %d power %d items %d", s.HashBytes, s.HashPowerLevel, s.CurrItems)
	}
	checkConsistency(t, c)
}

// TestHashGrowthCatchesUp holds the expander at its first doubling while
// inserts cross two more thresholds, which cannot ask it again: once free,
// it must still grow the table as far as the items call for.
func TestHashGrowthCatchesUp(t *testing.T) {
	c := newCache(t, Config{HashPowerInit: 12, NoCrawler: true})
	held := &c.stripes[numStripes-1]
	held.mu.Lock()
	const n = 30000 // > 1.5 * 2^14: power 15
	for i, stored := 0, 0; stored < n; i++ {
		k := "key" + strconv.Itoa(i)
		if c.stripeFor(c.hashKey([]byte(k))) == held {
			continue
		}
		mustSet(t, c, k, "v")
		stored++
	}
	waitFor(t, "the first doubling to start", c.hashExpanding.Load)
	if p := c.hashPower.Load(); p != 12 {
		t.Fatalf("power %d while the first doubling is held", p)
	}
	held.mu.Unlock()
	waitFor(t, "hash expansion", func() bool {
		s := stats(c)
		return !s.HashIsExpanding && s.HashPowerLevel == 15
	})
	checkConsistency(t, c)
}

// TestConcurrent runs every operation from many goroutines on a small key
// space in little memory (so that evictions and page moves happen), and
// checks that every value read is one that was written for its key.
func TestConcurrent(t *testing.T) {
	c := newCache(t, Config{MemoryLimit: 24 << 20, HashPowerInit: 12, CrawlInterval: time.Millisecond})
	const workers, ops, keys = 8, 20000, 30000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			payload := bytes.Repeat([]byte("abcdefgh"), 4096)
			check := func(it Item) {
				// Values are key + "=" + filler, or a number.
				if len(it.Value) > 0 && it.Value[0] >= '0' && it.Value[0] <= '9' {
					return
				}
				if !bytes.HasPrefix(it.Value, append(bytes.Clone(it.Key), '=')) {
					select {
					case errs <- fmt.Errorf("key %q has value %.40q", it.Key, it.Value):
					default:
					}
				}
			}
			var buf []byte
			for i := 0; i < ops; i++ {
				key := []byte("k" + strconv.Itoa(rng.IntN(keys)))
				buf = append(append(buf[:0], key...), '=')
				buf = append(buf, payload[:rng.IntN(1<<rng.IntN(15))]...)
				switch op := rng.IntN(20); {
				case op < 8:
					c.Get(key, check)
				case op < 12:
					c.Store(ModeSet, key, 0, int64(rng.IntN(3)), buf, 0)
				case op < 13:
					c.Store(ModeAdd, key, 0, 0, buf, 0)
				case op < 14:
					c.Store(ModeAppend, key, 0, 0, []byte("tail"), 0)
				case op < 15:
					c.Delete(key)
				case op < 16:
					c.Touch(key, 100)
				case op < 17:
					c.GetAndTouch(key, 0, check)
				case op < 18:
					nk := []byte("n" + strconv.Itoa(rng.IntN(10)))
					if _, res := c.Incr(nk, 1, false); res == NotFound {
						c.Store(ModeAdd, nk, 0, 0, []byte("0"), 0)
					}
				case op < 19:
					var cas uint64
					c.Get(key, func(it Item) { cas = it.CAS })
					c.Store(ModeCAS, key, 0, 0, buf, cas)
				default:
					var s Stats
					c.ReadStats(&s)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Counters add up: 10 keys each incremented from 0.
	var total uint64
	for i := 0; i < 10; i++ {
		if v, ok := value(c, "n"+strconv.Itoa(i)); ok {
			n, _ := parseUint([]byte(v))
			total += n
		}
	}
	s := stats(c)
	t.Logf("items %d evictions %d slabs moved %d (rescued %d, evicted %d) crawler reclaimed %d counters %d",
		s.CurrItems, s.Evictions, s.SlabsMoved, s.SlabReassignRescues, s.SlabReassignEvictionsNomem, s.CrawlerReclaimed, total)
	c.Close()
}

func TestConcurrentIncrExact(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "n", "0")
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				c.Incr([]byte("n"), 1, false)
			}
		}()
	}
	wg.Wait()
	if v, _ := value(c, "n"); v != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %q, want %d", v, workers*each)
	}
}

func TestCrawlerReclaimsExpired(t *testing.T) {
	clk := newFakeClock()
	// No pause between batches: a pass must end before the maintainer
	// reaches the expired items it leaves.
	c := newCache(t, Config{Now: clk.Now, CrawlInterval: time.Millisecond, CrawlerSleep: -1})
	// Every class is crawled once when the cache starts.
	waitFor(t, "the first crawl", func() bool { return stats(c).LRUCrawlerStarts == 1 })
	for i := 0; i < 1000; i++ {
		mustStore(t, c, ModeSet, fmt.Sprint("keep", i), "v", 0, 0, 0)
		mustStore(t, c, ModeSet, fmt.Sprint("exp", i), "v", 0, 10, 0)
	}
	clk.Advance(11 * time.Second)
	// The LRU maintainer reclaims the expired items it finds at a tail
	// (counted in reclaimed), the crawler those it reaches first. The
	// classes, empty in the first crawl, are due 65s after it ended (as
	// the crawler saw the time then): let time pass until a crawl has
	// checked the items left.
	waitFor(t, "the crawler", func() bool {
		clk.Advance(time.Second)
		s := stats(c)
		return s.CrawlerReclaimed+s.Reclaimed == 1000 && s.CurrItems == 1000 &&
			s.CrawlerItemsChecked >= 1000+s.CrawlerReclaimed
	})
	s := stats(c)
	if s.LRUCrawlerStarts < 2 || s.ExpiredUnfetched != 1000 {
		t.Fatalf("starts %d expired_unfetched %d", s.LRUCrawlerStarts, s.ExpiredUnfetched)
	}
	if s.GetExpired != 0 {
		t.Fatalf("get_expired %d: crawler reclaims must not count as gets", s.GetExpired)
	}
	// Flushed items are reclaimed too.
	clk.Advance(time.Second)
	c.FlushAll(0)
	waitFor(t, "the crawler after flush_all", func() bool { return stats(c).CurrItems == 0 })
	checkConsistency(t, c)
}

func TestCloseStopsEverything(t *testing.T) {
	c, err := New(Config{CrawlInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "k", "v")
	c.Close()
	c.Close()
	if c.Get([]byte("k"), nil) {
		t.Fatal("get after Close hit")
	}
	if _, err := c.Store(ModeSet, []byte("k"), 0, 0, []byte("v"), 0); err == nil {
		t.Fatal("store after Close succeeded")
	}
	// goleak (TestMain) checks that the goroutines are gone.
}

func TestUseAfterClose(t *testing.T) {
	c, err := New(Config{NoCrawler: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		mustSet(t, c, strconv.Itoa(i), "v")
	}
	c.Close()
	var s Stats
	c.ReadStats(&s)
	if s.CurrItems != 100 {
		t.Fatalf("curr_items after Close = %d", s.CurrItems)
	}
	if err := c.SetMemoryLimit(1 << 20); err != nil {
		t.Fatal(err)
	}
	c.FlushAll(0)
	c.Touch([]byte("1"), 1)
	c.Delete([]byte("1"))
	if _, res := c.Incr([]byte("1"), 1, false); res == Stored {
		t.Fatal("incr after Close")
	}
	if res, err := c.Store(ModeAppend, []byte("1"), 0, 0, []byte("x"), 0); res == Stored || err == nil {
		t.Fatalf("append after Close = %v, %v", res, err)
	}
}

// A page taken from a class between two batches of a crawl of it, the
// page the crawl was in, leaves the crawl at the start of the page that
// takes its place, not part way into it: every chunk of the other pages
// is checked, and a pass reclaims every expired item left in them.
func TestCrawlPageRemovedMidPage(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true, NoLRUMaintainer: true})
	val := string(bytes.Repeat([]byte("v"), 1500))
	id := -1
	for i := 0; ; i++ {
		mustStore(t, c, ModeSet, fmt.Sprint("k", i), val, 0, 10, 0)
		if i == 0 {
			for n := range c.classes {
				if len(c.classes[n].pages) > 0 {
					id = n
				}
			}
		}
		cl := &c.classes[id]
		cl.mu.Lock()
		full := len(cl.pages) == 2 && cl.nfree == 0
		cl.mu.Unlock()
		if full {
			break
		}
	}
	cl := &c.classes[id]
	if cl.perslab <= crawlBatch {
		t.Fatalf("class %d has %d chunks a page, want more than a batch", id, cl.perslab)
	}
	clk.Advance(20 * time.Second)
	now := c.relNow()
	p := crawlPass{own: &lruPass{want: allLRUs, cls: cl}}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.crawlPage, cl.crawlChunk = 0, 0
	c.crawlBatchLocked(cl, now, &p) // part of page 0
	if _, ok := c.clearPageLocked(cl, nil, 0, now, true); !ok {
		t.Fatal("page 0 was not emptied")
	}
	for cl.crawlPage < len(cl.pages) {
		c.crawlBatchLocked(cl, now, &p)
	}
	if n := c.items.Load(); n != 0 {
		t.Fatalf("%d expired items left after the pass, want none", n)
	}
}
