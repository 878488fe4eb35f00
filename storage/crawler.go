package storage

import (
	"sync/atomic"
	"time"
)

// The crawler walks the chunks of every class page by page and reclaims
// expired and flushed items (memcached's LRU crawler with its "expired"
// module), so that memory of items nobody asks for again comes back without
// waiting for the LRU tail. It holds a class lock for crawlBatch chunks at
// a time, only tries stripe locks, and pauses CrawlerSleep between
// batches. A class whose last pass reclaimed nothing is crawled less often,
// up to crawlMaxBackoff times the interval. Besides these passes, Crawl
// asks for one pass over given classes at once ("lru_crawler crawl").
const (
	crawlBatch      = 256
	crawlMaxBackoff = 64
	// defaultCrawlerSleep is memcached's lru_crawler_sleep default.
	defaultCrawlerSleep = 100 * time.Microsecond
	// MaxClassID is the largest class id commands may name, as memcached's
	// MAX_NUMBER_OF_SLAB_CLASSES-1.
	MaxClassID = maxClassID
)

// crawlerState holds the crawler's run-time settings and requests.
type crawlerState struct {
	enabled atomic.Bool
	sleep   atomic.Int64  // nanoseconds between batches
	toCrawl atomic.Uint32 // items checked per class and pass; 0 = all
	busy    atomic.Bool   // a Crawl request is pending or running
	req     chan []bool   // classes to crawl, by id
}

// CrawlerSettings are the crawler settings "stats settings" reports.
type CrawlerSettings struct {
	Enabled bool          // lru_crawler
	Sleep   time.Duration // lru_crawler_sleep
	ToCrawl uint32        // lru_crawler_tocrawl
}

// CrawlerSettings returns the crawler's current settings. It is safe for
// concurrent use.
func (c *Cache) CrawlerSettings() CrawlerSettings {
	return CrawlerSettings{
		Enabled: c.crawl.enabled.Load(),
		Sleep:   time.Duration(c.crawl.sleep.Load()),
		ToCrawl: c.crawl.toCrawl.Load(),
	}
}

// EnableCrawler turns the crawler on; it reports false when it was
// already on (memcached then answers that it failed to start it). It is
// safe for concurrent use.
func (c *Cache) EnableCrawler() bool { return c.crawl.enabled.CompareAndSwap(false, true) }

// DisableCrawler turns the crawler off: its periodic passes stop and Crawl
// fails until it is enabled again. It is safe for concurrent use.
func (c *Cache) DisableCrawler() { c.crawl.enabled.Store(false) }

// SetCrawlerSleep sets the pause between the crawler's batches, clamped to
// [0, 1s]. It is safe for concurrent use.
func (c *Cache) SetCrawlerSleep(d time.Duration) {
	c.crawl.sleep.Store(int64(min(max(d, 0), time.Second)))
}

// SetCrawlerToCrawl bounds the items the crawler checks per class and
// pass; 0 removes the bound. It is safe for concurrent use.
func (c *Cache) SetCrawlerToCrawl(n uint32) { c.crawl.toCrawl.Store(n) }

// Crawl asks the crawler for one pass over the given classes (all classes
// when ids is nil) and returns at once. It fails with ErrBadClass for an id
// outside 1..MaxClassID, ErrCrawlerDisabled when the crawler is off and
// ErrCrawlerBusy while an earlier request is being served. It is safe for
// concurrent use.
func (c *Cache) Crawl(ids []int) error {
	want := make([]bool, len(c.classes))
	for _, id := range ids {
		if id < 1 || id > MaxClassID {
			return ErrBadClass
		}
		if id < len(want) {
			want[id] = true
		}
	}
	if ids == nil {
		for i := range want {
			want[i] = true
		}
	}
	if !c.crawl.enabled.Load() {
		return ErrCrawlerDisabled
	}
	if !c.crawl.busy.CompareAndSwap(false, true) {
		return ErrCrawlerBusy
	}
	select {
	case c.crawl.req <- want:
		return nil
	default:
		c.crawl.busy.Store(false)
		return ErrCrawlerBusy
	}
}

// CrawlerBusy reports whether a Crawl request is pending or running. It is
// safe for concurrent use.
func (c *Cache) CrawlerBusy() bool { return c.crawl.busy.Load() }

// runCrawler runs crawl passes every CrawlInterval while the crawler is
// enabled, and the passes Crawl asks for, until stop is closed.
func (c *Cache) runCrawler() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.CrawlInterval)
	defer t.Stop()
	wait := make([]int, len(c.classes))    // ticks until a class's next pass
	backoff := make([]int, len(c.classes)) // current interval in ticks
	for {
		var want []bool
		select {
		case <-c.stop:
			return
		case want = <-c.crawl.req:
		case <-t.C:
			if !c.crawl.enabled.Load() {
				continue
			}
		}
		started := false
		for i := 1; i < len(c.classes); i++ {
			cl := &c.classes[i]
			if cl.npages.Load() == 0 || (want != nil && !want[i]) {
				continue
			}
			if want == nil && wait[i] > 0 {
				wait[i]--
				continue
			}
			if !started {
				started = true
				c.crawlerStarts.Add(1)
				c.crawlerRunning.Store(true)
			}
			n, ok := c.crawlClass(cl)
			if !ok {
				c.crawlerRunning.Store(false)
				return
			}
			if want != nil {
				continue
			}
			if n > 0 || backoff[i] == 0 {
				backoff[i] = 1
			} else {
				backoff[i] = min(backoff[i]*2, crawlMaxBackoff)
			}
			wait[i] = backoff[i] - 1
		}
		c.crawlerRunning.Store(false)
		if want != nil {
			c.crawl.busy.Store(false)
		}
	}
}

// crawlClass makes one pass over a class and returns how many items it
// reclaimed; ok is false when the cache is stopping.
func (c *Cache) crawlClass(cl *class) (reclaimed int, ok bool) {
	cl.mu.Lock()
	cl.crawlPage, cl.crawlChunk = 0, 0
	cl.mu.Unlock()
	limit := uint64(c.crawl.toCrawl.Load())
	var checked uint64
	for {
		select {
		case <-c.stop:
			return reclaimed, false
		default:
		}
		// A Save in progress has the class locks to itself.
		c.moveGate.RLock()
		cl.mu.Lock()
		if c.closed || cl.crawlPage >= len(cl.pages) || (limit > 0 && checked >= limit) {
			cl.mu.Unlock()
			c.moveGate.RUnlock()
			return reclaimed, true
		}
		n, k := c.crawlBatchLocked(cl, c.relNow())
		cl.mu.Unlock()
		c.moveGate.RUnlock()
		reclaimed += n
		checked += k
		if d := c.crawl.sleep.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
	}
}

// crawlBatchLocked checks up to crawlBatch chunks from the class's crawl
// position and returns how many items it reclaimed and checked. The
// caller holds cl.mu.
func (c *Cache) crawlBatchLocked(cl *class, now uint32) (int, uint64) {
	id := cl.pages[cl.crawlPage]
	reclaimed := 0
	var checked uint64
	for n := 0; n < crawlBatch && cl.crawlChunk < cl.perslab; n++ {
		ref := makeRef(id, cl.crawlChunk*cl.size)
		cl.crawlChunk++
		h := c.hdr(ref)
		b := h.bits.Load()
		if b&bitLinked == 0 {
			continue
		}
		hv := c.hashKey(c.itemKey(ref, b))
		s := c.stripeFor(hv)
		if !s.mu.TryLock() {
			continue
		}
		checked++
		flushed := c.isFlushed(h, now)
		if flushed || (h.exptime != 0 && h.exptime < now) {
			reclaimed++
			if b&bitFetched == 0 && !flushed {
				cl.cnt.expiredUnfetched.Add(1)
			}
			c.unlinkBothLocked(s, cl, ref, h, hv)
		}
		s.mu.Unlock()
	}
	if cl.crawlChunk >= cl.perslab {
		cl.crawlPage++
		cl.crawlChunk = 0
	}
	cl.cnt.crawlerItemsChecked.Add(checked)
	cl.cnt.crawlerReclaimed.Add(uint64(reclaimed))
	return reclaimed, checked
}
