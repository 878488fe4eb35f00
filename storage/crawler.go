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
// batches. A pass over a class checks the items of the LRUs it is for
// (HOT, WARM, COLD, TEMP: each has its schedule, as memcached's LRU ids).
// With the LRU maintainer it crawls on its own (see runCrawler); besides,
// Crawl asks for one pass over every LRU of given classes at once
// ("lru_crawler crawl").
const (
	crawlBatch = 256
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
	toCrawl atomic.Uint32 // items checked per LRU and pass; 0 = all
	busy    atomic.Bool   // a Crawl request is pending or running
	req     chan []bool   // classes to crawl, by id
	rounds  atomic.Uint64 // turns of runCrawler's loop begun, which tests wait on
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

// SetCrawlerToCrawl bounds the items the crawler checks per LRU of a
// class and pass, as memcached's lru_crawler_tocrawl; 0 removes the bound.
// It is safe for concurrent use.
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
	// As memcached, the crawler counts as started, and running, from
	// the moment the request is taken.
	c.startCrawl()
	select {
	case c.crawl.req <- want:
		return nil
	default:
		c.crawlerRunning.Add(-1)
		c.crawlerStarts.Add(^uint64(0))
		c.crawl.busy.Store(false)
		return ErrCrawlerBusy
	}
}

// CrawlerBusy reports whether a Crawl request is pending or running. It is
// safe for concurrent use.
func (c *Cache) CrawlerBusy() bool { return c.crawl.busy.Load() }

// Autocrawl scheduling, as memcached's lru_maintainer_crawler_check: each
// LRU of each class (memcached's LRU id, class | HOT/WARM/COLD/TEMP) has a
// schedule of its own, computed from what its last pass saw.
const (
	// crawlMinWait is the least time, in seconds, between two passes over
	// an LRU, and what is added to the computed wait.
	crawlMinWait = 5
	// crawlWaitStep is how much an LRU's wait grows or shrinks after a
	// pass, in seconds.
	crawlWaitStep = 60
	// crawlMaxWait bounds an LRU's wait (memcached's MAX_MAINTCRAWL_WAIT).
	crawlMaxWait = 60 * 60
	// crawlHistoBuckets are the minutes of remaining TTL a pass counts
	// items by; longer TTLs only count as seen.
	crawlHistoBuckets = 61
)

// lruSet names LRUs of a class, by LRU id.
type lruSet [numLRU]bool

// allLRUs is every LRU of a class.
var allLRUs = lruSet{true, true, true, true}

// crawlTally is what an automatic pass over an LRU saw of the items it
// left: how many, how many never expire, and the others by minutes of TTL
// left. The next pass is scheduled from it.
type crawlTally struct {
	seen, noexp uint64
	histo       [crawlHistoBuckets]uint64
}

// crawlSchedule is the crawler goroutine's own state for one LRU of a
// class.
type crawlSchedule struct {
	next     uint32 // relative time after which the LRU is crawled again
	wait     uint32 // seconds added to crawlMinWait after a pass
	complete bool   // a pass ended and next is still to be computed
	tally    crawlTally
}

// reschedule computes when an LRU is crawled again from what its last
// pass saw: soon when at least 1% of its items expire within the next
// minutes, a minute later each time a pass finds nothing that will expire
// within the hour, up to crawlMaxWait.
func (cs *crawlSchedule) reschedule(now uint32) {
	t := &cs.tally
	low := (t.seen-t.noexp)/100 + 1
	var avail uint64
	for x := 0; x < 60; x++ {
		avail += t.histo[x]
		if avail > low {
			if cs.wait < uint32(x*60) {
				cs.wait += crawlWaitStep
			} else if cs.wait >= crawlWaitStep {
				cs.wait -= crawlWaitStep
			}
			break
		}
	}
	if avail == 0 {
		cs.wait += crawlWaitStep
	}
	cs.wait = min(cs.wait, crawlMaxWait)
	cs.next = now + cs.wait + crawlMinWait
	cs.complete = false
	cs.tally = crawlTally{}
}

// dueLRUs returns the LRUs of every class due for an automatic pass at
// now (all of them on the first check), and whether there is any: an LRU
// whose pass has ended is rescheduled first, and a due one is not due
// again for crawlMinWait seconds, as memcached's minimum retry wait.
func dueLRUs(sched [][numLRU]crawlSchedule, now uint32, first bool) ([]lruSet, bool) {
	want := make([]lruSet, len(sched))
	due := false
	for i := 1; i < len(sched); i++ {
		for l := range sched[i] {
			cs := &sched[i][l]
			if cs.complete {
				cs.reschedule(now)
			}
			if now > cs.next || first {
				want[i][l] = true
				due = true
				cs.next = now + crawlMinWait
			}
		}
	}
	return want, due
}

// runCrawler serves the passes Crawl asks for and, while the crawler is
// enabled and the LRU maintainer runs, checks every CrawlInterval which
// LRUs are due for an automatic pass, as memcached's maintainer starts
// its crawler: every LRU of every class at once when the cache starts,
// then each LRU again on its own schedule (see reschedule). Without the
// maintainer the crawler only answers requests, as memcached's does. It
// stops when stop is closed.
func (c *Cache) runCrawler() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.CrawlInterval)
	defer t.Stop()
	sched := make([][numLRU]crawlSchedule, len(c.classes))
	auto := c.lruSettings().Maintainer
	for first := true; ; first = false {
		c.crawl.rounds.Add(1)
		var req []bool
		if !first {
			select {
			case <-c.stop:
				return
			case req = <-c.crawl.req:
			case <-t.C:
			}
		}
		if req == nil && (!auto || !c.crawl.enabled.Load()) {
			continue
		}
		if req == nil {
			want, due := dueLRUs(sched, c.relNow(), first)
			if !due {
				continue
			}
			c.startCrawl()
			ok := c.crawlAll(want, sched)
			c.crawlerRunning.Add(-1)
			if !ok {
				return
			}
			continue
		}
		// Crawl counted the start of the pass it asked for, over every
		// LRU of the classes it names.
		want := make([]lruSet, len(req))
		for i, on := range req {
			if on {
				want[i] = allLRUs
			}
		}
		ok := c.crawlAll(want, nil)
		c.crawl.busy.Store(false)
		c.crawlerRunning.Add(-1)
		if !ok {
			return
		}
	}
}

// startCrawl counts a start of the crawler, for a pass or a dump, and
// marks it running; the caller subtracts one from crawlerRunning when done.
func (c *Cache) startCrawl() {
	c.crawlerStarts.Add(1)
	c.crawlerRunning.Add(1)
}

// crawlAll makes one pass over the LRUs want names of each class; sched,
// for an automatic pass, records what each LRU's pass saw. The chained
// items are on the largest class's LRUs, as in memcached, but their
// headers sit in other classes' pages: they are checked (and counted,
// and scheduled) with the largest class's LRUs, in whichever pages they
// are. It returns false when the cache is stopping.
func (c *Cache) crawlAll(want []lruSet, sched [][numLRU]crawlSchedule) bool {
	limit := uint64(c.crawl.toCrawl.Load())
	large := &lruPass{want: want[c.largest], cls: &c.classes[c.largest]}
	if sched != nil {
		large.tally = new([numLRU]crawlTally)
	}
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		p := crawlPass{own: large, limit: limit}
		if i != c.largest {
			p.own = &lruPass{want: want[i], cls: cl}
			if sched != nil {
				p.own.tally = new([numLRU]crawlTally)
			}
			if large.want != (lruSet{}) && cl.npages.Load() != 0 {
				p.chained = large
			}
		}
		if p.own.want == (lruSet{}) && p.chained == nil {
			continue
		}
		if !c.crawlClass(cl, &p) {
			return false
		}
		if sched == nil || i == c.largest {
			continue
		}
		for l, on := range want[i] {
			if on {
				sched[i][l].tally = p.own.tally[l]
				sched[i][l].complete = true
			}
		}
	}
	if sched != nil {
		for l, on := range want[c.largest] {
			if on {
				sched[c.largest][l].tally = large.tally[l]
				sched[c.largest][l].complete = true
			}
		}
	}
	return true
}

// crawlClass makes one pass over the chunks of a class, checking the
// items p names (see crawlPass). It returns false when the cache is
// stopping.
func (c *Cache) crawlClass(cl *class, p *crawlPass) bool {
	cl.mu.Lock()
	cl.crawlPage, cl.crawlChunk = 0, 0
	cl.mu.Unlock()
	for {
		select {
		case <-c.stop:
			return false
		default:
		}
		// A Save in progress has the class locks to itself.
		c.moveGate.RLock()
		// A batch that stopped at a chained item because the largest
		// class's lock was busy is followed by one that waits for it,
		// taken before the class's own, in lock order.
		var large *class
		if p.waitLarge && cl.id != c.largest {
			large = &c.classes[c.largest]
			large.mu.Lock()
		}
		p.waitLarge, p.largeHeld = false, large != nil
		cl.mu.Lock()
		if c.closed || cl.crawlPage >= len(cl.pages) || p.done() {
			cl.mu.Unlock()
			if large != nil {
				large.mu.Unlock()
			}
			c.moveGate.RUnlock()
			return true
		}
		c.crawlBatchLocked(cl, c.relNow(), p)
		cl.mu.Unlock()
		if large != nil {
			large.mu.Unlock()
		}
		c.moveGate.RUnlock()
		if d := c.crawl.sleep.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
	}
}

// lruPass is what a pass checks of the LRUs of one class: the items on
// the LRUs in want, at most limit of each (as memcached's crawler stops
// each LRU after lru_crawler_tocrawl items), adding to tally (when not
// nil) what it saw of the items it left, by LRU.
type lruPass struct {
	want    lruSet // LRUs still to check; one leaves it at the limit
	checked [numLRU]uint64
	tally   *[numLRU]crawlTally
	cls     *class // the class whose counters count the items
}

// crawlPass is one pass over the pages of a class: own is for the items
// of the class, chained (nil for none) for the chained items whose
// headers are in its pages, shared by the passes over every class.
type crawlPass struct {
	own, chained *lruPass
	limit        uint64 // items checked per LRU; 0 = all
	// waitLarge asks the next batch to wait for the largest class's
	// lock, which a chained item to reclaim found busy; largeHeld says
	// this batch holds it.
	waitLarge, largeHeld bool
}

// done reports whether the pass has nothing left to check.
func (p *crawlPass) done() bool {
	return p.own.want == (lruSet{}) && (p.chained == nil || p.chained.want == (lruSet{}))
}

// crawlBatchLocked checks up to crawlBatch chunks from the class's crawl
// position, reclaiming the expired and flushed items on the LRUs p wants
// and adding what it saw of the others to p's tally. The caller holds
// cl.mu.
func (c *Cache) crawlBatchLocked(cl *class, now uint32, p *crawlPass) {
	id := cl.pages[cl.crawlPage]
	var reclaimed, checked, checkedChained uint64
	for n := 0; n < crawlBatch && cl.crawlChunk < cl.perslab; n++ {
		ref := makeRef(id, cl.crawlChunk*cl.size)
		cl.crawlChunk++
		h := c.hdr(ref)
		b := h.bits.Load()
		if b&bitLinked == 0 {
			continue
		}
		lp, chained := p.own, b&bitChained != 0
		switch {
		case !chained:
		case p.chained != nil:
			lp = p.chained
		case cl.id != c.largest:
			// The largest class's LRUs are not asked for.
			continue
		}
		lru := bitsLRU(b)
		if !lp.want[lru] {
			continue
		}
		hv := c.hashKey(c.itemKey(ref, b))
		s := c.stripeFor(hv)
		if !s.mu.TryLock() {
			continue
		}
		flushed := c.isFlushed(h, now)
		expired := flushed || (h.exptime != 0 && h.exptime < now)
		// Freeing a chained item whose header is in a smaller class needs
		// the largest class's lock as well. Code holding a class lock only
		// tries it; when it is busy (a store of a large item, stats), the
		// batch ends before this item and the next one waits for the lock,
		// so that a pass reclaims every expired item it is asked for.
		tookLarge := false
		if expired && chained && cl.id != c.largest && !p.largeHeld {
			if !c.classes[c.largest].mu.TryLock() {
				s.mu.Unlock()
				cl.crawlChunk--
				p.waitLarge = true
				break
			}
			tookLarge = true
		}
		if lp == p.own {
			checked++
		} else {
			checkedChained++
		}
		if lp.checked[lru]++; p.limit > 0 && lp.checked[lru] >= p.limit {
			lp.want[lru] = false
		}
		switch {
		case expired && chained:
			// A chained item's header chunk: the item is the largest
			// class's, counted there.
			c.unlinkChainedLocked(s, cl, ref, h, hv)
			l := &c.classes[bitsClass(b)]
			l.cnt.crawlerReclaimed.Add(1)
			if b&bitFetched == 0 && !flushed {
				l.cnt.expiredUnfetched.Add(1)
			}
		case expired:
			reclaimed++
			if b&bitFetched == 0 && !flushed {
				cl.cnt.expiredUnfetched.Add(1)
			}
			c.unlinkBothLocked(s, cl, ref, h, hv)
		case lp.tally == nil:
		case h.exptime == 0:
			lp.tally[lru].seen++
			lp.tally[lru].noexp++
		default:
			t := &lp.tally[lru]
			t.seen++
			if left := h.exptime - now; left < 3600 {
				t.histo[left/60]++
			}
		}
		if tookLarge {
			c.classes[c.largest].mu.Unlock()
		}
		s.mu.Unlock()
	}
	if cl.crawlChunk >= cl.perslab {
		cl.crawlPage++
		cl.crawlChunk = 0
	}
	p.own.cls.cnt.crawlerItemsChecked.Add(checked)
	if p.chained != nil {
		p.chained.cls.cnt.crawlerItemsChecked.Add(checkedChained)
	}
	cl.cnt.crawlerReclaimed.Add(reclaimed)
}
