package storage

import "time"

// The crawler walks the chunks of every class page by page and reclaims
// expired and flushed items (memcached's LRU crawler with its "expired"
// module), so that memory of items nobody asks for again comes back without
// waiting for the LRU tail. It holds a class lock for crawlBatch chunks at
// a time and only tries stripe locks. A class whose last pass reclaimed
// nothing is crawled less often, up to crawlMaxBackoff times the interval.
const (
	crawlBatch      = 256
	crawlMaxBackoff = 64
)

// runCrawler runs crawl passes every CrawlInterval until stop is closed.
func (c *Cache) runCrawler() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.CrawlInterval)
	defer t.Stop()
	wait := make([]int, len(c.classes))    // ticks until a class's next pass
	backoff := make([]int, len(c.classes)) // current interval in ticks
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		started := false
		for i := 1; i < len(c.classes); i++ {
			cl := &c.classes[i]
			if cl.npages.Load() == 0 {
				continue
			}
			if wait[i] > 0 {
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
			if n > 0 || backoff[i] == 0 {
				backoff[i] = 1
			} else {
				backoff[i] = min(backoff[i]*2, crawlMaxBackoff)
			}
			wait[i] = backoff[i] - 1
		}
		c.crawlerRunning.Store(false)
	}
}

// crawlClass makes one pass over a class and returns how many items it
// reclaimed; ok is false when the cache is stopping.
func (c *Cache) crawlClass(cl *class) (reclaimed int, ok bool) {
	cl.mu.Lock()
	cl.crawlPage, cl.crawlChunk = 0, 0
	cl.mu.Unlock()
	for {
		select {
		case <-c.stop:
			return reclaimed, false
		default:
		}
		cl.mu.Lock()
		if c.closed || cl.crawlPage >= len(cl.pages) {
			cl.mu.Unlock()
			return reclaimed, true
		}
		reclaimed += c.crawlBatchLocked(cl, c.relNow())
		cl.mu.Unlock()
	}
}

// crawlBatchLocked checks up to crawlBatch chunks from the class's crawl
// position. The caller holds cl.mu.
func (c *Cache) crawlBatchLocked(cl *class, now uint32) int {
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
	return reclaimed
}
