package storage

import "time"

// Segmented LRU, as memcached 1.6: new items enter HOT; the maintainer
// moves items from the HOT and WARM tails to COLD when their list is over
// its share of the class (LRUSettings.HotPct, WarmPct) or older than a
// multiple (HotMaxFactor, WarmMaxFactor) of the COLD tail's age; items
// found ACTIVE (fetched twice) at a tail get a second chance in WARM;
// evictions come from the COLD tail. A get only sets bits in the item: the
// lists are fixed up lazily at their tails. Items with a short TTL may go
// to TEMP instead, where they stay until they expire; with the flat LRU
// everything else goes to COLD (see LRUSettings).
const pullTries = 5 // items looked at per tail pull

// lruLinkLocked puts an item at the head of an LRU list.
func (c *Cache) lruLinkLocked(cl *class, lru int, ref itemRef, h *itemHeader) {
	l := &cl.lru[lru]
	setLRU(h, lru)
	c.setPrev(h, 0)
	c.setNext(h, l.head)
	if l.head != 0 {
		c.setPrev(c.hdr(l.head), ref)
	}
	l.head = ref
	if l.tail == 0 {
		l.tail = ref
	}
	l.n++
	l.bytes += c.statSize(h, h.bits.Load())
}

// lruUnlinkLocked takes an item off its LRU list.
func (c *Cache) lruUnlinkLocked(cl *class, ref itemRef, h *itemHeader) {
	b := h.bits.Load()
	l := &cl.lru[bitsLRU(b)]
	prev, next := c.prev(h), c.next(h)
	if prev != 0 {
		c.setNext(c.hdr(prev), next)
	} else {
		l.head = next
	}
	if next != 0 {
		c.setPrev(c.hdr(next), prev)
	} else {
		l.tail = prev
	}
	c.setPrev(h, 0)
	c.setNext(h, 0)
	l.n--
	l.bytes -= c.statSize(h, b)
}

// unlinkBothLocked removes a linked item from the hash index and its LRU and
// frees its chunk. The caller holds the item's stripe lock and class lock.
func (c *Cache) unlinkBothLocked(s *stripe, cl *class, ref itemRef, h *itemHeader, hv uint64) {
	c.hashRemoveLocked(s, ref, h, hv)
	c.lruUnlinkLocked(cl, ref, h)
	h.bits.And(^uint32(bitLinked))
	c.items.Add(-1)
	c.freeChunkLocked(cl, ref, h)
}

// pullTailLocked is memcached's lru_pull_tail: it looks at up to pullTries
// items at the tail of one LRU of the class, reclaiming expired and flushed
// items, and then, by list:
//   - HOT/WARM: an ACTIVE item is rescued (HOT moves to WARM, WARM to its
//     own head); otherwise the item moves to COLD when the list holds more
//     than its share of totalBytes or is older than maxAge, else nothing.
//   - COLD: an ACTIVE item moves to WARM (when evicting, the pull then
//     goes on to the next item); otherwise, with evict, the item is evicted
//     unless NoEvict.
//
// It returns how many items it reclaimed, evicted or moved. Items whose
// stripe is locked are skipped (TryLock keeps the stripe→class lock order).
func (c *Cache) pullTailLocked(cl *class, lru int, totalBytes uint64, maxAge uint32, evict bool, now uint32) int {
	set := c.lruSettings()
	removed := 0
	search := cl.lru[lru].tail
	for tries := pullTries; tries > 0 && search != 0; tries-- {
		h := c.hdr(search)
		next := c.prev(h)
		b := h.bits.Load()
		hv := c.hashKey(c.itemKey(search, b))
		s := c.stripeFor(hv)
		if !s.mu.TryLock() {
			cl.cnt.lruTailReflocked.Add(1)
			search = next
			continue
		}
		if b&bitChained != 0 && c.pins.pinned(search) {
			// A reply is written from its chunks: freeing it would
			// give back no memory (pin.go), as memcached passes over
			// an item with references.
			s.mu.Unlock()
			cl.cnt.lruTailReflocked.Add(1)
			search = next
			continue
		}
		// memcached reclaims at the tail with exptime < now (strictly).
		if (h.exptime != 0 && h.exptime < now) || c.isFlushed(h, now) {
			cl.cnt.reclaimed.Add(1)
			if b&bitFetched == 0 {
				cl.cnt.expiredUnfetched.Add(1)
			}
			c.unlinkBothLocked(s, cl, search, h, hv)
			s.mu.Unlock()
			removed++
			search = next
			continue
		}
		moveTo := -1
		stop := true
		switch lru {
		case lruHot, lruWarm:
			pct := uint64(set.HotPct)
			if lru == lruWarm {
				pct = uint64(set.WarmPct)
			}
			limit := totalBytes * pct / 100
			switch {
			case !set.Segmented:
				// The flat LRU drains what the segments still hold.
				cl.cnt.movesToCold.Add(1)
				moveTo = lruCold
				removed++
			case b&bitActive != 0:
				h.bits.And(^uint32(bitActive))
				removed++
				if lru == lruWarm {
					cl.cnt.movesWithinLRU.Add(1)
					c.lruUnlinkLocked(cl, search, h)
					c.lruLinkLocked(cl, lruWarm, search, h)
					stop = false
				} else {
					cl.cnt.movesToWarm.Add(1)
					moveTo = lruWarm
				}
			case cl.lru[lru].bytes > limit || since(now, h.atime.Load()) > maxAge:
				cl.cnt.movesToCold.Add(1)
				moveTo = lruCold
				removed++
			}
		case lruCold:
			if b&bitActive != 0 && !set.Segmented {
				h.bits.And(^uint32(bitActive))
				b &^= bitActive
			}
			switch {
			case b&bitActive != 0:
				// Second chance: memcached moves an item hit in COLD to
				// WARM at once; corvid does it here, at the tail, also
				// when pulling to evict.
				cl.cnt.movesToWarm.Add(1)
				h.bits.And(^uint32(bitActive))
				moveTo = lruWarm
				removed++
				stop = !evict
			case evict:
				if c.evict.Load()&uint32(EvictLRU) == 0 {
					break
				}
				c.countEvictionLocked(cl, h, b, now)
				c.noteEvictionLocked(search, h, b, now)
				c.unlinkBothLocked(s, cl, search, h, hv)
				removed++
				if c.automove.Load() == 2 {
					_ = c.Reassign(-1, cl.id) // slab_automove=2: a page for every eviction
				}
			}
		}
		if moveTo >= 0 {
			c.lruUnlinkLocked(cl, search, h)
			c.lruLinkLocked(cl, moveTo, search, h)
		}
		s.mu.Unlock()
		if stop {
			break
		}
		search = next
	}
	return removed
}

// juggle is memcached's lru_maintainer_juggle for one class: it
// balances HOT and WARM against the age of the COLD tail and moves ACTIVE
// COLD items to WARM. It returns how many moves it made.
func (c *Cache) juggle(cl *class) int {
	moves := 0
	for i := 0; i < 500; i++ {
		cl.mu.Lock()
		if c.closed {
			cl.mu.Unlock()
			return moves
		}
		now := c.relNow()
		var coldAge uint32
		if t := cl.lru[lruCold].tail; t != 0 {
			coldAge = since(now, c.hdr(t).atime.Load())
		}
		set := c.lruSettings()
		total := cl.lru[lruHot].bytes + cl.lru[lruWarm].bytes + cl.lru[lruCold].bytes
		hotAge := uint32(float64(coldAge) * set.HotMaxFactor)
		warmAge := uint32(float64(coldAge) * set.WarmMaxFactor)
		more := 0
		if cl.lru[lruTemp].tail != 0 {
			more += c.pullTailLocked(cl, lruTemp, 0, 0, false, now)
		}
		if c.pullTailLocked(cl, lruHot, total, hotAge, false, now) > 0 ||
			c.pullTailLocked(cl, lruWarm, total, warmAge, false, now) > 0 {
			more++
		}
		more += c.pullTailLocked(cl, lruCold, total, 0, false, now)
		cl.mu.Unlock()
		if more == 0 {
			break
		}
		moves++
	}
	return moves
}

// LRU maintainer sleep bounds (memcached's MIN/MAX_LRU_MAINTAINER_SLEEP).
const (
	maintainerMinSleep = time.Millisecond
	maintainerMaxSleep = time.Second
)

// runMaintainer juggles every class's LRU lists, sleeping less while it
// finds work, and balances pages between classes, until stop is closed.
func (c *Cache) runMaintainer() {
	defer c.wg.Done()
	sleep := maintainerMaxSleep / 10
	var lastBalance time.Time
	for {
		t := time.NewTimer(sleep)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
		moves := 0
		// A load's items are linked in the order of the snapshot, then
		// ordered by last access (relinkByAccess): moving them meanwhile
		// would put the first loaded, not the least recently used, in COLD.
		if c.lruSettings().Maintainer && c.loading.Load() == 0 {
			for i := 1; i < len(c.classes); i++ {
				if c.classes[i].npages.Load() > 0 {
					moves += c.juggle(&c.classes[i])
				}
			}
			c.juggles.Add(1)
		}
		if moves > 0 {
			sleep = max(sleep/2, maintainerMinSleep)
		} else {
			sleep = min(sleep*2, maintainerMaxSleep)
		}
		if time.Since(lastBalance) >= time.Second {
			lastBalance = time.Now()
			c.balance()
		}
		c.automoveTick()
	}
}
