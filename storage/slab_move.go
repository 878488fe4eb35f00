package storage

import "time"

// Page moves (memcached's slab rebalancer): a page is taken from one class,
// its items moved to free chunks elsewhere in the class ("rescued") or
// evicted, and the page handed to another class or to the global page
// pool. Pages move:
//   - on Reassign (memcached's "slabs reassign"), which the mover goroutine
//     carries out one page at a time, as memcached's rebalancer thread;
//   - when the automover asks for it (slab_automove, see automove.go);
//   - when a class needs memory, the limit is reached and its own LRU has
//     nothing to evict (it may never have received a page): alloc steals a
//     page at once, as memcached lets such a class allocate its first page
//     beyond the limit, so that stores only fail when eviction is off;
//   - when a slab eviction policy evicts a whole page (see evict.go);
//   - when a lowered memory limit releases pages.

// pageOf returns the index in cl.pages of the page holding ref, or -1.
func pageOf(cl *class, ref itemRef) int {
	id := ref.pageID()
	for i, p := range cl.pages {
		if p == id {
			return i
		}
	}
	return -1
}

// tailPageLocked picks the page to empty in a class: the one holding its
// oldest item (the COLD tail, else WARM, else HOT), or its last page.
func (c *Cache) tailPageLocked(cl *class) int {
	for _, lru := range [...]int{lruCold, lruWarm, lruHot} {
		if t := cl.lru[lru].tail; t != 0 {
			if i := pageOf(cl, t); i >= 0 {
				return i
			}
		}
	}
	return len(cl.pages) - 1
}

// clearPageLocked empties page idx of class v and removes it from the
// class, returning its id; it fails (leaving the page in place, perhaps
// with fewer items) if a chunk is in flight or an item's stripe is locked.
// Live items are moved to free chunks of the class's other pages, or, when
// none is free or with evict (a slab eviction policy), evicted; so are the
// chunks of chained items (header and body chunks alike), as memcached's
// slab_rebalance_move moves them. The caller holds v.mu and,
// when not nil, dst.mu.
func (c *Cache) clearPageLocked(v, dst *class, idx int, now uint32, evict bool) (uint32, bool) {
	id := v.pages[idx]
	refOf := func(i int) itemRef { return makeRef(id, i*v.size) }
	for i := 0; i < v.perslab; i++ {
		if c.hdr(refOf(i)).bits.Load()&(bitLinked|bitSlabbed|bitChunk) == 0 {
			c.countBusy(evict)
			return 0, false // a store is filling this chunk
		}
	}
	// Take the page's free chunks off the free list, so that rescues land
	// in other pages.
	for i := 0; i < v.perslab; i++ {
		ref := refOf(i)
		if h := c.hdr(ref); h.bits.Load()&bitSlabbed != 0 {
			c.removeFreeLocked(v, ref, h)
		}
	}
	ok := true
	for i := 0; i < v.perslab; i++ {
		ref := refOf(i)
		h := c.hdr(ref)
		b := h.bits.Load()
		if b&(bitChunk|bitChained) != 0 {
			// Part of a chained item: rescued or evicted (chain.go).
			if !c.clearChainedLocked(v, dst, ref, b&bitChunk != 0, id, now, evict) {
				c.countBusy(evict)
				ok = false
			}
			continue
		}
		if b&bitLinked == 0 {
			continue
		}
		hv := c.hashKey(c.itemKey(ref, b))
		s := c.stripeFor(hv)
		if !s.mu.TryLock() {
			c.countBusy(evict)
			ok = false
			continue
		}
		live := !isExpired(h, now) && !c.isFlushed(h, now)
		switch {
		case live && evict:
			c.countEvictionLocked(v, h, b, now)
		case live:
			if to := c.takeFreeLocked(v); to != 0 {
				c.moveItemLocked(s, v, v, ref, to, hv, int(c.itemSize(h, b)))
				c.slabRescues.Add(1)
				s.mu.Unlock()
				continue
			}
			c.slabEvictions.Add(1)
		}
		c.hashRemoveLocked(s, ref, h, hv)
		c.lruUnlinkLocked(v, ref, h)
		c.items.Add(-1)
		h.bits.Store(bitSlabbed | uint32(v.id)<<clsShift)
		s.mu.Unlock()
	}
	if !ok {
		for i := 0; i < v.perslab; i++ {
			ref := refOf(i)
			if h := c.hdr(ref); h.bits.Load()&bitSlabbed != 0 {
				c.pushFreeLocked(v, ref, h)
			}
		}
		return 0, false
	}
	v.pages = append(v.pages[:idx], v.pages[idx+1:]...)
	v.npages.Store(int32(len(v.pages)))
	c.pageOwner[id].Store(0)
	switch {
	case v.crawlPage > idx:
		v.crawlPage--
	case v.crawlPage == idx:
		// The crawl was in this page: the next one, now at idx, is
		// crawled from its first chunk.
		v.crawlChunk = 0
	}
	return id, true
}

// countBusy counts an item that keeps a page move (not a slab eviction
// policy's, evict) from emptying its page this time, as memcached's
// slab_reassign_busy_items counts the items its mover finds referenced
// or locked.
func (c *Cache) countBusy(evict bool) {
	if !evict {
		c.slabBusy.Add(1)
	}
}

// moveItemLocked copies the first n bytes of the linked item at from, a
// chunk of class cl, into the in-flight chunk to of the same class and
// puts it in from's place in the hash chain and in the LRU list of class
// lc (the item's class: cl, or the largest class for the header chunk of
// a chained item); from is left out of every list, marked free. The caller
// holds the stripe lock and the locks of cl and lc.
func (c *Cache) moveItemLocked(s *stripe, cl, lc *class, from, to itemRef, hv uint64, n int) {
	hf, ht := c.hdr(from), c.hdr(to)
	b := hf.bits.Load()
	src := c.pages[from.pageID()][from.offset():]
	dst := c.pages[to.pageID()][to.offset():]
	copy(dst[c.hdrSize:n], src[c.hdrSize:n])
	prev, next := c.prev(hf), c.next(hf)
	c.setHnext(ht, c.hnext(hf))
	c.setPrev(ht, prev)
	c.setNext(ht, next)
	ht.atime.Store(hf.atime.Load())
	ht.bits.Store(b)
	ht.exptime, ht.flags, ht.nbytes = hf.exptime, hf.flags, hf.nbytes
	if c.useCAS {
		ht.cas = hf.cas
	}
	// hash chain
	c.hashReplaceLocked(s, from, to, hv)
	// LRU list
	l := &lc.lru[bitsLRU(b)]
	if prev != 0 {
		c.setNext(c.hdr(prev), to)
	} else {
		l.head = to
	}
	if next != 0 {
		c.setPrev(c.hdr(next), to)
	} else {
		l.tail = to
	}
	hf.bits.Store(bitSlabbed | uint32(cl.id)<<clsShift)
}

// stealPageLocked finds a page in another class for dst, which has nothing
// to evict: it tries the classes with the most pages (those with one page
// last), emptying the page of their oldest items. The caller holds dst.mu;
// other class locks are tried first. When every victim's lock was busy (the
// maintainer or the crawler holds it), it waits for the first such victim
// with dst.mu released (no goroutine holds two class locks at once), so a
// store does not fail for want of memory merely because of contention.
// It takes nothing while a Save holds pages in place (moveGate).
func (c *Cache) stealPageLocked(dst *class, now uint32) bool {
	if !c.moveGate.TryRLock() {
		return false
	}
	defer c.moveGate.RUnlock()
	tried := 0
	var busy *class
	for pass := 0; pass < 2 && tried < 4; pass++ {
		for tried < 4 {
			v := c.pickVictim(dst, pass == 0, tried)
			if v == nil {
				break
			}
			tried++
			if !v.mu.TryLock() {
				if busy == nil {
					busy = v
				}
				continue
			}
			id, ok := c.takePageLocked(v, dst, now)
			v.mu.Unlock()
			if ok {
				c.givePageLocked(dst, v, id)
				return true
			}
		}
	}
	if busy == nil {
		return false
	}
	dst.mu.Unlock()
	busy.mu.Lock()
	id, ok := c.takePageLocked(busy, nil, now)
	busy.mu.Unlock()
	dst.mu.Lock()
	if !ok || c.closed {
		return false // a closed cache has released every page
	}
	c.givePageLocked(dst, busy, id)
	return true
}

// givePageLocked hands page id, taken from class v, to dst. The caller
// holds dst.mu.
func (c *Cache) givePageLocked(dst, v *class, id uint32) {
	c.slabsMoved.Add(1)
	c.addPageLocked(dst, id)
}

// pickVictim returns the class other than dst with the skip+1'th most
// pages; with multi only classes with two pages or more.
func (c *Cache) pickVictim(dst *class, multi bool, skip int) *class {
	type cand struct {
		cl *class
		n  int32
	}
	var best [4]cand
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		n := cl.npages.Load()
		if cl == dst || n == 0 || (multi && n < 2) || (!multi && n != 1) {
			continue
		}
		for j := range best {
			if best[j].cl == nil || n > best[j].n {
				copy(best[j+1:], best[j:len(best)-1])
				best[j] = cand{cl, n}
				break
			}
		}
	}
	if skip >= len(best) {
		return nil
	}
	return best[skip].cl
}

// takePageLocked empties one page of v (trying up to three) and returns
// it. The caller holds v.mu and, when not nil, dst.mu.
func (c *Cache) takePageLocked(v, dst *class, now uint32) (uint32, bool) {
	if len(v.pages) == 0 {
		return 0, false
	}
	first := c.tailPageLocked(v)
	for k := 0; k < 3 && k < len(v.pages); k++ {
		idx := (first + k) % len(v.pages)
		if id, ok := c.clearPageLocked(v, dst, idx, now, false); ok {
			return id, true
		}
	}
	return 0, false
}

// overLimit reports whether the pages exceed a lowered memory limit (the
// first pages of classes that took them past the limit do not count).
func (c *Cache) overLimit() bool {
	c.pageMu.Lock()
	defer c.pageMu.Unlock()
	if c.closed {
		return false
	}
	for c.malloced > c.limit && len(c.pool) > 0 {
		id := c.pool[len(c.pool)-1]
		c.pool = c.pool[:len(c.pool)-1]
		c.releasePageLocked(id)
	}
	return c.malloced > c.limit+c.overdraft
}

// releaseOne empties a page of v and hands it back (to the pool, or to the
// operating system when over the limit).
func (c *Cache) releaseOne(v *class) bool {
	v.mu.Lock()
	if c.closed || len(v.pages) == 0 {
		v.mu.Unlock()
		return false
	}
	id, ok := c.takePageLocked(v, nil, c.relNow())
	v.mu.Unlock()
	if ok {
		c.slabsMoved.Add(1)
		c.putPage(id)
	}
	return ok
}

// tailAge returns the age of a class's oldest item (COLD tail, else WARM,
// else HOT), and whether it has items.
func (c *Cache) tailAge(cl *class, now uint32) (uint32, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, lru := range [...]int{lruCold, lruWarm, lruHot} {
		if t := cl.lru[lru].tail; t != 0 {
			return since(now, c.hdr(t).atime.Load()), true
		}
	}
	return 0, false
}

// oldestClass returns the class (other than not) with at least minPages
// pages whose oldest item is the oldest; empty classes count as oldest.
func (c *Cache) oldestClass(not *class, minPages int32) *class {
	now := c.relNow()
	var best *class
	var bestAge uint32
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		if cl == not || cl.npages.Load() < minPages {
			continue
		}
		age, any := c.tailAge(cl, now)
		if !any {
			return cl
		}
		if best == nil || age > bestAge {
			best, bestAge = cl, age
		}
	}
	return best
}

// Reassign asks the mover to move one page from class src to class dst, as
// memcached's "slabs reassign": src -1 picks a class with pages to spare,
// class 0 is the global page pool (a page moved there is free for any
// class; dst 0 frees a page of src). It returns at once; the page moves in
// the background, its items rescued into free chunks of src or evicted.
// The checks and their order are memcached's: ErrReassignDisabled, ErrBusy
// while a move is in progress, ErrSameClass, ErrBadClass for a class
// memcached would not have, ErrNoSpare when src has fewer than two pages.
// It allocates nothing and is safe for concurrent use.
func (c *Cache) Reassign(src, dst int) error {
	if c.cfg.NoSlabReassign {
		return ErrReassignDisabled
	}
	if c.rebalBusy.Load() {
		return ErrBusy
	}
	if src == dst {
		return ErrSameClass
	}
	if src == -1 {
		src = c.pickAny(dst)
	}
	if src < 0 || src > c.largest || dst < 0 || dst > c.largest {
		return ErrBadClass
	}
	if c.pagesOf(src) < 2 {
		return ErrNoSpare
	}
	if !c.rebalBusy.CompareAndSwap(false, true) {
		return ErrBusy
	}
	c.rebalSrc.Store(int32(src))
	c.rebalDst.Store(int32(dst))
	select {
	case c.rebalCh <- struct{}{}:
	default:
	}
	return nil
}

// pagesOf returns the pages of class id, or of the global pool for 0.
func (c *Cache) pagesOf(id int) int {
	if id != 0 {
		return int(c.classes[id].npages.Load())
	}
	c.pageMu.Lock()
	defer c.pageMu.Unlock()
	return len(c.pool)
}

// pickAny returns the next class after the last one picked, round robin,
// that is not dst and has two pages or more, or -1 (memcached's
// slabs_reassign_pick_any).
func (c *Cache) pickAny(dst int) int {
	cur := int(c.pickCur.Load())
	for range c.largest {
		cur++
		if cur > c.largest {
			cur = 1
		}
		if cur != dst && c.classes[cur].npages.Load() > 1 {
			c.pickCur.Store(int32(cur))
			return cur
		}
	}
	return -1
}

// Move attempts: a page with an item in flight or locked is retried.
const (
	moveTries = 200
	moveRetry = time.Millisecond
)

// runMover carries out the moves Reassign asks for, one at a time, until
// stop is closed.
func (c *Cache) runMover() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.rebalCh:
		}
		src, dst := int(c.rebalSrc.Load()), int(c.rebalDst.Load())
		for range moveTries {
			c.moveGate.RLock() // a Save in progress holds pages in place
			done := c.movePage(src, dst)
			c.moveGate.RUnlock()
			if done {
				break
			}
			t := time.NewTimer(moveRetry)
			select {
			case <-c.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		c.rebalBusy.Store(false)
	}
}

// movePage moves one page from src to dst. It reports false when it
// should be tried again (an item was busy), true when the page moved or
// the move cannot be made (src has fewer than two pages left, as memcached
// refuses then).
func (c *Cache) movePage(src, dst int) bool {
	var id uint32
	if src == 0 {
		c.pageMu.Lock()
		n := len(c.pool)
		if c.closed || n < 2 {
			c.pageMu.Unlock()
			return true
		}
		id = c.pool[n-1]
		c.pool = c.pool[:n-1]
		c.pageMu.Unlock()
	} else {
		v := &c.classes[src]
		v.mu.Lock()
		if c.closed || len(v.pages) < 2 {
			v.mu.Unlock()
			return true
		}
		var ok bool
		id, ok = c.takePageLocked(v, nil, c.relNow())
		v.mu.Unlock()
		if !ok {
			return false
		}
	}
	c.slabsMoved.Add(1)
	if dst != 0 {
		d := &c.classes[dst]
		d.mu.Lock()
		if !c.closed {
			c.addPageLocked(d, id)
		}
		d.mu.Unlock()
		return true
	}
	c.putPage(id)
	return true
}
